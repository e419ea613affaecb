"""capable against a fixture that opens a raw socket as root (CAP_NET_RAW granted), drops to uid
65534 (a CAP_SETUID check, granted) and tries again (CAP_NET_RAW denied): exactly those checks with
those verdicts, by the tracepoint on kernels that have it (6.14+) and by kprobe/kretprobe on
cap_capable in the guest kernels (`guest`-marked), where AUDIT and INSETID are known too."""
from __future__ import annotations

import errno
import os

import pytest

from bpfkit import FeatureNotSupported, features
from bpfkit.symbols import Symbolizer
from bpfkit.testing import proc_triggers
from bpfkit.tools import capable
from bpfkit.tools.streaming import has_tracepoint

from _tool_cli import Tool

pytestmark = pytest.mark.root
KPROBES = features.check("kprobes")
HAS_TP = has_tracepoint("capability", "cap_capable")


def _checks(probe: str) -> tuple[list[dict], int]:
    with proc_triggers.raw_sockets() as t, capable.stream(pid=t.pid, probe=probe) as s:
        res = t.run()
        got = capable.decode(s.drain())
    assert (res.value("root"), res.value("nobody")) == (0, -errno.EPERM)
    assert all((e["pid"], e["comm"]) == (t.pid, t.comm) for e in got)
    return got, t.pid


@pytest.mark.skipif(not HAS_TP, reason="no capability:cap_capable tracepoint (Linux 6.14+)")
def test_capable_tracepoint_sees_the_checks_with_their_verdicts() -> None:
    got, _ = _checks("tracepoint")
    assert [(e["name"], e["cap"], e["verdict"], e["ret"], e["uid"]) for e in got] == [
        ("CAP_NET_RAW", 13, "allow", 0, 0),
        ("CAP_SETUID", 7, "allow", 0, 0),
        ("CAP_NET_RAW", 13, "deny", -errno.EPERM, 65534),
    ]
    assert all(e["audit"] is None and e["insetid"] is None for e in got)  # the tracepoint does not say


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_capable_kprobe_sees_the_checks_with_verdict_audit_and_insetid() -> None:
    got, _ = _checks("kprobe")
    assert [(e["name"], e["verdict"], e["ret"], e["uid"], e["audit"], e["insetid"]) for e in got] == [
        ("CAP_NET_RAW", "allow", 0, 0, 1, 0),
        ("CAP_SETUID", "allow", 0, 0, 1, 1),      # setresuid checks with CAP_OPT_INSETID
        ("CAP_NET_RAW", "deny", -errno.EPERM, 65534, 1, 0),
    ]


@pytest.mark.skipif(KPROBES[0], reason="this kernel has kprobes")
def test_capable_without_kprobes_names_the_missing_feature() -> None:
    with pytest.raises(FeatureNotSupported) as e:
        capable.stream(probe="kprobe")
    assert e.value.feature == "kprobes" and "CONFIG_KPROBES" in str(e.value)


def test_capable_command_columns_and_json() -> None:
    with proc_triggers.raw_sockets() as t, Tool(["capable", "-x", "-p", str(t.pid)]) as tool:
        assert tool._out.decode().split() == ["TIME", "UID", "PID", "TID", "COMM", "CAP", "NAME", "AUDIT", "INSETID",
                                              "VERDICT"]
        t.run()
        fin = tool.stop()
    assert fin.rc == 0, fin.stderr
    rows = [line.split() for line in fin.lines[1:]]
    assert [(r[1], r[5], r[6], r[-1]) for r in rows] == [("0", "13", "CAP_NET_RAW", "allow"),
                                                         ("0", "7", "CAP_SETUID", "allow"),
                                                         ("65534", "13", "CAP_NET_RAW", "deny")]
    with proc_triggers.raw_sockets() as t, Tool(["capable", "--json", "-p", str(t.pid)], ready_on_stderr=True) as tool:
        t.run()
        fin = tool.stop()
    assert [(e["name"], e["verdict"]) for e in fin.json()] == [("CAP_NET_RAW", "allow"), ("CAP_SETUID", "allow"),
                                                              ("CAP_NET_RAW", "deny")]


def test_capable_stacks_name_the_kernel_and_user_paths_to_each_check() -> None:
    sym = Symbolizer()
    with proc_triggers.raw_sockets() as t, capable.stream(pid=t.pid, kernel_stack=True, user_stack=True) as s:
        sym.remember(t.pid)  # its libc stays nameable after it exits
        t.run()
        got = [(e, capable.stacks(s, e, sym)) for e in capable.decode(s.drain())]
    assert [e["name"] for e, _ in got] == ["CAP_NET_RAW", "CAP_SETUID", "CAP_NET_RAW"]
    for e, st in got:
        kernel, user = st["kernel"], st["user"]
        assert kernel is not None and user is not None, e
        assert kernel[0] == "cap_capable"
        assert "__sys_socket" in kernel if e["name"] == "CAP_NET_RAW" else any("setresuid" in f for f in kernel)
        # the innermost user frame is the libc wrapper making the system call
        assert user[0] in (("socket", "__socket") if e["name"] == "CAP_NET_RAW" else ("setresuid", "__setresuid"))
    assert got[0][0]["kernel_stack_id"] == got[2][0]["kernel_stack_id"]  # one stack stored once


def test_capable_command_kernel_stacks_unique() -> None:
    with proc_triggers.raw_sockets() as t, Tool(["capable", "-K", "--unique", "-p", str(t.pid)]) as tool:
        t.run()
        fin = tool.stop()
    assert fin.rc == 0, fin.stderr
    rows = [line.split() for line in fin.lines[1:] if not line.startswith(" ")]
    # the denied CAP_NET_RAW check repeats the first one's process, capability and stack: not shown again
    assert [(r[5], r[-1]) for r in rows] == [("CAP_NET_RAW", "allow"), ("CAP_SETUID", "allow")]
    frames = [line.strip() for line in fin.lines[1:] if line.startswith("        ")]
    assert frames[0] == "cap_capable" and "__sys_socket" in frames
