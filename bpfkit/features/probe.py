"""The probing machinery shared by every feature check: tiny programs loaded through raw ``bpf(2)``,
the kernel's own BTF enums, and the outcome type.

Example::

    fd, err, log = try_load(sc.BPF_PROG_TYPE_KPROBE)   # r0 = 0; exit
"""
from __future__ import annotations

import errno as _errno
import os
import struct
from dataclasses import dataclass
from typing import Union

from .. import _sys as sc
from ..btf import Kind
from ..btf.kernel_index import vmlinux_index
from ..errors import BpfError, BpfUsageError

__all__ = [
    "FeatureStatus", "insn", "RET0", "EXPECTED_ATTACH", "name_to_id", "btf_id", "try_load", "close_fd",
    "kernel_enum", "tracing_prog",
]

@dataclass(frozen=True)
class FeatureStatus:
    """Outcome of one probe: ``ok``, a human reason (why not, or how it was established) and,
    when it failed, the ``errno`` the probe saw (ENOENT for a missing PMU file, EPERM for a
    refused load...), which :func:`require` passes on in FeatureNotSupported.

    Example::

        st = features.status("kprobes")
        if not st:
            print(st.reason, st.errno)
    """

    name: str
    ok: bool
    reason: str
    errno: int = 0

    def __bool__(self) -> bool:
        return self.ok



# -- tiny programs -------------------------------------------------------------

def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_MOV_R0_0 = insn(0xB7)  # BPF_ALU64 | BPF_MOV | BPF_K
_EXIT = insn(0x95)
RET0 = _MOV_R0_0 + _EXIT


# expected_attach_type some program types insist on (enum bpf_attach_type values)
EXPECTED_ATTACH = {
    sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR: 10,  # BPF_CGROUP_INET4_CONNECT
    sc.BPF_PROG_TYPE_CGROUP_SOCKOPT: 21,  # BPF_CGROUP_GETSOCKOPT
    sc.BPF_PROG_TYPE_LIRC_MODE2: 16,  # BPF_LIRC_MODE2
    sc.BPF_PROG_TYPE_SK_LOOKUP: 36,  # BPF_SK_LOOKUP
    sc.BPF_PROG_TYPE_NETFILTER: 45,  # BPF_NETFILTER
    sc.BPF_PROG_TYPE_LSM: sc.BPF_LSM_MAC,
    sc.BPF_PROG_TYPE_TRACING: sc.BPF_TRACE_RAW_TP,
}

def name_to_id(name: Union[str, int], table: dict[int, str], kind: str) -> int:
    if isinstance(name, int):
        return name
    key = name.lower().removeprefix(f"bpf_{kind}_type_")
    for value, n in table.items():
        if n == key:
            return value
    raise BpfUsageError(f"unknown {kind} type {name!r}; known: {', '.join(sorted(table.values()))}")


def btf_id(name: str, kind_name: str) -> int:
    """Type id of ``name`` in vmlinux BTF, 0 if absent."""
    # the numpy index (cached on disk), not a full parse of vmlinux BTF into Python objects: about
    # a second, which every tool start-up that asks for a feature would otherwise pay
    try:
        return max(vmlinux_index().find(name, int(Kind[kind_name])), 0)
    except BpfError:
        return 0


def try_load(prog_type: int, insns: bytes = RET0, *, expected_attach_type: int = 0, attach_btf_id: int = 0,
              prog_flags: int = 0) -> tuple[int, int, str]:
    """(fd or -1, errno, verifier log). The caller closes fd."""
    try:
        fd, log = sc.prog_load(prog_type, insns, log_level=1, log_size=1 << 16, name="bpfkit_probe",
                               expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id,
                               prog_flags=prog_flags)
        return fd, 0, log
    except BpfError as e:
        msg = str(e)
        log = msg.split("\n", 1)[1] if "\n" in msg else ""
        return -1, e.errno, log


def close_fd(fd: int) -> None:
    if fd >= 0:
        os.close(fd)


def kernel_enum(enum_name: str) -> dict[str, int]:
    """The members of ``enum_name`` in the running kernel's BTF ({} if absent)."""
    try:
        idx = vmlinux_index()
        tid = idx.find(enum_name, int(Kind.ENUM))
        return {idx.str_at(off): value for off, value in idx.enum_values(tid)} if tid > 0 else {}
    except BpfError:
        return {}


def tracing_prog(attach_type: int, target: str, kind: str = "FUNC",
                  prog_type: int = sc.BPF_PROG_TYPE_TRACING) -> tuple[int, str, int]:
    """Load a tracing program for ``target``; (fd, "", 0) or (-1, why not, errno)."""
    target_id = btf_id(target, kind)
    if not target_id:
        return -1, f"{target} is not in the kernel's BTF", _errno.ENOENT
    fd, err, log = try_load(prog_type, expected_attach_type=attach_type, attach_btf_id=target_id)
    if fd >= 0:
        return fd, "", 0
    detail = log.strip().splitlines()[0] if log.strip() else ""
    return -1, f"{os.strerror(err)} (errno {err}){': ' + detail if detail else ''}", err

