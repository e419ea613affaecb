"""The one base for everything that owns kernel handles (fds, mmaps, links, perf events).

Subclasses implement an idempotent :meth:`Resource.close`; ``with`` blocks and garbage
collection call it, so no handle outlives its owner. The fds themselves come from the kernel inside
``io.FileIO`` objects (``sc.*_owned``): one dropped by an exception (a Ctrl-C anywhere) closes its fd.

Example::

    with sc.enable_stats():      # an OwnedFd
        ...                      # programs' run_cnt / run_time_ns are counted in here
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
from typing import Any, TypeVar, Union

__all__ = ["Resource", "OwnedFd", "fd_kind"]

R = TypeVar("R", bound="Resource")


def fd_kind(fd: int) -> str:
    """What an fd is, as /proc names it: ``bpf-map``, ``bpf-prog``, ``bpf_link``, ``[perf_event]``, a
    path for a file, or ``not an open fd``.

    Example::

        fd_kind(m.fd)   # 'bpf-map'
    """
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "not an open fd"
    return target.removeprefix("anon_inode:")


class Resource:
    """Owns kernel handles: ``close()`` releases them (idempotent), ``with`` closes on exit, and an
    object collected without close() is closed then. Subclasses override :meth:`close`.

    Example::

        class Thing(Resource):
            def close(self) -> None: ...
    """

    def close(self) -> None:
        """Release every handle. Idempotent."""
        raise NotImplementedError

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # an exception in __del__ is only printed; a half-built object may lack attributes
        try:
            self.close()
        except KeyboardInterrupt:
            # Ctrl-C landed in a finalizer, which cannot raise it: finish closing (a half-closed
            # object would leak), then deliver the signal again so the program still sees it
            with contextlib.suppress(Exception):
                self.close()
            if threading.current_thread() is threading.main_thread():
                signal.raise_signal(signal.SIGINT)
        except Exception:
            pass


class OwnedFd(Resource):
    """A kernel handle that is only an fd (e.g. the run-time stats switch).

    Example::

        with sc.enable_stats():
            ...   # programs' run_cnt / run_time_ns are counted in here
    """

    def __init__(self, fd: Union[int, io.FileIO], what: str) -> None:
        self._file = fd if isinstance(fd, io.FileIO) else io.FileIO(fd, "rb")
        self.what = what

    def fileno(self) -> int:
        """The fd (-1 once closed)."""
        f = getattr(self, "_file", None)
        return -1 if f is None or f.closed else f.fileno()

    def close(self) -> None:
        """Release the fd. Idempotent."""
        f = getattr(self, "_file", None)
        if f is not None:
            f.close()
