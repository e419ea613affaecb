"""The stack tools on the real kernel, against fixtures whose stacks and counts are known:
profile (a spinning main → stk_outer → stk_middle → stk_inner), offcputime (nanosleep from
stk_sleeper for a known time), stackcount (one function called exactly A and B times from two
sites; a syscall tracepoint; USDT), the BPF-side helpers of bpfkit_stacks.h, and the flame graph
of a real profile drawn by headless Chromium."""
from __future__ import annotations

import bisect
import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import bpfkit
from bpfkit.errors import BpfNotFoundError, BpfUsageError
from bpfkit.probes.spec import ProbeSpec, parse_probe
from bpfkit.stacks import MISSED_USER, StackProfile
from bpfkit.symbols import BPF_STACK_BUILD_ID_VALID, ElfCache, Symbolizer
from bpfkit.testing import fixtures
from bpfkit.testing.fixtures import symbols as symfx
from bpfkit.tools import offcputime as offcpu_tool
from bpfkit.tools import profile as profile_tool
from bpfkit.tools import stackcount as stackcount_tool
from bpfkit.tools.offcputime import OffCpuRun, offcputime
from bpfkit.tools.profile import ProfileRun, profile
from bpfkit.tools.stackcount import stackcount

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

CHAIN = ("main", "stk_outer", "stk_middle", "stk_inner")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def exe() -> Path:
    return fixtures.stacks_target()


def _libc_start(frames: tuple[str, ...]) -> bool:
    """Frames between the command and main: glibc's start-up (__libc_start_call_main...)."""
    return all(f.startswith("__libc_start") for f in frames)


def _is_chain(stack: tuple[str, ...], comm: str = "stacks_target") -> bool:
    """comm; glibc start-up; main; stk_outer; stk_middle; stk_inner -- exactly, in order."""
    if not stack or stack[0] != comm or "main" not in stack:
        return False
    i = stack.index("main")
    return _libc_start(stack[1:i]) and stack[i:] == CHAIN


# ----------------------------------------------------------------------------- profile


def test_profile_attributes_the_hot_chain(exe: Path) -> None:
    """profile -p for 2 s (user stacks): >= 90% of the fixture's samples are exactly the chain."""
    with fixtures.spawn(exe, "spin", "3", timeout=30) as p:
        run = ProfileRun(pid=p.pid, frequency=99, kernel=False, symbolizer=Symbolizer(cache=ElfCache()))
        run.run(2, on_attached=p.release)
        prof = run.profile()
        assert p.finish().strip() == "done"
    assert prof.total == run.samples  # every sample in scope was counted, none lost
    assert prof.lost == 0 and run.losses.lost == 0
    assert prof.total >= 20, f"only {prof.total} samples: the fixture hardly ran"
    on_chain = sum(c for st, c in zip(prof.stacks, prof.counts) if _is_chain(st))
    assert on_chain >= 0.9 * prof.total, prof.folded()
    assert {st[0] for st in prof.stacks} == {"stacks_target"}  # -p: no other process
    assert prof.kinds["stk_inner"] == "user"


