"""capable: security capability checks (cap_capable) with their verdict, as bcc's capable plus the
VERDICT column of libbpf-tools' version.

Linux 6.14+ reports checks through the ``capability:cap_capable`` tracepoint, after the check, with
its result: that is used when present. It does not say whether the check is audited, so there the
AUDIT column shows ``-`` and every check is reported (as bcc's ``-v``). Older kernels need a
kprobe and a kretprobe on ``cap_capable()``, which also give AUDIT and INSETID; a kernel with
neither raises :class:`bpfkit.FeatureNotSupported`.

Example::

    $ sudo bpfkit capable
    $ sudo bpfkit capable -x -p 1234 --json
    $ sudo bpfkit capable -K --unique      # each distinct kernel path to a check, once

    from bpfkit.tools import capable
    with capable.stream(pid=1234, duration=5) as s:
        for ev in (e for b in s for e in capable.decode(b)):
            print(ev["name"], ev["verdict"])
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import BpfError, BpfUsageError, FeatureNotSupported
from ..features import check
from ..maps import StackTraceMap
from ..symbols import Symbolizer
from .common import Scope, add_duration, add_json, add_scope, parser, print_json, run_tool
from .streaming import Clock, EventStream, configure, follow, has_tracepoint

__all__ = ["CAPABILITIES", "PROBES", "probe_kind", "stream", "decode", "stacks", "main"]

#: Capability names by number (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

#: The two ways in: the programs each loads.
PROBES = {"tracepoint": ("on_cap_capable",), "kprobe": ("on_cap_entry", "on_cap_return")}


def probe_kind(prefer: Optional[str] = None) -> str:
    """``"tracepoint"`` where the kernel has ``capability:cap_capable``, else ``"kprobe"`` if it has
    kprobes; FeatureNotSupported naming what is missing otherwise (or when ``prefer`` asks for a
    way this kernel lacks)."""
    if prefer not in (None, *PROBES):
        raise BpfUsageError(f"probe {prefer!r}: one of {', '.join(PROBES)}")
    has_tp = has_tracepoint("capability", "cap_capable")
    if prefer in (None, "tracepoint") and has_tp:
        return "tracepoint"
    if prefer == "tracepoint":
        raise FeatureNotSupported("capable: this kernel has no capability:cap_capable tracepoint (Linux 6.14+)",
                                  errno.ENOENT, feature="tracepoint capability:cap_capable")
    ok, why = check("kprobes")[:2]
    if not ok and prefer == "kprobe":
        raise FeatureNotSupported(f"capable --probe kprobe: {why}", errno.ENOENT, feature="kprobes")
    if not ok:
        raise FeatureNotSupported(
            "capable needs the capability:cap_capable tracepoint (Linux 6.14+) or a kprobe on cap_capable(); "
            f"this kernel has neither ({why})", errno.ENOENT, feature="kprobes")
    return "kprobe"


def stream(*, verbose: bool = False, pid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, duration: Optional[float] = None, probe: Optional[str] = None,
           kernel_stack: bool = False, user_stack: bool = False, clock: Optional[Clock] = None) -> EventStream:
    """Start tracing capability checks (this process's own are left out); iterate for numpy batches
    of ``struct cap_event`` (``cap``, ``ret``: 0 granted / -EPERM denied, ``audit``...). ``verbose``
    includes non-audited checks (the kprobe path; the tracepoint path reports all). ``probe``
    forces "tracepoint" or "kprobe". ``kernel_stack``/``user_stack`` record each check's stack ids
    (read them with :func:`stacks` while the stream is open).

    Example::

        with stream(pid=child.pid) as s:
            ...
            [(e["name"], e["verdict"]) for e in decode(s.drain())]
    """
    kind = probe_kind(probe)
    spec = configure("capable", Scope(pid=pid, comm=comm, cgroup=cgroup), self_pid=os.getpid(),
                     audit_only=not verbose, kernel_stack=kernel_stack, user_stack=user_stack)
    for prog in spec.programs.values():
        prog.autoload = prog.name in PROBES[kind]
    return EventStream(spec, duration=duration, counters=("missed",), clock=clock)


def decode(batch: np.ndarray, clock: Optional[Clock] = None) -> list[dict[str, Any]]:
    """One dict per check: ``time``, ``uid``, ``pid``, ``tid``, ``comm``, ``cap``, ``name``,
    ``audit`` (1/0, None unknown), ``insetid`` (1/0, None unknown), ``ret``, ``verdict``
    ("allow"/"deny"), ``kernel_stack_id`` / ``user_stack_id`` (-1: not recorded, other negatives:
    bpf_get_stackid's -errno)."""
    clock = clock or Clock()
    out = []
    for r in batch:
        cap, audit, insetid = int(r["cap"]), int(r["audit"]), int(r["insetid"])
        out.append({"time": float(clock.wall(int(r["ts"]))), "uid": int(r["uid"]), "pid": int(r["pid"]),
                    "tid": int(r["tid"]), "comm": r["comm"].decode(errors="replace"), "cap": cap,
                    "name": CAPABILITIES[cap] if 0 <= cap < len(CAPABILITIES) else "?",
                    "audit": None if audit < 0 else audit, "insetid": None if insetid < 0 else insetid,
                    "ret": int(r["ret"]), "verdict": "allow" if int(r["ret"]) == 0 else "deny",
                    "kernel_stack_id": int(r["kernel_stack_id"]), "user_stack_id": int(r["user_stack_id"])})
    return out


def stacks(s: EventStream, ev: dict[str, Any], sym: Symbolizer) -> dict[str, Optional[list[str]]]:
    """The symbolized ``kernel`` and ``user`` stacks of a decoded check (innermost frame first;
    None where the kernel gave no stack, as bcc's "[Missed ... Stack]"); only the kinds recorded.

    Example::

        with stream(kernel_stack=True) as s:
            for ev in decode(s.drain()):
                print(stacks(s, ev, Symbolizer())["kernel"])
    """
    out: dict[str, Optional[list[str]]] = {}
    smap = s.obj.maps.stacks
    assert isinstance(smap, StackTraceMap)
    for kind in ("kernel", "user"):
        sid = ev[f"{kind}_stack_id"]
        if sid == -1 and not int(getattr(s.obj.rodata, f"{kind}_stack")):
            continue
        if sid < 0:
            out[kind] = None
            continue
        try:
            addrs = smap.addresses(sid)
        except BpfError:
            out[kind] = None
            continue
        if kind == "kernel":
            out[kind] = sym.kernel(addrs).labels()
        else:
            try:
                out[kind] = sym.user(ev["pid"], addrs).labels()
            except BpfError:  # the process is gone: its mappings with it
                out[kind] = ["[unknown]"] * len(addrs)
    return out


EXAMPLES = """examples:
    bpfkit capable             # trace capability checks
    bpfkit capable -v          # verbose: include non-audit checks (kprobe path; the tracepoint shows all)
    bpfkit capable -p 181      # only trace PID 181
    bpfkit capable -x          # extra fields: show TID and INSETID columns
    bpfkit capable -K          # add kernel stacks to trace
    bpfkit capable -U          # add user-space stacks to trace
    bpfkit capable --unique    # don't repeat stacks for the same pid
    bpfkit capable --json      # one JSON object per check
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("capable", "Trace security capability checks", EXAMPLES)
    p.add_argument("-v", "--verbose", action="store_true", help="include non-audit checks")
    p.add_argument("-x", "--extra", action="store_true", help="show extra fields in TID and INSETID columns")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("--unique", action="store_true", help="don't repeat stacks for the same pid")
    p.add_argument("--probe", choices=sorted(PROBES), help="how to trace (default: the tracepoint where the "
                   "kernel has it, else a kprobe)")
    add_scope(p, comm="--comm")
    add_duration(p)
    add_json(p)
    return p


def _opt(v: Optional[int]) -> str:
    return "-" if v is None else str(v)


def _body(args: argparse.Namespace) -> int:
    clock = Clock()
    s = stream(verbose=args.verbose, pid=args.pid, comm=args.comm, cgroup=args.cgroup, duration=args.duration,
               probe=args.probe, kernel_stack=args.kernel_stack, user_stack=args.user_stack, clock=clock)
    sym = Symbolizer()
    seen: set[tuple[int, int, int, int]] = set()
    if args.extra:
        head = "%-9s %-6s %-6s %-6s %-16s %-4s %-20s %-6s %-7s %s" % (
            "TIME", "UID", "PID", "TID", "COMM", "CAP", "NAME", "AUDIT", "INSETID", "VERDICT")
    else:
        head = "%-9s %-6s %-6s %-16s %-4s %-20s %-6s %s" % ("TIME", "UID", "PID", "COMM", "CAP", "NAME", "AUDIT",
                                                            "VERDICT")

    def show(batch: np.ndarray) -> int:
        n = 0
        for ev in decode(batch, clock):
            if args.unique:  # bcc: each (process, capability, stacks) once
                key = (ev["pid"], ev["cap"], ev["kernel_stack_id"], ev["user_stack_id"])
                if key in seen:
                    continue
                seen.add(key)
            n += 1
            st = stacks(s, ev, sym) if args.kernel_stack or args.user_stack else {}
            if args.json:
                print_json({**ev, **{f"{k}_stack": v for k, v in st.items()}})
                continue
            t = time.strftime("%H:%M:%S", time.localtime(ev["time"]))
            if args.extra:
                print("%-9s %-6d %-6d %-6d %-16s %-4d %-20s %-6s %-7s %s" % (
                    t, ev["uid"], ev["pid"], ev["tid"], ev["comm"], ev["cap"], ev["name"], _opt(ev["audit"]),
                    "N/A" if ev["insetid"] is None else ev["insetid"], ev["verdict"]))
            else:
                print("%-9s %-6d %-6d %-16s %-4d %-20s %-6s %s" % (
                    t, ev["uid"], ev["pid"], ev["comm"], ev["cap"], ev["name"], _opt(ev["audit"]), ev["verdict"]))
            for kind, frames in st.items():
                if frames is None:
                    print(f"    [Missed {kind.capitalize()} Stack]")
                for f in frames or ():
                    print(f"        {f}")
        return n

    follow("capable", s, show, header=head, json_mode=args.json, summary=lambda n: f"capable: {n} checks shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit capable [-v] [-x] [-K] [-U] [--unique] [--probe tracepoint|kprobe] [-p PID] [--comm COMM]
    [--cgroup PATH] [-d S] [--json]``"""
    return run_tool("capable", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
