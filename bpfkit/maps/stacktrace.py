"""Stack trace maps (``BPF_MAP_TYPE_STACK_TRACE``): ``bpf_get_stackid()`` ids → addresses.

Example::

    stacks = obj.maps.stacks
    addrs = stacks.addresses(stack_id)             # np.uint64 array, innermost frame first
    print(kernel_symbols().names(addrs))           # ['do_syscall_64', ...]
"""
from __future__ import annotations

import bisect
import errno
import functools
import os
from typing import Any, Optional

import numpy as np

from .. import _sys as sc
from ..errors import MapKeyError
from .map import Map


class StackTraceMap(Map, map_types=(sc.BPF_MAP_TYPE_STACK_TRACE,)):
    """Values are arrays of instruction pointers (``u64[depth]``), zero-padded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.depth = self.value_size // 8
        if self.value_size % 8 == 0 and (self.value_dtype is None or self.value_dtype.shape != (self.depth,)):
            self.value_dtype = np.dtype(("<u8", (self.depth,)))

    def addresses(self, stack_id: int) -> np.ndarray:
        """The frames of ``stack_id`` (innermost first), without the zero padding."""
        if stack_id < 0:
            raise MapKeyError(f"stack id {stack_id} is a bpf_get_stackid() error code ({os.strerror(-stack_id)}), "
                              "not an id", -stack_id)
        v = np.zeros(self.depth, np.uint64)
        if not sc.map_lookup(self.fd, np.array([stack_id], np.uint32), v, what=self._what()):
            raise MapKeyError(f"stack id {stack_id} not in {self._what()}", errno.ENOENT)
        nz = np.flatnonzero(v == 0)
        return v[: nz[0]] if len(nz) else v


class KernelSymbols:
    """Address → symbol from ``/proc/kallsyms`` (needs root for real addresses)."""

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        addrs: list[int] = []
        names: list[str] = []
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1] not in "tTwW":
                    continue
                addrs.append(int(parts[0], 16))
                names.append(parts[2])
        order = sorted(range(len(addrs)), key=addrs.__getitem__)
        self._addrs = [addrs[i] for i in order]
        self._names = [names[i] for i in order]

    def name(self, addr: int) -> Optional[str]:
        """The function containing ``addr`` (None below the first symbol or if kallsyms is hidden)."""
        i = bisect.bisect_right(self._addrs, int(addr)) - 1
        if i < 0 or self._addrs[i] == 0:
            return None
        return self._names[i]

    def names(self, addrs: Any) -> list[Optional[str]]:
        """:meth:`name` of each address."""
        return [self.name(int(a)) for a in addrs]


@functools.lru_cache(maxsize=1)
def kernel_symbols() -> KernelSymbols:
    """The (cached) kernel symbol table."""
    return KernelSymbols()
