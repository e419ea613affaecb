"""One map's element commands (lookup, update, delete, next key) with every argument made once.

``map_lookup()`` and friends build a ``bpf_attr``, take the buffers' addresses and wrap four
ctypes arguments on every call: ~10 us in all, for a syscall of under 1 us. An :class:`ElemCall`
owns a key, a next-key and a value buffer and one attr pointing at them, and keeps the argument
tuples of each command, so a call is: write the key bytes, one foreign call, read the value bytes.

Not thread-safe, and not re-entrant (the buffers are shared): its user takes a lock around a call.

Example::

    call = ElemCall(fd, key_size=4, value_size=8)
    struct.pack_into("<I", call.key, 0, 1234)
    if call.lookup() == 0:
        print(struct.unpack_from("<Q", call.value)[0])
"""
from __future__ import annotations

import ctypes
from ctypes import addressof, c_char, c_long, c_void_p, sizeof

from .attrs import MapElemAttr
from .consts import BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM
from .libc import SYS_BPF, syscall as _syscall

__all__ = ["ElemCall"]


class ElemCall:
    """Buffers and prepared ``bpf(2)`` arguments for one map's element commands. Each command
    returns 0 or the errno (ENOENT = 2: no such key / no next key); nothing raises.

    ``key``, ``next_key`` and ``value`` are writable buffers (ctypes char arrays) of the map's sizes.
    """

    __slots__ = ("key", "next_key", "value", "_attrs", "_lookup", "_update", "_delete", "_next", "_first")

    def __init__(self, fd: int, key_size: int, value_size: int) -> None:
        self.key = (c_char * max(key_size, 1))()
        self.next_key = (c_char * max(key_size, 1))()
        self.value = (c_char * max(value_size, 1))()
        kaddr, naddr = addressof(self.key), addressof(self.next_key)
        # one attr per buffer pairing, so that no call writes a field: key -> value, key -> next
        # key, and no key -> next key (GET_NEXT_KEY's "first key")
        elem = MapElemAttr(map_fd=fd, key=kaddr, value=addressof(self.value))
        upd = {flags: MapElemAttr(map_fd=fd, key=kaddr, value=addressof(self.value), flags=flags)
               for flags in (0, 1, 2)}
        nxt = MapElemAttr(map_fd=fd, key=kaddr, value=naddr)
        first = MapElemAttr(map_fd=fd, key=0, value=naddr)
        gone = MapElemAttr(map_fd=fd, key=kaddr)  # DELETE_ELEM: the kernel wants nothing after key
        self._attrs = (elem, upd, nxt, first, gone)  # kept alive: the argument tuples hold their addresses
        nr, size = c_long(SYS_BPF), c_long(sizeof(elem))
        self._lookup = (nr, c_long(BPF_MAP_LOOKUP_ELEM), c_void_p(addressof(elem)), size)
        self._update = {f: (nr, c_long(BPF_MAP_UPDATE_ELEM), c_void_p(addressof(a)), size) for f, a in upd.items()}
        self._delete = (nr, c_long(BPF_MAP_DELETE_ELEM), c_void_p(addressof(gone)), size)
        self._next = (nr, c_long(BPF_MAP_GET_NEXT_KEY), c_void_p(addressof(nxt)), size)
        self._first = (nr, c_long(BPF_MAP_GET_NEXT_KEY), c_void_p(addressof(first)), size)

    def lookup(self) -> int:
        """BPF_MAP_LOOKUP_ELEM of ``key`` into ``value``."""
        if _syscall(*self._lookup) == 0:
            return 0
        return ctypes.get_errno()

    def update(self, flags: int = 0) -> int:
        """BPF_MAP_UPDATE_ELEM of ``key`` to ``value`` with ``flags`` (BPF_ANY 0, BPF_NOEXIST 1,
        BPF_EXIST 2)."""
        if _syscall(*self._update[flags]) == 0:
            return 0
        return ctypes.get_errno()

    def delete(self) -> int:
        """BPF_MAP_DELETE_ELEM of ``key``."""
        if _syscall(*self._delete) == 0:
            return 0
        return ctypes.get_errno()

    def next(self) -> int:
        """BPF_MAP_GET_NEXT_KEY: the key after ``key`` into ``next_key``."""
        if _syscall(*self._next) == 0:
            return 0
        return ctypes.get_errno()

    def first(self) -> int:
        """BPF_MAP_GET_NEXT_KEY without a key: the first key into ``next_key``."""
        if _syscall(*self._first) == 0:
            return 0
        return ctypes.get_errno()
