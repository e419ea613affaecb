"""A process's memory mappings from ``/proc/PID/maps``, as a table that finds many addresses at once.

Each line is ``START-END PERMS OFFSET MAJ:MIN INODE [PATH]``; the path may contain spaces, end
in `` (deleted)`` (the file was unlinked or replaced since it was mapped) or be a pseudo-path
such as ``[heap]``, ``[stack]``, ``[vdso]`` or ``[anon:NAME]``. Lines that do not parse are kept
out with a reason (``ProcMaps.skipped``) rather than raising.

Example::

    pm = read_maps(os.getpid())
    i = pm.find(np.array([addr], np.uint64))[0]
    pm.mappings[i].path, pm.mappings[i].kind
"""
from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field

import numpy as np

from bpfkit.errors import BpfNotFoundError, BpfPermissionError

_LINE = re.compile(
    r"^([0-9a-fA-F]+)-([0-9a-fA-F]+)\s+([-rwxsp]{4})\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+:[0-9a-fA-F]+)\s+(\d{1,20})\s*(.*)$")
_DELETED = " (deleted)"
_ANON_FILES = ("/dev/zero", "/memfd:", "/SYSV")


@dataclass(frozen=True)
class Mapping:
    """One line of ``/proc/PID/maps``.

    Example::

        m = Mapping(0x400000, 0x401000, "r-xp", 0, "08:01", 42, "/usr/bin/prog")
        m.kind, m.executable          # ('file', True)
    """

    start: int
    end: int
    perms: str
    offset: int
    dev: str
    inode: int
    path: str
    deleted: bool = False

    @property
    def executable(self) -> bool:
        return "x" in self.perms

    @property
    def kind(self) -> str:
        """``"file"``, ``"anon"``, ``"vdso"``, ``"heap"``, ``"stack"`` or ``"special"`` (other ``[...]``)."""
        if not self.path or self.path.startswith("[anon:") or self.path.startswith("[anon_shmem:"):
            return "anon"
        if self.path.startswith("["):
            name = self.path[1:].split("]", 1)[0].split(":", 1)[0]
            return name if name in ("vdso", "heap", "stack") else "special"
        if self.inode == 0 or self.path.startswith(_ANON_FILES):
            return "anon"  # shared anonymous memory, memfd (JIT double mapping), SysV shm: no ELF file
        return "file"

    @property
    def map_files_name(self) -> str:
        """The entry name under ``/proc/PID/map_files/`` (``start-end`` in hex, no leading zeros)."""
        return f"{self.start:x}-{self.end:x}"


@dataclass
class ProcMaps:
    """All mappings of one process, sorted by start, with vectorised lookup.

    Example::

        pm = parse_maps(open("/proc/self/maps").read())
        [m.path for m in pm.mappings if m.executable]
    """

    pid: int
    mappings: list[Mapping]
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mappings.sort(key=lambda m: m.start)
        self.starts = np.array([m.start for m in self.mappings], np.uint64)
        self.ends = np.array([m.end for m in self.mappings], np.uint64)

    def find(self, addrs: np.ndarray) -> np.ndarray:
        """Index into ``mappings`` of the mapping holding each address (-1 for none).

        Example::

            pm.find(np.array([0x401000], np.uint64))
        """
        a = np.asarray(addrs, np.uint64)
        if not self.mappings:
            return np.full(len(a), -1, np.int64)
        i = np.searchsorted(self.starts, a, side="right").astype(np.int64) - 1
        ok = (i >= 0) & (a < self.ends[np.maximum(i, 0)])
        return np.where(ok, i, -1)


def parse_maps(text: str, pid: int = 0) -> ProcMaps:
    """Parse the text of a ``/proc/PID/maps`` file; bad lines go to ``skipped`` with a reason.

    Example::

        parse_maps("00400000-00401000 r-xp 00000000 08:01 42 /usr/bin/prog\\n").mappings[0].path
    """
    out: list[Mapping] = []
    skipped: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            skipped.append(f"line {n}: not 'START-END PERMS OFFSET DEV INODE [PATH]': {line[:120]!r}")
            continue
        start, end = int(m.group(1), 16), int(m.group(2), 16)
        if end <= start or end > 1 << 64:
            skipped.append(f"line {n}: empty or inverted range {m.group(1)}-{m.group(2)}")
            continue
        path = m.group(7)
        deleted = path.endswith(_DELETED)
        if deleted:
            path = path[: -len(_DELETED)]
        out.append(Mapping(start, end, m.group(3), int(m.group(4), 16), m.group(5), int(m.group(6)), path, deleted))
    return ProcMaps(pid, out, skipped)


def read_maps(pid: int) -> ProcMaps:
    """The current mappings of process ``pid``.

    Raises BpfNotFoundError if the process does not exist (it exited: see
    :meth:`bpfkit.symbols.Symbolizer.remember`), BpfPermissionError if its maps are not readable.

    Example::

        read_maps(1).mappings[0]
    """
    path = f"/proc/{pid}/maps"
    try:
        with open(path) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise BpfNotFoundError(f"process {pid} does not exist (it exited?); to symbolize processes that exit "
                               "before their stacks are read, call Symbolizer.remember(pid) while they run",
                               errno.ESRCH) from None
    except PermissionError:
        raise BpfPermissionError(f"cannot read {path}: " + ("run as root (or with CAP_SYS_PTRACE)" if os.geteuid() else
                                 "refused even to root: this process lacks CAP_SYS_PTRACE (a container?) or the "
                                 "process is in another user namespace"), errno.EACCES) from None
    return parse_maps(text, pid)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), which
    tells a process from a later one that reused its pid; None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def namespace_pid(pid: int) -> int:
    """``pid`` as the process sees itself in its own pid namespace (last ``NSpid`` entry), which
    is the number in its ``/tmp/perf-PID.map`` file name. Falls back to ``pid``."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return pid
