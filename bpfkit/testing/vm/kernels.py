"""Getting a guest kernel ready: pick the Debian package, download and unpack it (once, cached),
index its modules, extract an ELF vmlinux qemu boots directly, and build the initramfs.

The package archive is reached through an :class:`Apt` (``apt-cache`` / ``apt-get``); pass another
to :func:`prepare_kernel` to decide what the archive offers (the tests do).

Example::

    k = prepare_kernel("6.12")
    print(k.version)   # 6.12.117+deb12-amd64
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

from .initramfs import build_initrd, modules_dir
from . import image
from .types import KERNELS, GuestError, GuestKernel, GuestUnavailable, KernelSpec, cache_dir

__all__ = ["Apt", "prepare_kernel", "resolve_package", "download"]

log = logging.getLogger("bpfkit.testing.vm")


class Apt:
    """The Debian archive as the runner sees it: which ``linux-image-*`` packages of a series it
    names, and a refresh of its lists (at most once per Apt)."""

    def __init__(self) -> None:
        self.updated = False

    def candidates(self, spec: KernelSpec) -> list[str]:
        """Package names of ``spec``'s series that apt knows."""
        if shutil.which("apt-cache") is None:
            return []
        # apt-cache wants a POSIX regex; one loose prefix query, filtered precisely in Python.
        prefix = "^linux-image-" + spec.name.replace(".", r"\.") + r"\."
        out = subprocess.run(["apt-cache", "search", "--names-only", prefix], capture_output=True, text=True)
        if out.returncode != 0:
            log.warning("apt-cache search failed: %s", out.stderr.strip())
            return []
        return [line.split(" - ", 1)[0] for line in out.stdout.splitlines()]

    def update(self) -> bool:
        """``apt-get update``, at most once; False (with a warning) if it failed or already ran."""
        if self.updated:
            return False
        self.updated = True
        if shutil.which("apt-get") is None:
            return False
        log.info("apt-get update (the package lists may be older than the mirror)")
        out = subprocess.run(["apt-get", "-q", "update"], capture_output=True, text=True)
        if out.returncode != 0:
            log.warning("apt-get update failed: %s", out.stderr.strip()[-500:])
            return False
        return True


_APT = Apt()  # the process's: apt-get update runs at most once per process

def _pick(spec: KernelSpec, names: Sequence[str]) -> str | None:
    for pattern in spec.patterns:
        found = [(int(m.group(1)), n) for n in names if (m := re.fullmatch(pattern, n))]
        if found:
            return max(found)[1]
    return None


def cached_packages(spec: KernelSpec) -> list[str]:
    """Fully prepared packages of ``spec``'s series in the cache (those with a kernel.json)."""
    root = cache_dir()
    names = [p.parent.name for p in root.glob("*/kernel.json")] if root.is_dir() else []
    return [n for n in names if any(re.fullmatch(pat, n) for pat in spec.patterns)]


def candidates(name: str, apt: Apt = _APT) -> list[str]:
    """Packages to try for kernel ``name``, best first: the newest apt knows, then the newest
    cached one (used when the download fails, e.g. stale lists or no network)."""
    if name.startswith("linux-image-"):
        return [name]
    spec = KERNELS.get(name)
    if spec is None:
        raise GuestUnavailable(f"unknown kernel {name!r}: use one of {', '.join(KERNELS)} or a linux-image-* package")
    cached = _pick(spec, cached_packages(spec))
    if cached is None:
        # A fresh machine's lists may name packages the mirror no longer has.
        apt.update()
    found: list[str] = []
    for picked in (_pick(spec, apt.candidates(spec)), cached):
        if picked is not None and picked not in found:
            found.append(picked)
    if not found:
        raise GuestUnavailable(
            f"no Debian package for kernel {name} is known to apt (patterns {list(spec.patterns)}) "
            "and none is cached: run 'apt-get update' on a Debian bookworm host with network access"
        )
    return found


def resolve_package(name: str, apt: Apt = _APT) -> str:
    """The Debian package for kernel ``name`` ("6.1", "6.12" or a full
    ``linux-image-...`` package name): newest known to apt, else newest cached.
    (:func:`prepare_kernel` falls back to the cached one if the download fails.)"""
    return candidates(name, apt)[0]


