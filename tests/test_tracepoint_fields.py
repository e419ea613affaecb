"""Tracepoint records decoded by the one-liners' generic program: every field of every tracepoint
of ``syscalls``, ``sched`` and ``block`` gets a typed column (no raw bytes), and real events of each
category have exactly the values the test caused (its own syscalls, a child it runs, a direct
write to a loop device made for the test)."""
from __future__ import annotations

import mmap
import os
import subprocess
import tempfile
from collections import Counter
from typing import Iterator

import numpy as np
import pytest

from bpfkit.probes.discovery import tracepoint_fields
from bpfkit.probes.spec import c_type, parse_probe
from bpfkit.tools.common import Scope
from bpfkit.tools.oneliner import Tracer, build_plan
from bpfkit.tools.oneliner.plan import DATALOC, HEADER_NAMES, HEADER_SIZE, STR, Plan
from bpfkit.tracefs import tracefs_root

pytestmark = pytest.mark.root
CATEGORIES = ("syscalls", "sched", "block")


def _tracepoints(category: str) -> list[str]:
    d = os.path.join(tracefs_root(), "events", category)
    return sorted(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n, "format")))


def _column(plan: Plan, name: str) -> str:
    return name if name not in HEADER_NAMES else f"args.{name}"


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_field_type_decodes(category: str) -> None:
    kinds: Counter[str] = Counter()
    for tp in _tracepoints(category):
        plan = build_plan(parse_probe(f"t:{category}:{tp}"), strings="all")
        dt = plan.dtype
        fetched = {(f.src, f.kind) for f in plan.fetches}
        for f in tracepoint_fields(category, tp):
            where = f"{category}:{tp} {f.type} {f.name}"
            col = _column(plan, f.name)
            base, _, dims = f.type.partition("[")
            kinds[f.type if "*" not in f.type else "pointer"] += 1
            if "__data_loc" in base:  # a string elsewhere in the record: its (offset, length) word
                assert dt[f"{col}__loc"] == np.dtype("<u4"), where
                assert dt.fields[f"{col}__loc"][1] == HEADER_SIZE + f.offset, where
                assert (f.offset, DATALOC) in fetched and plan.strings[col].dtype.kind == "S", where
                continue
            fmt, off = dt.fields[col if f"{col}__ptr" not in dt.names else f"{col}__ptr"][:2]
            assert off == HEADER_SIZE + f.offset, where
            assert (fmt.base if fmt.subdtype else fmt).kind != "V", f"{where}: raw bytes"
            if dims and "char" in base and "*" not in base:
                assert fmt == np.dtype(f"S{f.size}"), where
            elif dims:
                assert fmt.itemsize == f.size and fmt.subdtype is not None and fmt.base.kind == "u", where
            elif "*" in base:
                assert fmt == np.dtype("<u8"), where
                if "char" in base and base.count("*") == 1:  # char *: the string is read too
                    assert (f.offset, STR) in fetched and plan.strings[col].dtype == np.dtype("S80"), where
            elif category == "syscalls" and f.name != "__syscall_nr":
                # the declared type in the 8-byte slot of a syscall argument (umode_t: 2 bytes)
                try:
                    ct = c_type(base)
                    want = (ct.size, ct.signed)
                except Exception:
                    want = (8, False)  # a pointer typedef (cap_user_data_t)
                assert (fmt.itemsize, fmt.kind == "i") == want, where
            else:
                assert (fmt.itemsize, fmt.kind == "i") == (f.size, f.signed), where
    assert len(kinds) >= {"syscalls": 20, "sched": 8, "block": 6}[category], kinds


def _events(plans: list[Plan], action: object, scope: Scope | None = None) -> list[np.ndarray]:
    """Each plan's events while ``action()`` runs (system-wide ones too: rings of 32 MiB)."""
    out: list[list[np.ndarray]] = [[] for _ in plans]
    with Tracer(plans, scope=scope, ring_bytes=32 << 20) as t:
        action()  # type: ignore[operator]
        for i, b in t.batches(duration=0.5):  # sched_switch never goes quiet
            out[i].append(b)
        assert t.dropped == 0
    return [np.concatenate(b) if b else np.zeros(0, p.dtype) for b, p in zip(out, plans)]


def _plan(tp: str, filter: str | None = None) -> Plan:
    return build_plan(parse_probe(f"t:{tp}"), strings="all", filter=filter)


