"""Finding a library or program by the name people use: ``"c"``, ``"libssl"``, ``"python3"``.

Short names resolve through glibc's ``/etc/ld.so.cache`` (parsed directly, ``ldconfig -p`` as a
fallback), then ``$PATH``; paths are taken as they are.

Example::

    resolve_library("c")          # '/usr/lib/x86_64-linux-gnu/libc.so.6'
    resolve_library("python3")    # '/usr/bin/python3'
"""
from __future__ import annotations

import errno as _errno
import os
import platform
import re
import shutil
import struct
import subprocess

from ..errors import BpfNotFoundError, BpfUsageError, ObjectFormatError

__all__ = ["LD_SO_CACHE", "resolve_library", "parse_ld_cache", "parse_ldconfig_p"]

LD_SO_CACHE = "/etc/ld.so.cache"


# glibc's ld.so.cache entry flags: low byte = ELF/libc type, next byte = ABI.
_FLAG_TYPE_MASK = 0x00FF
_FLAG_ELF_LIBC6 = 0x0003
_FLAG_ARCH_MASK = 0xFF00
_ARCH_FLAGS = {
    "x86_64": 0x0300,
    "s390x": 0x0400,
    "ppc64le": 0x0500,
    "ppc64": 0x0500,
    "aarch64": 0x0A00,
    "riscv64": 0x1000,
    "i386": 0x0000,
    "i686": 0x0000,
}
# How `ldconfig -p` names the same ABIs inside the parentheses.
_ARCH_TAGS = {"x86_64": "x86-64", "aarch64": "AArch64", "s390x": "64bit", "ppc64le": "64bit", "riscv64": "64bit"}

_NEW_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
_OLD_CACHE_MAGIC = b"ld.so-1.7.0"
_NEW_HEADER_SIZE = 48  # magic+version(20) nlibs len_strings flags pad[3] ext_off unused[3]
_NEW_ENTRY = struct.Struct("=iIIIQ")  # flags key value osversion hwcap
_OLD_ENTRY_SIZE = 12


def parse_ld_cache(data: bytes, machine: str) -> list[tuple[str, str]]:
    """(soname, path) pairs of ``data`` (an ld.so.cache) usable on ``machine``; ObjectFormatError
    if it is not one (every count and offset is checked against the data).

    Example::

        parse_ld_cache(open("/etc/ld.so.cache", "rb").read(), "x86_64")[:1]   # [('libc.so.6', '/lib/...')]
    """
    base = 0
    if data.startswith(_OLD_CACHE_MAGIC):
        # Old-format header (magic[11] + pad + nlibs), entries, then the new format
        # aligned to 8 bytes; new-format string offsets count from its own start.
        if len(data) < 16:
            raise ObjectFormatError("ld.so.cache: truncated old-format header")
        (nlibs_old,) = struct.unpack_from("=I", data, 12)
        base = (16 + nlibs_old * _OLD_ENTRY_SIZE + 7) & ~7
    if data[base : base + len(_NEW_CACHE_MAGIC)] != _NEW_CACHE_MAGIC:
        raise ObjectFormatError("unknown ld.so.cache format (no glibc-ld.so.cache1.1 header)")
    if len(data) < base + _NEW_HEADER_SIZE:
        raise ObjectFormatError("ld.so.cache: truncated header")
    nlibs, _len_strings = struct.unpack_from("=II", data, base + 20)
    if base + _NEW_HEADER_SIZE + nlibs * _NEW_ENTRY.size > len(data):
        raise ObjectFormatError(f"ld.so.cache: {nlibs} entries do not fit in {len(data)} bytes")
    want_arch = _ARCH_FLAGS.get(machine)

    def cstr(off: int) -> str:
        start = base + off
        end = data.find(b"\0", start)
        if start >= len(data) or end < 0:
            raise ObjectFormatError(f"ld.so.cache: string offset {off} is outside the file or unterminated")
        return data[start:end].decode("utf-8", "replace")

    plain: list[tuple[str, str]] = []
    hwcap_only: list[tuple[str, str]] = []
    for i in range(nlibs):
        flags, key, value, _osv, hwcap = _NEW_ENTRY.unpack_from(data, base + _NEW_HEADER_SIZE + i * _NEW_ENTRY.size)
        if flags & _FLAG_TYPE_MASK != _FLAG_ELF_LIBC6:
            continue
        if want_arch is not None and flags & _FLAG_ARCH_MASK != want_arch:
            continue
        # Entries with hwcap bits point into glibc-hwcaps/ subdirectories; the
        # baseline entry is the one every process can load.
        (hwcap_only if hwcap else plain).append((cstr(key), cstr(value)))
    return plain + hwcap_only


