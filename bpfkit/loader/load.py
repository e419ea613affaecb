"""Loading a spec into the kernel through libbpf.

The result is a :class:`Loaded`: plain fds for every program and map, owned by
the libbpf object until :meth:`Loaded.close`. The live API (``bpfkit.Object``)
is built on top of it, so another backend only has to produce the same fds.
"""
from __future__ import annotations

import errno as _errno
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import BpfError, BpfPermissionError, LoadError, VerifierError
from . import libbpf as lb
from ..features import load_failure
from .spec import ObjectSpec

LOG_BUF_SIZE = 16 * 1024 * 1024
_PROG_FAIL = re.compile(r"prog '([^']+)': (?:BPF program load failed|failed to load)")
_LOG = re.compile(r"-- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --", re.S)


@dataclass
class Loaded:
    """fds of a loaded object: ``prog_fds[name]``, ``map_fds[name]`` (internal maps by section)."""

    prog_fds: dict[str, int]
    map_fds: dict[str, int]
    _obj: Any = None
    _keep: list[Any] = field(default_factory=list)

    def close(self) -> None:
        """Close every fd (bpf_object__close)."""
        if self._obj is not None:
            lb.lib.bpf_object__close(self._obj)
            self._obj = None
            self._keep.clear()


def load(spec: ObjectSpec) -> Loaded:
    """Open the spec's ELF afresh, apply its edits, load it; raises VerifierError/LoadError."""
    log_buf = lb.ffi.new("char[]", LOG_BUF_SIZE)
    obj, keep = lb.open_object(spec.elf, spec.name, log_buf)
    keep.append(log_buf)
    try:
        _apply(spec, obj, keep)
        with lb.capture_messages() as lines:
            ret = lb.lib.bpf_object__load(obj)
        if ret:
            raise _load_error(spec, -ret, lines, lb.ffi.string(log_buf).decode(errors="replace"))
        prog_fds = {lb.string(lb.lib.bpf_program__name(p)): lb.lib.bpf_program__fd(p)
                    for p in lb.programs(obj)}
        map_fds = {}
        by_libbpf = {m.libbpf_name: m.name for m in spec.maps.values()}
        for m in lb.maps(obj):
            n = lb.string(lb.lib.bpf_map__name(m))
            map_fds[by_libbpf.get(n, n)] = lb.lib.bpf_map__fd(m)
        return Loaded(prog_fds, map_fds, obj, keep)
    except BaseException:
        lb.lib.bpf_object__close(obj)
        raise


def _apply(spec: ObjectSpec, obj: Any, keep: list[Any]) -> None:
    progs = {p.name: p for p in spec.programs.values()}
    for p in lb.programs(obj):
        ps = progs.get(lb.string(lb.lib.bpf_program__name(p)))
        if ps is not None:
            lb.lib.bpf_program__set_autoload(p, ps.autoload)
            # e.g. uprobe_multi/kprobe_multi, which SEC() names of this libbpf version cannot express
            if ps.prog_type != lb.lib.bpf_program__type(p):
                _check(lb.lib.bpf_program__set_type(p, ps.prog_type), f"program {ps.name!r}: type")
            if ps.expected_attach_type != lb.lib.bpf_program__expected_attach_type(p):
                _check(lb.lib.bpf_program__set_expected_attach_type(p, ps.expected_attach_type),
                       f"program {ps.name!r}: expected_attach_type")
            if ps.flags != lb.lib.bpf_program__flags(p):
                _check(lb.lib.bpf_program__set_flags(p, ps.flags), f"program {ps.name!r}: flags")
    maps = {m.libbpf_name: m for m in spec.maps.values()}
    for m in lb.maps(obj):
        ms = maps.get(lb.string(lb.lib.bpf_map__name(m)))
        if ms is None:
            continue
        if ms.max_entries != lb.lib.bpf_map__max_entries(m):
            _check(lb.lib.bpf_map__set_max_entries(m, ms.max_entries), f"map {ms.name!r}: max_entries")
        if ms.flags != lb.lib.bpf_map__map_flags(m):
            _check(lb.lib.bpf_map__set_map_flags(m, ms.flags), f"map {ms.name!r}: flags")
        if ms.internal and ms.section in spec.sections:
            data = bytes(spec.sections[ms.section].array.tobytes())
            cdata = lb.ffi.from_buffer(data)
            keep.append((data, cdata))
            _check(lb.lib.bpf_map__set_initial_value(m, cdata, len(data)), f"{ms.section} initial value")


def _check(ret: int, what: str) -> None:
    if ret:
        raise BpfError.from_errno(-ret, what)


def _load_error(spec: ObjectSpec, err: int, lines: list[tuple[int, str]], log: str) -> BpfError:
    text = "\n".join(t for _, t in lines)
    prog = ""
    m = _PROG_FAIL.search(text)
    if m:
        prog = m.group(1)
    if not log:
        logs = _LOG.findall(text)
        log = logs[-1] if logs else ""
    if prog and prog in spec.programs:
        # fentry/fexit/lsm the kernel cannot do: say which feature is missing, not a bare EPERM
        unsupported = load_failure(spec.programs[prog].section, prog, err)
        if unsupported is not None:
            return unsupported
    if prog and log:
        return VerifierError(f"program {prog!r} of {spec.name!r} was rejected by the verifier "
                             f"({_errno_name(err)}):\n{summarize_verifier_log(log)}", err, log, prog)
    reasons = [t for lvl, t in lines if lvl == 0 and t.strip()]
    detail = "\n".join(reasons[-8:]) or "libbpf gave no details"
    if err in (_errno.EPERM, _errno.EACCES) and not prog:
        return BpfPermissionError(f"loading {spec.name!r} was refused ({_errno_name(err)}): run as root or "
                                  f"with CAP_BPF+CAP_PERFMON.\n{detail}", err)
    return LoadError(f"loading {spec.name!r} failed ({_errno_name(err)}):\n{detail}", err, log)


def _errno_name(err: int) -> str:
    return f"{_errno.errorcode.get(err, 'errno')} {err}"


def summarize_verifier_log(log: str, context: int = 12) -> str:
    """The part of a verifier log a reader needs first: the failing instruction, the
    error and the lines leading to it (the tail of the log, minus the statistics line)."""
    lines = [ln for ln in log.rstrip("\n").split("\n")]
    while lines and (lines[-1].startswith("processed ") or lines[-1].startswith("verification time")
                     or lines[-1].startswith("stack depth") or not lines[-1].strip()):
        lines.pop()
    tail = lines[-context:]
    return "\n".join("  " + ln for ln in tail)
