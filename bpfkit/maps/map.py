"""A BPF map as a dict-like object with numpy keys and values, and bulk numpy operations.

(About 800 lines, one class on purpose: every map type shares this dict and bulk numpy API, and
the subclasses in this package change a few of its methods; the numpy conversions live in
``codec`` and the map-type families in ``kinds``.)

Keys and values are converted through numpy dtypes taken from the map's BTF
(or given explicitly); scalars come back as Python ints, structs as numpy
records, per-CPU values as an array with one row per possible CPU.

Bulk operations use the kernel's batch commands: :meth:`Map.to_numpy` reads a
million-entry hash in one ``BPF_MAP_LOOKUP_BATCH`` call.

Example::

    counts = obj.maps.counts          # BPF_MAP_TYPE_HASH, u32 -> u64
    counts[1234]                      # -> 7
    keys, values = counts.to_numpy()  # every element, two numpy arrays
    keys, values = counts.pop_all()   # read and empty, atomically per element

    m = Map.create("hash", "u8", "u8", max_entries=1 << 20)
    m.update(np.arange(10), np.arange(10) * 2)
"""
from __future__ import annotations

import errno as _errno
import io
import logging
import os
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from .. import _sys as sc
from .._sys import Resource
from ..btf import dtypes_from_kernel, load_dtypes
from ..errors import ENOTSUPP, BpfError, BpfNotFoundError, BpfUsageError, ClosedError, MapError, MapKeyError
from .. import columnar
from . import bulk as _batch
from . import frames as _frames
from .codec import (DTypeLike, as_array, as_array_n, checked, columns, convert, dtype_arg, fit, reduce_cpus, scalar,
                    shape_of, slot_dtype)
from .keyed import MISSING, Keyed, struct_for
from .kinds import (ARRAY_TYPES, EVENT_TYPES, FD_ARRAY_TYPES, LOCAL_STORAGE_TYPES, NO_BTF_TYPES, PERCPU_TYPES,
                    READABLE_FD_ARRAYS, MapInfo, map_info, map_type_id)

__all__ = ["Map"]

log = logging.getLogger("bpfkit.maps")


def _elem_flags(flags: int) -> int:
    """Update flags, checked: the kernel answers anything else with a bare EINVAL."""
    flags = sc.check_u64("flags", flags)
    if flags & ~(3 | sc.BPF_F_LOCK) or flags & 3 == 3:
        raise BpfUsageError(f"flags={flags:#x}: an update takes BPF_ANY (0), BPF_NOEXIST (1) or BPF_EXIST (2), "
                            "optionally | BPF_F_LOCK (4) for values with a bpf_spin_lock", _errno.EINVAL)
    return flags


