"""bpfkit.trace() and ``bpfkit trace`` against a fixture making a known number of calls with known
arguments: every event, exact values and strings, filters that drop exactly what they should."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bpfkit
from bpfkit.probes.spec import ProbeSpecError
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root

NAMES = [b"alpha", b"beta", b"gamma"]
BPFKIT = str(Path(sys.executable).with_name("bpfkit"))


def target() -> str:
    return str(fixtures.build_fixture("oneliner_target"))


def collect(probe: str, n1: int, n2: int = 0, *extra: str, **kw: Any) -> tuple[np.ndarray, str]:
    """Every event of ``probe`` while the fixture runs (it starts once the probe is attached)."""
    with fixtures.spawn(target(), str(n1), str(n2), *extra) as proc:
        batches = list(bpfkit.trace(probe.replace("TARGET", target()), pid=proc.pid, timeout=0.5,
                                    on_attached=proc.release, **kw))
        out = proc.finish()
    if not batches:
        return np.zeros(0), out
    return np.concatenate(batches), out


def test_uprobe_arguments_and_strings_exactly() -> None:
    n = 12
    ev, out = collect("p:TARGET:ol_f1(int i, const char *name)", n)
    assert out.split()[:2] == ["done", str(sum(2 * i - 3 for i in range(n)))]
    assert ev["i"].tolist() == list(range(n))
    assert ev["name"].tolist() == [NAMES[i % 3] for i in range(n)]
    assert ev["i"].dtype == np.dtype("<i4") and ev["name"].dtype == np.dtype("S80")
    assert set(ev["comm"].tolist()) == {b"oneliner_target"}
    assert set(ev["pid"].tolist()) == set(ev["tid"].tolist()) and len(set(ev["pid"].tolist())) == 1
    assert np.all(np.diff(ev["ts"].astype(np.int64)) > 0)
    assert ev["arg1"].tolist() == list(range(n))  # the raw register too


def test_bpf_filter_drops_exactly_and_python_filter_after_it() -> None:
    n = 30
    probe = "p:TARGET:ol_f1(int i, const char *name)"
    with fixtures.spawn(target(), str(n), "0") as proc:
        gen = bpfkit.trace(probe.replace("TARGET", target()), filter='i >= 10 && i % 2 == 0 && name == "beta"',
                           pid=proc.pid, timeout=0.5, on_attached=proc.release)
        ev = np.concatenate(list(gen))
        proc.finish()
    want = [i for i in range(10, n) if i % 2 == 0 and i % 3 == 1]
    assert ev["i"].tolist() == want
    assert ev["name"].tolist() == [b"beta"] * len(want)


def test_bpf_side_filter_counts_what_it_dropped() -> None:
    from bpfkit.probes.spec import parse_probe
    from bpfkit.tools.common import Scope
    from bpfkit.tools.oneliner import Tracer, build_plan

    n = 25
    plan = build_plan(parse_probe(f"p:{target()}:ol_f1(int i, const char *name)"), filter="i > 19 && i != 22")
    assert len(plan.conds) == 2 and plan.py_filter is None
    with fixtures.spawn(target(), str(n), "0") as proc:
        with Tracer([plan], scope=Scope(pid=proc.pid)) as t:
            proc.release()
            proc.finish()
            ev = np.concatenate([b for _, b in t.batches(timeout=0.3)])
            assert t.filtered == n - 4  # events that never left the kernel
            assert t.dropped == 0
    assert ev["i"].tolist() == [20, 21, 23, 24]


def test_return_values_latency_and_entry_arguments() -> None:
    n = 9
    ev, _ = collect("r:TARGET:ol_ret", n)
    # rax as the function left it: an int return is its low 32 bits (the upper ones are zero)
    assert ev["retval"].astype(np.int32).tolist() == [2 * i - 3 for i in range(n)]
    assert ev["retval"].tolist()[:2] == [2**32 - 3, 2**32 - 1]
    ev, _ = collect("r:TARGET:ol_ret(int x)", n, filter="$latency > 0 && $entry(x) >= 4")
    assert ev["entry__x"].tolist() == list(range(4, n))
    assert ev["retval"].tolist() == [2 * i - 3 for i in range(4, n)]  # all >= 0 here
    assert np.all(ev["latency"] > 0)


def test_usdt_arguments_and_string() -> None:
    n = 7
    ev, _ = collect("u:TARGET:oneliner:tick", n, strings={"arg2"})
    assert ev["arg1"].tolist() == list(range(n))
    assert ev["arg2__str"].tolist() == [NAMES[i % 3] for i in range(n)]
    ev, _ = collect("usdt:TARGET:tick", n, filter='arg1 > 2 && (char *)arg2 == "alpha"')
    assert ev["arg1"].tolist() == [i for i in range(3, n) if i % 3 == 0]


def test_tracepoint_fields_and_user_string() -> None:
    n = 6
    with tempfile.NamedTemporaryFile(prefix="bpfkit-oneliner-") as f:
        ev, _ = collect("t:syscalls:sys_enter_openat", n, 0, f.name, filter=f'filename == "{f.name}"')
        assert ev["filename"].tolist() == [f.name.encode()] * n
        assert ev["dfd"].tolist() == [-100] * n  # AT_FDCWD, read as the declared int
        assert ev["flags"].tolist() == [os.O_RDONLY | os.O_CLOEXEC] * n
        ev, _ = collect("tracepoint:syscalls:sys_exit_openat", n, 0, f.name, filter="ret >= 0")
        assert len(ev) == n and np.all(ev["ret"] >= 3)


def test_data_loc_string_of_a_tracepoint() -> None:
    exe = target()
    batches = []
    gen = bpfkit.trace("t:sched:sched_process_exec", filter=f'filename == "{exe}"', timeout=0.5,
                       on_attached=lambda: [subprocess.run([exe, "0", "0"], input=b"\n", capture_output=True)
                                            for _ in range(3)])
    for b in gen:
        batches.append(b)
    ev = np.concatenate(batches)
    assert ev["filename"].tolist() == [exe.encode()] * 3
    assert np.all(ev["args.pid"] == ev["pid"]) and np.all(ev["old_pid"] == ev["pid"])
    assert ev["comm"].tolist() == [b"oneliner_target"] * 3


def test_max_events_and_errors_with_a_caret() -> None:
    ev, _ = collect("p:TARGET:ol_f2(long size)", 0, 50, max_events=20)
    assert ev["size"].tolist() == [1 << (i % 8) for i in range(20)]
    with pytest.raises(ProbeSpecError) as exc:
        list(bpfkit.trace(f"p:{target()}:ol_f9"))
    assert "no function 'ol_f9'" in str(exc.value) and "ol_f1" in exc.value.hint


def _run_cli(args: list[str], n1: int, n2: int = 0, *extra: str) -> tuple[list[str], str]:
    """``bpfkit trace ARGS -p <fixture>``: its stdout lines once the fixture ran."""
    with fixtures.spawn(target(), str(n1), str(n2), *extra) as proc:
        cli = subprocess.Popen([BPFKIT, "trace", "-p", str(proc.pid), *[a.replace("TARGET", target()) for a in args]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert cli.stdout is not None
            header = cli.stdout.readline()  # printed once attached
            proc.release()
            proc.finish()
            out, err = cli.communicate(timeout=30)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    return [header.rstrip("\n")] + out.splitlines(), err


def test_trace_cli_prints_bcc_lines() -> None:
    lines, err = _run_cli(['p:TARGET:ol_f1(int i, char *name) (i % 2 == 1) "i=%d name=%s", i, name', "-M", "5"], 20)
    assert lines[0].split() == ["PID", "TID", "COMM", "FUNC", "-"]
    rows = lines[1:]
    assert len(rows) == 5, (lines, err)
    for k, row in enumerate(rows):
        pid, tid, comm, func, msg = row.split(None, 4)
        assert (comm, func, msg) == ("oneliner_target", "ol_f1", f"i={2 * k + 1} name={NAMES[(2 * k + 1) % 3].decode()}")
        assert row.startswith(f"{pid:<7} {tid:<7} {comm:<15} {func:<16} ")


def test_trace_cli_several_probes_in_time_order() -> None:
    lines, _ = _run_cli(['p:TARGET:ol_f1(int i) "f1 %d", i', 'r:TARGET:ol_ret "ret %d", retval',
                         't:syscalls:sys_enter_getpid', "-d", "1.5"], 4)
    msgs = [ln.split(None, 4)[3:] for ln in lines[1:]]
    want = []
    for i in range(4):
        want += [["ol_f1", f"f1 {i}"], ["ol_ret", f"ret {2 * i - 3}"], ["sys_enter_getpid"]]
    assert msgs == want


def test_trace_cli_bad_probe_exits_2_with_a_caret() -> None:
    r = subprocess.run([BPFKIT, "trace", 'p:c:malloc (size > 4) "%d", size'], capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown name 'size'" in r.stderr
    lines = r.stderr.splitlines()
    caret = next(ln for ln in lines if ln.strip() == "^")
    assert caret.index("^") - 4 == 12  # under 'size' in the filter


def test_trace_cli_user_and_kernel_stacks() -> None:
    # -U: the fixture exits right after its calls; its mappings are remembered when -p attaches
    lines, err = _run_cli(['p:TARGET:ol_f1 "%d", arg1', "-U", "-M", "3"], 3)
    rows = [ln for ln in lines[1:] if ln.strip()]
    assert len(rows) == 6, (lines, err)
    for k in range(3):
        assert rows[2 * k].split()[3:] == ["ol_f1", str(k)]
        assert rows[2 * k + 1].strip() == "ol_f1+0x0 [oneliner_target]"  # the entry address itself
    # -K on a syscall tracepoint: the kernel path from the syscall entry; -a adds the addresses
    lines, err = _run_cli(["t:syscalls:sys_enter_getpid", "-K", "-a", "-M", "2"], 2)
    blocks = "\n".join(lines[1:]).strip().split("\n\n")
    assert len(blocks) == 2, (lines, err)
    for block in blocks:
        head, *frames = block.splitlines()
        assert head.split()[2:] == ["oneliner_target", "sys_enter_getpid"]
        labels = [f.split(None, 1)[1] for f in frames]
        assert all(re.fullmatch(r" {8}[0-9a-f]{16} \S+ \[kernel\]", f) for f in frames), frames
        assert int(frames[0].split()[0], 16) >= 0xffff800000000000  # kernel addresses
        assert any(lab.startswith("do_syscall_64+0x") for lab in labels), labels
        assert labels[-1].startswith("entry_SYSCALL_64")


def test_trace_cli_time_columns() -> None:
    t0 = time.time()
    lines, err = _run_cli(['p:TARGET:ol_f1 "%d", arg1', "-T", "-M", "2"], 2)
    t1 = time.time()
    assert lines[0].split() == ["TIME", "PID", "TID", "COMM", "FUNC", "-"], (lines, err)
    stamps = {time.strftime("%H:%M:%S", time.localtime(t)) for t in range(int(t0), int(t1) + 2)}
    for k, row in enumerate(lines[1:]):
        assert row.split()[0] in stamps and row.split()[4:] == ["ol_f1", str(k)]
    # -t: seconds since the trace started, from the events' own timestamps (increasing)
    lines, err = _run_cli(['p:TARGET:ol_f1 "%d", arg1', "-t", "-M", "4"], 4)
    offs = [float(row.split()[0]) for row in lines[1:]]
    assert len(offs) == 4 and all(re.fullmatch(r"\d+\.\d{6}", row.split()[0]) for row in lines[1:]), lines
    assert 0 < offs[0] < t1 - t0 and offs == sorted(offs)
