"""Stack trace maps (``BPF_MAP_TYPE_STACK_TRACE``): ``bpf_get_stackid()`` ids → addresses.

Example::

    stacks = obj.maps.stacks
    addrs = stacks.addresses(stack_id)             # np.uint64 array, innermost frame first
    bpfkit.symbols.kernel_symbols().lookup(addrs).names   # ['do_syscall_64', ...]
"""
from __future__ import annotations

import errno
import os
from typing import Any

import numpy as np

from .. import _sys as sc
from ..errors import MapKeyError
from .map import Map

__all__ = ["StackTraceMap"]


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
