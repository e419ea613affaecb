"""Finding the separate debug file of a stripped binary: by build-id, then by ``.gnu_debuglink``.

This follows GDB's documented search ("Debugging Information in Separate Files"):

* build-id: ``DIR/.build-id/xx/rest-of-id.debug`` for each debug directory ``DIR``;
* debuglink ``NAME`` (with a CRC32 of the debug file): ``BINDIR/NAME``, ``BINDIR/.debug/NAME`` and
  ``DIR/BINDIR/NAME`` for each debug directory.

For a process in another mount namespace every candidate is looked for inside its root
(``/proc/PID/root/...``) first, then on the host. A candidate whose build-id or CRC does not match
is skipped, and the reason is kept so a tool can say why a binary stayed unsymbolized.

Example::

    found = find_debug_file("/usr/bin/prog", "ab12...", ("prog.debug", 0x1234abcd))
    found.path, found.rejected
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import Sequence

from bpfkit.errors import BpfError

from ..binaries.elfreader import ElfReader

DEFAULT_DEBUG_DIRS: tuple[str, ...] = ("/usr/lib/debug",)


@dataclass
class DebugFileSearch:
    """What :func:`find_debug_file` found: the path (None if nothing fit) and every candidate
    that existed but was rejected, with the reason.

    Example::

        s = find_debug_file(path, build_id, link)
        if s.path is None and s.rejected:
            print("; ".join(s.rejected))
    """

    path: str | None = None
    how: str = ""  # "build-id" or "debuglink"
    rejected: list[str] = field(default_factory=list)


def file_crc32(path: str) -> int:
    """The CRC32 ``.gnu_debuglink`` records for a debug file (zlib's CRC-32, whole file)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc & 0xFFFFFFFF


def _rooted(root: str, path: str) -> list[str]:
    return [root + path, path] if root else [path]


def _build_id_of(path: str) -> str | None:
    with ElfReader.open(path) as elf:
        return elf.build_id()


def find_debug_file(
    binary_path: str,
    build_id: str | None,
    debuglink: tuple[str, int] | None,
    debug_dirs: Sequence[str] = DEFAULT_DEBUG_DIRS,
    root: str = "",
) -> DebugFileSearch:
    """Locate the separate debug file for ``binary_path`` (the path as its process sees it).

    ``root`` is a prefix such as ``/proc/1234/root`` for a process in another mount namespace.

    Example::

        find_debug_file("/usr/bin/prog", build_id, ("prog.debug", crc), debug_dirs=["/tmp/dbg"])
    """
    out = DebugFileSearch()
    seen: set[str] = set()
    if build_id and len(build_id) > 2:
        for d in debug_dirs:
            for cand in _rooted(root, f"{d}/.build-id/{build_id[:2]}/{build_id[2:]}.debug"):
                if cand in seen or not os.path.isfile(cand):
                    continue
                seen.add(cand)
                try:
                    got = _build_id_of(cand)
                except BpfError as e:
                    out.rejected.append(f"{cand}: {e}")
                    continue
                if got != build_id:
                    out.rejected.append(f"{cand}: build-id {got} does not match {build_id}")
                    continue
                out.path, out.how = cand, "build-id"
                return out
    if debuglink:
        name, crc = debuglink
        bindir = os.path.dirname(binary_path)
        dirs = [os.path.join(bindir, name), os.path.join(bindir, ".debug", name)]
        dirs += [os.path.join(d + bindir, name) for d in debug_dirs]
        real_binary = {os.path.realpath(p) for p in _rooted(root, binary_path)}
        for rel in dirs:
            for cand in _rooted(root, rel):
                if cand in seen or not os.path.isfile(cand) or os.path.realpath(cand) in real_binary:
                    continue
                seen.add(cand)
                try:
                    got_crc = file_crc32(cand)
                except OSError as e:
                    out.rejected.append(f"{cand}: {e.strerror}")
                    continue
                if got_crc != crc:
                    out.rejected.append(f"{cand}: CRC {got_crc:#010x} does not match .gnu_debuglink's {crc:#010x}")
                    continue
                try:
                    got = _build_id_of(cand)
                except BpfError as e:
                    out.rejected.append(f"{cand}: {e}")
                    continue
                if build_id and got and got != build_id:
                    out.rejected.append(f"{cand}: build-id {got} does not match {build_id}")
                    continue
                out.path, out.how = cand, "debuglink"
                return out
    return out
