"""The one base for everything that owns kernel handles (fds, mmaps, links, perf events).

Subclasses implement an idempotent :meth:`Resource.close`; ``with`` blocks and garbage
collection call it, so no handle outlives its owner.

Example::

    with sc.enable_stats():      # an OwnedFd
        ...                      # programs' run_cnt / run_time_ns are counted in here
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, TypeVar

__all__ = ["Resource", "OwnedFd"]

R = TypeVar("R", bound="Resource")


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

    def __init__(self, fd: int, what: str) -> None:
        self._fd = fd
        self.what = what

    def fileno(self) -> int:
        """The fd (-1 once closed)."""
        return self._fd

    def close(self) -> None:
        """Release the fd. Idempotent."""
        if getattr(self, "_fd", -1) >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
