"""Label decoders: one column of map keys (or values) in, one label string per row out.

Each decoder works on the distinct values of a column (``np.unique``), so a scrape costs
one decode per distinct pid, syscall or cgroup, not one per row. Decoders that look
things up on the machine (comm, cgroup) cache what they found for as long as the value
keeps appearing in the map: a series keeps its labels while it exists, and the cache is
swept after every scrape so a long-running exporter does not grow.

Example::

    from bpfkit.exporter import decoders
    d = decoders.make("errno")
    d.decode(np.array([-2, 0, 9]))       # ['ENOENT', '0', 'EBADF']
    decoders.make("syscall").decode(np.array([39]))   # ['getpid'] on x86_64
"""
from __future__ import annotations

import errno as _errno
import logging
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..errors import BpfUsageError
from ..cgroups import cgroup2_mount, cgroup_paths
from .._sys.syscall_names import syscall_names

log = logging.getLogger("bpfkit.exporter")

__all__ = ["DECODERS", "Decoder", "make", "syscall_table", "cgroup2_mount", "UNKNOWN"]

#: Label value for a pid or cgroup that could not be resolved (the process exited before
#: its first scrape, or the cgroup was removed).
UNKNOWN = "[unknown]"

# Where the x86-64 syscall numbers live on Debian/Ubuntu and on other distributions.
UNISTD_64 = ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h")


class Decoder:
    """Turns a numpy column into label strings. Subclasses implement :meth:`one`.

    Example::

        decoders.make("hex").decode(np.array([255]))   # ['0xff']
    """

    #: numpy kinds of column this decoder accepts: "iu" integers, "S" char arrays
    kinds = "iu"
    #: what the decoder expects, for error messages
    expects = "an integer field"

    def __init__(self, options: Optional[Mapping[str, Any]] = None) -> None:
        self.options = dict(options or {})
        self._cache: dict[Any, str] = {}
        self._used: set[Any] = set()

    def one(self, value: Any) -> str:
        """The label for one value (a Python int, or bytes for char arrays)."""
        raise NotImplementedError

    def decode(self, column: np.ndarray) -> list[str]:
        """Labels for every row of ``column``."""
        if column.size == 0:
            return []
        uniq, inverse = np.unique(column, return_inverse=True)
        names = [self._cached(u.item() if isinstance(u, np.generic) else u) for u in uniq]
        return [names[i] for i in inverse.ravel()]

    def _cached(self, value: Any) -> str:
        self._used.add(value)
        name = self._cache.get(value)
        if name is None:
            name = self._cache[value] = self.one(value)
        return name

    def sweep(self) -> None:
        """Forget values not seen since the last sweep (called once per scrape)."""
        if len(self._used) != len(self._cache):
            self._cache = {k: v for k, v in self._cache.items() if k in self._used}
        self._used = set()


class IntDecoder(Decoder):
    """The number in decimal (the default for integer fields)."""

    def one(self, value: Any) -> str:
        return str(int(value))


class HexDecoder(Decoder):
    """The number in hex, ``0x1f``."""

    def one(self, value: Any) -> str:
        return hex(int(value))


class StringDecoder(Decoder):
    """A C char array (``char comm[16]``) as text, up to its first NUL; the default for char arrays."""

    kinds = "S"
    expects = "a char array field (e.g. char comm[16])"

    def one(self, value: Any) -> str:
        return bytes(value).split(b"\0", 1)[0].decode("utf-8", errors="replace")


class CommDecoder(Decoder):
    """pid (or tid) -> the process name in ``/proc/PID/comm``, read once per pid and kept while
    the pid stays in the map; ``unknown`` (default ``[unknown]``) when it already exited."""

    def one(self, value: Any) -> str:
        try:
            with open(f"/proc/{int(value)}/comm", "rb") as f:
                return f.read().rstrip(b"\n").decode("utf-8", errors="replace")
        except OSError:
            return str(self.options.get("unknown", UNKNOWN))


class SyscallDecoder(Decoder):
    """Syscall number -> name (``39`` -> ``getpid``) from :func:`syscall_table`, or ``table`` in
    the options; the number itself when it is not in the table (or no table could be read)."""

    def one(self, value: Any) -> str:
        table = self.options.get("table")
        return (table if table is not None else syscall_table()).get(int(value), str(int(value)))


class IpDecoder(Decoder):
    """A 16-byte address (``char addr[16]``, network order) as text: IPv4 when it is v4-mapped
    (``::ffff:a.b.c.d``, as the tcpretrans tool keeps IPv4), IPv6 otherwise."""

    kinds = "S"
    expects = "a 16-byte char array field holding an IPv6 (or v4-mapped IPv4) address"

    def one(self, value: Any) -> str:
        raw = bytes(value).ljust(16, b"\0")  # a char array loses its trailing NULs on the way out
        if len(raw) != 16:
            return raw.hex()
        if raw[:12] == b"\0" * 10 + b"\xff\xff":
            return socket.inet_ntop(socket.AF_INET, raw[12:])
        return socket.inet_ntop(socket.AF_INET6, raw)


