"""Links: the owned handle of an attachment. Closing the link detaches.

Everything bpfkit attaches is fd-based (a BPF link, or a perf event fd with a
BPF program set on it): when the process dies, the kernel closes the fds and
the probe disappears with it — nothing is left behind in tracefs.

The fds come from the kernel already inside ``io.FileIO`` objects (``sc.*_owned``), which close
them once, when closed or dropped: an exception at any point of an attach (a Ctrl-C) cannot leave
an fd behind, and closing twice cannot hit an fd number reused meanwhile.

Example::

    with prog.attach_tracepoint("syscalls", "sys_enter_getpid") as link:
        print(link.id)
"""
from __future__ import annotations

import errno
import io
from typing import Any, Callable, Iterable, Iterator, Optional, Union

from .. import _sys as sc
from .._sys import Resource
from ..errors import AttachError, BpfError, ClosedError
from ..sections import example_for, prog_types_for

__all__ = ["Link", "LinkGroup", "MultiLink", "group_links", "new_link", "open_perf_event", "open_perf_event_owned",
           "attach_perf_event", "perf_event_link", "attach_refused"]

FdLike = Union[int, io.FileIO, None]


def _owned(fd: FdLike) -> Optional[io.FileIO]:
    if fd is None or isinstance(fd, io.FileIO):
        return fd
    return io.FileIO(fd, "rb") if fd >= 0 else None


def _fileno(f: Optional[io.FileIO]) -> int:
    return -1 if f is None or f.closed else f.fileno()


class Link(Resource):
    """An attachment. ``fd`` is the BPF link fd (or -1 for ioctl-attached perf events);
    ``perf_fd`` the perf event fd behind it, if any.

    Example::

        with prog.attach_tracepoint("sched", "sched_switch") as link:
            print(link.id, link.description)
    """

    def __init__(self, fd: FdLike, description: str, perf_fd: FdLike = -1) -> None:
        # the Link owns both fds from here (an int is wrapped: the caller hands it over)
        self._link_file = _owned(fd)
        self._perf_file = _owned(perf_fd)
        self.description = description

    @property
    def _fd(self) -> int:
        return _fileno(getattr(self, "_link_file", None))

    @property
    def _perf_fd(self) -> int:
        return _fileno(getattr(self, "_perf_file", None))

    @property
    def fd(self) -> int:
        """The BPF link fd."""
        if self._fd < 0 and self._perf_fd < 0:
            raise ClosedError(f"link {self.description} is closed")
        return self._fd

    @property
    def perf_fd(self) -> int:
        """The perf event fd, -1 when the link is not perf-event based."""
        return self._perf_fd

    @property
    def closed(self) -> bool:
        """True once detached."""
        return self._fd < 0 and self._perf_fd < 0

    @property
    def id(self) -> Optional[int]:
        """The kernel's link id (None for legacy ioctl attachments)."""
        if self._fd < 0:
            return None
        return int(sc.link_info(self.fd).id)

    def close(self) -> None:
        """Detach. Idempotent."""
        # The perf event first: the link holds its own reference, so this close is cheap, and the
        # link's close then releases both at once. The other order waits for the kernel to
        # synchronize twice (tens of ms each when detaching a tracepoint), as libbpf avoids too.
        for attr in ("_perf_file", "_link_file"):
            f = getattr(self, attr, None)
            if f is not None:
                f.close()  # closes once, however often this runs

    detach = close

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<Link {self.description} {state}>"


