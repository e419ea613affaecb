"""BPF_PROG_LOAD of one linked program, and the error a refusal becomes.

The first attempt asks for no verifier log (the kernel verifies faster without); a refused program
is loaded again with ``log_level`` 1 and a buffer that grows while the kernel reports ENOSPC, so
:class:`~bpfkit.errors.VerifierError` carries the whole log. When the instruction the verifier
stopped at is one a CO-RE relocation poisoned, the error says which relocation, which field
(``task_struct->__state``) and on which kernel it could not be resolved.

Example::

    fd = load_program(req)     # a LoadRequest; raises VerifierError / LoadError / FeatureNotSupported
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import re
from dataclasses import dataclass
from typing import Optional

from ... import _sys as sc
from ...errors import BpfError, BpfPermissionError, LoadError, VerifierError
from ...sections import find as find_section
from . import core
from .relocate import Linked

__all__ = ["LoadRequest", "load_program", "explain_poison", "bind_map", "LOG_START", "LOG_MAX"]

LOG_START = 1 << 18
LOG_MAX = 1 << 30
_BTF_ATTACHED = (sc.BPF_PROG_TYPE_TRACING, sc.BPF_PROG_TYPE_LSM, sc.BPF_PROG_TYPE_EXT)
_POISON_LINE = re.compile(r"^(\d+): \(85\) call unknown#" + str(core.POISON_IMM), re.M)


@dataclass
class LoadRequest:
    """Everything one BPF_PROG_LOAD takes."""

    obj_name: str
    name: str
    section: str
    prog_type: int
    expected_attach_type: int
    flags: int
    license: str
    kern_version: int
    linked: Linked
    btf_fd: int
    func_rec_size: int
    line_rec_size: int
    fd_array: list[int]
    attach_btf_id: int = 0
    attach_btf_obj_fd: int = 0
    target_name: str = ""


def _errno_name(err: int) -> str:
    return f"{_errno.errorcode.get(err, 'errno')} {err}"


def _attempt(req: LoadRequest, log_level: int, log_size: int) -> tuple[int, int, str, int]:
    """(fd or -1, errno, log, size the kernel says the log needs)."""
    code, code_keep = sc.bytes_addr(req.linked.insns)  # a bytearray: its own buffer, no copy
    lic, lic_keep = sc.bytes_addr(req.license.encode() + b"\0")
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = sc.ProgLoadAttr(prog_type=req.prog_type, insn_cnt=len(req.linked.insns) // 8, insns=code,
                           license=lic, log_level=log_level if log else 0,
                           log_size=log_size if log else 0, log_buf=ctypes.addressof(log) if log else 0,
                           kern_version=req.kern_version, prog_flags=req.flags,
                           prog_name=req.name.encode()[: sc.BPF_OBJ_NAME_LEN - 1],
                           expected_attach_type=req.expected_attach_type, attach_btf_id=req.attach_btf_id,
                           attach_btf_obj_fd=req.attach_btf_obj_fd)
    keep: list[object] = [code_keep, lic_keep, log]
    if req.btf_fd >= 0:
        attr.prog_btf_fd = req.btf_fd
        if req.linked.n_func_info:
            fi, fi_keep = sc.bytes_addr(req.linked.func_info)
            keep.append(fi_keep)
            attr.func_info, attr.func_info_cnt = fi, req.linked.n_func_info
            attr.func_info_rec_size = req.func_rec_size
        if req.linked.n_line_info:
            li, li_keep = sc.bytes_addr(req.linked.line_info)
            keep.append(li_keep)
            attr.line_info, attr.line_info_cnt = li, req.linked.n_line_info
            attr.line_info_rec_size = req.line_rec_size
    if req.fd_array:
        arr = (ctypes.c_int32 * len(req.fd_array))(*req.fd_array)
        keep.append(arr)
        attr.fd_array = ctypes.addressof(arr)
    ret, err = sc.prog_load_errno(attr)
    text = log.value.decode(errors="replace") if log is not None else ""
    del keep
    return ret, err, text, int(attr.log_true_size)


def load_program(req: LoadRequest) -> int:
    """Load; returns the program fd. Raises VerifierError, LoadError, FeatureNotSupported."""
    if req.prog_type == sc.BPF_PROG_TYPE_UNSPEC:
        raise LoadError(f"program {req.name!r} of {req.obj_name!r}: SEC({req.section!r}) names no program type "
                        "bpfkit knows (e.g. SEC(\"tracepoint/sched/sched_switch\"), SEC(\"kprobe/do_sys_openat2\")); "
                        "set spec.programs[...].prog_type before load", _errno.EINVAL)
    fd, err, log, _ = _attempt(req, 0, 0)
    if fd >= 0:
        return fd
    size = LOG_START
    while True:
        fd, err, log, true_size = _attempt(req, sc.BPF_LOG_LEVEL1, size)
        if fd >= 0:
            return fd  # a flaky first refusal (e.g. ENOMEM under memory pressure): it loaded now
        if err != _errno.ENOSPC or size >= LOG_MAX:
            break
        size = min(LOG_MAX, max(size * 4, true_size + 1))
    raise _error(req, err, log)


def _error(req: LoadRequest, err: int, log: str) -> BpfError:
    from ...features import load_failure  # probing features is for failures, not every start
    from ..verifier import explain_too_large, summarize_verifier_log

    unsupported = load_failure(req.section, req.name, err)
    if unsupported is not None:
        return unsupported
    if err == _errno.EAGAIN:  # (what the log holds is where the verifier was when it gave up)
        return LoadError(f"loading program {req.name!r} of {req.obj_name!r} was interrupted by a signal "
                         f"{sc.PROG_LOAD_ATTEMPTS} times in a row (EAGAIN): the verifier stops when one "
                         "arrives. Load again, or keep frequent timers (a profiler's, setitimer) quiet while "
                         "loading", err, log)
    poison = explain_poison(req.linked, log, req.target_name)
    head = f"program {req.name!r} of {req.obj_name!r} was rejected by the verifier ({_errno_name(err)})"
    if poison:
        return VerifierError(f"{head}: {poison}\n{summarize_verifier_log(log, errno=err)}", err, log, req.name)
    if log.strip():
        return VerifierError(f"{head}:\n{summarize_verifier_log(log, errno=err)}", err, log, req.name)
    if err in (_errno.EPERM, _errno.EACCES):
        return BpfPermissionError(f"loading program {req.name!r} of {req.obj_name!r} was refused "
                                  f"({_errno_name(err)}): run as root or with CAP_BPF+CAP_PERFMON", err)
    too_large = explain_too_large(err, len(req.linked.insns) // 8)
    why = ("\n".join("  " + ln for ln in too_large.lines()) if too_large is not None else
           f"  {os.strerror(err)}; the kernel gave no verifier log")
    return LoadError(f"loading program {req.name!r} of {req.obj_name!r} failed ({_errno_name(err)}):\n{why}", err, log)


def explain_poison(linked: Linked, log: str, target_name: str) -> str:
    """If the verifier stopped at an instruction a CO-RE relocation poisoned, say which and why."""
    hits = [int(m.group(1)) for m in _POISON_LINE.finditer(log)]
    if not hits:
        return ""
    at = hits[-1]
    for idx, pz in linked.poisoned:
        if idx in (at, at - 1):
            res = pz.result
            why = f": {res.reason}" if res.reason else ""
            func = next((name for start, name in sorted(linked.layout, reverse=True) if start <= at), pz.prog)
            return (f"instruction #{at} (in {func}) uses CO-RE relocation #{pz.number} of section "
                    f"'{pz.section}' <{core.relo_kind_name(pz.relo.kind)}> {res.describe()}, which could not be "
                    f"resolved on {target_name}{why}. Guard the access with bpf_core_field_exists() / "
                    "bpf_core_type_exists() or read it through a ___flavor type that matches this kernel")
    return f"instruction #{at} was poisoned by a failed CO-RE relocation"


def btf_attach(prog_type: int, section: str) -> Optional[str]:
    """The target a BTF-attached program (tp_btf/fentry/fexit/fmod_ret/lsm/iter) names after '/',
    '' if it names none, None for other program types."""
    if prog_type not in _BTF_ATTACHED:
        return None
    return section.partition("/")[2]


def section_flags(prog_type: int, section: str) -> int:
    """BPF_PROG_LOAD flags the section implies: sleepable ``.s`` forms, XDP fragments."""
    m = find_section(section)
    flags = m.definition.prog_flags if m is not None else 0
    if prog_type == sc.BPF_PROG_TYPE_XDP and section.startswith("xdp.frags"):
        flags |= sc.BPF_F_XDP_HAS_FRAGS
    return flags


def bind_map(prog_fd: int, map_fd: int) -> None:
    """BPF_PROG_BIND_MAP; failures are ignored (as libbpf: an old kernel simply lacks it)."""
    sc.bpf_errno(sc.BPF_PROG_BIND_MAP, sc.ProgBindMapAttr(prog_fd=prog_fd, map_fd=map_fd))