def _run_tool(argv: list[str], what: str, cwd: Path | None = None) -> None:
    # depmod lives in /usr/sbin, often missing from a non-root PATH.
    tool = shutil.which(argv[0], path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if tool is None:
        raise GuestUnavailable(f"{argv[0]} not found, needed to {what}")
    out = subprocess.run([tool, *argv[1:]], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise GuestUnavailable(f"{what} failed ({shlex.join(argv)}): {out.stderr.strip()[-2000:]}")


def _package_size(package: str) -> int:
    """The .deb's size in bytes as apt's lists give it (0 when unknown)."""
    out = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    m = re.search(r"^Size: (\d+)$", out.stdout, re.M)
    return int(m.group(1)) if m else 0


def download(package: str, dest: Path, progress_every: float = 5.0) -> None:
    """``apt-get download package`` into ``dest``, logging how far it got every ``progress_every``
    seconds: a kernel package is 60-150 MB, and a silent minute reads as a hang.

    Example::

        download("linux-image-6.1.0-57-amd64", Path("/tmp/k"))
    """
    if shutil.which("apt-get") is None:
        raise GuestUnavailable(f"apt-get not found, needed to download {package}")
    size = _package_size(package)
    mib = f"{size / 2**20:.0f} MB" if size else "size unknown"
    log.info("downloading %s (%s) into %s", package, mib, cache_dir())
    t0 = time.monotonic()
    # The download runs as root: tell apt not to drop to _apt, which cannot write here.
    proc = subprocess.Popen(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", package], cwd=dest,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        try:
            _, err = proc.communicate(timeout=progress_every)
            break
        except subprocess.TimeoutExpired:  # apt writes the .deb in place: its size is the progress
            got = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
            of = f" of {size / 2**20:.0f} MB" if size else ""
            log.info("downloading %s: %.0f%s MB after %.0f s", package, got / 2**20, of, time.monotonic() - t0)
    if proc.returncode != 0:
        raise GuestUnavailable(f"download {package} failed (apt-get download {package}): {err.strip()[-2000:]}")
    log.info("downloaded %s in %.0f s", package, time.monotonic() - t0)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        # Two processes preparing the same kernel would otherwise unpack over each other.
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _unpack(package: str, root: Path) -> Path:
    """Download and unpack ``package`` into ``root/pkg``; returns that dir."""
    pkg = root / "pkg"
    if pkg.is_dir():
        return pkg
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="download-", dir=root))
    try:
        download(package, work)
        debs = list(work.glob("*.deb"))
        if len(debs) != 1:
            raise GuestUnavailable(f"apt-get download {package} produced {len(debs)} .deb files")
        _run_tool(["dpkg-deb", "-x", str(debs[0]), str(work / "pkg")], f"unpack {debs[0].name}")
        (work / "pkg").rename(pkg)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return pkg


def prepare_kernel(name: str, apt: Apt = _APT) -> GuestKernel:
    """Download (once), unpack, depmod and build a bootable kernel + initramfs.

    ``name`` is a key of :data:`KERNELS` ("6.1", "6.12") or a full
    ``linux-image-*`` package name. A second call reuses the cache. The newest
    package apt knows is tried first; if its download fails, the newest cached
    kernel of the series is used; with nothing cached, ``apt-get update`` runs
    first (and once more before giving up), since a fresh machine's package
    lists may name packages the mirror has dropped.

    Example::

        k = prepare_kernel("6.12")
        print(k.version)   # 6.12.117+deb12-amd64
    """
    failures: list[str] = []
    for attempt in range(2):
        for package in candidates(name, apt):
            try:
                return _prepare(name, package)
            except GuestUnavailable as e:  # download/unpack failed: try the next candidate
                log.warning("cannot prepare %s: %s", package, e)
                failures.append(f"{package}: {e}")
        # Nothing worked and nothing was cached: stale lists name packages the mirror dropped.
        if attempt or name.startswith("linux-image-") or not apt.update():
            break
    raise GuestUnavailable(f"no package for kernel {name} could be prepared: " + "; ".join(failures))


def _prepare(name: str, package: str) -> GuestKernel:
    root = cache_dir() / package
    with _locked(cache_dir() / f"{package}.lock"):
        try:
            pkg = _unpack(package, root)
        except GuestUnavailable:
            with contextlib.suppress(OSError):
                root.rmdir()  # only if empty: a failed download leaves nothing behind
            raise
        version, moddir = modules_dir(pkg)
        if not (moddir / "modules.dep").exists():
            log.info("depmod %s", version)
            _run_tool(["depmod", "-b", str(pkg), version], f"index the modules of {version}")
        vmlinux = root / "vmlinux"
        if not vmlinux.exists():
            log.info("extracting vmlinux from vmlinuz-%s", version)
            try:
                image.extract_vmlinux(pkg / "boot" / f"vmlinuz-{version}", vmlinux)
            except (OSError, image.ImageError) as e:
                raise GuestError(f"cannot extract vmlinux of {package}: {e}") from e
            if not image.has_pvh_entry(vmlinux):
                vmlinux.unlink()
                raise GuestError(f"{package}: vmlinux has no PVH entry note, qemu cannot boot it directly")
        try:
            initrd = build_initrd(root, moddir)
        except image.ImageError as e:
            raise GuestError(f"cannot build the initramfs for {package}: {e}") from e
        # Also marks the package as fully prepared for the offline fallback in resolve_package.
        meta = json.dumps({"package": package, "version": version}) + "\n"
        if _read(root / "kernel.json") != meta:
            (root / "kernel.json").write_text(meta)
    return GuestKernel(name, package, version, vmlinux, initrd, moddir)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
