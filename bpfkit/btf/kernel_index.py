"""Kernel BTF as :class:`~bpfkit.btf.index.BtfIndex`: the running kernel's (vmlinux and modules),
or a file's (raw BTF, or an ELF such as a distribution's ``vmlinux`` with a ``.BTF`` section).

Indexing vmlinux walks ~130k records once (about 0.1 s); the record positions are then kept on
disk under bpfkit's cache, keyed by the SHA-256 of the BTF itself, so a later process only reads
them back (a few ms) and checks they fit. The cache is used only if it and its directory belong to
this user and nobody else can write them.

Example::

    idx = vmlinux_index()
    idx.find("task_struct", KIND_STRUCT)
    for name, mod in module_indexes(): ...
    idx61 = file_index("~/.cache/bpfkit/kernels/linux-image-6.1.0-57-amd64/vmlinux")
"""
from __future__ import annotations

import mmap
import os
import stat
import struct
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .. import _sys as sc
from ..cachedir import cache_root
from ..errors import BpfError, BpfNotFoundError, ObjectFormatError
from .index import BtfIndex, Buffer

__all__ = ["VMLINUX", "vmlinux_index", "module_indexes", "file_index", "btf_from_file", "index_cached"]

VMLINUX = "/sys/kernel/btf/vmlinux"
_CACHE_VERSION = "v1"


def _cache_dir() -> Path:
    return cache_root() / "btf-index"


def _trusted(path: Path, is_dir: bool) -> bool:
    """Ours and writable only by us (as pip and ssh check their caches)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _load_starts(path: Path) -> Optional[np.ndarray]:
    if not (_trusted(path.parent, True) and _trusted(path, False)):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            arr = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return arr if arr.ndim == 1 and arr.dtype.kind in "iu" else None


def _save_starts(path: Path, starts: np.ndarray) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(path.parent, True):
            return
        import tempfile  # only when writing the cache: start-up stays lean

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, starts.astype(np.uint32), allow_pickle=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only or full cache only costs the next process the walk again


def index_cached(raw: Buffer, base: Optional[BtfIndex] = None, use_cache: bool = True,
                 key: Optional[str] = None) -> BtfIndex:
    """Index ``raw`` BTF, reusing (and recording) its record positions in the cache, under ``key``
    (default: the SHA-256 of ``raw``).

    Example::

        idx = index_cached(open("/sys/kernel/btf/vmlinux", "rb").read())
    """
    if not use_cache:
        return BtfIndex.parse(raw, base)
    import hashlib  # OpenSSL's 3.6 MiB only for CO-RE, not at every start-up

    key = key or hashlib.sha256(raw).hexdigest()
    path = _cache_dir() / f"{_CACHE_VERSION}-{key}.npy"
    starts = _load_starts(path)
    if starts is not None:
        try:
            return BtfIndex.from_arrays(raw, starts, base)
        except ObjectFormatError:
            pass  # stale or damaged: index afresh and overwrite it
    idx = BtfIndex.parse(raw, base)
    _save_starts(path, idx.starts)
    return idx


@lru_cache(maxsize=1)
def vmlinux_index() -> BtfIndex:
    """The running kernel's BTF, indexed once per process.

    Example::

        vmlinux_index().find("sched_switch", KIND_STRUCT)
    """
    try:
        fd = os.open(VMLINUX, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BpfNotFoundError(f"{VMLINUX} not found: CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y "
                               "(or give the kernel's BTF explicitly)") from None
    try:
        raw: Buffer
        try:
            # 6.16+ maps its BTF read-only: no copy, and only the pages a lookup touches are read
            raw = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            with os.fdopen(os.dup(fd), "rb") as f:
                raw = f.read()
    finally:
        os.close(fd)
    # The kernel's BTF cannot change while it runs: its release, size, head and tail identify it
    # (and a mismatch would fail the cached index's check anyway), without hashing 5+ MB.
    import hashlib

    ident = hashlib.sha256(os.uname().release.encode() + b"\0" + str(len(raw)).encode() + b"\0" +
                           bytes(raw[:65536]) + bytes(raw[-65536:]))
    return index_cached(raw, key=ident.hexdigest())


def module_indexes() -> Iterator[tuple[str, int, BtfIndex]]:
    """(module name, BTF object id, index) of each loaded kernel module with BTF, as split BTF on
    top of vmlinux (in BTF id order, as libbpf walks them). A module unloaded meanwhile is skipped.

    Example::

        [name for name, _, _ in module_indexes()]    # e.g. ['nf_tables', 'xfs', ...]
    """
    base = vmlinux_index()
    for btf_id in _kernel_btf_ids():
        found = _module_btf(btf_id)
        if found is None:
            continue
        name, raw = found
        try:
            yield name, btf_id, _module_index(raw, base)
        except ObjectFormatError:
            continue


@lru_cache(maxsize=256)
def _module_index(raw: bytes, base: BtfIndex) -> BtfIndex:
    return BtfIndex.parse(raw, base)


def _kernel_btf_ids() -> list[int]:
    ids: list[int] = []
    cur = 0
    while True:
        attr = sc.GetIdAttr(id=cur)
        ret, err = sc.bpf_errno(sc.BPF_BTF_GET_NEXT_ID, attr)
        if ret < 0:
            if err == 2:  # ENOENT: no more
                return ids
            raise BpfError.from_errno(err, "BPF_BTF_GET_NEXT_ID")
        cur = int(attr.next_id)
        ids.append(cur)


def _module_btf(btf_id: int) -> Optional[tuple[str, bytes]]:
    """(name, raw BTF) of kernel BTF object ``btf_id`` if it is a module's, else None."""
    import ctypes

    try:
        fd = sc.btf_fd_by_id(btf_id)
    except BpfNotFoundError:
        return None
    try:
        name = ctypes.create_string_buffer(64)
        info = sc.BtfInfo(name=ctypes.addressof(name), name_len=len(name))
        sc.obj_info(fd, info, f"btf id {btf_id}")
        if not info.kernel_btf or name.value in (b"vmlinux", b""):
            return None
        size = info.btf_size
        buf = ctypes.create_string_buffer(size)
        info2 = sc.BtfInfo(btf=ctypes.addressof(buf), btf_size=size)
        sc.obj_info(fd, info2, f"btf id {btf_id}")
        return name.value.decode(errors="replace"), buf.raw[:info2.btf_size]
    finally:
        os.close(fd)


