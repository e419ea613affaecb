"""Stack trace maps (``BPF_MAP_TYPE_STACK_TRACE``): ``bpf_get_stackid()`` ids → addresses.

Example::

    stacks = obj.maps.stacks
    addrs = stacks.addresses(stack_id)             # np.uint64 array, innermost frame first
    bpfkit.symbols.kernel_symbols().lookup(addrs).names   # ['do_syscall_64', ...]
    frames, found = stacks.read(keys["user_stack_id"])    # every id of a count map at once

A map created with ``BPF_F_STACK_BUILD_ID`` (``BPFKIT_STACK_MAP_BUILD_ID``) holds
``struct bpf_stack_build_id`` frames instead: :meth:`StackTraceMap.read` then returns them as a
``(n, depth)`` array of :data:`BUILD_ID_FRAME` records.
"""
from __future__ import annotations

import errno
import os
from typing import Any

import numpy as np

from .. import _sys as sc
from ..errors import MapKeyError
from .map import Map

__all__ = ["StackTraceMap", "BUILD_ID_FRAME"]

# struct bpf_stack_build_id { __s32 status; unsigned char build_id[20]; union { __u64 offset; __u64 ip; }; }
BUILD_ID_FRAME = np.dtype({"names": ["status", "build_id", "offset"],
                           "formats": ["<i4", ("u1", (20,)), "<u8"], "offsets": [0, 4, 24], "itemsize": 32})


class StackTraceMap(Map, map_types=(sc.BPF_MAP_TYPE_STACK_TRACE,)):
    """Values are arrays of instruction pointers (``u64[depth]``), zero-padded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.build_id = bool(self.flags & sc.BPF_F_STACK_BUILD_ID)
        self.frame_dtype = BUILD_ID_FRAME if self.build_id else np.dtype("<u8")
        self.depth = self.value_size // self.frame_dtype.itemsize
        if self.value_size % self.frame_dtype.itemsize == 0 and (
                self.value_dtype is None or self.value_dtype.shape != (self.depth,)):
            self.value_dtype = np.dtype((self.frame_dtype, (self.depth,)))

    def addresses(self, stack_id: int) -> np.ndarray:
        """The frames of ``stack_id`` (innermost first), without the zero padding."""
        if self.build_id:
            raise MapKeyError(f"{self._what()} holds build-id frames: read them with read()", errno.EINVAL)
        if stack_id < 0:
            raise MapKeyError(f"stack id {stack_id} is a bpf_get_stackid() error code ({os.strerror(-stack_id)}), "
                              "not an id", -stack_id)
        v = np.zeros(self.depth, np.uint64)
        if not sc.map_lookup(self.fd, np.array([stack_id], np.uint32), v, what=self._what()):
            raise MapKeyError(f"stack id {stack_id} not in {self._what()}", errno.ENOENT)
        nz = np.flatnonzero(v == 0)
        return v[: nz[0]] if len(nz) else v

    def read(self, stack_ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """The frames of many stack ids at once: ``(frames, found)``.

        ``frames`` has shape ``(len(stack_ids), depth)``, innermost frame first and zero-padded
        (ips as ``uint64``; :data:`BUILD_ID_FRAME` records in a build-id map, padded with
        ``status`` 0); ``found`` says which ids had a stack. Negative ids (bpf_get_stackid
        errors, as count maps store them) and ids no longer in the map give a row of zeros and
        ``found`` False. Each distinct id is read once (stack maps have no batch lookup in the
        kernel), so a count map whose keys share stacks costs one syscall per distinct stack.

        Example::

            keys, counts = obj.maps.counts.to_numpy()
            user, ok = obj.maps.stacks.read(keys["user_stack_id"])
            StackProfile.from_addresses(counts, user=[u if k else None for u, k in zip(user, ok)], ...)
        """
        ids = np.asarray(stack_ids, np.int64).ravel()
        frames = np.zeros((len(ids), self.depth), self.frame_dtype)
        found = np.zeros(len(ids), bool)
        if not len(ids):
            return frames, found
        uniq, inverse = np.unique(ids, return_inverse=True)
        inverse = inverse.ravel()
        key = np.zeros(1, np.uint32)
        row = np.zeros(self.depth, self.frame_dtype)
        got = np.zeros((len(uniq), self.depth), self.frame_dtype)
        ok = np.zeros(len(uniq), bool)
        what = self._what()
        for i, sid in enumerate(uniq.tolist()):
            if sid < 0 or sid >= 1 << 32:
                continue
            key[0] = sid
            row[...] = 0  # the kernel copies only the frames it has; the rest must read as padding
            if sc.map_lookup(self.fd, key, row, what=what):
                got[i] = row
                ok[i] = True
        frames[:] = got[inverse]
        found[:] = ok[inverse]
        return frames, found
