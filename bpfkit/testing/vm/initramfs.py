"""The guest's initramfs: a static busybox, the modules needed to mount the host's ``/`` over 9p,
and the first-stage init script (``initramfs.sh``; the second stage, ``init.sh``, runs from the
host's tree once mounted).

Example::

    version, moddir = modules_dir(unpacked_package)
    initrd = build_initrd(cache_root, moddir)
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path

from . import image
from .types import GuestError, GuestUnavailable

__all__ = ["STAGE1", "STAGE2", "modules_dir", "build_initrd"]

_HERE = Path(__file__).resolve().parent
STAGE1 = _HERE / "initramfs.sh"
STAGE2 = _HERE / "init.sh"
# Everything the initramfs must load before it can mount the host's / over 9p.
UNUSED_INITRD_SECONDS = 86400  # another version of the initrd is deleted after a day unused
_INITRD_MODULES = ["9p", "9pnet_virtio", "virtio_pci", "overlay"]


def modules_dir(pkg: Path) -> tuple[str, Path]:
    for base in (pkg / "lib" / "modules", pkg / "usr" / "lib" / "modules"):
        versions = [p for p in base.glob("*") if p.is_dir()] if base.is_dir() else []
        if len(versions) == 1:
            return versions[0].name, versions[0]
    raise GuestError(f"{pkg}: expected exactly one lib/modules/<version> directory")


def _initrd_key(modules: list[Path], busybox: Path) -> str:
    h = hashlib.sha256(STAGE1.read_bytes())
    for m in modules:
        h.update(str(m).encode())
    h.update(str(busybox.stat().st_size).encode())
    return h.hexdigest()[:12]


def build_initrd(root: Path, moddir: Path) -> Path:
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.exists() or not image.is_static_elf(busybox):
        raise GuestUnavailable("the guest initramfs needs a static busybox: apt-get install busybox-static")
    modules = image.module_load_order(moddir, _INITRD_MODULES)
    out = root / f"initrd-{_initrd_key(modules, busybox)}.cpio.gz"
    if out.exists():
        os.utime(out, ns=(time.time_ns(), out.stat().st_mtime_ns))  # in use (access time): see the pruning
        return out
    cpio = image.CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "lower", "rw", "newroot", "mods"):
        cpio.add_dir(d)
    cpio.add_file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in ("sh", "mount", "insmod", "mkdir", "cat", "echo", "sleep", "switch_root", "poweroff"):
        cpio.add_symlink(f"bin/{applet}", "busybox")
    for i, mod in enumerate(modules):
        name = mod.name.split(".ko", 1)[0]
        cpio.add_file(f"mods/{i:02d}_{name}.ko", image.read_module(mod))
    cpio.add_file("init", STAGE1.read_bytes(), 0o755)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(cpio.finish())
    tmp.replace(out)
    # Other versions go once unused for a day: checkouts with different init scripts share this
    # cache, and deleting another's initrd at once would pull it from under a guest it is booting.
    for old in root.glob("initrd-*.cpio.gz"):
        with contextlib.suppress(OSError):
            if old != out and time.time() - old.stat().st_atime > UNUSED_INITRD_SECONDS:
                old.unlink()
    return out