def btf_from_file(path: str) -> bytes:
    """Raw BTF from a file: raw BTF as is, or an ELF file's ``.BTF`` section (a kernel's vmlinux).

    Example::

        raw = btf_from_file("/boot/vmlinux-6.1.0-57-amd64")
    """
    try:
        with open(os.path.expanduser(path), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BpfNotFoundError(f"BTF file {path!r} not found") from None
    if data[:4] != b"\x7fELF":
        return data
    try:
        return _elf_section(data, ".BTF")
    except struct.error:
        raise ObjectFormatError(f"{path}: truncated ELF file") from None


def _elf_section(data: bytes, want: str) -> bytes:
    if data[4] != 2 or data[5] != 1:
        raise ObjectFormatError("only 64-bit little-endian ELF files are supported")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shentsize < 64 or shoff + shnum * shentsize > len(data) or shstrndx >= shnum:
        raise ObjectFormatError("ELF section headers lie outside the file")
    heads = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = heads[shstrndx][4], heads[shstrndx][5]
    names = data[str_off: str_off + str_size]
    for h in heads:
        end = names.find(b"\0", h[0])
        if end >= 0 and names[h[0]:end] == want.encode():
            if h[4] + h[5] > len(data):
                raise ObjectFormatError(f"ELF section {want} lies outside the file")
            return data[h[4]: h[4] + h[5]]
    raise BpfNotFoundError(f"the ELF file has no {want} section (a kernel built without CONFIG_DEBUG_INFO_BTF?)")


def file_index(path: str) -> BtfIndex:
    """Index the BTF in ``path`` (raw BTF or an ELF with .BTF), using the cache.

    Example::

        file_index("/sys/kernel/btf/vmlinux").count
    """
    return index_cached(btf_from_file(path))
