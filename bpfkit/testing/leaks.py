"""Find the BPF resources a test left behind: fds, links, loaded programs/maps, pinned objects.

Other processes load and pin BPF objects on the same machine at the same time, so nothing here
compares global kernel counts. The checker only looks at what this test owned:

* fds of this process (``/proc/self/fd``) that point at BPF objects or perf events and were
  opened after :meth:`LeakChecker.start`;
* the programs, maps and links of objects handed to :meth:`LeakChecker.track`, which must be
  gone from the kernel once those objects are closed (something else still holding them -
  a pin, a forked child, a leaked fd - is a leak);
* paths under the BPF filesystem that appeared during the test and hold one of those objects,
  plus anything left in a directory given to :meth:`LeakChecker.watch_dir`. Leaked pins are
  removed after being reported, so they do not outlive the test run.

Example::

    checker = LeakChecker.start()
    with bpfkit.load("count") as obj:
        checker.track(obj)
        ...
    assert checker.finish() == []
"""
from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from .. import _sys as sc
from ..errors import BpfError

if TYPE_CHECKING:
    from ..loader import Object

__all__ = ["BPFFS", "Leak", "LeakChecker", "bpf_fds", "pinned_paths"]

BPFFS = "/sys/fs/bpf"

# fd targets (readlink of /proc/self/fd/N) that mean a BPF object or a perf event.
_KINDS = {
    "anon_inode:bpf-prog": "prog",
    "anon_inode:bpf-map": "map",
    "anon_inode:bpf-link": "link",
    "anon_inode:bpf_link": "link",
    "anon_inode:btf": "btf",
    "anon_inode:bpf_iter": "iter",
    "anon_inode:[perf_event]": "perf_event",
}
# Maps are released one RCU grace period after the last program using them, so give the kernel
# a moment before calling an id that is still alive a leak.
_GRACE_S = 2.0


