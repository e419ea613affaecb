"""LPM trie maps: keys are ``(prefix length, data)``; lookups find the longest matching prefix.

Keys can be given as ``"10.0.0.0/8"`` strings, :mod:`ipaddress` networks/addresses,
``(data, prefixlen)`` tuples or records of the key dtype. Data is stored in network
byte order, as the kernel compares it bit by bit from the first byte.

Example::

    routes = Map.create("lpm_trie", LpmTrie.key_dtype_for(4), "u4", 1024)
    routes["10.0.0.0/8"] = 1
    routes["10.1.0.0/16"] = 2
    routes.match("10.1.2.3")        # -> 2 (longest prefix)
"""
from __future__ import annotations

import ipaddress
from typing import Any, Optional, Union

import numpy as np

from .. import _sys as sc
from ..errors import MapError
from .codec import as_array
from .map import Map

__all__ = ["Address", "LpmTrie"]

Address = Union[str, bytes, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
                ipaddress.IPv6Network]


class LpmTrie(Map, map_types=(sc.BPF_MAP_TYPE_LPM_TRIE,)):
    """``BPF_MAP_TYPE_LPM_TRIE``. The key dtype has a ``prefixlen`` (u4) and a ``data`` field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert self.key_dtype is not None
        names = self.key_dtype.names or ()
        if "prefixlen" not in names or len(names) != 2:
            # without BTF (or with an unusual struct) use the kernel's own layout
            self.key_dtype = self.key_dtype_for(self.key_size - 4)
        self._data_field = [n for n in self.key_dtype.names or () if n != "prefixlen"][0]
        self.data_bytes = self.key_size - 4

    @staticmethod
    def key_dtype_for(data_bytes: int) -> np.dtype:
        """``struct { __u32 prefixlen; __u8 data[data_bytes]; }`` as a dtype (4 for IPv4, 16 for IPv6)."""
        return np.dtype([("prefixlen", "<u4"), ("data", "u1", (data_bytes,))])

    def make_key(self, prefix: Any, prefixlen: Optional[int] = None) -> np.ndarray:
        """A key record from an address/network/bytes and an optional prefix length."""
        assert self.key_dtype is not None
        if isinstance(prefix, np.ndarray) or isinstance(prefix, np.void) or isinstance(prefix, dict):
            return as_array(prefix, self.key_dtype, f"{self._what()} key")
        if isinstance(prefix, tuple) and len(prefix) == 2 and prefixlen is None:
            prefix, prefixlen = prefix
        data: bytes
        if isinstance(prefix, (bytes, bytearray)):
            data = bytes(prefix)
            plen = prefixlen if prefixlen is not None else len(data) * 8
        else:
            try:
                if isinstance(prefix, str) and "/" in prefix:
                    net = ipaddress.ip_network(prefix, strict=False)
                elif isinstance(prefix, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                    net = prefix
                else:
                    addr = ipaddress.ip_address(prefix)
                    net = ipaddress.ip_network(f"{addr}/{addr.max_prefixlen}")
            except ValueError as exc:
                raise MapError(f"{self._what()} key: {exc}") from None
            data = net.network_address.packed
            plen = prefixlen if prefixlen is not None else net.prefixlen
        if len(data) > self.data_bytes:
            raise MapError(f"{self._what()} key: {len(data)} bytes of data but keys hold {self.data_bytes}")
        if not 0 <= plen <= self.data_bytes * 8:
            raise MapError(f"{self._what()} key: prefix length {plen} outside 0..{self.data_bytes * 8}")
        key = np.zeros(1, self.key_dtype)
        key["prefixlen"] = plen
        key[self._data_field][0][: len(data)] = np.frombuffer(data, np.uint8)
        return key

    def key_bytes(self, key: Any) -> np.ndarray:
        return self.make_key(key)

    def match(self, address: Address, default: Any = None) -> Any:
        """The value of the longest prefix containing ``address`` (or ``default``)."""
        key = self.make_key(address)
        if isinstance(address, str) and "/" not in address or isinstance(address, bytes):
            key["prefixlen"] = self.data_bytes * 8
        return self.lookup(key, default)

    def _keys_array(self, keys: Any) -> np.ndarray:
        if isinstance(keys, np.ndarray) and keys.dtype == self.key_dtype:
            return np.ascontiguousarray(keys.reshape(-1))
        return np.concatenate([self.make_key(k) for k in keys]) if len(keys) else np.empty(0, self.key_dtype)

    @staticmethod
    def format_key(key: Any) -> str:
        """``"10.0.0.0/8"`` for 4- and 16-byte keys, ``"<hex>/<len>"`` otherwise."""
        names = key.dtype.names
        data = bytes(np.asarray(key[names[1] if names[0] == "prefixlen" else names[0]], np.uint8))
        plen = int(key["prefixlen"])
        if len(data) in (4, 16):
            return f"{ipaddress.ip_address(data)}/{plen}"
        return f"{data.hex()}/{plen}"