class ErrnoDecoder(Decoder):
    """errno (positive, or negative as syscalls return it) -> its name, ``-2`` -> ``ENOENT``;
    ``0`` stays ``0`` and unknown numbers stay numbers."""

    def one(self, value: Any) -> str:
        return _errno.errorcode.get(abs(int(value)), str(int(value))) if int(value) else "0"


class CgroupDecoder(Decoder):
    """cgroup v2 id (``bpf_get_current_cgroup_id()``) -> its path below the cgroup2 mount,
    ``/`` for the root. The id is the inode number of the cgroup's directory; the tree is
    walked again (once per scrape) when an id is not known yet. Ids are never reused, so a
    removed cgroup keeps the path it had; ``unknown`` for ids never found in the tree."""

    def __init__(self, options: Optional[Mapping[str, Any]] = None, root: Optional[str] = None) -> None:
        super().__init__(options)
        mount = root or cgroup2_mount()
        if mount is None:
            raise BpfUsageError("the cgroup decoder needs a cgroup v2 hierarchy, and none is mounted "
                                "(see /proc/self/mountinfo); mount one: mount -t cgroup2 none /sys/fs/cgroup")
        self.root = mount
        self._index: dict[int, str] = {}
        self._walked_for: set[int] = set()

    def _walk(self) -> None:
        self._index = cgroup_paths(self.root)

    def one(self, value: Any) -> str:
        cgid = int(value)
        if cgid not in self._index and cgid not in self._walked_for:
            self._walk()
            self._walked_for.add(cgid)
        return self._index.get(cgid, str(self.options.get("unknown", UNKNOWN)))

    def sweep(self) -> None:
        super().sweep()
        self._walked_for.clear()


class StaticDecoder(Decoder):
    """Integer -> text from a table in the config (``map = { 1 = "read", 2 = "write" }``);
    ``default`` for values not in it (else the number itself)."""

    def __init__(self, options: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(options)
        self.table: dict[int, str] = dict(self.options.get("map", {}))
        self.default: Optional[str] = self.options.get("default")

    def one(self, value: Any) -> str:
        v = int(value)
        if v in self.table:
            return self.table[v]
        return self.default if self.default is not None else str(v)


@dataclass(frozen=True)
class DecoderKind:
    """One row of the decoder table: the class and the options it accepts."""

    cls: Callable[..., Decoder]
    options: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    doc: str = field(default="")


#: decoder name -> how to build it; the config validates names and options against this table
DECODERS: dict[str, DecoderKind] = {
    "int": DecoderKind(IntDecoder, doc="the number in decimal (default for integers)"),
    "hex": DecoderKind(HexDecoder, doc="the number in hex"),
    "string": DecoderKind(StringDecoder, doc="char array as text up to the first NUL (default for char arrays)"),
    "comm": DecoderKind(CommDecoder, ("unknown",), doc="pid -> process name from /proc"),
    "syscall": DecoderKind(SyscallDecoder, doc="x86-64 syscall number -> name"),
    "errno": DecoderKind(ErrnoDecoder, doc="errno (or -errno) -> ENOENT ..."),
    "cgroup": DecoderKind(CgroupDecoder, ("unknown",), doc="cgroup v2 id -> path"),
    "ip": DecoderKind(IpDecoder, doc="16-byte address (IPv4 v4-mapped) -> 10.0.0.1 or fe80::1"),
    "static": DecoderKind(StaticDecoder, ("map", "default"), ("map",), doc="integer -> text from a table"),
}


def make(name: str, options: Optional[Mapping[str, Any]] = None) -> Decoder:
    """A fresh decoder (with its own cache) by table name.

    Example::

        decoders.make("static", {"map": {1: "read"}}).decode(np.array([1, 2]))   # ['read', '2']
    """
    if name not in DECODERS:
        raise BpfUsageError(f"unknown decoder {name!r}; expected one of: {', '.join(DECODERS)}")
    return DECODERS[name].cls(options)


def default_for(dtype: np.dtype) -> str:
    """The decoder used when a label names none: ``string`` for char arrays, else ``int``."""
    return "string" if dtype.kind == "S" else "int"


def syscall_table() -> dict[int, str]:
    """This machine's syscall numbers -> names (:func:`bpfkit._sys.syscall_names.syscall_names`):
    from the C library's headers, else the table the package was built with. Empty, with one
    warning, when neither exists: the syscall decoder then labels with the number.

    Example::

        decoders.syscall_table()[0]   # 'read'
    """
    table = syscall_names()
    if not table and not _warned:
        _warned.append(True)
        log.warning("syscall names: no unistd header (Debian: apt-get install linux-libc-dev) and no table "
                    "built into the package; labels are numbers")
    return table


_warned: list[bool] = []
