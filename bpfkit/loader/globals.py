"""Global variables (``.bss``, ``.data``, ``.rodata``) as attributes.

Before load they live in a bytearray of the spec; after load in an mmap of the
kernel map, so ``obj.bss.counter`` reads kernel memory directly, with no syscall.
Sections the kernel cannot mmap (libbpf makes a section holding only ``static``
variables without BPF_F_MMAPABLE) are :class:`MapGlobalVars`: each read is a map
lookup, each write a lookup and an update of the whole section.

Example::

    spec.rodata.target_pid = 1234      # before load
    with spec.load() as obj:
        print(obj.bss.total)            # live value
        obj.bss.hist[:] = 0             # numpy view, writes go to the kernel
"""
from __future__ import annotations

import errno
from typing import Any, Callable, Union

import numpy as np

from .. import _sys as sc
from ..btf.types import UNREADABLE
from ..errors import BpfError, ClosedError, MapError

__all__ = ["GlobalVars", "MapGlobalVars", "INTERNAL_PREFIX"]

# bpfkit.h's own globals (record-type markers, drop counters): kept in the section, never listed
INTERNAL_PREFIX = "__bpfkit_"


def _unreadable(dtype: np.dtype) -> dict[str, str]:
    meta: dict[str, dict[str, str]] = dict(dtype.metadata or {})
    return meta.get(UNREADABLE, {})


class GlobalVars:
    """Attribute view of one global-data section; ``.array`` is the whole section as a
    1-element structured numpy array."""

    __slots__ = ("_arr", "_buffer", "_dt", "_name", "_readonly_reason", "_owner", "_closed")

    def __init__(self, buffer: Any, dtype: Union[np.dtype, Callable[[], np.dtype]], name: str,
                 readonly_reason: str = "", owner: Any = None, *, lazy: bool = False) -> None:
        # lazy: the numpy view is made on first use (a spec's sections: loading reads their bytes,
        # and most specs are loaded without a look at their globals); so is the dtype, when given
        # as a function that makes it
        if not lazy:
            dtype = dtype if isinstance(dtype, np.dtype) else dtype()
            object.__setattr__(self, "_arr", np.frombuffer(buffer, dtype=dtype, count=1))
        else:
            object.__setattr__(self, "_arr", None)
        object.__setattr__(self, "_buffer", buffer)
        object.__setattr__(self, "_dt", dtype)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_readonly_reason", readonly_reason)
        object.__setattr__(self, "_owner", owner)  # keeps the mmap (or bytearray) alive
        object.__setattr__(self, "_closed", False)

    def close(self) -> None:
        """Called by the owning Object on close: later access raises ClosedError instead of
        reading memory the kernel no longer uses."""
        object.__setattr__(self, "_closed", True)

    def _check_open(self) -> None:
        if object.__getattribute__(self, "_closed"):
            raise ClosedError(f"{self._name}: its object was closed")

    def _view(self) -> np.ndarray:
        arr = object.__getattribute__(self, "_arr")
        if arr is None:
            arr = np.frombuffer(object.__getattribute__(self, "_buffer"), dtype=self.dtype, count=1)
            object.__setattr__(self, "_arr", arr)
        return arr

    def _bytes(self) -> bytes:
        """The section's bytes now (what a load writes to the kernel)."""
        self._check_open()
        return bytes(object.__getattribute__(self, "_buffer"))

    @property
    def array(self) -> np.ndarray:
        """The whole section as a structured array of shape (1,)."""
        self._check_open()
        return self._view()

    @property
    def dtype(self) -> np.dtype:
        """The section's structured dtype, one field per variable."""
        dt = object.__getattribute__(self, "_dt")
        if not isinstance(dt, np.dtype):
            dt = dt()
            object.__setattr__(self, "_dt", dt)
        return dt

    def _public_names(self) -> list[str]:
        # a method, not a property: a BPF global may be called anything
        return [n for n in self.dtype.names or () if not n.startswith(INTERNAL_PREFIX)]

    def _no_such(self, name: str) -> AttributeError:
        import difflib  # only for this message: it costs a start-up milliseconds otherwise

        names = self._public_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return AttributeError(f"{self._name} has no variable {name!r}{hint}; it has: "
                              f"{', '.join(names) or 'nothing'}")

    def __getattr__(self, name: str) -> Any:
        self._check_open()
        arr = object.__getattribute__(self, "_arr")
        if arr is None:  # (_view's test inline: every read of a live global passes here)
            arr = self._view()
        if arr.dtype.names is None or name not in arr.dtype.names:
            raise self._no_such(name)
        if arr.dtype.metadata is not None:
            self._check_readable(arr.dtype, name)
        field = arr[name]
        if field.ndim == 1 and field.dtype.names is None:
            return field[0].item() if field.dtype.kind != "S" else field[0]
        return field[0]  # numpy view (array or struct record) into the section

    def __setattr__(self, name: str, value: Any) -> None:
        arr = self._view()
        if arr.dtype.names is None or name not in arr.dtype.names:
            raise self._no_such(name)
        self._check_open()
        if self._readonly_reason:
            raise BpfError(f"{self._name}.{name} is read-only: {self._readonly_reason}", errno.EPERM)
        if arr.dtype.metadata is not None:
            self._check_readable(arr.dtype, name)
        field = arr.dtype[name]
        what = f"{self._name}.{name} ({field})"
        if field.kind in "iub" and isinstance(value, (float, np.floating)):
            raise MapError(f"{what}: refusing to store the float {value!r} in an integer variable")
        try:
            if field.kind in "iu" and isinstance(value, (int, np.integer)):
                info = np.iinfo(field)
                if not info.min <= int(value) <= info.max:
                    raise MapError(f"{what}: {value} is outside {info.min}..{info.max}")
            arr[name][0] = value
        except (ValueError, TypeError, OverflowError) as exc:
            raise MapError(f"{what}: cannot store {value!r}: {exc}") from None

    def _check_readable(self, dtype: np.dtype, name: str) -> None:
        why = _unreadable(dtype).get(name)
        if why:
            raise MapError(f"{self._name}.{name}: {why}; its bytes are {self._name}.array[{name!r}] "
                           "(np.void), to decode yourself")

    def __dir__(self) -> list[str]:
        return self._public_names() + ["array", "dtype"]

    def __repr__(self) -> str:
        names = self._public_names()
        raw = _unreadable(self.dtype)
        body = ", ".join(f"{n}=<{self.dtype[n].itemsize} raw bytes>" if n in raw else f"{n}={getattr(self, n)!r}"
                         for n in names)
        return f"<{self._name}: {body}>"


