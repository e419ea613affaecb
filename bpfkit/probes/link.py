"""Links: the owned handle of an attachment. Closing the link detaches.

Everything bpfkit attaches is fd-based (a BPF link, or a perf event fd with a
BPF program set on it): when the process dies, the kernel closes the fds and
the probe disappears with it — nothing is left behind in tracefs.

Example::

    with prog.attach_tracepoint("syscalls", "sys_enter_getpid") as link:
        print(link.id)
"""
from __future__ import annotations

import errno
import os
from typing import Any, Callable, Iterable, Iterator, Optional

from .. import _sys as sc
from .._sys import Resource
from ..errors import BpfError, ClosedError

__all__ = ["Link", "LinkGroup", "MultiLink", "group_links", "open_perf_event", "attach_perf_event"]


class Link(Resource):
    """An attachment. ``fd`` is the BPF link fd (or -1 for ioctl-attached perf events);
    ``perf_fd`` the perf event fd behind it, if any.

    Example::

        with prog.attach_tracepoint("sched", "sched_switch") as link:
            print(link.id, link.description)
    """

    def __init__(self, fd: int, description: str, perf_fd: int = -1) -> None:
        self._fd = fd
        self._perf_fd = perf_fd
        self.description = description

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
        for attr in ("_perf_fd", "_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                try:
                    os.close(fd)
                except OSError:
                    pass

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
        super().__init__(-1, description)
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
        if e.errno == errno.ESRCH and pid > 0:
            from ..binaries.procfs import no_process

            raise no_process(pid, what) from None
        raise


def attach_perf_event(prog_fd: int, perf_fd: int, description: str, cookie: int = 0) -> Link:
    """Attach a program to an open perf event fd; the returned Link owns ``perf_fd``.

    Prefers a BPF link (BPF_LINK_CREATE with BPF_PERF_EVENT, kernel 5.15+) so the link shows up in
    ``bpftool link``; falls back to PERF_EVENT_IOC_SET_BPF on older kernels.

    Example::

        link = attach_perf_event(prog.fd, open_perf_event(attr, cpu=0), "my event", cookie=7)
    """
    try:
        try:
            link_fd = sc.link_create(prog_fd, perf_fd, sc.BPF_PERF_EVENT, extra=(cookie,),
                                     what=description)
            return Link(link_fd, description, perf_fd)
        except BpfError as e:
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP) or cookie:
                raise
        sc.ioctl(perf_fd, sc.PERF_EVENT_IOC_SET_BPF, prog_fd, what=description)
        sc.ioctl(perf_fd, sc.PERF_EVENT_IOC_ENABLE, 0, what=description)
        return Link(-1, description, perf_fd)
    except BaseException:
        os.close(perf_fd)
        raise