class Map(Resource):
    """A live BPF map. Owned by an :class:`~bpfkit.Object` (which closes it), or standalone
    (:meth:`create`, :meth:`from_pinned`, :meth:`from_id`: close it, or use ``with``).

    Map types with behaviour of their own subclass it and name their types:
    ``class ArrayMap(Map, map_types=(BPF_MAP_TYPE_ARRAY, ...))``; :meth:`class_for` finds them.

    Example::

        m = Map.create("hash", "u4", "u8", 1024)
        m[1] = 2
    """

    _by_type: dict[int, type["Map"]] = {}

    def __init_subclass__(cls, map_types: tuple[int, ...] = (), **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for t in map_types:
            Map._by_type.setdefault(t, cls)

    @staticmethod
    def class_for(map_type: int) -> type["Map"]:
        """The class that serves maps of ``map_type`` (``Map`` when none is special).

        Example::

            Map.class_for(sc.BPF_MAP_TYPE_LPM_TRIE)   # LpmTrie
        """
        return Map._by_type.get(map_type, Map)

    # the owner of the fd when this Map owns it (create/from_*): closes it once, or when dropped
    _file: Optional[io.FileIO] = None

    def __init__(self, fd: int, name: str, map_type: int, key_size: int, value_size: int,
                 max_entries: int, flags: int = 0, key_dtype: Optional[np.dtype] = None,
                 value_dtype: Optional[np.dtype] = None, owns_fd: bool = False,
                 dtypes: Optional[Callable[[], tuple[Any, Any, str, Any]]] = None) -> None:
        # dtypes: (key dtype, value dtype, dtype error, record dtype), made when one is first used
        # instead of the two given (an Object's maps: most are never read from Python)
        self._pending = dtypes
        self._dtype_error = ""
        self._record_dtype: Optional[np.dtype] = None
        self._fd = fd
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self._owns_fd = owns_fd
        if owns_fd:
            self._file = io.FileIO(fd, "rb")
        if dtypes is None:
            self._key_dtype = checked(key_dtype, key_size, "key", name) if key_size else None
            self._value_dtype = checked(value_dtype, value_size, "value", name) if value_size else None
        self.percpu = map_type in PERCPU_TYPES
        self.ncpus = sc.possible_cpus() if self.percpu else 1
        # per-CPU values are laid out with each CPU's slot rounded up to 8 bytes
        self._slot = (value_size + 7) & ~7 if self.percpu else value_size
        # False forces per-element syscalls for every bulk operation; _refused holds the batch
        # commands the kernel said this map type lacks (asked once, then not again)
        self._batch_ok = True
        self._refused: set[int] = set()
        self._fast: Optional[Keyed] = None  # per-key access with buffers made once (keyed.py)
        self._fast_checked = False

    # -- dtypes ---------------------------------------------------------------
    def _make_dtypes(self) -> None:
        make = self._pending
        if make is None:
            return
        key, value, self._dtype_error, self._record_dtype = make()
        self._key_dtype = checked(key, self.key_size, "key", self.name) if self.key_size else None
        self._value_dtype = checked(value, self.value_size, "value", self.name) if self.value_size else None
        self._pending = None  # (last: another thread that sees None finds every dtype set)

    @property
    def key_dtype(self) -> Optional[np.dtype]:
        """The numpy dtype keys are converted through (from BTF, or given)."""
        if self._pending is not None:
            self._make_dtypes()
        return self._key_dtype

    @key_dtype.setter
    def key_dtype(self, value: Optional[np.dtype]) -> None:
        if self._pending is not None:
            self._make_dtypes()
        self._key_dtype = value

    @property
    def value_dtype(self) -> Optional[np.dtype]:
        """The numpy dtype values are converted through (from BTF, or given)."""
        if self._pending is not None:
            self._make_dtypes()
        return self._value_dtype

    @value_dtype.setter
    def value_dtype(self, value: Optional[np.dtype]) -> None:
        if self._pending is not None:
            self._make_dtypes()
        self._value_dtype = value

    @property
    def dtype_error(self) -> str:
        """Why BTF gave no usable dtype (bitfields): reads and writes refuse with this message
        until retype() gives explicit dtypes."""
        if self._pending is not None:
            self._make_dtypes()
        return self._dtype_error

    @dtype_error.setter
    def dtype_error(self, value: str) -> None:
        if self._pending is not None:
            self._make_dtypes()
        self._dtype_error = value

    @property
    def record_dtype(self) -> Optional[np.dtype]:
        """Ring/perf buffers: the record type (BPFKIT_RINGBUF / BPFKIT_PERFBUF), for their readers."""
        if self._pending is not None:
            self._make_dtypes()
        return self._record_dtype

    @record_dtype.setter
    def record_dtype(self, value: Optional[np.dtype]) -> None:
        if self._pending is not None:
            self._make_dtypes()
        self._record_dtype = value

    # -- construction -------------------------------------------------------
    @classmethod
    def create(cls, map_type: Union[int, str], key: DTypeLike = None, value: DTypeLike = None,
               max_entries: int = 1, *, flags: int = 0, name: str = "", inner_map: Optional["Map"] = None,
               map_extra: int = 0, btf: Optional[bool] = None) -> "Map":
        """Create a map from Python (no BPF object needed). ``key``/``value`` are numpy dtypes (or
        byte sizes); BTF describing them is attached so other tools see the types.

        ``btf=None`` attaches BTF when the dtypes can be expressed in it; True requires it.

        Example::

            m = Map.create("hash", "u8", np.dtype([("n", "u8"), ("comm", "S16")]), 4096, name="by_pid")
        """
        mtype = map_type_id(map_type)
        max_entries = sc.check_u32("max_entries", max_entries)
        flags = sc.check_u32("flags", flags)
        map_extra = sc.check_u64("map_extra", map_extra)
        sc.check_obj_name("map", name)
        kdt = dtype_arg(key, "key")
        vdt = dtype_arg(value, "value")
        if mtype in (sc.BPF_MAP_TYPE_ARRAY_OF_MAPS, sc.BPF_MAP_TYPE_HASH_OF_MAPS):
            if inner_map is None:
                raise MapError("array/hash of maps need inner_map= (a Map with the inner maps' shape)")
            vdt = np.dtype("u4")
        if mtype in (sc.BPF_MAP_TYPE_ARRAY, sc.BPF_MAP_TYPE_PERCPU_ARRAY, sc.BPF_MAP_TYPE_ARRAY_OF_MAPS,
                     sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY, sc.BPF_MAP_TYPE_STACK_TRACE) and kdt is None:
            kdt = np.dtype("u4")
        if mtype in LOCAL_STORAGE_TYPES:
            kdt = np.dtype("i4")
            flags |= sc.BPF_F_NO_PREALLOC
            max_entries = 0
        if mtype == sc.BPF_MAP_TYPE_LPM_TRIE:
            flags |= sc.BPF_F_NO_PREALLOC
        ksize = kdt.itemsize if kdt is not None else 0
        vsize = vdt.itemsize if vdt is not None else 0
        btf_file: Optional[io.FileIO] = None
        kid = vid = 0
        want_btf = btf if btf is not None else (mtype in LOCAL_STORAGE_TYPES or None)
        # the fds come back inside FileIO objects (sc.*_owned): dropped by an exception, they close
        if want_btf is not False and mtype not in NO_BTF_TYPES:
            try:
                btf_file, kid, vid = load_dtypes(kdt, vdt)
            except BpfError:
                if want_btf:
                    raise
        try:
            f = sc.map_create_owned(mtype, ksize, vsize, max_entries, flags=flags, name=name,
                                    inner_map_fd=inner_map.fd if inner_map is not None else 0,
                                    btf_fd=btf_file.fileno() if btf_file is not None else 0,
                                    btf_key_type_id=kid, btf_value_type_id=vid, map_extra=map_extra)
        except BpfError as e:
            if e.errno not in (_errno.EINVAL, _errno.E2BIG, ENOTSUPP):
                raise
            from .rules import MapShape, map_create_problem  # explaining is for failures: not on every start

            shape = MapShape(mtype, ksize, vsize, max_entries, flags, map_extra, has_btf=btf_file is not None)
            why = map_create_problem(shape) or ("the kernel gave no more reason; check the key/value sizes, "
                                                "max_entries and flags against the map type")
            raise MapError(f"creating {sc.MAP_TYPE_NAMES.get(mtype, mtype)} map {name!r} was refused "
                           f"({_errno.errorcode.get(e.errno, e.errno)}): {why}", e.errno) from None
        finally:
            if btf_file is not None:
                btf_file.close()
        return cls._wrap(f, mtype, name, ksize, vsize, max_entries, flags, kdt, vdt)

    @classmethod
    def _wrap(cls, f: io.FileIO, mtype: int, name: str, ksize: int, vsize: int, max_entries: int, flags: int,
              kdt: Optional[np.dtype], vdt: Optional[np.dtype]) -> "Map":
        klass: Callable[..., Map] = cls if cls is not Map else Map.class_for(mtype)
        try:
            m = klass(f.fileno(), name, mtype, ksize, vsize, max_entries, flags, kdt, vdt)
        except BaseException:
            f.close()
            raise
        m._file = f  # the owner of the fd from here on
        m._owns_fd = True
        return m

    @classmethod
    def from_fd(cls, fd: int, *, key_dtype: DTypeLike = None, value_dtype: DTypeLike = None,
                name: Optional[str] = None) -> "Map":
        """Wrap a map fd (the Map takes ownership). dtypes default to the map's BTF, if any."""
        return cls._from_file(fd if isinstance(fd, io.FileIO) else io.FileIO(fd, "rb"), key_dtype=key_dtype,
                              value_dtype=value_dtype, name=name)

    @classmethod
    def _from_file(cls, f: io.FileIO, *, key_dtype: DTypeLike = None, value_dtype: DTypeLike = None,
                   name: Optional[str] = None) -> "Map":
        try:
            kind = sc.fd_kind(f.fileno())
            if kind != "bpf-map":  # the kernel would fill a MapInfo from a program's info: garbage
                raise BpfUsageError(f"fd {f.fileno()} is {kind}, not a BPF map", _errno.EINVAL)
            info = map_info(f.fileno())
            kdt, vdt = dtype_arg(key_dtype), dtype_arg(value_dtype)
            if (kdt is None or vdt is None) and info.btf_id:
                bk, bv = dtypes_from_kernel(info.btf_id, info.btf_key_type_id, info.btf_value_type_id)
                kdt = kdt if kdt is not None else fit(bk, info.key_size)
                vdt = vdt if vdt is not None else fit(bv, info.value_size)
        except BaseException:
            f.close()
            raise
        return cls._wrap(f, info.type, name or info.name, info.key_size, info.value_size, info.max_entries,
                         info.flags, kdt, vdt)

    @classmethod
    def from_pinned(cls, path: Union[str, os.PathLike], **kwargs: Any) -> "Map":
        """Open a map pinned in bpffs. Example: ``Map.from_pinned("/sys/fs/bpf/counts")``."""
        return cls._from_file(sc.obj_get_owned(os.fspath(path)), **kwargs)

    @classmethod
    def from_id(cls, map_id: int, **kwargs: Any) -> "Map":
        """Open a map by its kernel id (as shown by ``bpftool map``)."""
        map_id = sc.check_u32("map_id", map_id, lo=1)
        return cls._from_file(sc.map_fd_by_id_owned(map_id), **kwargs)

    # -- identity / lifecycle -------------------------------------------------
    @property
    def fd(self) -> int:
        """The map's file descriptor (raises ClosedError once closed)."""
        if self._fd < 0:
            raise ClosedError(f"map {self.name!r} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the owning Object closed)."""
        return self._fd < 0

    @property
    def type_name(self) -> str:
        """e.g. 'hash', 'percpu_array', 'ringbuf'."""
        return sc.MAP_TYPE_NAMES.get(self.type, str(self.type))

    @property
    def id(self) -> int:
        """The kernel's id of this map."""
        return int(sc.map_info(self.fd).id)

    def info(self) -> MapInfo:
        """The kernel's view of this map (id, sizes, flags, BTF ids)."""
        return map_info(self.fd)

    def pin(self, path: Union[str, os.PathLike]) -> None:
        """Pin the map in bpffs so it outlives this process (``/sys/fs/bpf/...``)."""
        sc.obj_pin(self.fd, os.fspath(path))

    @staticmethod
    def unpin(path: Union[str, os.PathLike]) -> None:
        """Remove a pin (the map lives on while fds or programs hold it); only a path that is on a
        bpf filesystem once resolved, so a stray path never deletes an ordinary file."""
        sc.unpin(path)

    def freeze(self) -> None:
        """Make the map read-only for user space (programs can still write unless RDONLY_PROG)."""
        sc.map_freeze(self.fd, what=self._what())

    def retype(self, key_dtype: DTypeLike = None, value_dtype: DTypeLike = None) -> "Map":
        """Override the key/value dtypes (same sizes); returns self.
        Example: ``m.retype(value_dtype=[("pid", "u4"), ("tid", "u4")])``."""
        if key_dtype is not None:
            self.key_dtype = checked(np.dtype(key_dtype), self.key_size, "key", self.name)
        if value_dtype is not None:
            self.value_dtype = checked(np.dtype(value_dtype), self.value_size, "value", self.name)
        self.dtype_error = ""
        self._fast, self._fast_checked = None, False  # built again for the new dtypes
        return self

    def _keyed(self) -> Optional[Keyed]:
        """The fast per-key path, unless this map's class codes keys or values its own way (LPM
        keys, nested maps' fds, storage owners) or it has no keys and values to code."""
        if not self._fast_checked:
            kind = type(self)
            if (self.key_dtype is not None and self.value_dtype is not None and not self.dtype_error and
                    self.type not in EVENT_TYPES and kind.key_bytes is Map.key_bytes and
                    kind._decode_value is Map._decode_value and kind._encode_value is Map._encode_value and
                    kind.value_buffer is Map.value_buffer):
                self._fast = Keyed(self)
            self._fast_checked = True
        return self._fast

    def _check_dtypes(self) -> None:
        if self.dtype_error:
            raise MapError(f"{self.dtype_error}; read it by giving numpy dtypes explicitly, e.g. "
                           f"m.retype(value_dtype=[('flags', 'u4'), ...])")

    def _what(self) -> str:
        return f"map {self.name!r}"

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name!r} {self.type_name} key={self.key_dtype} "
                f"value={self.value_dtype} max_entries={self.max_entries}>")

    def close(self) -> None:
        """Release the fd if this Map owns it; further use raises ClosedError."""
        self._fd = -1
        # the fast path refers back to this map: dropping it frees both now, not at the next GC
        self._fast, self._fast_checked = None, True
        f = getattr(self, "_file", None)
        if f is not None:
            f.close()  # FileIO closes the fd once, however often this runs

    def _missing(self, key: Any) -> MapKeyError:
        """The error for an absent key (errno ENOENT, as the kernel said)."""
        if self.type in ARRAY_TYPES and isinstance(key, (int, np.integer)) and \
                not 0 <= int(key) < self.max_entries:
            return MapKeyError(f"index {key!r} outside 0..{self.max_entries - 1} of {self._what()}", _errno.ENOENT)
        return MapKeyError(f"key {key!r} not in {self._what()}", _errno.ENOENT)

    def _unsupported(self, op: str, hint: str = "") -> MapError:
        if self.type in EVENT_TYPES and not hint:
            hint = f"its records are read through a reader: obj.reader({self.name!r}) or bpfkit.events"
        return MapError(f"{self._what()}: {op} is not supported for {self.type_name} maps" +
                        (f"; {hint}" if hint else ""), _errno.EOPNOTSUPP)

    # -- conversion ---------------------------------------------------------
    def key_bytes(self, key: Any) -> np.ndarray:
        """``key`` as a 1-element array of the key dtype (its buffer is what the kernel reads)."""
        if self.key_dtype is None:
            raise self._unsupported("keyed access")
        return as_array(key, self.key_dtype, f"{self._what()} key")

    def value_buffer(self) -> np.ndarray:
        """A zeroed buffer for one value (all CPUs for per-CPU maps)."""
        self._check_dtypes()
        if self.percpu:
            return np.zeros(self.ncpus, dtype=slot_dtype(self.value_dtype, self._slot))
        return np.zeros(1, dtype=self.value_dtype)

    def _decode_value(self, buf: np.ndarray) -> Any:
        if self.percpu:
            return buf["v"].copy() if buf.dtype.names == ("v",) else buf.copy()
        return scalar(buf[0])

    def _encode_value(self, value: Any) -> np.ndarray:
        if self.percpu:
            assert self.value_dtype is not None
            buf = self.value_buffer()
            conv = convert(value, self.value_dtype, f"{self._what()} value")
            if shape_of(conv, self.value_dtype) not in ((), (1,), (self.ncpus,)):
                raise MapError(f"{self._what()} value: give one {self.value_dtype} (copied to every CPU) or "
                               f"{self.ncpus} of them (one per possible CPU), not shape {conv.shape}")
            buf["v"] = conv
            return buf
        return as_array(value, self.value_dtype, f"{self._what()} value")

    def _keys_array(self, keys: Any) -> np.ndarray:
        assert self.key_dtype is not None
        return as_array_n(keys, self.key_dtype, f"{self._what()} keys")

    def _values_array(self, values: Any, n: int) -> np.ndarray:
        assert self.value_dtype is not None
        if self.percpu:
            buf = np.zeros((n, self.ncpus), dtype=slot_dtype(self.value_dtype, self._slot))
            conv = convert(values, self.value_dtype, f"{self._what()} values")
            lead = shape_of(conv, self.value_dtype)
            if lead in ((), (1,)):
                buf["v"] = conv  # one value for every key and CPU
            elif lead == (n,):
                buf["v"] = conv[:, None]  # one value per key, copied to every CPU
            elif lead == (n, self.ncpus):
                buf["v"] = conv
            else:
                raise MapError(f"{self._what()} values: need shape ({n},) or ({n}, {self.ncpus}) of "
                               f"{self.value_dtype}, got {lead}")
            return buf
        vals = as_array_n(values, self.value_dtype, f"{self._what()} values")
        if len(vals) == 1 and n != 1:
            vals = np.repeat(vals, n, axis=0)
        if len(vals) != n:
            raise MapError(f"{self._what()}: {n} keys but {len(vals)} values")
        return vals

    # -- dict protocol --------------------------------------------------------
    def lookup(self, key: Any, default: Any = None) -> Any:
        """The value for ``key``, or ``default`` when absent."""
        fast = self._fast if self._fast_checked else self._keyed()
        if fast is not None and self._fd >= 0 and fast.lock.acquire(False):
            try:
                return fast.get(key, default)
            finally:
                fast.lock.release()
        k = self.key_bytes(key)
        v = self.value_buffer()
        if not sc.map_lookup(self.fd, k, v, what=self._what()):
            return default
        return self._decode_value(v)

    get = lookup

    def __getitem__(self, key: Any) -> Any:
        fast = self._fast if self._fast_checked else self._keyed()
        if fast is not None and self._fd >= 0 and fast.lock.acquire(False):
            try:
                v = fast.get(key, MISSING)
            finally:
                fast.lock.release()
            if v is MISSING:
                raise self._missing(key)
            return v
        k = self.key_bytes(key)
        v = self.value_buffer()
        if not sc.map_lookup(self.fd, k, v, what=self._what()):
            raise self._missing(key)
        return self._decode_value(v)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update_elem(key, value)

    def update_elem(self, key: Any, value: Any, flags: int = sc.BPF_ANY) -> None:
        """Insert or replace one element; ``flags`` BPF_NOEXIST / BPF_EXIST."""
        flags = _elem_flags(flags)
        fast = self._fast if self._fast_checked else self._keyed()
        if fast is not None and self._fd >= 0 and flags in (0, 1, 2) and fast.lock.acquire(False):
            try:
                err = fast.set(key, value, flags)
            finally:
                fast.lock.release()
            if err == 0:
                return
            e = sc.errno_error(sc.BPF_MAP_UPDATE_ELEM, self._what(), err)
        else:
            k = self.key_bytes(key)
            v = self._encode_value(value)
            try:
                sc.map_update(self.fd, k, v, flags, what=self._what())
                return
            except BpfError as exc:
                e = exc
        if e.errno in (_errno.E2BIG, _errno.EEXIST, _errno.EPERM, _errno.EINVAL, _errno.EBADF) or \
                (e.errno == _errno.ENOENT and flags == sc.BPF_EXIST):
            raise _batch.update_error(e.errno, self._what(), self.max_entries, 0, 1, key, flags,
                                      indexed=self.type in ARRAY_TYPES, map_type=self.type) from None
        raise e

    def __delitem__(self, key: Any) -> None:
        if self.type in ARRAY_TYPES and self.type not in FD_ARRAY_TYPES:
            raise self._unsupported("deleting an element", "array elements always exist; assign 0 or clear()")
        fast = self._fast if self._fast_checked else self._keyed()
        if fast is not None and self._fd >= 0 and fast.lock.acquire(False):
            try:
                err = fast.delete(key)
            finally:
                fast.lock.release()
            if err == _errno.ENOENT:
                raise self._missing(key)
            if err:
                raise sc.errno_error(sc.BPF_MAP_DELETE_ELEM, self._what(), err)
            return
        if not sc.map_delete(self.fd, self.key_bytes(key), what=self._what()):
            raise self._missing(key)

    def __contains__(self, key: Any) -> bool:
        fast = self._fast if self._fast_checked else self._keyed()
        if fast is not None and self._fd >= 0 and fast.lock.acquire(False):
            try:
                return fast.contains(key)
            finally:
                fast.lock.release()
        v = self.value_buffer()
        return sc.map_lookup(self.fd, self.key_bytes(key), v, what=self._what())

    def keys(self) -> Iterator[Any]:
        """Iterate keys with BPF_MAP_GET_NEXT_KEY (a snapshot that may race with the program)."""
        if self.key_dtype is None:
            return
        call = sc.ElemCall(self.fd, self.key_size, 0)  # this iteration's own buffers
        unpack = struct_for(self.key_dtype)
        what = self._what()
        err = call.first()
        while err == 0:
            if unpack is not None:
                yield unpack.unpack_from(call.next_key)[0]
            else:
                yield scalar(np.frombuffer(bytearray(call.next_key), self.key_dtype)[0])
            call.key.raw = call.next_key.raw
            err = call.next()
        if err != _errno.ENOENT:
            raise sc.errno_error(sc.BPF_MAP_GET_NEXT_KEY, what, err)

    __iter__ = keys

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Iterate (key, value) pairs of a snapshot taken with one batch read."""
        keys, values = self.to_numpy()
        kl = keys.tolist() if struct_for(keys.dtype) is not None else [scalar(k) for k in keys]
        if self.percpu:
            return zip(kl, (v.copy() for v in values))
        if struct_for(values.dtype) is not None:
            return zip(kl, values.tolist())  # plain Python numbers, made in one call
        return zip(kl, values)

    def values(self) -> Iterator[Any]:
        """Iterate values (snapshot)."""
        for _, v in self.items():
            yield v

    def __len__(self) -> int:
        """Number of elements: max_entries for arrays, counted with one batch read otherwise
        (arrays of maps / programs: the occupied slots, as :meth:`to_numpy` returns them)."""
        if self.type in ARRAY_TYPES and self.type not in READABLE_FD_ARRAYS:
            return self.max_entries
        return len(self.to_numpy()[0])

    def __bool__(self) -> bool:
        return True  # a Map is an object, not a container truth value (len() may cost a syscall)

    # -- bulk numpy API -------------------------------------------------------
    def _value_layout(self) -> tuple[np.dtype, tuple[int, ...]]:
        assert self.value_dtype is not None
        if self.percpu:
            return slot_dtype(self.value_dtype, self._slot), (self.ncpus,)
        return self.value_dtype, ()

    def _unslot(self, values: np.ndarray) -> np.ndarray:
        if self.percpu and values.dtype.names == ("v",):
            return values["v"]
        return values

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """Every element as ``(keys, values)`` numpy arrays (per-CPU values: shape ``(n, ncpus)``),
        with BPF_MAP_LOOKUP_BATCH; per-key iteration where the kernel refuses batches."""
        return self._read_all(delete=False)

    def pop_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Read and delete every element (BPF_MAP_LOOKUP_AND_DELETE_BATCH): the drain-per-interval
        pattern. Each element is read and removed atomically, so no increment is lost."""
        return self._read_all(delete=True)

    def _batch(self, cmd: int) -> bool:
        return self._batch_ok and cmd not in self._refused

    def _read_all(self, delete: bool) -> tuple[np.ndarray, np.ndarray]:
        self._check_dtypes()
        if self.key_dtype is None or self.value_dtype is None:
            raise self._unsupported("reading all elements")
        vdt, vshape = self._value_layout()
        cmd = sc.BPF_MAP_LOOKUP_AND_DELETE_BATCH if delete else sc.BPF_MAP_LOOKUP_BATCH
        if self._batch(cmd):
            got = _batch.lookup_batch(self.fd, self.key_dtype, vdt, self._capacity(), value_shape=vshape,
                                      delete=delete, what=self._what(), map_type=self.type)
            if got is not None:
                return got[0], self._unslot(got[1])
            self._refused.add(cmd)
        return self._read_slow(delete, vdt, vshape)

    def _capacity(self) -> int:
        return self.max_entries or 1024

    def _read_slow(self, delete: bool, vdt: np.dtype, vshape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """get_next_key + lookup (+ delete) per element: for map types without batch ops."""
        assert self.key_dtype is not None
        keys = []
        vals = []
        cur = np.zeros(1, self.key_dtype)
        nxt = np.zeros(1, self.key_dtype)
        v = np.zeros((1,) + vshape, dtype=vdt)
        more = sc.map_get_next_key(self.fd, None, nxt, what=self._what())
        while more:
            cur[:] = nxt
            # step past cur before deleting it: the next key of a deleted one restarts the walk
            more = sc.map_get_next_key(self.fd, cur, nxt, what=self._what())
            if self._lookup_one(cur, v, delete):
                keys.append(cur[0].copy())
                vals.append(v[0].copy())
        karr = np.array(keys, dtype=self.key_dtype) if keys else np.empty(0, self.key_dtype)
        varr = np.array(vals, dtype=vdt).reshape((len(vals),) + vshape)
        return karr, self._unslot(varr)

    def _lookup_one(self, key: np.ndarray, value: np.ndarray, delete: bool) -> bool:
        if delete and sc.BPF_MAP_LOOKUP_AND_DELETE_ELEM not in self._refused:
            try:
                return sc.map_lookup_and_delete(self.fd, key, value, what=self._what())
            except BpfError as e:
                if e.errno not in (ENOTSUPP, _errno.EOPNOTSUPP):
                    raise
                self._refused.add(sc.BPF_MAP_LOOKUP_AND_DELETE_ELEM)  # e.g. arrays of maps, LPM tries
        found = sc.map_lookup(self.fd, key, value, what=self._what())
        if found and delete:
            sc.map_delete(self.fd, key, what=self._what())
        return found

    def update(self, keys: Any, values: Any, flags: int = sc.BPF_ANY) -> int:
        """Insert/replace many elements with one BPF_MAP_UPDATE_BATCH; returns how many.
        ``values`` may be one value for all keys; per-CPU maps take ``(n,)`` or ``(n, ncpus)``.
        A full map raises MapFullError saying how many went in."""
        flags = _elem_flags(flags)
        if self.key_dtype is None or self.value_dtype is None:
            raise self._unsupported("batch update")
        k = self._keys_array(keys)
        v = self._values_array(values, len(k))
        if self._batch(sc.BPF_MAP_UPDATE_BATCH):
            done = _batch.update_batch(self.fd, k, v, flags, self.max_entries, self._what(),
                                       indexed=self.type in ARRAY_TYPES, map_type=self.type)
            if done is not None:
                return done
            self._refused.add(sc.BPF_MAP_UPDATE_BATCH)
        for i in range(len(k)):
            try:
                sc.map_update(self.fd, k[i:i + 1], v[i:i + 1], flags, what=self._what())
            except BpfError as e:
                raise _batch.update_error(e.errno, self._what(), self.max_entries, i, len(k), k[i], flags,
                                          indexed=self.type in ARRAY_TYPES, map_type=self.type) from None
        return len(k)

    def delete(self, keys: Any, *, missing_ok: bool = False) -> int:
        """Delete many keys with one BPF_MAP_DELETE_BATCH; returns how many were deleted.
        A missing key raises MapKeyError unless ``missing_ok``."""
        if self.type in ARRAY_TYPES and self.type not in FD_ARRAY_TYPES:
            raise self._unsupported("deleting elements", "array elements always exist; use clear() to zero them")
        if self.key_dtype is None:
            raise self._unsupported("delete")
        k = self._keys_array(keys)
        if self._batch(sc.BPF_MAP_DELETE_BATCH):
            done = _batch.delete_batch(self.fd, k, missing_ok, self._what(), map_type=self.type)
            if done is not None:
                return done
            self._refused.add(sc.BPF_MAP_DELETE_BATCH)
        n = 0
        for i in range(len(k)):
            if sc.map_delete(self.fd, k[i:i + 1], what=self._what()):
                n += 1
            elif not missing_ok:
                raise MapKeyError(f"key {scalar(k[i])!r} not in {self._what()} ({n} keys before it were deleted)",
                                  _errno.ENOENT)
        return n

    def clear(self) -> None:
        """Remove every element (arrays: set every value to zero; arrays of fds: empty every slot)."""
        if self.type in FD_ARRAY_TYPES:
            # writing 0 into a slot means "fd 0" (EINVAL); emptying a slot is a delete
            assert self.key_dtype is not None
            self.delete(np.arange(self.max_entries, dtype=self.key_dtype), missing_ok=True)
            return
        if self.type in ARRAY_TYPES:
            if self.key_dtype is None or self.value_dtype is None:
                raise self._unsupported("clear")
            n = self.max_entries
            zeros = np.zeros(n, dtype=self.value_dtype) if not self.percpu else \
                np.zeros((n, self.ncpus), dtype=self.value_dtype)
            self.update(np.arange(n, dtype=self.key_dtype), zeros)
            return
        self.pop_all()

    # -- per-CPU reductions ---------------------------------------------------
    def _reduce(self, fn: Callable[..., Any]) -> tuple[np.ndarray, np.ndarray]:
        keys, values = self.to_numpy()
        if not self.percpu:
            return keys, values
        return keys, reduce_cpus(values, fn)

    def sum(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, values summed over CPUs)``; struct values are reduced field by field."""
        return self._reduce(np.sum)

    def min(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, minimum over CPUs)``."""
        return self._reduce(np.min)

    def max(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, maximum over CPUs)``."""
        return self._reduce(np.max)

    def to_dataframe(self, percpu: str = "sum") -> Any:
        """A pandas DataFrame, one row per element, struct fields as columns (needs pandas).
        Per-CPU maps are reduced with ``percpu`` ("sum", "min", "max") or kept ("cpus")."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from None
        keys, values = self.to_numpy()
        if self.percpu and percpu != "cpus":
            reducers: dict[str, Callable[..., Any]] = {"sum": np.sum, "min": np.min, "max": np.max}
            values = reduce_cpus(values, reducers[percpu])
        cols: dict[str, Any] = {}
        columns(keys, "key", cols)
        columns(values, "value", cols)
        return pd.DataFrame(cols)

    # -- columnar and notebook views (maps/frames.py) -------------------------------------------
    def to_pandas(self, percpu: str = "sum") -> Any:
        """Every element as a pandas DataFrame: key and value columns (struct fields by name,
        ``char[]`` as text); per-CPU values reduced by ``percpu`` ("sum", "min", "max") or one row
        per key and CPU ("cpu"). Needs pandas.

        Example::

            obj.maps.counts.to_pandas().sort_values("value").tail()
        """
        return columnar.to_pandas(_frames.columns(self, percpu))

    def to_arrow(self, percpu: str = "sum") -> Any:
        """Every element as a ``pyarrow.Table`` (columns as :meth:`to_pandas`). Needs pyarrow.

        Example::

            obj.maps.counts.to_arrow().column("value")
        """
        return columnar.to_arrow(_frames.columns(self, percpu))

    def to_polars(self, percpu: str = "sum") -> Any:
        """Every element as a polars DataFrame (columns as :meth:`to_pandas`). Needs polars.

        Example::

            obj.maps.counts.to_polars().sort("value")
        """
        return columnar.to_polars(_frames.columns(self, percpu))

    def _repr_html_(self) -> str:
        return _frames.html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else _frames.text(self))
