"""Loading an object into the kernel through libbpf.

The result is a :class:`~bpfkit.loader.parts.Loaded`: plain fds for every program and map, owned
by the libbpf object until closed. The live API (``bpfkit.Object``) is built on top of it, so
another backend only has to produce the same fds.

Example::

    loaded = load(spec.elf, spec.name, spec.programs, spec.maps, spec.sections)
"""
from __future__ import annotations

import errno as _errno
import re
from typing import Any

from ..errors import BpfError, BpfPermissionError, LoadError, VerifierError, permission_hint
from . import libbpf as lb
from .globals import GlobalVars
from .parts import Loaded, MapSpec, Namespace, ProgramSpec

__all__ = ["load"]

LOG_BUF_SIZE = 16 * 1024 * 1024
# the verifier log buffer is only written when a load fails: not zeroed (zeroing 16 MiB was ~0.3 ms
# of every load, most of this backend's own time); its first byte is, so an unwritten log reads ""
_new_unzeroed = lb.ffi.new_allocator(should_clear_after_alloc=False)
# patterns, compiled by re when a load fails (not at every start)
_PROG_FAIL = r"prog '([^']+)': (?:BPF program load failed|failed to load)"
_LOG = r"(?s)-- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --"


def load(elf: bytes, name: str, programs: Namespace[ProgramSpec], maps: Namespace[MapSpec],
         sections: dict[str, GlobalVars]) -> Loaded:
    """Open the ELF afresh, apply the spec's edits, load it; raises VerifierError/LoadError."""
    log_buf = _new_unzeroed("char[]", LOG_BUF_SIZE)
    log_buf[0] = b"\0"
    obj, keep = lb.open_object(elf, name, log_buf)
    keep.append(log_buf)
    try:
        _apply(programs, maps, sections, obj, keep)
        with lb.capture_messages() as lines:
            ret = lb.lib.bpf_object__load(obj)
        if ret:
            raise _load_error(name, programs, maps, -ret, lines, lb.ffi.string(log_buf).decode(errors="replace"))
        prog_fds = {lb.string(lb.lib.bpf_program__name(p)): lb.lib.bpf_program__fd(p)
                    for p in lb.programs(obj)}
        map_fds = {}
        by_libbpf = {m.libbpf_name: m.name for m in maps.values()}
        for m in lb.maps(obj):
            n = lb.string(lb.lib.bpf_map__name(m))
            map_fds[by_libbpf.get(n, n)] = lb.lib.bpf_map__fd(m)
        def release() -> None:
            lb.lib.bpf_object__close(obj)
            keep.clear()

        return Loaded(prog_fds, map_fds, release)
    except BaseException:
        lb.lib.bpf_object__close(obj)
        raise


def _apply(programs: Namespace[ProgramSpec], maps: Namespace[MapSpec], sections: dict[str, GlobalVars],
           obj: Any, keep: list[Any]) -> None:
    progs = {p.name: p for p in programs.values()}
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
    by_libbpf = {m.libbpf_name: m for m in maps.values()}
    for m in lb.maps(obj):
        ms = by_libbpf.get(lb.string(lb.lib.bpf_map__name(m)))
        if ms is None:
            continue
        if ms.max_entries != lb.lib.bpf_map__max_entries(m):
            _check(lb.lib.bpf_map__set_max_entries(m, ms.max_entries), f"map {ms.name!r}: max_entries")
        if ms.flags != lb.lib.bpf_map__map_flags(m):
            _check(lb.lib.bpf_map__set_map_flags(m, ms.flags), f"map {ms.name!r}: flags")
        if ms.internal and ms.section in sections:
            data = sections[ms.section]._bytes()
            cdata = lb.ffi.from_buffer(data)
            keep.append((data, cdata))
            _check(lb.lib.bpf_map__set_initial_value(m, cdata, len(data)), f"{ms.section} initial value")


def _check(ret: int, what: str) -> None:
    if ret:
        raise BpfError.from_errno(-ret, what)


def _load_error(name: str, programs: Namespace[ProgramSpec], maps: Namespace[MapSpec], err: int,
                lines: list[tuple[int, str]], log: str) -> BpfError:
    from . import failures  # explaining is for failures: not on every start
    from .verifier import explain_too_large, summarize_verifier_log

    text = "\n".join(t for _, t in lines)
    prog = ""
    m = re.search(_PROG_FAIL, text)
    if m:
        prog = m.group(1)
    if not log:
        logs = re.findall(_LOG, text)
        log = logs[-1] if logs else ""
    if prog and prog in programs:
        # fentry/fexit/lsm the kernel cannot do: say which feature is missing, not a bare EPERM
        from ..features import load_failure  # probing features is for failures, not every start

        unsupported = load_failure(programs[prog].section, prog, err)
        if unsupported is not None:
            return unsupported
    reasons = [t for lvl, t in lines if lvl == 0 and t.strip()]
    detail = "\n".join(reasons[-8:]) or "libbpf gave no details"
    # what was not found, which map or program was refused and why (the same words for every backend)
    explained = failures.from_libbpf_messages(name, programs, maps, err, [t for _, t in lines], log)
    if prog and log:
        head = f"{explained[0]}\n" if explained else ""
        return VerifierError(f"program {prog!r} of {name!r} was rejected by the verifier "
                             f"({_errno_name(err)}):\n{head}{summarize_verifier_log(log)}", err, log, prog)
    # over the instruction limit: the count says more than 'refused before verification'
    too_large = explain_too_large(err, programs[prog].insn_count) if prog in programs else None
    if explained is not None and too_large is None:
        return failures.load_error(name, explained[0], explained[1], detail, log)
    if err in (_errno.EPERM, _errno.EACCES) and not prog:
        return BpfPermissionError(f"loading {name!r} was refused ({_errno_name(err)}): {permission_hint()}."
                                  f"\n{detail}", err)
    if too_large is not None:  # refused before the verifier ran: no log, but a reason we can give
        detail = "\n".join(["  " + ln for ln in too_large.lines()] + [detail])
    return LoadError(f"loading {name!r} failed ({_errno_name(err)}):\n{detail}", err, log)


def _errno_name(err: int) -> str:
    return f"{_errno.errorcode.get(err, 'errno')} {err}"