class LinkGroup:
    """Several links detached together (``obj.attach()``, wildcard probes).

    Example::

        with obj.attach() as group:   # every program with a target in its SEC()
            print(len(group))
    """

    def __init__(self, links: Optional[list[Link]] = None) -> None:
        self.links: list[Link] = list(links or [])

    def add(self, link: Link) -> Link:
        """Own ``link`` from now on (links closed meanwhile are let go, so a process that attaches
        and detaches in a loop does not keep every link it ever made)."""
        if any(lk.closed for lk in self.links):
            self.links = [lk for lk in self.links if not lk.closed]
        self.links.append(link)
        return link

    def close(self) -> None:
        """Detach everything, last attached first."""
        while self.links:
            self.links.pop().close()

    def __len__(self) -> int:
        return len(self.links)

    def __iter__(self) -> Any:
        return iter(self.links)

    # A context manager, but not closed when collected (not a Resource): ``obj.attach()`` without
    # keeping the group leaves the links attached, owned by their object.
    def __enter__(self) -> "LinkGroup":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class MultiLink(Link):
    """Several attachments acting as one link: a wildcard attached one function at a time, a USDT
    probe with several sites, a perf event on every CPU. Closing it detaches all of them.

    Example::

        with prog.attach_uprobe("c", "pthread_mutex_*lock") as ml:
            print(len(ml.links))
    """

    def __init__(self, links: list[Link], description: str,
                 on_close: Optional[Callable[[], None]] = None) -> None:
        super().__init__(None, description)
        self.links = list(links)
        self._on_close = on_close

    @property
    def fd(self) -> int:
        """The first live sub-link's fd (-1 for ioctl-attached perf events)."""
        if self.closed:
            raise ClosedError(f"link {self.description} is closed")
        return self.links[0].fd

    @property
    def perf_fd(self) -> int:
        """The first sub-link's perf event fd (see :attr:`links` for the others)."""
        return self.links[0].perf_fd if self.links else -1

    @property
    def closed(self) -> bool:
        return not self.links

    @property
    def id(self) -> Optional[int]:
        """The first sub-link's id; :attr:`ids` has them all."""
        return self.links[0].id if self.links else None

    @property
    def ids(self) -> list[Optional[int]]:
        """Kernel link ids of every sub-link."""
        return [lk.id for lk in self.links]

    def close(self) -> None:
        """Detach everything, last attached first, then run the cleanup hook. Idempotent."""
        links = getattr(self, "links", [])
        while links:
            links.pop().close()
        hook, self._on_close = getattr(self, "_on_close", None), None
        if hook is not None:
            hook()

    detach = close

    def __len__(self) -> int:
        return len(self.links)

    def __iter__(self) -> Iterator[Link]:
        return iter(self.links)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.links)} links"
        return f"<MultiLink {self.description} {state}>"


def new_link(create: Callable[[], io.FileIO], description: str) -> Link:
    """A Link owning the fd ``create()`` returns inside a FileIO (``sc.link_create_owned``,
    ``sc.raw_tracepoint_open_owned``).

    Example::

        link = new_link(lambda: sc.link_create_owned(prog_fd, ifindex, sc.BPF_XDP), "xdp on eth0")
    """
    return Link(create(), description)


def attach_refused(e: BpfError, prog_fd: int, description: str, method: str) -> BpfError:
    """The error for an attach the kernel refused (its bare EINVAL/EBADF): ``prog_fd`` is no program,
    or a program of a type ``Program.<method>()`` cannot attach; ``e`` itself when neither.

    Example::

        except BpfError as e:
            raise attach_refused(e, prog_fd, "tracepoint sched:sched_switch", "attach_tracepoint") from None
    """
    if e.errno == errno.EEXIST:
        return AttachError(f"{description}: this program is attached there already (a program attaches to an "
                           "event once); close the other link first", e.errno)
    if e.errno not in (errno.EINVAL, errno.EBADF, errno.EPROTO):
        return e
    kind = sc.fd_kind(prog_fd)
    if kind != "bpf-prog":
        what = "not an open fd" if kind == "not an open fd" else f"{kind}, not a loaded BPF program"
        return AttachError(f"{description}: prog_fd {prog_fd} is {what}", e.errno)
    try:
        ptype = int(sc.prog_info(prog_fd).type)
    except BpfError:
        return e
    wanted = prog_types_for(method)
    if wanted and ptype not in wanted:
        names = " or ".join(sc.PROG_TYPE_NAMES.get(t, str(t)).upper() for t in wanted)
        return AttachError(f"{description}: the program is a {sc.PROG_TYPE_NAMES.get(ptype, str(ptype)).upper()} "
                           f"program; {method}() needs a {names} program, e.g. SEC(\"{example_for(method)}\")",
                           e.errno)
    return e


