"""The exporter's config file: parsed into frozen dataclasses and checked completely before
anything is loaded. Every error is a :class:`~bpfkit.BpfUsageError` naming the file, the
entry and what was expected.

One module of ~520 lines on purpose: each key's check sits next to its error message.

The format is TOML (``tomllib``, or ``tomli`` before Python 3.11); JSON with the same
structure is accepted too (``.json``), and so is a dict. See ``docs/exporter.md``.

Example::

    from bpfkit.exporter import config
    cfg = config.load("exporter.toml")
    cfg.entries[0].metrics[0].name      # 'bpfkit_syscalls_total'
    config.parse({"objects": [{"tool": "syscalls"}]})
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import BpfUsageError
from .decoders import DECODERS

__all__ = ["Config", "Entry", "MetricSpec", "LabelSpec", "load", "parse", "DEFAULT_LISTEN", "METRIC_TYPES"]

DEFAULT_LISTEN = "127.0.0.1:9435"
METRIC_TYPES = ("counter", "gauge", "histogram")
BUCKET_LAYOUTS = ("log2", "linear")
SOURCE_KEYS = ("object", "source", "code", "tool")

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FIELD_PATH = re.compile(r"^(key|value)(\.[A-Za-z_]\w*)*$")
_C_NAME = re.compile(r"^[A-Za-z_]\w*$")


@dataclass(frozen=True)
class LabelSpec:
    """One label: ``name`` from ``field`` (``key``, ``key.pid``, ``value.comm``) through ``decoder``
    ("" = the default for the field's type) with its ``options``."""

    name: str
    field: str
    decoder: str = ""
    options: Mapping[str, Any] = dc_field(default_factory=dict)

    @property
    def path(self) -> tuple[str, ...]:
        """The field path split at dots: ``("key", "pid")``."""
        return tuple(self.field.split("."))


@dataclass(frozen=True)
class MetricSpec:
    """One metric from one map (or one global variable) of an entry's object."""

    name: str
    help: str
    type: str
    map: str = ""
    global_var: str = ""
    value: str = ""  # the value field for counters/gauges with struct values ("" = the whole value)
    labels: tuple[LabelSpec, ...] = ()
    buckets: str = "log2"
    lo: int = 0
    hi: int = 0
    step: int = 0
    sum_map: str = ""
    scale: float = 1.0
    min_le: float = 0.0
    max_le: float = math.inf
    skip_zero: bool = False
    where: str = ""  # "exporter.toml: objects[0] ("syscalls") metrics[1] ("x_total")", for errors

    @property
    def family(self) -> str:
        """The metric family's name as exposed (counters without ``_total``)."""
        return self.name[:-6] if self.type == "counter" and self.name.endswith("_total") else self.name

    def error(self, message: str) -> BpfUsageError:
        """A usage error about this metric."""
        return BpfUsageError(f"{self.where}: {message}")


@dataclass(frozen=True)
class Entry:
    """One ``[[objects]]`` entry: a BPF object (shipped name or path), a C file or inline C to
    compile, or a toolkit tool; its rodata, programs to attach and metrics. ``collector`` is set
    for tools that are not a BPF object (``bpf_stats``)."""

    name: str
    kind: str  # "object", "source", "code" or "tool"
    target: str  # resolved path or shipped name, C file, C text, tool name
    rodata: Mapping[str, Any] = dc_field(default_factory=dict)
    attach: Optional[tuple[str, ...]] = None  # None: every program whose SEC() names its target
    metrics: tuple[MetricSpec, ...] = ()
    collector: str = ""
    object_name: str = ""  # for tools: the object the tool loads
    where: str = ""

    def error(self, message: str) -> BpfUsageError:
        """A usage error about this entry."""
        return BpfUsageError(f"{self.where}: {message}")


@dataclass(frozen=True)
class Config:
    """A whole config: where to listen and the entries."""

    entries: tuple[Entry, ...]
    listen: str = DEFAULT_LISTEN
    path: Optional[Path] = None


class _Table:
    """A config table being read: typed getters that name the table in errors, and a final
    check that no key was left unread (typos)."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise BpfUsageError(f"{where}: expected a table, got {_kind(data)}")
        self.data = data
        self.where = where
        self.read: set[str] = set()

    def error(self, message: str) -> BpfUsageError:
        return BpfUsageError(f"{self.where}: {message}")

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.data.get(key, default)

    def text(self, key: str, default: Optional[str] = None, *, required: bool = False) -> Optional[str]:
        v = self.get(key)
        if v is None:
            if required:
                raise self.error(f"missing {key!r} (a string)")
            return default
        if not isinstance(v, str) or not v:
            raise self.error(f"{key!r} must be a non-empty string, got {_kind(v)}")
        return v

    def integer(self, key: str, default: int) -> int:
        v = self.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"{key!r} must be an integer, got {_kind(v)}")
        return v

    def number(self, key: str, default: float) -> float:
        v = self.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise self.error(f"{key!r} must be a number, got {_kind(v)}")
        return float(v)

    def flag(self, key: str, default: bool) -> bool:
        v = self.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.error(f"{key!r} must be true or false, got {_kind(v)}")
        return v

    def items(self, key: str) -> Optional[list[Any]]:
        v = self.get(key)
        if v is None:
            return None
        if not isinstance(v, list):
            raise self.error(f"{key!r} must be a list, got {_kind(v)}")
        return v

    def done(self) -> None:
        unknown = [k for k in self.data if k not in self.read]
        if unknown:
            raise self.error(f"unknown key {unknown[0]!r}; expected one of: {', '.join(sorted(self.read))}")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the string {v!r}"
    if isinstance(v, Mapping):
        return "a table"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


# -- reading ------------------------------------------------------------------------------

def load(path: Union[str, os.PathLike[str]]) -> Config:
    """Read and check a config file (``.toml``, or ``.json``).

    Example::

        cfg = config.load("/etc/bpfkit/exporter.toml")
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise BpfUsageError(f"cannot read exporter config {p}: {e.strerror}") from None
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        raise BpfUsageError(f"{p}: YAML is not supported; write the config in TOML (see docs/exporter.md)")
    if suffix == ".json":
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise BpfUsageError(f"{p}: not valid JSON: {e}") from None
    else:
        data = _toml(raw, p)
    return parse(data, path=p)


def _toml(raw: bytes, path: Path) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the exporter extra installs tomli there
        try:
            import tomli as tomllib
        except ImportError:
            raise BpfUsageError("reading TOML before Python 3.11 needs tomli: pip install 'bpfkit[exporter]'") \
                from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BpfUsageError(f"{path}: not valid TOML: {e}") from None


def parse(data: Mapping[str, Any], *, path: Optional[Union[str, os.PathLike[str]]] = None) -> Config:
    """Check a config given as a dict (the structure of the TOML file). Relative paths are taken
    from the config file's directory (the current directory when ``path`` is None).

    Example::

        config.parse({"objects": [{"tool": "syscalls"}]}).entries[0].object_name   # 'exporter/syscalls'
    """
    p = Path(path) if path is not None else None
    top = _Table(data, str(p) if p else "exporter config")
    base = p.parent if p is not None else Path.cwd()
    listen = DEFAULT_LISTEN
    ex = top.get("exporter")
    if ex is not None:
        t = _Table(ex, f"{top.where}: [exporter]")
        listen = t.text("listen", DEFAULT_LISTEN) or DEFAULT_LISTEN
        t.done()
        parse_listen(listen, t.where)
    raw_entries = top.items("objects")
    top.done()
    if not raw_entries:
        raise top.error("no [[objects]] entries: nothing to export; add at least one, e.g.\n"
                        "[[objects]]\ntool = \"syscalls\"")
    entries = tuple(_entry(raw, f"{top.where}: objects[{i}]", base) for i, raw in enumerate(raw_entries))
    _check_unique(entries)
    return Config(entries, listen, p)


def parse_listen(listen: str, where: str = "--listen") -> tuple[str, int]:
    """``"127.0.0.1:9435"``, ``"[::1]:9435"`` or ``":9435"`` (every interface) -> (host, port).

    Example::

        config.parse_listen("127.0.0.1:0")   # ('127.0.0.1', 0): any free port
    """
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]*\]|[^:\[\]]*):(\d{1,5})", listen)
    if m is None or int(m.group(2)) > 65535:
        raise BpfUsageError(f"{where}: listen address {listen!r} is not HOST:PORT (e.g. 127.0.0.1:9435, "
                            "[::1]:9435, or :9435 for every interface)")
    host = m.group(1)
    host = host[1:-1] if host.startswith("[") else host
    return host or "0.0.0.0", int(m.group(2))


