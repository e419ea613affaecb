"""Pure helpers behind :mod:`bpfkit.testing.vm`: unpack a bzImage into a bootable
ELF vmlinux, resolve kernel-module load order, and write a newc cpio initramfs.

Kept apart from ``vm.py`` so they can be tested and reused without qemu.

Example::

    from pathlib import Path
    from bpfkit.testing.vm import image
    image.extract_vmlinux(Path("vmlinuz-6.1.0-56-amd64"), Path("vmlinux"))
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ImageError",
    "extract_vmlinux",
    "has_pvh_entry",
    "is_static_elf",
    "module_load_order",
    "read_module",
    "CpioWriter",
]


class ImageError(Exception):
    """A kernel image, module tree or binary is not in the expected shape."""


# Boot-protocol offsets (Documentation/arch/x86/boot.rst): the bzImage header
# says exactly where the compressed payload lives, so no magic scanning needed.
_HDR_SETUP_SECTS = 0x1F1
_HDR_MAGIC = 0x202
_HDR_VERSION = 0x206
_HDR_PAYLOAD = 0x248


def _payload(image: bytes) -> bytes:
    if image[_HDR_MAGIC : _HDR_MAGIC + 4] != b"HdrS":
        raise ImageError("not an x86 bzImage (no 'HdrS' boot header)")
    (version,) = struct.unpack_from("<H", image, _HDR_VERSION)
    if version < 0x208:
        raise ImageError(f"boot protocol {version:#x} predates payload_offset (needs 2.08+)")
    setup_sects = image[_HDR_SETUP_SECTS] or 4
    offset, length = struct.unpack_from("<II", image, _HDR_PAYLOAD)
    start = (setup_sects + 1) * 512 + offset
    return image[start : start + length]


def _decompress(payload: bytes) -> bytes:
    # The kernel build appends the uncompressed size as 4 little-endian bytes.
    body = payload[:-4]
    if body.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(body)
    if body.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31).decompress(body)
    if body.startswith(b"\x28\xb5\x2f\xfd"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise ImageError("the kernel is zstd-compressed: install the 'zstd' package")
        out = subprocess.run([zstd, "-dcq"], input=body, capture_output=True)
        if out.returncode != 0:
            raise ImageError(f"zstd failed: {out.stderr.decode(errors='replace').strip()}")
        return out.stdout
    if body.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(body)
    if body.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(body)
    raise ImageError(f"unsupported kernel compression (payload starts {body[:6].hex()})")


def extract_vmlinux(vmlinuz: Path, out: Path) -> None:
    """Write the uncompressed ELF kernel inside bzImage ``vmlinuz`` to ``out``.

    qemu boots such an ELF through its PVH entry, skipping the decompressor
    (measured ~7.5 s -> ~4.3 s to first guest command under TCG).
    """
    payload = _payload(vmlinuz.read_bytes())
    if len(payload) < 8:
        raise ImageError(f"{vmlinuz}: empty compressed payload")
    (expected,) = struct.unpack("<I", payload[-4:])
    elf = _decompress(payload)
    if not elf.startswith(b"\x7fELF"):
        raise ImageError(f"{vmlinuz}: payload does not decompress to an ELF file")
    if len(elf) != expected:
        raise ImageError(f"{vmlinuz}: decompressed {len(elf)} bytes, header says {expected}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(elf)
    tmp.replace(out)


@dataclass(frozen=True)
class _Elf64:
    data: bytes

    def segments(self) -> list[tuple[int, int, int]]:
        """(p_type, p_offset, p_filesz) of each program header."""
        if self.data[:4] != b"\x7fELF" or self.data[4] != 2:
            raise ImageError("not a 64-bit ELF file")
        (phoff,) = struct.unpack_from("<Q", self.data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", self.data, 0x36)
        out = []
        for i in range(phnum):
            p_type, _flags, p_offset = struct.unpack_from("<IIQ", self.data, phoff + i * phentsize)
            (p_filesz,) = struct.unpack_from("<Q", self.data, phoff + i * phentsize + 0x20)
            out.append((p_type, p_offset, p_filesz))
        return out


_PT_INTERP = 3
_PT_NOTE = 4
_XEN_ELFNOTE_PHYS32_ENTRY = 18


def is_static_elf(path: Path) -> bool:
    """True when ``path`` is an ELF executable with no program interpreter."""
    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    return all(t != _PT_INTERP for t, _, _ in _Elf64(head).segments())


def has_pvh_entry(vmlinux: Path) -> bool:
    """True when the ELF kernel carries the Xen PVH entry note qemu needs to boot it."""
    elf = _Elf64(vmlinux.read_bytes())
    for p_type, off, size in elf.segments():
        if p_type != _PT_NOTE:
            continue
        pos, end = off, off + size
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf.data, pos)
            name = elf.data[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == _XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def _module_name(relpath: str) -> str:
    base = relpath.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def module_load_order(moddir: Path, wanted: list[str]) -> list[Path]:
    """Files to insmod, dependencies first, for modules ``wanted`` in ``moddir``.

    Reads the ``modules.dep`` that ``depmod`` wrote; modules built into the
    kernel (``modules.builtin``) are skipped.
    """
    dep_file = moddir / "modules.dep"
    if not dep_file.exists():
        raise ImageError(f"{dep_file} is missing: run depmod first")
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in dep_file.read_text().splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[_module_name(path)] = (path, rest.split())
    builtin_file = moddir / "modules.builtin"
    builtin = {_module_name(p) for p in builtin_file.read_text().split()} if builtin_file.exists() else set()

    order: list[str] = []

    def visit(relpath: str) -> None:
        name = _module_name(relpath)
        if relpath in order:
            return
        for dep in deps.get(name, (relpath, []))[1]:
            visit(dep)
        order.append(relpath)

    for want in wanted:
        key = want.replace("-", "_")
        if key in deps:
            visit(deps[key][0])
        elif key not in builtin:
            raise ImageError(f"kernel module {want!r} is neither in {dep_file} nor built in")
    return [moddir / p for p in order]


def read_module(path: Path) -> bytes:
    """The plain ELF bytes of a (possibly .xz/.gz/.zst compressed) kernel module;
    busybox insmod cannot load compressed ones."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        zstd = shutil.which("zstd")
        if zstd is None:
            raise ImageError(f"{path} is zstd-compressed: install the 'zstd' package")
        return subprocess.run([zstd, "-dcq"], input=data, capture_output=True, check=True).stdout
    return data


class CpioWriter:
    """Build a gzip'ed "newc" cpio archive (the initramfs format) in memory.

    Example::

        w = CpioWriter()
        w.add_dir("bin")
        w.add_file("init", b"#!/bin/sh\\n", mode=0o755)
        Path("initrd.gz").write_bytes(w.finish())
    """

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes) -> None:
        encoded = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        self._buf.write(header + encoded)
        self._pad()
        self._buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self._buf.write(b"\0" * (-self._buf.tell() % 4))

    def add_dir(self, name: str) -> None:
        self._entry(name, 0o040755, b"")

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def add_symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def finish(self) -> bytes:
        """Terminate the archive and return it gzip-compressed."""
        self._entry("TRAILER!!!", 0, b"")
        return gzip.compress(self._buf.getvalue(), compresslevel=1)