def group_links(attach_one: Callable[[Any], Link], items: Iterable[Any], description: str,
                on_close: Optional[Callable[[], None]] = None) -> MultiLink:
    """Attach ``attach_one(item)`` for each item into one MultiLink; on any failure the ones
    already attached are detached (and ``on_close`` run) before the error propagates.

    Example::

        ml = group_links(lambda cpu: attach_one(cpu), [0, 1, 2], "cpu-clock on 3 CPUs")
    """
    ml = MultiLink([], description, on_close)
    try:
        for item in items:
            ml.links.append(attach_one(item))
    except BaseException:
        ml.close()
        raise
    return ml


def open_perf_event(attr: sc.PerfEventAttr, *, pid: int = -1, cpu: int = -1, group_fd: int = -1,
                    what: str = "") -> int:
    """perf_event_open(2) for the attach paths: a ``pid`` that is gone raises the same
    BpfNotFoundError (errno ESRCH) as a missing ``/proc/PID`` does elsewhere.

    Example::

        fd = open_perf_event(attr, pid=1234, what="uprobe /bin/bash:readline")
    """
    try:
        return sc.perf_event_open(attr, pid=pid, cpu=cpu, group_fd=group_fd, what=what)
    except BpfError as e:
        raise _no_process(e, pid, what) from None


def open_perf_event_owned(attr: sc.PerfEventAttr, *, pid: int = -1, cpu: int = -1, group_fd: int = -1,
                          what: str = "") -> io.FileIO:
    """:func:`open_perf_event` returning the fd inside an ``io.FileIO`` that closes it once, when
    closed or dropped.

    Example::

        f = open_perf_event_owned(attr, pid=1234, what="uprobe /bin/bash:readline")
    """
    try:
        return sc.perf_event_open_owned(attr, pid=pid, cpu=cpu, group_fd=group_fd, what=what)
    except BpfError as e:
        raise _no_process(e, pid, what) from None


def _no_process(e: BpfError, pid: int, what: str) -> BpfError:
    if e.errno == errno.ESRCH and pid > 0:
        from ..binaries.procfs import no_process

        return no_process(pid, what)
    return e


def attach_perf_event(prog_fd: int, perf_fd: FdLike, description: str, cookie: int = 0,
                      method: str = "attach_perf_event") -> Link:
    """Attach a program to an open perf event fd; the returned Link owns ``perf_fd``.

    Prefers a BPF link (BPF_LINK_CREATE with BPF_PERF_EVENT, kernel 5.15+) so the link shows up in
    ``bpftool link``; falls back to PERF_EVENT_IOC_SET_BPF on older kernels.

    Example::

        link = attach_perf_event(prog.fd, open_perf_event(attr, cpu=0), "my event", cookie=7)
    """
    link = Link(None, description, perf_fd)  # owns perf_fd from here: closed once, by the link
    pfd = link._perf_fd
    try:
        try:
            link._link_file = sc.link_create_owned(prog_fd, pfd, sc.BPF_PERF_EVENT, extra=(cookie,),
                                                   what=description)
            return link
        except BpfError as e:
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP) or cookie:
                raise
        sc.ioctl(pfd, sc.PERF_EVENT_IOC_SET_BPF, prog_fd, what=description)
        sc.ioctl(pfd, sc.PERF_EVENT_IOC_ENABLE, 0, what=description)
        return link
    except BpfError as e:
        link.close()
        raise attach_refused(e, prog_fd, description, method) from None
    except BaseException:
        link.close()
        raise


def perf_event_link(prog_fd: int, open_fd: Callable[[], io.FileIO], description: str, cookie: int = 0,
                    method: str = "attach_perf_event") -> Link:
    """Open a perf event (``open_fd()``, e.g. :func:`open_perf_event_owned`) and attach the program
    to it; the returned Link owns the perf fd, or the fd is closed.

    Example::

        link = perf_event_link(prog.fd, lambda: open_perf_event_owned(attr, cpu=0), "tracepoint sched:sched_switch")
    """
    return attach_perf_event(prog_fd, open_fd(), description, cookie, method)
