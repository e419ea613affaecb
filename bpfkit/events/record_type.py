"""Finding the record type of an event buffer declared without one (a plain libbpf ring buffer).

libbpf refuses BTF value types on ring buffers, so the map itself never says what its records are;
``BPFKIT_RINGBUF`` names the type in a variable (``__bpfkit_record__<map>``). A program written
the plain libbpf way has the type in its BTF only if it *uses* it somewhere BTF records: a global
variable (libbpf-bootstrap's and bpf2go's ``const struct event *unused __attribute__((unused));``),
a map's key or value type, or a parameter of a static function. Local variables are not in BTF.

The reader knows the records' size from their headers; a named struct or union of exactly that
size, reached from one of those places, is the record type -- when exactly one fits (or one whose
name goes with the map's: ``events`` -> ``event``). Types reached only from a program's own
parameters (the tracepoint or kprobe context) are kernel types and never chosen.

Example::

    found = find_record_type(obj.btf, 32, "events")   # ("struct event", dtype) or None
"""
from __future__ import annotations

from typing import Container, Optional, Union

import numpy as np

from ..btf import Btf, Kind

__all__ = ["find_record_type", "named_types"]

_THROUGH = (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.ARRAY, Kind.TYPE_TAG)
_BTF_FUNC_STATIC = 0


def named_types(btf: Btf) -> list[int]:
    """Ids of the named structs/unions (and typedefs of them) the program names itself: reached
    from a global variable (map definitions included: their key and value types) or from the
    parameters of a static function, through pointers, arrays, typedefs and qualifiers."""
    roots: list[int] = []
    for t in btf:
        if t.kind == Kind.VAR:
            roots.append(t.type_id)
        elif t.kind == Kind.FUNC and t.linkage == _BTF_FUNC_STATIC:
            proto = btf[t.type_id]
            roots.extend(tid for _name, tid in proto.params)
    seen: set[int] = set()
    found: list[int] = []
    stack = list(roots)
    while stack:
        tid = stack.pop()
        if tid in seen or tid <= 0 or tid >= len(btf.types):
            continue
        seen.add(tid)
        t = btf[tid]
        if t.kind in _THROUGH:
            if t.kind == Kind.TYPEDEF and t.name and btf.resolve(tid).kind in (Kind.STRUCT, Kind.UNION):
                found.append(tid)
            stack.append(t.type_id)
        elif t.kind in (Kind.STRUCT, Kind.UNION):
            if t.name:
                found.append(tid)
            elif t.members and all(m.name in ("type", "key", "value", "max_entries", "map_flags", "key_size",
                                                "value_size", "pinning", "map_extra", "numa_node",
                                                "inner_map", "values") for m in t.members):
                # a BTF map definition: its key/value types are the program's, its own is not
                stack.extend(m.type_id for m in t.members)
    return found


def find_record_type(btf: Btf, size: Union[int, Container[int]], map_name: str) -> Optional[tuple[str, np.dtype]]:
    """(C spelling, numpy dtype) of the one type of ``size`` bytes (or of one of the sizes
    ``size`` holds) that :func:`named_types` finds, preferring a name that goes with
    ``map_name``; None when there is none or the choice is not clear.

    Example::

        find_record_type(obj.btf, 32, "rb")   # ('struct event', dtype([('pid', '<u4'), ...]))
    """
    sizes: Container[int] = (size,) if isinstance(size, int) else size
    cands: dict[str, int] = {}
    for tid in named_types(btf):
        t = btf[tid]
        real = btf.resolve(tid)
        if real.size not in sizes:
            continue
        spelled = t.name if t.kind == Kind.TYPEDEF else btf.type_name(tid)
        if real.id in cands.values() and t.kind == Kind.TYPEDEF:
            continue  # the struct itself is there already
        cands[spelled] = real.id
    if not cands:
        return None
    if len(set(cands.values())) > 1:
        base = map_name.lower()
        stems = {base, base.rstrip("s"), base + "_event", base.rstrip("s") + "_event", "event"}
        liked = {k: v for k, v in cands.items() if k.split()[-1].lower() in stems}
        if len(set(liked.values())) != 1:
            return None
        cands = liked
    name, tid = next(iter(cands.items()))
    return name, btf.dtype(tid)