def _entry(raw: Any, where: str, base: Path) -> Entry:
    t = _Table(raw, where)
    name = t.text("name")
    if name is not None:
        t.where = where = f'{where} ("{name}")'
    given = [k for k in SOURCE_KEYS if t.data.get(k) is not None]
    for k in SOURCE_KEYS:
        t.get(k)
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise t.error(f"needs exactly one of object (a shipped object name or a .bpf.o path), source (a .bpf.c "
                      f"file to compile), code (BPF C text) or tool (a toolkit metric set); got {what}")
    kind = given[0]
    target = t.text(kind, required=True) or ""
    rodata = _rodata(t)
    attach = _attach(t)
    metrics_raw = t.items("metrics") or []
    t.done()
    tool_metrics: tuple[MetricSpec, ...] = ()
    collector = ""
    object_name = ""
    if kind == "tool":
        from .tools import lookup

        tool = lookup(target, where)
        if tool.collector:
            if rodata or attach is not None or metrics_raw:
                raise t.error(f"tool {target!r} ({tool.help}) is not a BPF object: it takes no rodata, attach "
                              "or metrics")
            collector = tool.collector
        else:
            assert tool.fragment is not None
            frag = _Table(tool.fragment, f"{where} (tool {target!r})")
            object_name = frag.text("object", required=True) or ""
            rodata = {**(frag.get("rodata") or {}), **rodata}
            if attach is None and frag.get("attach") is not None:
                attach = tuple(frag.get("attach"))
            tool_metrics = tuple(_metric(m, f"{frag.where} metrics[{j}]")
                                 for j, m in enumerate(frag.items("metrics") or []))
            frag.done()
        name = name or target
    elif kind == "object":
        target = _object_path(target, base, t)
        name = name or Path(target).name.removesuffix(".bpf.o")
    elif kind == "source":
        src = Path(target) if os.path.isabs(target) else base / target
        if not src.is_file():
            raise t.error(f"source file {str(src)!r} does not exist (relative paths are taken from {base})")
        target = str(src)
        name = name or src.name.removesuffix(".c").removesuffix(".bpf")
    else:
        name = name or "code"
    metrics = tool_metrics + tuple(_metric(m, f"{where} metrics[{j}]") for j, m in enumerate(metrics_raw))
    if not metrics and not collector:
        raise t.error("no metrics: add [[objects.metrics]] tables naming the maps to export")
    return Entry(name, kind, target, rodata, attach, metrics, collector, object_name, where)