_LDCONFIG_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)(?:[^=]*)=>\s+(\S+)\s*$")


def parse_ldconfig_p(text: str, machine: str) -> list[tuple[str, str]]:
    tag = _ARCH_TAGS.get(machine)
    out = []
    for line in text.splitlines():
        m = _LDCONFIG_LINE.match(line)
        if not m or not m.group(2).startswith("libc6"):
            continue
        attrs = m.group(2).split(",")[1:]
        if tag is not None and tag not in attrs:
            continue
        if tag is None and machine in ("i386", "i686") and attrs:
            continue
        out.append((m.group(1), m.group(3)))
    return out


_ld_cache_memo: tuple[tuple[int, int], list[tuple[str, str]]] | None = None


def _ld_cache_entries() -> list[tuple[str, str]]:
    global _ld_cache_memo
    machine = platform.machine()
    try:
        st = os.stat(LD_SO_CACHE)
        key = (st.st_mtime_ns, st.st_size)
        if _ld_cache_memo is not None and _ld_cache_memo[0] == key:
            return _ld_cache_memo[1]
        with open(LD_SO_CACHE, "rb") as f:
            entries = parse_ld_cache(f.read(), machine)
        _ld_cache_memo = (key, entries)
        return entries
    except (OSError, ObjectFormatError):
        pass  # unreadable or not a cache: ask ldconfig
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if ldconfig is None:
        return []
    proc = subprocess.run([ldconfig, "-p"], capture_output=True, text=True)
    return parse_ldconfig_p(proc.stdout, machine) if proc.returncode == 0 else []


def _version_key(soname: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", soname.partition(".so")[2]))


def _find_in_ld_cache(name: str) -> str | None:
    entries = _ld_cache_entries()
    for soname, path in entries:
        if soname == name:
            return path
    stem = name if name.startswith("lib") else "lib" + name
    prefix = stem if ".so" in stem else stem + ".so"
    matches = [(s, p) for s, p in entries if s == prefix or s.startswith(prefix + ".")]
    if not matches:
        return None
    # Several majors (libssl.so.3 and libssl.so.1.1): take the newest.
    return max(matches, key=lambda sp: _version_key(sp[0]))[1]


def resolve_library(name: str) -> str:
    """Absolute, symlink-free path of a library or executable to probe.

    * a path containing ``/`` is returned if the file exists;
    * a name that looks like a library (``"libc"``, ``"libc.so.6"``) is looked
      up in the ld.so cache, like ``ldconfig -p``;
    * any other bare name is an executable on ``$PATH`` (``"bash"``) or, if
      there is none, ``lib<name>.so*`` from the ld.so cache (``"c"``). Unlike
      bcc, an executable wins over a same-named library: ``"python3.11"`` is
      the interpreter, not ``libpython3.11.so``.

    Raises BpfNotFoundError naming what was searched.

    Example::

        resolve_library("c")      # '/usr/lib/x86_64-linux-gnu/libc.so.6'
        resolve_library("bash")   # '/usr/bin/bash'
    """
    if not name:
        raise BpfNotFoundError("empty library/executable name")
    if "/" in name:
        if os.path.isfile(name):
            return os.path.realpath(name)
        if os.path.isdir(name):
            raise BpfUsageError(f"{name} is a directory; give the path of an executable or shared library",
                                _errno.EISDIR)
        raise BpfNotFoundError(f"{name}: no such file", _errno.ENOENT)
    looks_like_lib = name.startswith("lib") or ".so" in name
    if not looks_like_lib:
        exe = shutil.which(name)
        if exe is not None:
            return os.path.realpath(exe)
    lib = _find_in_ld_cache(name)
    if lib is not None:
        return os.path.realpath(lib)
    stem = name if name.startswith("lib") else "lib" + name
    searched = f"{LD_SO_CACHE} (for {name} / {stem}.so*)"
    if not looks_like_lib:
        searched = f"$PATH (for an executable {name!r}) and " + searched
    raise BpfNotFoundError(
        f"cannot find {name!r}: searched {searched}; pass the absolute path of the binary or library",
        _errno.ENOENT,
    )