@dataclass(frozen=True)
class Leak:
    """One leaked resource: ``kind`` (fd, view, link, prog, map, pin) and a message saying what to fix.

    ``view`` is a map fd kept open by a numpy view of a closed object's mmap'd globals or map.
    """

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def bpf_fds() -> dict[int, str]:
    """This process's fds that hold BPF objects or perf events: ``{fd: kind}`` (kind is prog, map,
    link, btf, iter or perf_event)."""
    out: dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed meanwhile (listdir's own fd, or another thread)
        kind = _KINDS.get(target)
        if kind is not None:
            out[int(name)] = kind
    return out


def pinned_paths(root: str = BPFFS) -> set[str]:
    """Every file under the BPF filesystem ``root`` (empty if it is not mounted)."""
    paths: set[str] = set()
    if not os.path.isdir(root):
        return paths
    for dirpath, _dirs, files in os.walk(root, onerror=lambda e: None):
        for f in files:
            paths.add(os.path.join(dirpath, f))
    return paths


def _fd_kind(fd: int) -> str:
    try:
        return _KINDS.get(os.readlink(f"/proc/self/fd/{fd}"), "other")
    except OSError:
        return "other"


def _describe_fd(fd: int, kind: str) -> tuple[str, Optional[tuple[str, int]]]:
    """A readable description of a BPF fd and its (kind, id), if it has one."""
    try:
        if kind == "prog":
            pi = sc.prog_info(fd)
            return f"program {pi.name.decode(errors='replace')!r} (id {pi.id})", ("prog", int(pi.id))
        if kind == "map":
            mi = sc.map_info(fd)
            return f"map {mi.name.decode(errors='replace')!r} (id {mi.id})", ("map", int(mi.id))
        if kind == "link":
            li = sc.link_info(fd)
            return f"link id {li.id} (program id {li.prog_id})", ("link", int(li.id))
    except (BpfError, OSError):
        pass
    return {"perf_event": "perf event", "btf": "BTF object", "iter": "BPF iterator"}.get(kind, kind), None


# Map types user space can mmap besides BPF_F_MMAPABLE arrays.
_MMAPED_TYPES = (sc.BPF_MAP_TYPE_RINGBUF, sc.BPF_MAP_TYPE_USER_RINGBUF)


def _mapped_by_a_view(fd: int) -> bool:
    """True when map ``fd`` is mmap-able and this process has a BPF map mapped: Python's mmap
    keeps a dup of the map's fd until the last numpy view of it is freed."""
    try:
        mi = sc.map_info(fd)
    except BpfError:
        return False
    if not (mi.map_flags & sc.BPF_F_MMAPABLE or mi.type in _MMAPED_TYPES):
        return False
    try:
        with open("/proc/self/maps") as f:
            return any(line.rstrip().endswith("anon_inode:bpf-map") for line in f)
    except OSError:
        return False


def _link_prog_id(fd: int) -> int:
    try:
        return int(sc.link_info(fd).prog_id)
    except BpfError:
        return 0


def _alive(kind: str, obj_id: int) -> bool:
    getter: Callable[[int], int] = {"prog": sc.prog_fd_by_id, "map": sc.map_fd_by_id,
                                    "link": sc.link_fd_by_id}[kind]
    try:
        fd = getter(obj_id)
    except BpfError:
        return False
    os.close(fd)
    return True


def _pin_identity(path: str) -> Optional[tuple[str, int, int]]:
    """(kind, id, link's prog id or 0) of the object pinned at ``path``; None if it is gone."""
    try:
        fd = sc.obj_get(path, sc.BPF_F_RDONLY)
    except BpfError:
        try:
            fd = sc.obj_get(path)
        except BpfError:
            return None
    try:
        kind = _fd_kind(fd)
        if kind == "prog":
            return "prog", int(sc.prog_info(fd).id), 0
        if kind == "map":
            return "map", int(sc.map_info(fd).id), 0
        if kind == "link":
            li = sc.link_info(fd)
            return "link", int(li.id), int(li.prog_id)
        return None
    except BpfError:
        return None
    finally:
        os.close(fd)


@dataclass
class LeakChecker:
    """Snapshot at :meth:`start`, compare at :meth:`finish`. See the module docstring."""

    fds: dict[int, tuple[str, Optional[tuple[str, int]]]]
    pins: set[str]
    ids: dict[str, dict[int, str]] = field(default_factory=lambda: {"prog": {}, "map": {}, "link": {}})
    watched: list[Path] = field(default_factory=list)
    grace_s: float = _GRACE_S
    # Which tracked object each prog/map id came from: a program kept alive by a leaked link
    # keeps its object's maps alive too, and that is one leak, not one per map.
    groups: list[str] = field(default_factory=list)
    prog_group: dict[int, int] = field(default_factory=dict)
    map_group: dict[int, int] = field(default_factory=dict)
    map_fds: dict[int, int] = field(default_factory=dict)  # tracked map id -> its Map's own fd

    @classmethod
    def start(cls) -> "LeakChecker":
        """Remember what exists now, so only what the test creates afterwards is judged."""
        # The object id tells a pre-existing fd from a new one that reused its number.
        fds = {fd: (kind, _describe_fd(fd, kind)[1]) for fd, kind in bpf_fds().items()}
        return cls(fds=fds, pins=pinned_paths())

    def track(self, obj: "Object") -> None:
        """Remember ``obj``'s programs and maps: they must be gone from the kernel at finish()."""
        group = len(self.groups)
        self.groups.append(obj.name)
        for p in obj.progs.values():
            self.ids["prog"][p.id] = f"program {p.name!r} of {obj.name!r}"
            self.prog_group[p.id] = group
        for m in obj.maps.values():
            mid = int(sc.map_info(m.fd).id)
            self.ids["map"][mid] = f"map {m.name!r} of {obj.name!r}"
            self.map_group[mid] = group
            self.map_fds[mid] = m.fd
        self.track_links(obj)

    def track_links(self, obj: "Object") -> None:
        """Remember the links ``obj`` holds now (call before closing it)."""
        for link in obj.links:
            try:
                lid = link.id
            except BpfError:
                continue
            if lid is not None:
                self.ids["link"][lid] = f"link {link.description!r} (id {lid})"

    def watch_dir(self, path: Path) -> None:
        """Anything still inside ``path`` at finish() is a leaked pin."""
        self.watched.append(path)

    def finish(self) -> list[Leak]:
        """Everything the test left behind (after its objects were closed), as readable leaks."""
        gc.collect()  # unreachable Link/Object cycles close their fds in __del__; that is not a leak
        leaks: list[Leak] = []
        held: set[tuple[str, int]] = set()
        fds = {fd: (kind, *_describe_fd(fd, kind)) for fd, kind in sorted(bpf_fds().items())}
        # A tracked map whose own fd is closed but still has an fd open: the dup an mmap keeps.
        own_open = {("map", mid) for mid, fd in self.map_fds.items()
                    if fd in fds and fds[fd][2] == ("map", mid)}
        for fd, (kind, what, ident) in fds.items():
            if self.fds.get(fd) == (kind, ident):
                continue
            if ident is not None:
                held.add(ident)
                if ident[0] == "link":
                    prog_id = _link_prog_id(fd)
                    if prog_id in self.ids["prog"]:
                        what += f" attached to {self.ids['prog'][prog_id]}"
                    self.ids["link"].setdefault(ident[1], what)
                    held.add(("prog", prog_id))
                elif (ident[0] == "map" and ident[1] in self.ids["map"] and ident not in own_open
                      and _mapped_by_a_view(fd)):
                    leaks.append(Leak("view", f"fd {fd} is still open: {self.ids['map'][ident[1]]} was "
                                      "closed, but a numpy view of its globals/map is still referenced "
                                      "(obj.bss/obj.data/map.array, or an array sliced from them), which "
                                      "keeps it mmap'd. Drop that reference (del it) or copy the values "
                                      "(int(...), np.array(...)) before the test ends."))
                    continue
            leaks.append(Leak("fd", f"fd {fd} is still open: {what}. Close it (use `with`, or .close() "
                                    "on the Link/Object/Map that owns it)."))
        pin_leaks, pinned = self._pins(held)
        leaks += pin_leaks
        leaks += self._survivors(held | pinned)
        for d in self.watched:
            self._remove_dir(d)
        return leaks

    @staticmethod
    def _remove_dir(root: Path) -> None:
        # Leaked pins were unlinked above; what is left are (sub)directories the test made.
        for dirpath, dirs, _files in os.walk(root, topdown=False):
            for d in dirs:
                try:
                    os.rmdir(os.path.join(dirpath, d))
                except OSError:
                    pass
        try:
            os.rmdir(root)
        except OSError:
            pass

    def _pins(self, held: set[tuple[str, int]]) -> tuple[list[Leak], set[tuple[str, int]]]:
        leaks: list[Leak] = []
        pinned: set[tuple[str, int]] = set()
        ours_progs = set(self.ids["prog"])
        watched = [str(p) for p in self.watched]
        for path in sorted(pinned_paths() - self.pins):
            in_watched = any(path.startswith(w + os.sep) for w in watched)
            ident = _pin_identity(path)
            if ident is None and not in_watched:
                continue
            ours = in_watched
            if ident is not None:
                kind, obj_id, prog_id = ident
                ours = ours or obj_id in self.ids[kind] or (kind, obj_id) in held or prog_id in ours_progs
                if ours:
                    pinned.add((kind, obj_id))
                    if kind == "link":
                        pinned.add(("prog", prog_id))
            if not ours:
                continue  # another process's pin
            what = f"{ident[0]} id {ident[1]}" if ident else "object"
            try:
                os.unlink(path)
                note = "bpfkit removed it"
            except OSError as e:
                note = f"removing it failed: {e.strerror}"
            leaks.append(Leak("pin", f"{path} ({what}) is still pinned; unlink it (os.unlink) at the end "
                                     f"of the test. {note}."))
        return leaks, pinned

    def _survivors(self, explained: set[tuple[str, int]]) -> list[Leak]:
        groups = {self.prog_group[i] for kind, i in explained if kind == "prog" and i in self.prog_group}
        explained = explained | {("map", m) for m, g in self.map_group.items() if g in groups}
        pending = {(kind, i): what for kind, table in self.ids.items() for i, what in table.items()
                   if (kind, i) not in explained}
        deadline = time.monotonic() + self.grace_s
        while pending:
            pending = {k: w for k, w in pending.items() if _alive(*k)}
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return [Leak(kind, f"{what} is still in the kernel after its object was closed: something still "
                           "holds it - an fd in another process (a forked child?), a pin made outside "
                           "/sys/fs/bpf or over an existing path, or an attachment that is not fd-based "
                           "(netlink XDP/TC, cgroup). Detach and close it in the test.")
                for (kind, _i), what in sorted(pending.items())]