class MapGlobalVars(GlobalVars):
    """A global-data section read and written through its map (BPF_MAP_LOOKUP_ELEM / UPDATE_ELEM
    of key 0), for sections the kernel does not mmap. Reads return values, not views: ``array``
    is a read-only snapshot. A write replaces the whole section, so a variable the program
    changes between the lookup and the update loses that change (as with libbpf's tools).

    Example::

        obj.bss.hits          # one map lookup
        obj.bss.hits = 0      # a lookup and an update
    """

    __slots__ = ("_fd", "_key")

    def __init__(self, fd: int, dtype: Union[np.dtype, Callable[[], np.dtype]], name: str,
                 readonly_reason: str = "") -> None:
        if not isinstance(dtype, np.dtype):
            dtype = dtype()
        buf = bytearray(dtype.itemsize)
        super().__init__(buf, dtype, name, readonly_reason, owner=buf)
        object.__setattr__(self, "_fd", fd)
        object.__setattr__(self, "_key", np.zeros(1, np.uint32))
        self._refresh()

    def _refresh(self) -> None:
        self._check_open()
        sc.map_lookup(object.__getattribute__(self, "_fd"), object.__getattribute__(self, "_key"),
                      object.__getattribute__(self, "_arr"), what=f"section {self._name}")

    @property
    def array(self) -> np.ndarray:
        """The whole section, read now, as a read-only structured array of shape (1,)."""
        self._refresh()
        snap = self._arr.copy()
        snap.setflags(write=False)
        return snap

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._refresh()
        value = super().__getattr__(name)
        if isinstance(value, np.ndarray):
            value = value.copy()
            value.setflags(write=False)
        elif isinstance(value, np.void):
            value = value.copy()
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if self._readonly_reason or name not in (self._arr.dtype.names or ()):
            super().__setattr__(name, value)  # raises the read-only / no-such-variable error
            return
        self._refresh()
        super().__setattr__(name, value)
        sc.map_update(self._fd, self._key, self._arr, what=f"section {self._name}")
