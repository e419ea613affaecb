"""Map -> Prometheus metric families, one reader per configured metric.

:func:`plan` checks a metric against the object's map specs before anything is loaded
(field names, types, histogram layout) and :meth:`Plan.bind` attaches it to the loaded
map. A scrape reads each map once with one batch lookup (``Map.to_numpy()``), sums
per-CPU values, decodes each label column once per distinct value and adds up rows that
end with the same labels.

Histograms (bpfkit_hist.h): the ``le`` bound of a log2 slot is its inclusive integer upper
bound, ``2**(k-1) - 1`` for slot ``k >= 2`` (values ``[2**(k-2), 2**(k-1))``), ``0`` for
slot 1 (the value 0) and ``-1`` for slot 0 (negative values); linear slot ``i`` ends at
``lo + i*step - 1``. Every bucket count is exact: it is the cumulative sum of the
kernel's slot counters. ``_count`` is the total. ``_sum`` is exact when ``sum_map`` names
the BPFKIT_STATS map recorded next to the histogram, and is left out otherwise (the slots
alone do not give it; Cloudflare's exporter reports 0 there instead).

Example::

    p = collectors.plan(metric_spec, object_spec)    # BpfUsageError if the map does not fit
    reader = p.bind(obj)                              # after load
    families = reader.collect(MapCache())
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Optional

import numpy as np
from .config import LabelSpec, MetricSpec
from .decoders import Decoder, DECODERS, default_for, make
from .exposition import Family, HistSeries

__all__ = ["plan", "Plan", "Reader", "MapCache", "go_float", "scaled_bound", "log2_bounds", "linear_bounds",
           "LOG2_SLOTS"]

LOG2_SLOTS = 66  # bpfkit_hist.h BPFKIT_LOG2_SLOTS
# map types whose elements to_numpy() reads as key/value arrays
READABLE = ("hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash")


def go_float(x: float) -> str:
    """A number as Go's ``strconv.FormatFloat(x, 'g', -1, 64)`` writes it, the way Prometheus's own
    clients write ``le``: ``1023``, ``1.048575e+06``, ``+Inf``.

    Example::

        collectors.go_float(1023)   # '1023'
    """
    x = float(x)
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    sign, digit_t, exp = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_t))
    nd, dp = len(digits), len(digits) + exp
    s = "-" if sign else ""
    e10 = dp - 1
    if e10 < -4 or e10 >= 6:  # Go's shortest 'g' switches to an exponent at 1e6
        mant = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{s}{mant}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    if dp <= 0:
        return f"{s}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return s + digits + "0" * (dp - nd)
    return f"{s}{digits[:dp]}.{digits[dp:]}"


def log2_bounds() -> list[Optional[int]]:
    """Inclusive upper bound of each log2 slot (None: no bound, only ``+Inf`` holds it).

    Example::

        collectors.log2_bounds()[:5]   # [-1, 0, 1, 3, 7]
    """
    bounds: list[Optional[int]] = [-1, 0]
    return bounds + [(1 << (k - 1)) - 1 for k in range(2, LOG2_SLOTS)]


def linear_bounds(lo: int, hi: int, step: int) -> list[Optional[int]]:
    """Inclusive upper bound of each linear slot: below ``lo``, each step, then ``>= hi`` (None).

    Example::

        collectors.linear_bounds(0, 30, 10)   # [-1, 9, 19, 29, None]
    """
    nb = (hi - lo) // step
    return [lo - 1] + [lo + i * step - 1 for i in range(1, nb + 1)] + [None]


class MapCache:
    """Per-scrape memo of ``to_numpy()`` with per-CPU values summed: each map is read once per
    scrape even when several metrics use it."""

    def __init__(self) -> None:
        self._data: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def read(self, m: Any) -> tuple[np.ndarray, np.ndarray]:
        got = self._data.get(id(m))
        if got is None:
            got = self._data[id(m)] = m.to_numpy()
        return got


# -- checking against the object ------------------------------------------------------------

def _fields(dt: np.dtype) -> str:
    return ", ".join(dt.names) if dt.names else f"none (it is a {dt})"


def _at(dt: np.dtype, path: tuple[str, ...], what: str, spec: MetricSpec) -> np.dtype:
    """The dtype at ``path`` below ``dt`` (a struct field, a field of that...)."""
    cur = dt
    walked = [what]
    for part in path:
        if cur.names is None or cur.fields is None or part not in cur.names:
            raise spec.error(f"{'.'.join(walked)} has no field {part!r}; its fields: {_fields(cur)}")
        cur = cur.fields[part][0]
        walked.append(part)
    return cur


def _take(arr: np.ndarray, path: tuple[str, ...]) -> np.ndarray:
    for part in path:
        arr = arr[part]
    return arr


def _field(dt: np.dtype, name: str) -> np.dtype:
    assert dt.fields is not None
    return dt.fields[name][0]


def _numeric(dt: np.dtype) -> bool:
    return dt.kind in "iuf" and dt.shape == ()


@dataclass
class _LabelPlan:
    spec: LabelSpec
    root: str  # "key" or "value"
    path: tuple[str, ...]
    decoder_name: str


@dataclass
class Plan:
    """A metric checked against its map: where each label and the value come from."""

    spec: MetricSpec
    kind: str  # "rows" (counter/gauge), "global", "hist" (one histogram), "keyed" (one per key)
    labels: list[_LabelPlan] = field(default_factory=list)
    value_path: tuple[str, ...] = ()
    key_path: tuple[str, ...] = ()  # keyed histograms: where the histogram key is ("key",)
    bounds: list[Optional[int]] = field(default_factory=list)

    def bind(self, obj: Any) -> "Reader":
        """Make the reader for the loaded object ``obj`` (a :class:`bpfkit.Object`)."""
        return Reader(self, obj)


def plan(spec: MetricSpec, objspec: Any) -> Plan:
    """Check ``spec`` against the (not yet loaded) :class:`bpfkit.ObjectSpec` ``objspec``.

    Example::

        collectors.plan(cfg.entries[0].metrics[0], bpfkit.open("exporter/syscalls"))
    """
    if spec.global_var:
        return _plan_global(spec, objspec)
    maps = objspec.maps
    public = [n for n, ms in maps.items() if not ms.internal]
    if spec.map not in maps or maps[spec.map].internal:
        hint = " (global variables: use global = \"name\")" if spec.map.startswith(".") else ""
        raise spec.error(f"object {objspec.name!r} has no map {spec.map!r}{hint}; its maps: "
                         f"{', '.join(public) or 'none'}")
    ms = maps[spec.map]
    if ms.type not in READABLE:
        raise spec.error(f"map {spec.map!r} is a {ms.type} map; metrics read {', '.join(READABLE)} maps")
    if ms.key_dtype is None or ms.value_dtype is None:
        why = ms.dtype_error or "the object has no BTF for it (compile with -g)"
        raise spec.error(f"map {spec.map!r} has no key/value types: {why}")
    if spec.type == "histogram":
        return _plan_hist(spec, objspec, ms)
    p = Plan(spec, "rows")
    vdt = _at(ms.value_dtype, tuple(spec.value.split(".")) if spec.value else (), "value", spec)
    if not _numeric(vdt):
        numeric = [n for n in (ms.value_dtype.names or ()) if _numeric(_field(ms.value_dtype, n))]
        if not spec.value and numeric:
            raise spec.error(f"map {spec.map!r} has struct values; name the field to export with value = "
                             f"\"...\" (numeric fields: {', '.join(numeric)})")
        raise spec.error(f"value {'value.' + spec.value if spec.value else 'value'} is {vdt}, not a number")
    p.value_path = tuple(spec.value.split(".")) if spec.value else ()
    percpu = ms.type.startswith("percpu") or ms.type == "lru_percpu_hash"
    for lb in spec.labels:
        root = lb.path[0]
        if root == "value" and percpu:
            raise spec.error(f"label {lb.name!r}: labels from value fields are not supported for per-CPU map "
                             f"{spec.map!r} (each CPU has its own copy); take it from the key")
        dt = _at(ms.key_dtype if root == "key" else ms.value_dtype, lb.path[1:], root, spec)
        p.labels.append(_label_plan(lb, dt, spec))
    return p


def _label_plan(lb: LabelSpec, dt: np.dtype, spec: MetricSpec) -> _LabelPlan:
    name = lb.decoder or default_for(dt)
    kind = DECODERS[name].cls
    accepts = getattr(kind, "kinds", "iu")
    if dt.shape != () or dt.names is not None or dt.kind not in accepts:
        what = "a struct" if dt.names else f"{dt}"
        raise spec.error(f"label {lb.name!r}: field {lb.field!r} is {what}; decoder {name!r} needs "
                         f"{getattr(kind, 'expects', 'an integer field')}")
    return _LabelPlan(lb, lb.path[0], lb.path[1:], name)


def _plan_global(spec: MetricSpec, objspec: Any) -> Plan:
    found = []
    for sec in (".bss", ".data", ".rodata"):
        gv = objspec.sections.get(sec)
        if gv is not None and gv.dtype.names:
            found += list(gv.dtype.names)
            if spec.global_var in gv.dtype.names:
                if not _numeric(_field(gv.dtype, spec.global_var)):
                    raise spec.error(f"global {spec.global_var!r} is {_field(gv.dtype, spec.global_var)}, "
                                     "not a number")
                return Plan(spec, "global", value_path=(sec, spec.global_var))
    raise spec.error(f"object {objspec.name!r} has no global variable {spec.global_var!r}; its globals: "
                     f"{', '.join(found) or 'none'}")


def _plan_hist(spec: MetricSpec, objspec: Any, ms: Any) -> Plan:
    kdt, vdt = ms.key_dtype, ms.value_dtype
    layout = ("BPFKIT_LOG2_HIST(name) or BPFKIT_KEYED_LOG2_HIST(name, key_type, n)" if spec.buckets == "log2"
              else "BPFKIT_LINEAR_HIST(name, lo, hi, step) or BPFKIT_KEYED_LINEAR_HIST(...)")
    if vdt.kind not in "iu" or vdt.shape != ():
        raise spec.error(f"map {spec.map!r} has {vdt} values; a histogram map counts in integer slots "
                         f"({layout})")
    if spec.buckets == "log2":
        bounds = log2_bounds()
    else:
        bounds = linear_bounds(spec.lo, spec.hi, spec.step)
    if kdt.names is None:
        if kdt.kind not in "iu":
            raise spec.error(f"map {spec.map!r}: histogram keys must be slot numbers or {{key, slot}}, got {kdt}")
        if spec.labels:
            raise spec.error(f"map {spec.map!r} is one histogram (its key is the slot): it has no key fields for "
                             f"labels; record per-key histograms with {layout}")
        if ms.type in ("array", "percpu_array") and ms.max_entries != len(bounds):
            # the one mismatch the types cannot show: a linear map read as log2 or with other lo/hi/step
            raise spec.error(f"map {spec.map!r} has {ms.max_entries} slots, but {spec.buckets} buckets "
                             f"{'' if spec.buckets == 'log2' else f'lo={spec.lo}, hi={spec.hi}, step={spec.step} '}"
                             f"have {len(bounds)}: is it {layout.split(' or ')[0]}? (BPFKIT_LINEAR_HIST needs "
                             "buckets = \"linear\" with its lo, hi, step)")
        p = Plan(spec, "hist", bounds=bounds)
    else:
        if set(kdt.names) != {"key", "slot"}:
            raise spec.error(f"map {spec.map!r}: a keyed histogram's key is {{key, slot}} ({layout}); got "
                             f"fields {_fields(kdt)}")
        hkey = _field(kdt, "key")
        p = Plan(spec, "keyed", key_path=("key",), bounds=bounds)
        for lb in spec.labels:
            p.labels.append(_label_plan(lb, _at(hkey, lb.path[1:], "key", spec), spec))
    if spec.sum_map:
        _check_sum_map(spec, objspec, p, kdt)
    return p


def _check_sum_map(spec: MetricSpec, objspec: Any, p: Plan, kdt: np.dtype) -> None:
    maps = objspec.maps
    if spec.sum_map not in maps or maps[spec.sum_map].internal:
        raise spec.error(f"sum_map {spec.sum_map!r} is not a map of object {objspec.name!r}")
    sm = maps[spec.sum_map]
    names = set(sm.value_dtype.names or ()) if sm.value_dtype is not None else set()
    if not {"count", "total"} <= names:
        raise spec.error(f"sum_map {spec.sum_map!r} must hold struct bpfkit_stats values (BPFKIT_STATS or "
                         f"BPFKIT_KEYED_STATS), got {sm.value_dtype}")
    if p.kind == "keyed":
        if sm.type not in ("hash", "percpu_hash", "lru_hash", "lru_percpu_hash"):
            raise spec.error(f"sum_map {spec.sum_map!r} must be a BPFKIT_KEYED_STATS keyed like the histogram, "
                             f"got a {sm.type} map")
        if sm.key_dtype != _field(kdt, "key"):
            raise spec.error(f"sum_map {spec.sum_map!r} is keyed by {sm.key_dtype}, the histogram by "
                             f"{_field(kdt, 'key')}: record both with the same key")
    elif sm.type not in ("array", "percpu_array"):
        raise spec.error(f"sum_map {spec.sum_map!r} must be one BPFKIT_STATS for a single histogram, "
                         f"got a {sm.type} map")


# -- reading ------------------------------------------------------------------------------------

def _cpu_sum(col: np.ndarray) -> np.ndarray:
    """Per-CPU columns ``(n, ncpus)`` summed over CPUs, exact in 64-bit integers."""
    if col.ndim < 2:
        return col
    acc = np.float64 if col.dtype.kind == "f" else (np.int64 if col.dtype.kind == "i" else np.uint64)
    return col.sum(axis=1, dtype=acc)


class Reader:
    """A bound metric: builds its metric family from the live maps at each scrape."""

    def __init__(self, p: Plan, obj: Any) -> None:
        self.plan = p
        self.spec = p.spec
        self.obj = obj
        self.map = obj.maps[p.spec.map] if p.spec.map else None
        self.sum_map = obj.maps[p.spec.sum_map] if p.spec.sum_map else None
        self.decoders: list[Decoder] = [make(lp.decoder_name, lp.spec.options) for lp in p.labels]
        self.label_names = [lp.spec.name for lp in p.labels]

    def describe(self) -> Family:
        """The family with no samples (for registries that check names up front)."""
        return self._family()

    def _family(self) -> Family:
        s = self.spec
        return Family(s.family, s.type, s.help, tuple(self.label_names))

    def collect(self, cache: MapCache) -> Family:
        """Read the map(s) and return the family with its samples."""
        try:
            if self.plan.kind == "global":
                return self._global()
            if self.plan.kind == "rows":
                return self._rows(cache)
            return self._hist(cache)
        finally:
            for d in self.decoders:
                d.sweep()

    def _labels(self, columns: Iterable[np.ndarray]) -> list[tuple[str, ...]]:
        decoded = [d.decode(c) for d, c in zip(self.decoders, columns)]
        return list(zip(*decoded))

    def _columns(self, keys: np.ndarray, values: Optional[np.ndarray], key_root: tuple[str, ...] = ()
                 ) -> list[np.ndarray]:
        cols = []
        for lp in self.plan.labels:
            src = _take(keys, key_root) if lp.root == "key" else values
            assert src is not None
            cols.append(_take(src, lp.path))
        return cols

    def _global(self) -> Family:
        sec, var = self.plan.value_path
        fam = self._family()
        fam.values[()] = _scaled(getattr(self.obj.sections[sec], var), self.spec.scale)
        return fam

    def _rows(self, cache: MapCache) -> Family:
        keys, values = cache.read(self.map)
        vals = _cpu_sum(_take(values, self.plan.value_path))
        if self.spec.skip_zero:
            keep = vals != 0
            if not keep.all():
                keys, values, vals = keys[keep], values[keep], vals[keep]
        fam = self._family()
        scale = self.spec.scale
        if not self.plan.labels:
            if len(vals) or not self.spec.skip_zero:
                total = int(vals.sum()) if vals.dtype.kind in "iu" else float(vals.sum())
                fam.values[()] = _scaled(total, scale)
            return fam
        totals = fam.values
        for lab, v in zip(self._labels(self._columns(keys, values)), vals.tolist()):
            totals[lab] = totals.get(lab, 0) + v
        if scale != 1.0:
            for lab in totals:
                totals[lab] *= scale
        return fam

    def _hist(self, cache: MapCache) -> Family:
        keys, values = cache.read(self.map)
        counts = _cpu_sum(values).astype(np.uint64)
        nslots = len(self.plan.bounds)
        if self.plan.kind == "hist":
            slots = keys.astype(np.int64)
            group = np.zeros(len(keys), np.int64)
            groups: list[tuple[str, ...]] = [()]
        else:
            slots = keys["slot"].astype(np.int64)
            labels = self._labels(self._columns(keys, None, self.plan.key_path))
            index: dict[tuple[str, ...], int] = {}
            group = np.array([index.setdefault(lab, len(index)) for lab in labels], np.int64)
            groups = list(index)
        ok = (slots >= 0) & (slots < nslots)  # bpfkit_hist.h never writes others
        matrix = np.zeros((len(groups), nslots), np.uint64)
        np.add.at(matrix, (group[ok], slots[ok]), counts[ok])
        cum = np.cumsum(matrix, axis=1, dtype=np.uint64)
        sums = self._sums(cache) if self.sum_map is not None else None
        s = self.spec
        scaled = [None if b is None else scaled_bound(b, s.scale) for b in self.plan.bounds]
        emit = [(i, go_float(b)) for i, b in enumerate(scaled) if b is not None and s.min_le <= b <= s.max_le]
        fam = self._family()
        for g, lab in enumerate(groups):
            row = cum[g].tolist()
            buckets: list[tuple[str, int | float]] = [(le, row[i]) for i, le in emit]
            buckets.append(("+Inf", row[-1]))
            total = None if sums is None else _scaled(sums.get(lab, 0), s.scale)
            fam.hists.append(HistSeries(lab, buckets, total))
        return fam

    def _sums(self, cache: MapCache) -> dict[tuple[str, ...], int]:
        keys, values = cache.read(self.sum_map)
        live = values["count"] > 0  # bpfkit_stats: slots never written hold garbage-free zeros
        totals = np.where(live, values["total"].astype(np.int64), 0)
        if totals.ndim > 1:
            totals = totals.sum(axis=1)
        if self.plan.kind == "hist":
            return {(): int(totals.sum())}
        out: dict[tuple[str, ...], int] = {}
        for lab, t in zip(self._labels(self._columns(keys, None)), totals.tolist()):
            out[lab] = out.get(lab, 0) + t
        return out


def scaled_bound(bound: int, scale: float) -> float:
    """``bound * scale`` rounded once from the exact decimal product, so that an integer bound in ns with
    ``scale = 1e-9`` gives the ``le`` a person would write (``1.023e-06``, not float multiplication's
    ``1.0230000000000001e-06``).

    Example::

        collectors.scaled_bound(1023, 1e-9)   # 1.023e-06
    """
    if scale == 1.0:
        return float(bound)
    return float(Decimal(bound) * Decimal(repr(scale)))


def _scaled(v: Any, scale: float) -> Any:
    return v if scale == 1.0 else v * scale