def test_syscall_fields_exact_values() -> None:
    with tempfile.TemporaryDirectory(prefix="bpfkit-tpfields-") as d:
        path = os.path.join(d, "f")
        fds: list[int] = []

        def act() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            fds.append(fd)
            assert os.pwrite(fd, b"hello\0world", 12345) == 11
            with pytest.raises(OSError):
                os.lseek(fd, -7, os.SEEK_SET)
            os.close(fd)

        opens, pwrites, lseeks, lseek_rets = _events(
            [_plan("syscalls:sys_enter_openat", f'filename == "{path}"'), _plan("syscalls:sys_enter_pwrite64"),
             _plan("syscalls:sys_enter_lseek", "offset < 0"), _plan("syscalls:sys_exit_lseek", "ret < 0")],
            act, Scope(pid=os.getpid()))
    fd = fds[0]
    assert len(opens) == 1
    assert opens["dfd"][0] == -100 and opens["dfd"].dtype == np.dtype("<i4")  # AT_FDCWD
    assert opens["flags"][0] == os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    assert opens["mode"][0] == 0o640 and opens["mode"].dtype == np.dtype("<u2")  # umode_t
    assert opens["filename"][0] == path.encode()
    assert pwrites[["fd", "count", "pos"]].tolist() == [(fd, 11, 12345)]
    assert pwrites["buf"].tolist() == [b"hello"]  # char *: a string, to its NUL
    assert lseeks[["fd", "offset", "whence"]].tolist() == [(fd, -7, os.SEEK_SET)]  # off_t is signed
    assert lseek_rets["ret"].tolist() == [-22]  # EINVAL
    assert opens["__syscall_nr"][0] == 257 and pwrites["pid"][0] == os.getpid()


def test_sched_fields_exact_values() -> None:
    me = os.getpid()
    with open("/proc/self/comm", "rb") as f:
        my_comm = f.read().strip()
    child: list[subprocess.Popen] = []

    def act() -> None:
        child.append(subprocess.Popen(["sleep", "0.05"]))
        child[0].wait()

    forks, exits, switches = _events([_plan("sched:sched_process_fork", f"parent_pid == {me}"),
                                      _plan("sched:sched_process_exit"),
                                      _plan("sched:sched_switch", "prev_state == 1")], act)
    pid = child[0].pid
    assert forks[["parent_pid", "child_pid"]].tolist() == [(me, pid)]
    assert forks["parent_comm"].tolist() == [my_comm] and forks["child_comm"].tolist() == [my_comm]
    ex = exits[exits["args.pid"] == pid]
    prio = 120 + os.getpriority(os.PRIO_PROCESS, 0)  # the child's nice is ours
    assert ex[["args.comm", "prio", "group_dead"]].tolist() == [(b"sleep", prio, 1)]
    assert ex["group_dead"].dtype == np.dtype("<u1")  # bool
    sw = switches[switches["prev_pid"] == pid]
    assert len(sw) >= 1  # the nanosleep of sleep(1), at least
    assert set(sw["prev_comm"].tolist()) == {b"sleep"} and set(sw["prev_prio"].tolist()) == {prio}
    assert sw["prev_state"].dtype == np.dtype("<i8") and np.all(sw["next_pid"] != pid)


@pytest.fixture
def loop_device() -> Iterator[tuple[str, int]]:
    """A 1 MiB loop device of the test's own (path, kernel dev_t)."""
    with tempfile.NamedTemporaryFile(prefix="bpfkit-tpfields-loop-") as f:
        f.truncate(1 << 20)
        f.flush()
        r = subprocess.run(["losetup", "-f", "--show", f.name], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"no loop device: {r.stderr.strip()}")
        dev = r.stdout.strip()
        try:
            rdev = os.stat(dev).st_rdev
            yield dev, os.major(rdev) << 20 | os.minor(rdev)
        finally:
            subprocess.run(["losetup", "-d", dev], check=True)


def test_block_fields_exact_values(loop_device: tuple[str, int]) -> None:
    dev, kdev = loop_device
    with open("/proc/self/comm", "rb") as f:
        my_comm = f.read().strip()

    def act() -> None:
        fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
        try:
            buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
            buf.write(b"x" * 4096)
            assert os.pwrite(fd, buf, 8192) == 4096
        finally:
            os.close(fd)

    queued, issued, done = _events([_plan("block:block_bio_queue", f"dev == {kdev}"),
                                    _plan("block:block_rq_issue", f"dev == {kdev}"),
                                    _plan("block:block_rq_complete", f"dev == {kdev}")], act)
    # only writes: a prober (udev's blkid) may read the new device meanwhile
    queued, issued, done = (b[np.char.startswith(b["rwbs"], b"W")] for b in (queued, issued, done))
    # 4096 bytes at byte 8192: sector 16, 8 sectors; a direct write is a synchronous one ("WS")
    assert queued[["dev", "sector", "nr_sector", "rwbs", "args.comm"]].tolist() == [(kdev, 16, 8, b"WS", my_comm)]
    assert issued[["dev", "sector", "nr_sector", "bytes", "rwbs", "cmd"]].tolist() == [(kdev, 16, 8, 4096, b"WS", b"")]
    assert done[["dev", "sector", "nr_sector", "error", "rwbs", "cmd"]].tolist() == [(kdev, 16, 8, 0, b"WS", b"")]
    assert issued["ioprio"][0] == done["ioprio"][0] and issued["ioprio"].dtype == np.dtype("<u2")
    assert issued["sector"].dtype == np.dtype("<u8") and issued["dev"].dtype == np.dtype("<u4")  # sector_t, dev_t