def _object_path(target: str, base: Path, t: _Table) -> str:
    from ..shipped import find_object, shipped_objects

    candidate = Path(target) if os.path.isabs(target) else base / target
    if candidate.is_file():
        return str(candidate)
    if find_object(target) is not None:
        return target  # a shipped object; bpfkit.open resolves the name
    shipped = ", ".join(shipped_objects()) or "none (the package was built without BPF objects)"
    raise t.error(f"object {target!r} is neither a file (relative paths are taken from {base}) nor a shipped "
                  f"object; shipped objects: {shipped}")


def _rodata(t: _Table) -> dict[str, Any]:
    raw = t.get("rodata")
    if raw is None:
        return {}
    r = _Table(raw, f"{t.where} rodata")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        r.get(k)
        if not _C_NAME.match(k):
            raise r.error(f"{k!r} is not a C variable name")
        if not isinstance(v, (bool, int, float, str)):
            raise r.error(f"{k} must be a number, boolean or string, got {_kind(v)}")
        out[k] = v
    return out


def _attach(t: _Table) -> Optional[tuple[str, ...]]:
    raw = t.items("attach")
    if raw is None:
        return None
    for p in raw:
        if not isinstance(p, str) or not _C_NAME.match(p):
            raise t.error(f"attach lists program names (C function names), got {_kind(p)}")
    if len(set(raw)) != len(raw):
        raise t.error("attach names a program twice")
    return tuple(raw)


