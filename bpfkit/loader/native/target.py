"""The kernel an object is loaded into, as the loader sees it: its BTF (vmlinux, then modules, or
files given instead, e.g. another kernel's for ``bpfkit core-report``), the BTF kinds it accepts,
and the attach targets of tracing programs.

Everything is looked up lazily: an object without CO-RE relocations, typed ksyms or BTF-attached
programs never reads vmlinux BTF at all.

Example::

    t = Target()                              # the running kernel
    t.candidates("task_struct", (KIND_STRUCT,))
    t.attach_btf_id("sched_switch", sc.BPF_TRACE_RAW_TP)      # (btf id, module BTF fd or 0)
"""
from __future__ import annotations

import os
import struct
from typing import Optional

from ... import _sys as sc
from ...btf.index import (KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM64, KIND_FLOAT, KIND_FUNC, KIND_FUNC_PROTO,
                          KIND_INT, KIND_TYPE_TAG, KIND_TYPEDEF, KIND_VAR, BtfIndex)
from ...btf.kernel_index import file_index, module_indexes, vmlinux_index
from ...errors import BpfError
from .collect import kernel_version
from .core import Candidates

__all__ = ["Target", "all_btf_kinds_known", "btf_kind_supported", "KIND_PROBES"]


class Target:
    """Target BTF for CO-RE and attach lookups. ``btf_paths``: use these BTF files instead of the
    running kernel's (no module BTF then, as libbpf with a custom BTF path)."""

    def __init__(self, btf_paths: Optional[list[str]] = None) -> None:
        self.btf_paths = list(btf_paths or [])
        self._main: Optional[list[tuple[str, BtfIndex]]] = None
        self._modules: Optional[list[tuple[str, int, BtfIndex]]] = None
        self._module_fds: dict[int, int] = {}

    @property
    def name(self) -> str:
        """What the relocations were resolved against, for messages."""
        if self.btf_paths:
            return ", ".join(self.btf_paths)
        return f"kernel {os.uname().release}"

    def main(self) -> list[tuple[str, BtfIndex]]:
        if self._main is None:
            if self.btf_paths:
                self._main = [(os.path.basename(p.rstrip("/")) or p, file_index(p)) for p in self.btf_paths]
            else:
                self._main = [("vmlinux", vmlinux_index())]
        return self._main

    def modules(self) -> list[tuple[str, int, BtfIndex]]:
        if self._modules is None:
            self._modules = [] if self.btf_paths else list(module_indexes())
        return self._modules

    def candidates(self, name: str, kinds: tuple[int, ...]) -> Candidates:
        """CO-RE candidates: in the main BTF, else in module BTF (libbpf's order)."""
        out: Candidates = []
        for bname, idx in self.main():
            out += [(bname, idx, t) for t in idx.candidates(name, kinds)]
        if out or self.btf_paths:
            return out
        for mname, _, idx in self.modules():
            out += [(mname, idx, t) for t in idx.candidates(name, kinds)]
        return out

    def find(self, name: str, kind: int) -> tuple[int, Optional[int]]:
        """(type id, module BTF object id or None for vmlinux) of the first ``kind`` called ``name``;
        (-1, None) if absent (libbpf's find_ksym_btf_id / find_kernel_btf_id)."""
        for _, idx in self.main():
            tid = idx.find(name, kind)
            if tid > 0:
                return tid, None
        for _, btf_id, idx in self.modules():
            tid = idx.find(name, kind, own_only=True)
            if tid > 0:
                return tid, btf_id
        return -1, None

    def index_of(self, module_id: Optional[int]) -> BtfIndex:
        if module_id is None:
            return self.main()[0][1]
        return next(idx for _, bid, idx in self.modules() if bid == module_id)

    def module_fd(self, btf_id: int) -> int:
        """An fd of module BTF object ``btf_id`` (kept open until :meth:`close`)."""
        fd = self._module_fds.get(btf_id)
        if fd is None:
            fd = self._module_fds[btf_id] = sc.btf_fd_by_id(btf_id)
        return fd

    def attach_btf_id(self, target: str, attach_type: int) -> tuple[int, int]:
        """(BTF id, module BTF fd or 0) of a tracing program's target, by libbpf's naming: raw
        tracepoints are ``btf_trace_<name>`` typedefs, LSM hooks ``bpf_lsm_<name>`` and iterators
        ``bpf_iter_<name>`` functions, anything else the function itself. (-1, 0) if absent."""
        prefix, kind = {sc.BPF_TRACE_RAW_TP: ("btf_trace_", KIND_TYPEDEF), sc.BPF_LSM_MAC: ("bpf_lsm_", KIND_FUNC),
                        sc.BPF_LSM_CGROUP: ("bpf_lsm_", KIND_FUNC),
                        sc.BPF_TRACE_ITER: ("bpf_iter_", KIND_FUNC)}.get(attach_type, ("", KIND_FUNC))
        tid, module = self.find(prefix + target, kind)
        if tid < 0:
            return -1, 0
        return tid, (self.module_fd(module) if module is not None else 0)

    def close(self) -> None:
        for fd in self._module_fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._module_fds.clear()


