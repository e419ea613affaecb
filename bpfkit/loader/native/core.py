"""CO-RE: relocating an object's field offsets, sizes, type and enum facts to the kernel it loads on.

For each ``bpf_core_relo`` clang recorded, the local access (``0:1:2`` over the object's BTF) is
turned into a spec, matched against every candidate type of the same essential name (ignoring
``___flavor`` suffixes) in the target BTF (vmlinux, else kernel modules), and the instruction's
immediate or offset is rewritten. A relocation that finds no match poisons its instruction the
way libbpf does (``call 0xbad2310``): harmless in dead code, named by the loader if the verifier
reaches it. The rules follow libbpf's ``relo_core.c``; the reading of them is ours.

Example::

    res = resolve(local_btf, relo, targets)          # targets: [(name, BtfIndex), ...]
    res.poison, res.new_val, res.describe()          # (False, 8, 'task_struct->__state ...')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ...btf.index import (KIND_ARRAY, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_FUNC_PROTO, KIND_FWD, KIND_INT,
                          KIND_NAMES, KIND_PTR, KIND_STRUCT, KIND_UNION, BtfIndex, essential_name)
from ...errors import LoadError
from .btfext import CoreRelo

__all__ = ["CORE_KINDS", "Spec", "Result", "CoreError", "parse_spec", "resolve", "calc", "Candidates",
           "FIELD_BYTE_OFFSET", "TYPE_ID_LOCAL", "POISON_IMM", "access_string"]

(FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_EXISTS, FIELD_SIGNED, FIELD_LSHIFT_U64, FIELD_RSHIFT_U64, TYPE_ID_LOCAL,
 TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE, ENUMVAL_EXISTS, ENUMVAL_VALUE, TYPE_MATCHES) = range(13)
CORE_KINDS = ("byte_off", "byte_sz", "field_exists", "signed", "lshift_u64", "rshift_u64", "local_type_id",
              "target_type_id", "type_exists", "type_size", "enumval_exists", "enumval_value", "type_matches")
_FIELD = frozenset(range(FIELD_BYTE_OFFSET, FIELD_RSHIFT_U64 + 1))
_TYPE = frozenset((TYPE_ID_LOCAL, TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES))
_ENUMVAL = frozenset((ENUMVAL_EXISTS, ENUMVAL_VALUE))
_COMPOSITE = (KIND_STRUCT, KIND_UNION)
_ENUMS = (KIND_ENUM, KIND_ENUM64)
MAX_SPEC_LEN = 64
POISON_IMM = 195896080  # 0xbad2310, "bad relo": the helper id a failed relocation's instruction calls


class CoreError(LoadError):
    """A CO-RE relocation that cannot be applied at all (malformed, ambiguous, or the instruction does
    not fit it) — as opposed to one that merely finds nothing and poisons its instruction."""


@dataclass
class Acc:
    """One high-level accessor: a named member, or an array index (``name`` None)."""

    type_id: int
    idx: int
    name: Optional[str] = None


@dataclass
class Spec:
    """A parsed access: high-level accessors, the raw index list, and the bit offset it reaches."""

    btf: BtfIndex
    root: int
    kind: int
    accs: list[Acc] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    bit_offset: int = 0

    def copy(self) -> "Spec":
        return Spec(self.btf, self.root, self.kind, [Acc(a.type_id, a.idx, a.name) for a in self.accs],
                    list(self.raw), self.bit_offset)


@dataclass
class Result:
    """The outcome for one relocation: values before/after, or ``poison``."""

    orig_val: int = 0
    new_val: int = 0
    poison: bool = False
    validate: bool = True
    orig_sz: int = 0
    new_sz: int = 0
    orig_type_id: int = 0
    new_type_id: int = 0
    fail_memsz_adjust: bool = False
    local: Optional[Spec] = None
    target: Optional[Spec] = None
    target_btf: str = ""
    candidates: int = 0
    reason: str = ""

    def describe(self) -> str:
        """``task_struct->__state`` for fields, the type or enumerator otherwise."""
        return access_string(self.local) if self.local is not None else "?"


def _is_flex(btf: BtfIndex, acc: Optional[Acc], nelems: int) -> bool:
    if acc is None or acc.name is None or nelems > 0:
        return False
    return acc.idx == btf.info(acc.type_id)[1] - 1


def parse_spec(btf: BtfIndex, relo: CoreRelo) -> Spec:
    """The local spec of ``relo`` (libbpf's bpf_core_parse_spec); CoreError if malformed."""
    bad = CoreError
    s = relo.access
    if not s or s[0] == ":":
        raise bad(f"empty or malformed access string {s!r}")
    spec = Spec(btf, relo.type_id, relo.kind)
    if relo.kind in _TYPE:
        if s != "0":
            raise bad(f"type relocation with access string {s!r} (must be '0')")
        return spec
    parts = s.split(":")
    if not all(p.isdigit() and p.isascii() for p in parts):
        raise bad(f"malformed access string {s!r}")
    spec.raw = [int(x) for x in parts]
    if len(spec.raw) > MAX_SPEC_LEN:
        raise bad(f"access string {s!r} is too deep")
    tid = btf.skip_mods(relo.type_id)
    idx = spec.raw[0]
    spec.accs.append(Acc(tid, idx))
    if relo.kind in _ENUMVAL:
        if btf.kind(tid) not in _ENUMS or len(spec.raw) > 1 or idx >= btf.info(tid)[1]:
            raise bad(f"enum value relocation {s!r} against {btf.kind_name(tid)} [{tid}]")
        spec.accs[0].name = btf.str_at(btf.enum_values(tid)[idx][0])
        return spec
    if relo.kind not in _FIELD:
        raise bad(f"unknown relocation kind {relo.kind}")
    spec.bit_offset = idx * btf.resolve_size(tid) * 8
    for i in range(1, len(spec.raw)):
        tid = btf.skip_mods(tid)
        idx = spec.raw[i]
        kind = btf.kind(tid)
        if kind in _COMPOSITE:
            _, vlen, _, _, _ = btf.info(tid)
            if idx >= vlen:
                raise bad(f"access {s!r}: member #{idx} of {btf.kind_name(tid)} [{tid}] does not exist")
            c = btf.composite(tid)
            spec.bit_offset += c.bit_offs[idx]
            if c.names[idx]:
                spec.accs.append(Acc(tid, idx, c.names[idx]))
            tid = c.types[idx]
        elif kind == KIND_ARRAY:
            elem, _, nelems = btf.array(tid)
            elem = btf.skip_mods(elem)
            if not _is_flex(btf, spec.accs[-1] if spec.accs else None, nelems) and idx >= nelems:
                raise bad(f"access {s!r}: index {idx} is past the array's {nelems} elements")
            spec.accs.append(Acc(elem, idx))
            spec.bit_offset += idx * btf.resolve_size(elem) * 8
            tid = elem
        else:
            raise bad(f"access {s!r} reaches type [{tid}] of unexpected kind {btf.kind_name(tid)}")
    return spec


# -- compatibility rules ---------------------------------------------------------------------

def _kind_compat(k1: int, k2: int) -> bool:
    return k1 == k2 or (k1 in _ENUMS and k2 in _ENUMS)


def types_are_compat(lb: BtfIndex, lid: int, tb: BtfIndex, tid: int, level: int = 32) -> bool:
    """libbpf's bpf_core_types_are_compat: same kinds all the way (names only at the root)."""
    if not _kind_compat(lb.kind(lid), tb.kind(tid)):
        return False
    for _ in range(32):
        lid, tid = lb.skip_mods(lid), tb.skip_mods(tid)
        lk, tk = lb.kind(lid), tb.kind(tid)
        if not _kind_compat(lk, tk):
            return False
        if lk in (0, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD, KIND_ENUM64):
            return True
        if lk == KIND_INT:
            return lb.int_info(lid)[1] == 0 and tb.int_info(tid)[1] == 0
        if lk == KIND_PTR:
            lid, tid = lb.ref(lid), tb.ref(tid)
        elif lk == KIND_ARRAY:
            lid, tid = lb.array(lid)[0], tb.array(tid)[0]
        elif lk == KIND_FUNC_PROTO:
            lp, tp = lb.params(lid), tb.params(tid)
            if len(lp) != len(tp):
                return False
            for (_, a), (_, b) in zip(lp, tp):
                if level <= 0:
                    raise CoreError("function prototypes nest too deeply")
                if not types_are_compat(lb, lb.skip_mods(a), tb, tb.skip_mods(b), level - 1):
                    return False
            lid, tid = lb.ref(lid), tb.ref(tid)
        else:
            return False
    raise CoreError("type chain too deep to compare")


def _names_match(lb: BtfIndex, loff: int, tb: BtfIndex, toff: int) -> bool:
    ln, tn = lb.str_at(loff), tb.str_at(toff)
    if not tn:
        return not ln
    return essential_name(ln) == essential_name(tn)


def types_match(lb: BtfIndex, lid: int, tb: BtfIndex, tid: int, behind_ptr: bool = False,
                level: int = 32) -> bool:
    """libbpf's bpf_core_types_match (the stricter ``bpf_core_type_matches()`` relation)."""
    if level <= 0:
        raise CoreError("types nest too deeply to match")
    for _ in range(32):
        lid, tid = lb.skip_mods(lid), tb.skip_mods(tid)
        lk, _lv, lflag, lname, lsize = lb.info(lid)
        tk, _tv, tflag, tname, tsize = tb.info(tid)
        if not _names_match(lb, lname, tb, tname):
            return False
        if lk == 0:
            return tk == 0
        if lk == KIND_FWD:
            if behind_ptr and lk != tk:
                return (tk == KIND_STRUCT and not lflag) or (tk == KIND_UNION and lflag)
            return lk == tk and lflag == tflag
        if lk in _ENUMS:
            if tk not in _ENUMS or lsize != tsize:
                return False
            tvals = tb.enum_values(tid)
            lvals = lb.enum_values(lid)
            if len(lvals) > len(tvals):
                return False
            return all(any(_names_match(lb, ln_, tb, tn_) for tn_, _ in tvals) for ln_, _ in lvals)
        if lk in _COMPOSITE:
            if behind_ptr:
                return lk == tk or (tk == KIND_FWD and (lk == KIND_UNION) == tflag)
            if lk != tk:
                return False
            lms, tms = lb.members(lid), tb.members(tid)
            if len(lms) > len(tms):
                return False
            for lmn, lmt, _ in lms:
                if not any(_names_match(lb, lmn, tb, tmn) and types_match(lb, lmt, tb, tmt, behind_ptr, level - 1)
                           for tmn, tmt, _ in tms):
                    return False
            return True
        if lk == KIND_INT:
            return lk == tk and lsize == tsize and (lb.int_info(lid)[0] & 1) == (tb.int_info(tid)[0] & 1)
        if lk == KIND_PTR:
            if lk != tk:
                return False
            behind_ptr = True
            lid, tid = lb.ref(lid), tb.ref(tid)
        elif lk == KIND_ARRAY:
            if lk != tk:
                return False
            la, ta = lb.array(lid), tb.array(tid)
            if la[2] != ta[2]:
                return False
            lid, tid = la[0], ta[0]
        elif lk == KIND_FUNC_PROTO:
            if lk != tk:
                return False
            lp, tp = lb.params(lid), tb.params(tid)
            if len(lp) != len(tp):
                return False
            if not all(types_match(lb, a, tb, b, behind_ptr, level - 1) for (_, a), (_, b) in zip(lp, tp)):
                return False
            lid, tid = lb.ref(lid), tb.ref(tid)
        else:
            return False
    raise CoreError("type chain too deep to match")


def _fields_compat(lb: BtfIndex, lid: int, tb: BtfIndex, tid: int) -> bool:
    for _ in range(32):
        lid, tid = lb.skip_mods(lid), tb.skip_mods(tid)
        lk, tk = lb.kind(lid), tb.kind(tid)
        if lk in _COMPOSITE and tk in _COMPOSITE:
            return True
        if not _kind_compat(lk, tk):
            return False
        if lk in (KIND_PTR, KIND_FLOAT):
            return True
        if lk in (KIND_FWD, KIND_ENUM, KIND_ENUM64):
            ln, tn = essential_name(lb.name(lid)), essential_name(tb.name(tid))
            return not ln or not tn or ln == tn
        if lk == KIND_INT:
            return lb.int_info(lid)[1] == 0 and tb.int_info(tid)[1] == 0
        if lk == KIND_ARRAY:
            lid, tid = lb.array(lid)[0], tb.array(tid)[0]
            continue
        return False
    raise CoreError("type chain too deep to compare fields")


def _match_member(lb: BtfIndex, lacc: Acc, tb: BtfIndex, tid: int, spec: Spec) -> tuple[int, int]:
    """Find local member ``lacc`` in target composite ``tid`` (searching anonymous members too).
    Returns (1 found | 0 not, next target type id); extends ``spec`` on success.

    libbpf walks the members in order, descending into anonymous ones; the same result comes from
    trying the anonymous members before the first member of that name, then that member."""
    tid = tb.skip_mods(tid)
    if tb.kind(tid) not in _COMPOSITE:
        return 0, 0
    lc = lb.composite(lacc.type_id)
    lname, ltype = lc.names[lacc.idx], lc.types[lacc.idx]
    tc = tb.composite(tid)
    named = tc.first.get(lname, len(tc.types))
    if len(spec.raw) >= MAX_SPEC_LEN:
        raise CoreError("struct/union/array nesting too deep")
    for i in tc.anonymous:
        if i > named:
            break
        spec.bit_offset += tc.bit_offs[i]
        spec.raw.append(i)
        found, nxt = _match_member(lb, lacc, tb, tc.types[i], spec)
        if found:
            return found, nxt
        spec.bit_offset -= tc.bit_offs[i]
        spec.raw.pop()
    if named == len(tc.types):
        return 0, 0
    spec.bit_offset += tc.bit_offs[named]
    spec.raw.append(named)
    spec.accs.append(Acc(tid, named, lname))
    if _fields_compat(lb, ltype, tb, tc.types[named]):
        return 1, tc.types[named]
    spec.accs.pop()
    return 0, 0


def spec_match(local: Spec, tb: BtfIndex, tid: int) -> Optional[Spec]:
    """The target spec for candidate ``tid``, or None if it does not match."""
    targ = Spec(tb, tid, local.kind)
    if local.kind in _TYPE:
        ok = (types_match(local.btf, local.root, tb, tid) if local.kind == TYPE_MATCHES
              else types_are_compat(local.btf, local.root, tb, tid))
        return targ if ok else None
    lb = local.btf
    if local.kind in _ENUMVAL:
        t = tb.skip_mods(tid)
        if tb.kind(t) not in _ENUMS:
            return None
        want = essential_name(local.accs[0].name or "")
        for i, (n_off, _) in enumerate(tb.enum_values(t)):
            name = tb.str_at(n_off)
            if essential_name(name) == want:
                targ.accs.append(Acc(t, i, name))
                targ.raw.append(i)
                return targ
        return None
    for i, lacc in enumerate(local.accs):
        tid = tb.skip_mods(tid)
        if lacc.name is not None:
            found, tid = _match_member(lb, lacc, tb, tid, targ)
            if not found:
                return None
        else:
            if i > 0:
                if tb.kind(tid) != KIND_ARRAY:
                    return None
                elem, _, nelems = tb.array(tid)
                if not _is_flex(tb, targ.accs[-1] if targ.accs else None, nelems) and lacc.idx >= nelems:
                    return None
                tid = tb.skip_mods(elem)
            if len(targ.raw) >= MAX_SPEC_LEN:
                raise CoreError("struct/union/array nesting too deep")
            targ.accs.append(Acc(tid, lacc.idx))
            targ.raw.append(lacc.idx)
            targ.bit_offset += lacc.idx * tb.resolve_size(tid) * 8
    return targ


# -- values ------------------------------------------------------------------------------------

def _field_value(kind: int, spec: Optional[Spec], validate: bool) -> tuple[int, int, int, bool]:
    """(value, field size, field type id, validate) of a field relocation against ``spec``.
    Raises _Poison when the field is missing."""
    if kind == FIELD_EXISTS:
        return (1 if spec is not None else 0), 0, 0, validate
    if spec is None:
        raise _Poison()
    btf = spec.btf
    acc = spec.accs[-1]
    if acc.name is None:
        if kind == FIELD_BYTE_OFFSET:
            return spec.bit_offset // 8, btf.resolve_size(acc.type_id), acc.type_id, True
        if kind == FIELD_BYTE_SIZE:
            return btf.resolve_size(acc.type_id), 0, 0, True
        raise CoreError(f"relocation {CORE_KINDS[kind]} can't be applied to an array element")
    c = btf.composite(acc.type_id)
    ftype = btf.skip_mods(c.types[acc.idx])
    bit_off = spec.bit_offset
    bit_sz = c.bit_sizes[acc.idx]
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = btf.size(ftype)
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise CoreError("bitfield can't be read with a 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = btf.resolve_size(ftype)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    validate = not bitfield
    if kind == FIELD_BYTE_OFFSET:
        return byte_off, (0 if bitfield else byte_sz), (0 if bitfield else ftype), validate
    if kind == FIELD_BYTE_SIZE:
        return byte_sz, 0, 0, validate
    if kind == FIELD_SIGNED:
        fk, _, fflag, _, _ = btf.info(ftype)
        signed = (fk in _ENUMS and fflag) or (fk == KIND_INT and bool(btf.int_info(ftype)[0] & 1))
        return int(signed), 0, 0, True
    if kind == FIELD_LSHIFT_U64:
        return 64 - (bit_off + bit_sz - byte_off * 8), 0, 0, validate
    if kind == FIELD_RSHIFT_U64:
        return 64 - bit_sz, 0, 0, True
    raise CoreError(f"unknown field relocation {kind}")


class _Poison(Exception):
    pass


def calc(relo: CoreRelo, local: Spec, targ: Optional[Spec]) -> Result:
    """Original and new values of ``relo`` for one target spec (None: nothing matched)."""
    res = Result(local=local, target=targ)
    kind = relo.kind
    try:
        if kind in _FIELD:
            res.orig_val, res.orig_sz, res.orig_type_id, res.validate = _field_value(kind, local, True)
            res.new_val, res.new_sz, res.new_type_id, _ = _field_value(kind, targ, True)
            if res.orig_sz != res.new_sz:
                lb, tb = local.btf, targ.btf if targ is not None else local.btf
                lk, tk = lb.kind(res.orig_type_id), tb.kind(res.new_type_id)
                both_ptr = lk == KIND_PTR and tk == KIND_PTR
                both_uint = (lk == KIND_INT and tk == KIND_INT and lb.int_info(res.orig_type_id)[0] != 1
                             and tb.int_info(res.new_type_id)[0] != 1)
                res.fail_memsz_adjust = not (both_ptr or both_uint)
        elif kind in _TYPE:
            res.validate = kind != TYPE_ID_TARGET
            res.orig_val = _type_value(kind, local)
            res.new_val = _type_value(kind, targ)
        elif kind in _ENUMVAL:
            res.orig_val = _enum_value(kind, local)
            res.new_val = _enum_value(kind, targ)
        else:
            raise CoreError(f"unrecognized CO-RE relocation kind {kind}")
    except _Poison:
        res.poison = True
    return res


def _type_value(kind: int, spec: Optional[Spec]) -> int:
    if spec is None:
        return 0
    if kind == TYPE_ID_TARGET:
        return spec.root
    if kind in (TYPE_EXISTS, TYPE_MATCHES):
        return 1
    if kind == TYPE_SIZE:
        return spec.btf.resolve_size(spec.root)
    raise CoreError(f"unexpected type relocation {kind}")


def _enum_value(kind: int, spec: Optional[Spec]) -> int:
    if kind == ENUMVAL_EXISTS:
        return 1 if spec is not None else 0
    if spec is None:
        raise _Poison()
    acc = spec.accs[0]
    btf = spec.btf
    _, value = btf.enum_values(acc.type_id)[acc.idx]
    if btf.kind(acc.type_id) == KIND_ENUM:
        value = ((value & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000  # enum values are s32 whatever the flag says
    return value & 0xFFFFFFFFFFFFFFFF


Candidates = list[tuple[str, BtfIndex, int]]  # (BTF name, its index, type id)


def resolve(local: Spec, relo: CoreRelo, cands: Candidates) -> Result:
    """Match ``local`` against every candidate; all matches must agree (libbpf's rule). Prunes
    ``cands`` in place to the matching ones, as libbpf's candidate cache does."""
    if relo.kind == TYPE_ID_LOCAL:
        return Result(orig_val=local.root, new_val=local.root, validate=False, local=local)
    best: Optional[Result] = None
    kept: Candidates = []
    for name, btf, tid in cands:
        targ = spec_match(local, btf, tid)
        if targ is None:
            continue
        res = calc(relo, local, targ)
        res.target_btf = name
        if best is None:
            best = res
        elif targ.bit_offset != (best.target.bit_offset if best.target else 0):
            raise CoreError(f"field offset ambiguity: {targ.bit_offset} != "
                            f"{best.target.bit_offset if best.target else 0} between candidates")
        elif res.poison != best.poison or res.new_val != best.new_val:
            raise CoreError(f"relocation decision ambiguity between candidates: {res.new_val} != {best.new_val}")
        kept.append((name, btf, tid))
    if kept:
        cands[:] = kept
    if best is None:
        best = calc(relo, local, None)
        best.reason = _why_not(local, cands)
    best.candidates = len(kept)
    return best


def _why_not(local: Spec, cands: Candidates) -> str:
    lb = local.btf
    root = f"{lb.kind_name(lb.skip_mods(local.root))} {lb.name(local.root) or '<anon>'}"
    if not cands:
        return f"the kernel has no {root}"
    if local.kind in _FIELD:
        missing = next((a.name for a in local.accs[1:] if a.name is not None), None)
        return f"{root} has no compatible field {missing!r}" if missing else f"{root} differs"
    if local.kind in _ENUMVAL:
        return f"{root} has no enumerator {local.accs[0].name!r}"
    return f"{root} does not match the kernel's"


def access_string(spec: Spec) -> str:
    """C-like spelling of a spec: ``task_struct->__state``, ``struct sk_buff``, ``enum x::Y``."""
    btf = spec.btf
    root = btf.skip_mods(spec.root) if spec.root < btf.count else spec.root
    tname = btf.name(spec.root) or btf.name(root) or "<anon>"
    kind = spec.kind
    if kind in _TYPE:
        return f"{KIND_NAMES[btf.kind(root)] if btf.kind(root) in _COMPOSITE + _ENUMS else ''} {tname}".strip()
    if kind in _ENUMVAL:
        return f"enum {tname}::{spec.accs[0].name}" if spec.accs else f"enum {tname}"
    out = tname
    for i, acc in enumerate(spec.accs):
        if acc.name is not None:
            out += ("->" if i == 1 and spec.accs[0].idx == 0 else ".") + acc.name
        elif i > 0 or acc.idx > 0:
            out += f"[{acc.idx}]"
    return out


def relo_kind_name(kind: int) -> str:
    return CORE_KINDS[kind] if 0 <= kind < len(CORE_KINDS) else f"kind {kind}"

