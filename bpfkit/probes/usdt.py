"""USDT probes for programs written against libbpf's unchanged ``<bpf/usdt.bpf.h>``.

For every site of ``provider:name`` in the binary (``.note.stapsdt``), bpfkit writes libbpf's
``struct __bpf_usdt_spec`` (where each argument lives) into the object's ``__bpf_usdt_specs`` map
and attaches a uprobe there whose BPF cookie is the spec id, which is how ``BPF_USDT()`` /
``bpf_usdt_arg()`` find their arguments. Semaphore-guarded probes get their semaphore raised
by the kernel (the uprobe's ``ref_ctr_offset``) for as long as the link exists. On kernels
without ``bpf_get_attach_cookie`` the spec id is found by instruction pointer instead
(``__bpf_usdt_ip_to_spec_id``), which needs absolute addresses: a pid for PIE binaries and
shared libraries.

Example::

    // C: SEC("usdt") int BPF_USDT(on_tick, int i, long v) { ... }
    with obj.progs.on_tick.attach_usdt("./app", "myapp", "tick", pid=1234):
        ...
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Optional, Protocol

import numpy as np

from .. import features
from .. import _sys as sc
from ..errors import AttachError, BpfNotFoundError
from .link import Link, group_links
from .uprobe import attach_uprobe_offset
from ..binaries import UsdtNote, load_address, mapped_files, read_usdt_notes, resolve_library
from .usdt_spec import USDT_SPEC_SIZE, encode_usdt_spec

__all__ = ["SPECS_MAP", "IP_MAP", "MapLike", "find_usdt", "attach_usdt"]

SPECS_MAP = "__bpf_usdt_specs"
IP_MAP = "__bpf_usdt_ip_to_spec_id"


class MapLike(Protocol):
    """What attaching needs of a map: its fd and size (a :class:`bpfkit.maps.Map` fits)."""

    @property
    def fd(self) -> int: ...

    max_entries: int


class _SpecIds:
    """Free spec ids of one ``__bpf_usdt_specs`` map (an array: ids are slots)."""

    def __init__(self, size: int) -> None:
        self.free = list(range(size - 1, -1, -1))


_allocators: "weakref.WeakKeyDictionary[Any, _SpecIds]" = weakref.WeakKeyDictionary()
_alloc_lock = threading.Lock()


def _allocator(specs: MapLike) -> _SpecIds:
    with _alloc_lock:
        alloc = _allocators.get(specs)
        if alloc is None:
            alloc = _allocators[specs] = _SpecIds(specs.max_entries)
        return alloc


def find_usdt(binary: Optional[str], provider: str, name: str, pid: int = -1) -> list[UsdtNote]:
    """Sites of USDT probe ``provider:name`` in ``binary`` (path, $PATH name or library short
    name), or in every file mapped by ``pid`` when ``binary`` is None.

    Example::

        [n.offset for n in find_usdt("/usr/bin/python3", "python", "function__entry")]
    """
    if binary is None:
        if pid < 0:
            raise AttachError("attach_usdt needs a binary, a pid, or both")
        paths = mapped_files(pid)
    else:
        paths = [resolve_library(binary)]
    notes = [n for p in paths for n in read_usdt_notes(p, provider, name)]
    if not notes:
        where = paths[0] if binary is not None else f"process {pid} ({len(paths)} mapped files)"
        have = sorted({f"{n.provider}:{n.name}" for p in paths for n in read_usdt_notes(p)})
        hint = f"; it has: {', '.join(have[:20])}" if have else "; it has no USDT probes (no .note.stapsdt)"
        raise BpfNotFoundError(f"USDT probe {provider}:{name} not found in {where}{hint}")
    return notes


def attach_usdt(prog_fd: int, specs_map: Optional[MapLike], ip_map: Optional[MapLike],
                binary: Optional[str], provider: str, name: str, *, pid: int = -1, cookie: int = 0) -> Link:
    """Attach a ``SEC("usdt")`` program to every site of ``provider:name``; returns one link.

    ``specs_map``/``ip_map`` are the program's object's ``__bpf_usdt_specs`` and
    ``__bpf_usdt_ip_to_spec_id`` maps; ``cookie`` is what ``bpf_usdt_cookie()`` returns.

    Example::

        # ip map None: kernels with bpf_get_attach_cookie (5.15+) do not need it
        link = attach_usdt(prog.fd, obj.maps["__bpf_usdt_specs"], None, "./app", "myapp", "tick", cookie=7)
    """
    pid = sc.check_pid(pid)
    cookie = sc.check_u64("cookie", cookie)
    what = f"usdt {binary or f'pid {pid}'}:{provider}:{name}" + (f" pid {pid}" if pid >= 0 and binary else "")
    if specs_map is None:
        raise AttachError(f"{what}: the program's object has no {SPECS_MAP} map; write the program with "
                          "#include <bpf/usdt.bpf.h> and BPF_USDT()")
    notes = find_usdt(binary, provider, name, pid)
    use_ip = not features.check("bpf_cookie")[0]
    if use_ip and ip_map is None:
        raise AttachError(f"{what}: this kernel lacks bpf_get_attach_cookie and the object has no {IP_MAP} map")

    alloc = _allocator(specs_map)
    taken: list[int] = []
    ips: list[int] = []

    def release() -> None:
        for ip in ips:
            if ip_map is not None:
                sc.map_delete(ip_map.fd, np.array([ip], dtype=np.int64))
        with _alloc_lock:
            alloc.free.extend(taken)
        taken.clear()

    def spec_id(encoded: bytes, by_spec: dict[bytes, int]) -> int:
        if encoded in by_spec:
            return by_spec[encoded]
        with _alloc_lock:
            if not alloc.free:
                raise AttachError(f"{what}: all {specs_map.max_entries} USDT spec slots are in use; raise "
                                  "BPF_USDT_MAX_SPEC_CNT in the BPF program")
            sid = alloc.free.pop()
        taken.append(sid)
        value = np.frombuffer(encoded, dtype=np.uint8).copy()
        sc.map_update(specs_map.fd, np.array([sid], dtype=np.int32), value, what=f"map {SPECS_MAP}")
        by_spec[encoded] = sid
        return sid

    by_spec: dict[bytes, int] = {}
    sites: list[tuple[UsdtNote, int]] = []
    try:
        for note in notes:
            encoded = encode_usdt_spec(note.arg_specs, cookie)
            assert len(encoded) == USDT_SPEC_SIZE
            sid = spec_id(encoded, by_spec)
            sites.append((note, sid))
            if use_ip:
                ip = _site_ip(note, pid, what)
                assert ip_map is not None
                sc.map_update(ip_map.fd, np.array([ip], dtype=np.int64), np.array([sid], dtype=np.uint32),
                              what=f"map {IP_MAP}")
                ips.append(ip)
    except BaseException:
        release()
        raise

    def attach_site(site: tuple[UsdtNote, int]) -> Link:
        note, sid = site
        return attach_uprobe_offset(prog_fd, note.path, note.offset, pid=pid, ref_ctr_offset=note.semaphore_offset,
                                    cookie=sid, what=f"usdt {note.path}:{provider}:{name}@{note.offset:#x}")

    return group_links(attach_site, sites, what + (f" ({len(sites)} sites)" if len(sites) > 1 else ""),
                       on_close=release)


def _site_ip(note: UsdtNote, pid: int, what: str) -> int:
    from elftools.elf.elffile import ELFFile

    with open(note.path, "rb") as f:
        exec_type = ELFFile(f)["e_type"] == "ET_EXEC"
    if exec_type:
        return note.address
    if pid < 0:
        raise AttachError(f"{what}: this kernel lacks bpf_get_attach_cookie, so a USDT probe in a PIE binary or "
                          "shared library needs pid= to know its run-time address")
    ip = load_address(pid, note.path, note.offset)
    if ip is None:
        raise AttachError(f"{what}: {note.path} is not mapped by process {pid}")
    return ip