# -- which BTF kinds the kernel accepts -------------------------------------------------------------

def _blob(types: list[bytes], strings: bytes) -> bytes:
    body = b"".join(types)
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(strings)) + body + strings


def _t(name: int, kind: int, vlen: int, size_type: int, *extra: int, kflag: int = 0) -> bytes:
    return struct.pack(f"<III{len(extra)}I", name, (kflag << 31) | (kind << 24) | vlen, size_type, *extra)


_SINT32 = (1 << 24) | 32  # an int's encoding word: signed, 32 bits
_PROTO = _t(0, KIND_FUNC_PROTO, 1, 0, 7, 1)  # void (int a)
KIND_PROBES = {
    # feature -> the smallest BTF that uses it (as libbpf probes them)
    "func": _blob([_t(1, KIND_INT, 0, 4, _SINT32), _PROTO, _t(5, KIND_FUNC, 0, 2)], b"\0int\0x\0a\0"),
    "global_func": _blob([_t(1, KIND_INT, 0, 4, _SINT32), _PROTO, _t(5, KIND_FUNC, 1, 2)], b"\0int\0x\0a\0"),
    "datasec": _blob([_t(0, KIND_INT, 0, 4, _SINT32), _t(1, KIND_VAR, 0, 1, 0), _t(3, KIND_DATASEC, 1, 4, 2, 0, 4)],
                     b"\0x\0.data\0"),
    "float": _blob([_t(1, KIND_FLOAT, 0, 4)], b"\0float\0"),
    "decl_tag": _blob([_t(0, KIND_INT, 0, 4, _SINT32), _t(1, KIND_VAR, 0, 1, 0),
                       _t(1, KIND_DECL_TAG, 0, 2, 0xFFFFFFFF)], b"\0tag\0"),
    "type_tag": _blob([_t(0, KIND_INT, 0, 4, _SINT32), _t(1, KIND_TYPE_TAG, 0, 1), _t(0, 2, 0, 2)], b"\0tag\0"),
    "enum64": _blob([_t(1, KIND_ENUM64, 0, 8)], b"\0enum64\0"),
}
_probed: dict[str, bool] = {}


def all_btf_kinds_known() -> bool:
    """Linux 6.0 on accepts every BTF kind (ENUM64 was the last): nothing to probe or sanitize."""
    return kernel_version() >= 6 << 16


def btf_kind_supported(feature: str) -> bool:
    """Whether the kernel accepts BTF with ``feature`` (a key of :data:`KIND_PROBES`), probed once.
    Linux 6.0 has every one (ENUM64 was the last): no probe there."""
    if all_btf_kinds_known():
        return True
    ok = _probed.get(feature)
    if ok is None:
        attr_ok = True
        try:
            fd = sc.btf_load(KIND_PROBES[feature], f"probe of BTF {feature}")
            os.close(fd)
        except BpfError:
            attr_ok = False
        ok = _probed[feature] = attr_ok
    return ok