def _metric(raw: Any, where: str) -> MetricSpec:
    t = _Table(raw, where)
    name = t.text("name", required=True) or ""
    t.where = where = f'{where} ("{name}")'
    if not _METRIC_NAME.match(name):
        raise t.error(f"{name!r} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    mtype = t.text("type", required=True) or ""
    if mtype not in METRIC_TYPES:
        raise t.error(f"type {mtype!r} is not one of: {', '.join(METRIC_TYPES)}")
    map_name = t.text("map") or ""
    global_var = t.text("global") or ""
    if bool(map_name) == bool(global_var):
        raise t.error("needs exactly one of map (a BPF map of the object) or global (a .bss/.data/.rodata "
                      "variable)")
    help_text = t.text("help") or f"{'map' if map_name else 'global'} {map_name or global_var}"
    value = t.text("value") or ""
    if value and not _FIELD_PATH.match("value." + value):
        raise t.error(f"value {value!r} is not a field of the map's value (e.g. \"calls\" or \"stats.count\")")
    labels = tuple(_label(x, f"{where} labels[{i}]", mtype) for i, x in enumerate(t.items("labels") or []))
    names = [lb.name for lb in labels]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise t.error(f"label {dup[0]!r} is defined twice")
    scale = t.number("scale", 1.0)
    if not scale > 0 or math.isinf(scale):
        raise t.error(f"scale must be a positive number, got {scale!r}")
    skip_zero = t.flag("skip_zero", mtype == "counter")
    hist_keys = ("buckets", "lo", "hi", "step", "sum_map", "min_le", "max_le")
    if mtype != "histogram":
        bad = [k for k in hist_keys if k in t.data]
        if bad:
            raise t.error(f"{bad[0]!r} is only for histograms (this metric is a {mtype})")
        t.read.update(hist_keys)
        t.done()
        if global_var and (labels or value):
            raise t.error("a global variable has no key or value fields: drop labels and value")
        return MetricSpec(name, help_text, mtype, map_name, global_var, value, labels, scale=scale,
                          skip_zero=skip_zero, where=where)
    if global_var:
        raise t.error("a histogram reads a map (BPFKIT_LOG2_HIST or BPFKIT_LINEAR_HIST), not a global")
    if value:
        raise t.error("a histogram's value is its bucket counts: drop value")
    for lb in labels:
        if lb.path[0] != "key":
            raise t.error(f"label {lb.name!r}: histogram labels come from the key (the histogram's key in a "
                          f"BPFKIT_KEYED_*_HIST), not {lb.field!r}")
    buckets = t.text("buckets", "log2") or "log2"
    if buckets not in BUCKET_LAYOUTS:
        raise t.error(f"buckets {buckets!r} is not one of: {', '.join(BUCKET_LAYOUTS)} (bpfkit_hist.h layouts)")
    lo, hi, step = t.integer("lo", 0), t.integer("hi", 0), t.integer("step", 0)
    if buckets == "linear":
        if not (step > 0 and hi > lo):
            raise t.error(f"linear buckets need the lo, hi, step of BPFKIT_LINEAR_HIST with lo < hi and step > 0 "
                          f"(got lo={lo}, hi={hi}, step={step})")
    elif any(k in t.data for k in ("lo", "hi", "step")):
        raise t.error("lo, hi and step are for buckets = \"linear\"")
    sum_map = t.text("sum_map") or ""
    # log2: the le="-1" bucket (negative values) only when asked; they still count in every bucket above
    min_le = t.number("min_le", 0.0 if buckets == "log2" else -math.inf)
    max_le = t.number("max_le", math.inf)
    if min_le >= max_le:
        raise t.error(f"min_le ({min_le:g}) must be below max_le ({max_le:g})")
    if "skip_zero" in t.data:
        raise t.error("skip_zero is for counters and gauges")
    t.done()
    return MetricSpec(name, help_text, mtype, map_name, "", "", labels, buckets, lo, hi, step, sum_map, scale,
                      min_le, max_le, False, where)


def _label(raw: Any, where: str, mtype: str) -> LabelSpec:
    t = _Table(raw, where)
    name = t.text("name", required=True) or ""
    t.where = where = f'{where} ("{name}")'
    if not _LABEL_NAME.match(name) or name.startswith("__"):
        raise t.error(f"{name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)")
    if mtype == "histogram" and name == "le":
        raise t.error("'le' is the histogram's bucket label; name this label differently")
    fld = t.text("field", required=True) or ""
    if not _FIELD_PATH.match(fld):
        raise t.error(f"field {fld!r} must be key, key.<field>[.<field>...], or value.<field> "
                      "(e.g. \"key.pid\", \"value.comm\")")
    decoder = t.text("decoder") or ""
    options: dict[str, Any] = {}
    if decoder:
        if decoder not in DECODERS:
            raise t.error(f"decoder {decoder!r} is not one of: {', '.join(DECODERS)}")
        kind = DECODERS[decoder]
        for opt in kind.required:
            if opt not in t.data:
                raise t.error(f"decoder {decoder!r} needs {opt!r}")
        for opt in kind.options:
            if opt in t.data:
                options[opt] = _decoder_option(decoder, opt, t.get(opt), t)
    t.done()
    return LabelSpec(name, fld, decoder, options)


def _decoder_option(decoder: str, opt: str, v: Any, t: _Table) -> Any:
    if opt == "map":
        if not isinstance(v, Mapping) or not v:
            raise t.error(f"decoder {decoder!r}: map must be a non-empty table of number = \"text\", "
                          f"e.g. {{ 1 = \"read\", 2 = \"write\" }}")
        table: dict[int, str] = {}
        for k, text in v.items():
            try:
                num = int(k, 0) if isinstance(k, str) else int(k)
            except ValueError:
                raise t.error(f"decoder {decoder!r}: map key {k!r} is not an integer (decimal, 0x.., -1)") from None
            if not isinstance(text, str):
                raise t.error(f"decoder {decoder!r}: map value for {k!r} must be a string, got {_kind(text)}")
            table[num] = text
        return table
    if not isinstance(v, str):
        raise t.error(f"decoder {decoder!r}: {opt} must be a string, got {_kind(v)}")
    return v


def _check_unique(entries: tuple[Entry, ...]) -> None:
    names: dict[str, str] = {}
    for e in entries:
        if e.name in names:
            raise BpfUsageError(f"{e.where}: entry name {e.name!r} is already used by {names[e.name]}; "
                                "give one of them a different name = \"...\"")
        names[e.name] = e.where
    series: dict[str, str] = {}
    for e in entries:
        if e.collector:
            from .tools import TOOLS

            for fam in TOOLS[e.target].families:
                if fam in series:
                    raise e.error(f"tool {e.target!r} exposes {fam!r}, as does {series[fam]}: use the tool once")
                series[fam] = e.where
        for m in e.metrics:
            exposed = {"counter": [m.family + "_total"], "gauge": [m.family],
                       "histogram": [m.family + s for s in ("_bucket", "_count", "_sum")]}[m.type]
            for s in [m.family, *exposed]:
                if s in series and series[s] != m.where:
                    raise m.error(f"metric name {m.name!r} clashes with {series[s]} (both expose {s!r})")
                series[s] = m.where