def test_profile_cli_folded_svg_and_browser(exe: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bpfkit profile -p PID -f -d 2 --svg: folded lines on stdout (user + kernel), >= 90% on the
    chain; the SVG of that real profile, rendered by headless Chromium, has the chain's frames
    with widths proportional to their samples."""
    svg_path = tmp_path / "cpu.svg"
    with fixtures.spawn(exe, "spin", "3", timeout=30) as p:
        threading.Timer(0.5, p.release).start()
        rc = profile_tool.main(["-p", str(p.pid), "-F", "99", "-f", "-d", "2.5", "--svg", str(svg_path)])
        p.finish()
    assert rc == 0
    out = capsys.readouterr().out
    prof = StackProfile.from_folded(out)
    assert prof.total >= 20
    # a sample may have landed in the kernel (an interrupt): its user part is still the chain
    on_chain = 0.0
    for st, c in zip(prof.stacks, prof.counts):
        if "stk_inner" in st and _is_chain(st[: st.index("stk_inner") + 1]):
            on_chain += c
    assert on_chain >= 0.9 * prof.total, out

    svg = svg_path.read_text()
    root = ET.fromstring(svg)
    frames = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "f":
            title = g.find(SVG + "title")
            assert title is not None and title.text is not None
            frames.setdefault(title.text.split("\n")[0], float(g.get("data-v", 0)))
    inner_total = sum(c for st, c in zip(prof.stacks, prof.counts) if "stk_inner" in st)
    assert frames["stk_inner"] == inner_total and frames["stacks_target"] == prof.total

    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if chromium is None:
        pytest.skip("no Chromium to render the flame graph (Debian: apt-get install chromium)")
    gid = root.get("id")
    page = tmp_path / "page.html"
    page.write_text(f"<!DOCTYPE html><html><body>{svg}<pre id='out'></pre><script>"
                    f"var api = window.bpfkitFlameGraphs['{gid}'];"
                    "document.getElementById('out').textContent = JSON.stringify(api.frames());"
                    "</script></body></html>")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r"<pre id=\"out\">(.*?)</pre>", dom.stdout, re.S)
    assert m, dom.stdout[-2000:]
    drawn: dict[str, float] = {}
    for f in json.loads(html.unescape(m.group(1))):
        drawn[f["name"]] = drawn.get(f["name"], 0.0) + f["width"]
    full = drawn["all"]
    for name in CHAIN:
        want = sum(c for st, c in zip(prof.stacks, prof.counts) if name in st) / prof.total * full
        assert drawn[name] == pytest.approx(want, abs=0.02), (name, drawn[name], want)


def test_profile_function_defaults_and_errors() -> None:
    with pytest.raises(BpfUsageError, match="no such process"):
        profile(1, pid=2**22 + 12345)
    with pytest.raises(BpfUsageError, match="both off"):
        ProfileRun(user=False, kernel=False)
    assert profile_tool.build_parser().parse_args([]).frequency is None  # 49 Hz applied in body


# ----------------------------------------------------------------------------- offcputime


def test_offcputime_reports_the_sleep(exe: Path) -> None:
    """4 nanosleeps of 250 ms from stk_sleeper: that stack is reported with 1 s (±10%)."""
    with fixtures.spawn(exe, "sleep", "4", "250", timeout=30) as p:
        # a roomy stack map: with bcc's 1024 buckets two of the few stacks here share a bucket
        # now and then (-EEXIST, counted as lost, and the sleep shows as [Missed User Stack])
        run = OffCpuRun(pid=p.pid, stack_storage_size=16384, symbolizer=Symbolizer(cache=ElfCache()))
        run.run(2.0, on_attached=p.release)
        assert p.finish().strip() == "done"
    prof = run.profile()
    assert prof.unit == "us" and prof.lost == 0
    # (a preemption elsewhere in stk_sleeper may add a stack of its own: not a nanosleep one)
    sleeps = [(st, c) for st, c in zip(prof.stacks, prof.counts) if "stk_sleeper" in st and "do_nanosleep" in st]
    assert len(sleeps) == 1, prof.folded()
    st, us = sleeps[0]
    i = st.index("main")
    assert st[0] == "stacks_target" and _libc_start(st[1:i]) and st[i:i + 2] == ("main", "stk_sleeper")
    kernel = st[i + 2:]
    assert {"entry_SYSCALL_64_after_hwframe", "do_syscall_64", "do_nanosleep", "schedule"} <= set(kernel), st
    assert kernel[-1] == "__schedule"  # the tracing machinery's own frames are dropped
    assert all(prof.kinds[k] == "kernel" for k in kernel)
    assert us == pytest.approx(1_000_000, rel=0.10), (prof.folded(), run.losses)


@pytest.mark.parametrize("bounds", [{"min_block_us": 300_000}, {"max_block_us": 200_000}])
def test_offcputime_min_max_exclude_the_sleep(exe: Path, bounds: dict[str, int]) -> None:
    """-m 300000 / -M 200000 around 250 ms sleeps: not one of them is counted."""
    with fixtures.spawn(exe, "sleep", "3", "250", timeout=30) as p:
        prof = offcputime(1.5, pid=p.pid, on_attached=p.release, **bounds)  # type: ignore[arg-type]
        p.finish()
    assert not any("stk_sleeper" in st for st in prof.stacks), prof.folded()


def test_offcputime_cli(exe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bcc's output: kernel frames, user frames, '-  comm (tid)', then µs."""
    # released once the tool is surely tracing: the sleeps it sees are whole 250 ms ones
    # (a CLI has no "attached" hook: the first load in a process can take seconds on a busy machine)
    with fixtures.spawn(exe, "sleep", "16", "250", timeout=30) as p:
        threading.Timer(1.5, p.release).start()
        rc = offcpu_tool.main(["-p", str(p.pid), "-d", "5", "--state", "1", "--stack-storage-size", "16384"])
        p.finish()
    assert rc == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Tracing off-CPU time (us) of PID {p.pid} by user + kernel stack for 5 secs.")
    block = re.search(r"((?:    \S+\n)+)    -\s+stacks_target \((\d+)\)\n        (\d+)\n", out)
    assert block, out
    names = block.group(1).split()
    assert names.index("do_nanosleep") < names.index("stk_sleeper") < names.index("main")
    assert int(block.group(2)) == p.pid  # a single-threaded process: tid == pid
    sleeps = int(block.group(3)) / 250_000
    assert 1 <= round(sleeps) <= 16 and sleeps == pytest.approx(round(sleeps), rel=0.10), out


# ----------------------------------------------------------------------------- stackcount


def test_stackcount_two_call_sites_exactly(exe: Path) -> None:
    """stk_target called 7 times from stk_site_a and 5 from stk_site_b: exactly two stacks,
    exactly those counts (the direct caller is put back for a probe at function entry)."""
    with fixtures.spawn(exe, "calls", "7", "5", timeout=30) as p:
        prof = stackcount(f"u:{exe}:stk_target", 1.0, pid=p.pid, kernel=False, on_attached=p.release,
                          symbolizer=Symbolizer(cache=ElfCache()))
        p.finish()
    got = {st[st.index("main"):]: c for st, c in zip(prof.stacks, prof.counts)}
    assert got == {("main", "stk_site_a", "stk_target"): 7, ("main", "stk_site_b", "stk_target"): 5}
    assert prof.lost == 0


def test_stackcount_cli_folded_exact(exe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fixtures.spawn(exe, "calls", "3", "4", timeout=30) as p:
        threading.Timer(0.5, p.release).start()
        rc = stackcount_tool.main(["-p", str(p.pid), "-U", "-f", "-D", "1.5", f"{exe}:stk_target"])  # bcc's LIB:FUNC
        p.finish()
    assert rc == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert len(lines) == 2
    assert re.fullmatch(r"stacks_target;(__libc_start\w*;)*main;stk_site_a;stk_target 3", lines[0]), lines
    assert re.fullmatch(r"stacks_target;(__libc_start\w*;)*main;stk_site_b;stk_target 4", lines[1]), lines


def test_stackcount_lost_stacks_are_counted(exe: Path) -> None:
    """A one-entry stack map holds one of the two stacks; the other's hits are counted as lost
    (hash collisions) and shown as bcc's [Missed User Stack], with their exact count."""
    with fixtures.spawn(exe, "calls", "7", "5", timeout=30) as p:
        run = stackcount_tool.StackCountRun(f"u:{exe}:stk_target", pid=p.pid, kernel=False, stack_storage_size=1)
        with run:
            p.finish()
            report = run.read()
            losses = run.losses()
    assert losses.collision + losses.nomem == 5 and losses.lost == 5  # site a came first and kept the slot
    assert report.missing == 1
    by = {tuple(e.user) if e.user is not None else None: e.count for e in report.entries}
    assert by[None] == 5
    prof = report.profile()
    assert (("stacks_target", MISSED_USER), 5.0) in list(zip(prof.stacks, prof.counts.tolist()))


def test_stackcount_syscall_tracepoint_kernel_stack() -> None:
    """t:syscalls:sys_enter_getpid, -K: exactly N hits, one kernel stack, through the syscall
    entry functions, every frame named as kallsyms names it."""
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "9") as p:
        with stackcount_tool.StackCountRun("t:syscalls:sys_enter_getpid", pid=p.pid, user=False) as run:
            p.finish()
            report = run.read()
            assert run.hits == 9
    assert [e.count for e in report.entries] == [9]
    e = report.entries[0]
    assert e.kernel is not None and {"do_syscall_64", "entry_SYSCALL_64_after_hwframe"} <= set(e.kernel)
    assert e.kernel[-1] == "entry_SYSCALL_64_after_hwframe"
    assert "[unknown]" not in e.kernel and "perf_syscall_enter" not in e.kernel
    by_addr: dict[int, set[str]] = {}
    for line in Path("/proc/kallsyms").read_text().splitlines():
        a, t, name = line.split()[:3]
        if t in "tTwW":
            by_addr.setdefault(int(a, 16), set()).add(name)
    keys = sorted(by_addr)
    for a, name in zip(e.kernel_addrs, e.kernel):
        assert name in by_addr[keys[bisect.bisect_right(keys, a) - 1]]


def test_stackcount_usdt() -> None:
    """usdt:BIN:bpfkit:tick fires N times from tick() <- main."""
    exe = fixtures.usdt_target()
    with fixtures.spawn(exe, "6") as p:
        prof = stackcount(f"usdt:{exe}:bpfkit:tick", 1.0, pid=p.pid, kernel=False, on_attached=p.release)
        p.finish()
    assert prof.total == 6
    # usdt_target is built without frame pointers: the walk stops in tick()
    assert [st[0] for st in prof.stacks] == ["tick"], prof.folded()  # no -P: no process frame


def test_stackcount_u_is_uprobe_and_says_so_for_usdt() -> None:
    exe = fixtures.usdt_target()
    with pytest.raises(BpfNotFoundError, match="usdt:"):
        stackcount(f"u:{exe}:consts", 0.1)  # a USDT probe, no function
    with pytest.raises(BpfNotFoundError):
        stackcount("t:sched:no_such_tracepoint", 0.1)


# ----------------------------------------------------------------------------- probe specs


@pytest.mark.parametrize("text,want", [
    ("tracepoint:sched:sched_switch", ProbeSpec("tracepoint", "sched", "sched_switch")),
    ("t:syscalls:sys_enter_*", ProbeSpec("tracepoint", "syscalls", "sys_enter_*")),
    ("rawtracepoint:sched_switch", ProbeSpec("rawtracepoint", "", "sched_switch")),
    ("kprobe:vfs_read", ProbeSpec("kprobe", "", "vfs_read")),
    ("vfs_re*", ProbeSpec("kprobe", "", "vfs_re*")),
    ("kr:vfs_read", ProbeSpec("kretprobe", "", "vfs_read")),
    ("u:c:malloc", ProbeSpec("uprobe", "c", "malloc")),
    ("uretprobe:/bin/bash:readline", ProbeSpec("uretprobe", "/bin/bash", "readline")),
    ("c:malloc", ProbeSpec("uprobe", "c", "malloc")),
    ("p:c:malloc", ProbeSpec("uprobe", "c", "malloc")),
    ("r:c:malloc", ProbeSpec("uretprobe", "c", "malloc")),
    ("usdt:./app:myapp:tick", ProbeSpec("usdt", "./app", "tick", provider="myapp")),
    ("usdt:./app:tick", ProbeSpec("usdt", "./app", "tick")),
    ("software:page-faults:100", ProbeSpec("software", "", "page-faults", period=100)),
    ("s:cpu-clock", ProbeSpec("software", "", "cpu-clock", period=1)),
])
def test_parse_probe(text: str, want: ProbeSpec) -> None:
    got = parse_probe(text)
    assert (got.kind, got.target, got.name, got.provider, got.period) == (
        want.kind, want.target, want.name, want.provider, want.period)
    assert got.program == {"tracepoint": "tracepoint", "rawtracepoint": "raw_tracepoint",
                           "software": "perf_event"}.get(got.kind, "kprobe")


@pytest.mark.parametrize("text,msg", [
    ("", "empty"), ("tracepoint:sched", "CATEGORY:NAME"), ("u:c", "unknown probe kind|BINARY:FUNCTION"),
    ("bogus:a:b", "unknown probe kind"), ("software:faults:0", "greater than 0"), ("s:faults:x", "not an integer"),
    ("fentry:vfs_read", "program of their own"), ("uprobe::malloc", "BINARY:FUNCTION"),
    ("t:sched:sched switch", "characters"),
])
def test_parse_probe_errors(text: str, msg: str) -> None:
    with pytest.raises(BpfUsageError, match=msg):
        parse_probe(text)


# ----------------------------------------------------------------------------- BPF-side helpers


def test_stack_helpers_map_record_and_build_id_agree(exe: Path) -> None:
    """One uprobe hit: the stack map id read back with StackTraceMap.read(), the frames in the
    ring-buffer record, and the build-id frames (map and record) all give the same stack."""
    with fixtures.spawn(exe, "calls", "1", "0", timeout=30) as p:
        spec = bpfkit.open("tests/stacks_helpers")
        spec.rodata.target_pid = p.pid
        with spec.load() as obj:
            with obj.progs.on_target.attach_uprobe(str(exe), "stk_target", pid=p.pid):
                sym = Symbolizer(cache=ElfCache())
                sym.remember(p.pid)
                p.finish()
            ev = obj.reader("events").drain()
            assert len(ev) == 1
            e = ev[0]
            empty = (int(e["stack_id"]) + 1) % 64  # the map's 64 buckets hold this one stack only
            frames, found = obj.maps.stacks.read([e["stack_id"], -17, empty, e["stack_id"]])
            bframes, bfound = obj.maps.bid_stacks.read([e["build_id_stack_id"]])
            lost = obj.bss.__bpfkit_stack_lost__stacks
            assert int(lost["collision"]) == int(lost["nomem"]) == int(lost["other"]) == 0
    n = int(e["user"]["len"])
    assert n >= 3
    rec = np.asarray(e["user"]["ips"], np.uint64)
    assert found.tolist() == [True, False, False, True]
    assert (frames[1] == 0).all() and (frames[2] == 0).all()
    assert frames[0].tolist() == frames[3].tolist() == rec.tolist()  # same frames, same zero padding
    assert (rec[n:] == 0).all() and (rec[:n] != 0).all()
    names = sym.user(p.pid, rec[:n]).names.tolist()
    assert names[:2] == ["stk_target", "main"]  # entry probe: the walk skips stk_site_a (see stackcount)
    assert bfound.tolist() == [True] and bframes.dtype == obj.maps.bid_stacks.frame_dtype
    assert bframes[0]["status"][0] == BPF_STACK_BUILD_ID_VALID
    assert bytes(bframes[0]["build_id"][0]).hex() == symfx.build_id(exe)
    assert sym.build_id_frames(bframes[0][:n]).names.tolist()[:2] == names[:2]
    assert int(e["build_ids"]["len"]) == n
    rec_bid = np.asarray(e["build_ids"]["frames"]).view(bframes.dtype).ravel()
    assert sym.build_id_frames(rec_bid[:n]).names.tolist() == sym.build_id_frames(bframes[0][:n]).names.tolist()
    with pytest.raises(bpfkit.errors.MapKeyError, match="build-id"):
        obj.maps.bid_stacks.addresses(0)  # type: ignore[unreachable]


# ----------------------------------------------------------------------------- whole-system runs, signals, JSON


def test_profile_names_a_process_that_exited(exe: Path) -> None:
    """Profiling every process: the fixture spins 0.8 s and exits long before the stacks are
    read; it was remembered while it ran, so its stacks still have names."""
    with fixtures.spawn(exe, "spin", "0.8", timeout=30) as p:
        prof = profile(2.5, frequency=99, kernel=False, on_attached=p.release,
                       symbolizer=Symbolizer(cache=ElfCache()))
        assert p.finish().strip() == "done"
    mine = [(st, c) for st, c in zip(prof.stacks, prof.counts) if st and st[0] == "stacks_target"]
    assert mine, "no samples of the fixture"
    named = sum(c for st, c in mine if _is_chain(st))
    assert named >= 0.9 * sum(c for _, c in mine), [st for st, _ in mine]


def test_profile_cli_summary_on_sigterm(exe: Path) -> None:
    """Run until signalled (no duration): SIGTERM ends sampling and the stacks are printed."""
    with fixtures.spawn(exe, "spin", "20", timeout=40) as p:
        p.release()
        tool = subprocess.Popen([sys.executable, "-m", "bpfkit.cli", "profile", "-U", "-F", "99",
                                 "-p", str(p.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert tool.stdout is not None
        header = tool.stdout.readline()
        assert header.startswith(f"Sampling at 99 Hertz of PID {p.pid} by user stack... Hit Ctrl-C to end."), header
        threading.Event().wait(1.5)
        tool.terminate()
        out, err = tool.communicate(timeout=60)
    assert tool.returncode == 0, err
    blocks = re.findall(r"((?:    \S+\n)+)    -\s+stacks_target \((\d+)\)\n        (\d+)\n", out)
    assert blocks, out
    heaviest = max(blocks, key=lambda b: int(b[2]))
    names = heaviest[0].split()
    assert names[: names.index("main") + 1] == ["stk_inner", "stk_middle", "stk_outer", "main"]
    assert int(heaviest[1]) == p.pid


def test_stackcount_json_and_per_process(exe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fixtures.spawn(exe, "calls", "2", "9", timeout=30) as p:
        threading.Timer(0.5, p.release).start()
        rc = stackcount_tool.main(["-p", str(p.pid), "-U", "--json", "-D", "1.5", f"u:{exe}:stk_target"])
        p.finish()
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["unit"] == "samples" and doc["total"] == 11 and doc["missing"] == 0
    assert doc["lost"] == {"collision": 0, "nomem": 0, "other": 0, "keys_full": 0}
    got = {tuple(s["user"][:2]): (s["count"], s["pid"], s["comm"], s["kernel"]) for s in doc["stacks"]}
    assert got == {("stk_target", "stk_site_a"): (2, p.pid, "stacks_target", None),
                   ("stk_target", "stk_site_b"): (9, p.pid, "stacks_target", None)}


KPROBES = bpfkit.features.check("kprobes")


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_stackcount_kprobe_kernel_stack(exe: Path) -> None:
    """kprobe:hrtimer_nanosleep (a bare name, as in bcc): exactly the fixture's 3 nanosleeps,
    one kernel stack through the nanosleep syscall."""
    with fixtures.spawn(exe, "sleep", "3", "10", timeout=60) as p:
        with stackcount_tool.StackCountRun("hrtimer_nanosleep", pid=p.pid, user=False) as run:
            p.finish()
            report = run.read()
    assert [e.count for e in report.entries] == [3]
    kernel = report.entries[0].kernel
    assert kernel is not None and kernel[0] == "hrtimer_nanosleep"
    assert {"__x64_sys_nanosleep", "do_syscall_64"} <= set(kernel), kernel


def test_stackcount_interval_output_clears_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    """-i 0.5 -D 2: several summaries, each counting only its own interval, so across them the
    getpid stacks add up to exactly the 25 calls."""
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "25") as p:
        threading.Timer(0.8, p.release).start()
        rc = stackcount_tool.main(["-p", str(p.pid), "-K", "-f", "-i", "0.5", "-D", "2.5",
                                   "t:syscalls:sys_enter_getpid"])
        p.finish()
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    counts = [int(line.rpartition(" ")[2]) for line in lines if line]
    assert sum(counts) == 25, lines
    assert all(line.startswith("syscall_target;") and "do_syscall_64" in line for line in lines if line)


def test_stackcount_raw_tracepoint_and_perf_event_programs(exe: Path) -> None:
    """The raw-tracepoint and perf-event programs of stackcount: rawtracepoint:sys_enter sees the
    9 getpid calls (and the few other syscalls) with kernel stacks below the machinery; a
    software event (page-faults, every one) counts the fixture's faults with user stacks."""
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "9") as p:
        with stackcount_tool.StackCountRun("rawtracepoint:sys_enter", pid=p.pid, user=False) as run:
            p.finish()
            report = run.read()
            hits = run.hits
    assert hits >= 9 and sum(e.count for e in report.entries) == hits
    assert all(e.kernel and "do_syscall_64" in e.kernel and not e.kernel[0].startswith("bpf_")
               for e in report.entries), [e.kernel for e in report.entries]
    with fixtures.spawn(exe, "spin", "0.3", timeout=30) as p:
        with stackcount_tool.StackCountRun("software:page-faults:1", pid=p.pid, kernel=False) as run:
            p.finish()
            report = run.read()
            hits = run.hits
    assert hits > 0 and sum(e.count for e in report.entries) == hits
    assert any(e.user for e in report.entries)


def test_symbolizer_says_a_zombie_exited(exe: Path) -> None:
    """An exited process that is not reaped yet keeps its pid but no mappings: asking for its
    names says it exited (instead of naming every address [unknown])."""
    proc = subprocess.Popen([str(exe), "calls", "1", "1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = threading.Event()
        for _ in range(200):
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                break
            deadline.wait(0.05)
        else:
            pytest.fail("the fixture did not exit")
        with pytest.raises(BpfNotFoundError, match="exited"):
            Symbolizer(cache=ElfCache()).user(proc.pid, np.array([0x401000], np.uint64))
    finally:
        proc.wait()


def test_profile_kernel_only_and_annotations(exe: Path) -> None:
    """-K: kernel stacks only, no user frame; -a marks kernel frames _[k] in the folded output."""
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "3000000", timeout=60) as p:
        run = ProfileRun(pid=p.pid, frequency=99, user=False)
        run.run(1.0, on_attached=p.release)
        p.finish()
    prof = run.profile()
    assert prof.total > 0
    for st in prof.stacks:
        assert st[0] == "syscall_target"
        assert all(prof.kinds.get(f) in ("kernel", "unknown") for f in st[1:]), st
    annotated = profile_tool.annotate(prof)
    kframes = [f for st in annotated.stacks for f in st[1:]]
    assert kframes and all(f.endswith("_[k]") or f == "[unknown]" for f in kframes), kframes
    assert "do_syscall_64_[k]" in kframes
    assert annotated.total == prof.total
