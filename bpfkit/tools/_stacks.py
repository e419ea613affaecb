"""What the stack tools (profile, offcputime, stackcount) share: their common options, reading a
(key → count) map whose keys hold stack ids, naming the stacks once for every output, bcc's
output formats, and the counters of stacks the kernel side lost.

The BPF side of each tool keys a hash map ``counts`` by a struct with ``user_stack_id``,
``kernel_stack_id``, ``comm`` and a process id field, and keeps its stacks in a
``BPFKIT_STACK_MAP(stacks, ...)`` (``c/include/bpfkit_stacks.h``).

Example::

    rows = read_rows(obj, pid_field="pid")
    report = name_rows(rows, Symbolizer(), user=True, kernel=True)
    prof = report.profile(unit="samples", delimited=False)
"""
from __future__ import annotations

import argparse
import errno
import re
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Optional

import numpy as np

from ..errors import BpfError
from ..stacks import MISSED_KERNEL, MISSED_USER, StackProfile, name_stacks
from ..symbols import Symbolizer
from .common import positive_int, print_json

__all__ = ["StackLosses", "Rows", "Entry", "Report", "add_stack_options", "stack_losses", "read_rows", "name_rows",
           "run_until", "write_outputs", "print_warnings", "stack_id_error"]

DELIMITER = "-"  # bcc's folded delimiter between user and kernel frames (-d/--delimited)


# Kernel frames of the tracing machinery itself, at the innermost end of a stack taken from a
# tracepoint program: the BPF program, bpf_trace_run4, __traceiter_sched_switch... bcc's kprobes
# do not see them; they say nothing about the traced code.
_MACHINERY = re.compile(r"^(bpf_trace_run\d+|__bpf_trace_\w+|__traceiter_\w+|perf_trace_\w+|perf_syscall_(enter|exit)"
                        r"|trace_call_bpf"
                        r"|perf_trace_run_bpf_submit|bpf_get_stack\w*|__bpf_get_stack\w*)$")
_MACHINERY_DEPTH = 8  # only this close to the innermost frame
_UNNAMED = re.compile(r"^user stacks of pid (\d+) are unnamed")  # stacks.profile's warning for an exited pid


def strip_machinery(names: list[str]) -> int:
    """How many innermost kernel frames belong to the tracing machinery (0 if none)."""
    last = -1
    for i, n in enumerate(names[:_MACHINERY_DEPTH]):
        if _MACHINERY.match(n):
            last = i
    return last + 1


def stack_id_error(stack_id: int) -> bool:
    """A stack that should have been there and is not: a negative id other than -EFAULT (which
    means "nothing to walk", e.g. a kernel thread's user stack), as bcc decides it."""
    return stack_id < 0 and stack_id != -errno.EFAULT


@dataclass
class StackLosses:
    """The counters of ``BPFKIT_STACK_COUNTERS``: lost stacks (``collision``: -EEXIST, two stacks
    with one hash; ``nomem``: -ENOMEM, the stack map is full), ``empty`` (nothing to walk, not a
    loss) and ``other`` errors; ``keys_full``: events not counted because the count map was full."""

    collision: int = 0
    nomem: int = 0
    empty: int = 0
    other: int = 0
    keys_full: int = 0

    @property
    def lost(self) -> int:
        """Stacks or events that could not be recorded."""
        return self.collision + self.nomem + self.other + self.keys_full

    def messages(self) -> list[str]:
        """What to tell the user, one line each ([] when nothing was lost)."""
        out = []
        if self.collision:
            out.append(f"{self.collision} stacks lost to hash collisions in the stack map (-EEXIST): "
                       "raise --stack-storage-size")
        if self.nomem:
            out.append(f"{self.nomem} stacks lost: the stack map was full (-ENOMEM): raise --stack-storage-size")
        if self.other:
            out.append(f"{self.other} stacks could not be collected (other errors)")
        if self.keys_full:
            out.append(f"{self.keys_full} events not counted: the count map was full")
        return out


def stack_losses(obj: Any, stack_map: str = "stacks") -> StackLosses:
    """Read the failure counters ``BPFKIT_STACK_MAP(stack_map, ...)`` keeps in ``.bss`` (and the
    tool's ``counts_full`` if it has one).

    Example::

        stack_losses(obj).lost
    """
    c = getattr(obj.bss, f"__bpfkit_stack_lost__{stack_map}")
    full = obj.bss.counts_full if "counts_full" in (obj.bss.dtype.names or ()) else 0
    return StackLosses(int(c["collision"]), int(c["nomem"]), int(c["empty"]), int(c["other"]), int(full))


@dataclass
class Rows:
    """One row per key of the count map: process id, thread id (offcputime), command, stack ids,
    the stacks' addresses (innermost first, zero-padded; zero rows where no stack) and the count."""

    pids: np.ndarray
    tids: np.ndarray
    comms: list[str]
    user_ids: np.ndarray
    kernel_ids: np.ndarray
    user: np.ndarray
    kernel: np.ndarray
    counts: np.ndarray
    keys: np.ndarray  # the count map's keys, in the same order

    def __len__(self) -> int:
        return len(self.counts)


def read_rows(obj: Any, *, pid_field: str = "pid", tid_field: Optional[str] = None, counts: str = "counts",
              stacks: str = "stacks", clear: bool = False) -> Rows:
    """Read the whole count map and every stack its keys name (each distinct stack read once);
    ``clear`` empties the count map as it reads (interval output)."""
    m = obj.maps[counts]
    keys, values = m.pop_all() if clear else m.to_numpy()
    order = np.argsort(values, kind="stable")  # bcc prints the heaviest stack last
    keys, values = keys[order], values[order]
    smap = obj.maps[stacks]
    user, _ok = smap.read(keys["user_stack_id"])
    kernel, _ok = smap.read(keys["kernel_stack_id"])
    comms = [bytes(c).split(b"\0", 1)[0].decode(errors="replace") for c in keys["comm"]]
    tids = keys[tid_field] if tid_field else keys[pid_field]
    return Rows(keys[pid_field].astype(np.int64), tids.astype(np.int64), comms,
                keys["user_stack_id"].astype(np.int64), keys["kernel_stack_id"].astype(np.int64), user, kernel,
                values.astype(np.float64), keys)


@dataclass
class Entry:
    """One stack as bcc prints it: names innermost first; None where the stack was asked for and
    is missing (printed ``[Missed ... Stack]``); ``[]`` where there was nothing to walk."""

    pid: int
    tid: int
    comm: str
    count: float
    user: Optional[list[str]]
    kernel: Optional[list[str]]
    user_addrs: list[int] = field(default_factory=list)
    kernel_addrs: list[int] = field(default_factory=list)


@dataclass
class Report:
    """Named stacks of one read, ready for every output."""

    entries: list[Entry]
    kinds: dict[str, str]
    warnings: list[str]
    want_user: bool
    want_kernel: bool
    missing: int = 0  # keys with a stack that should be there and is not (bcc's "could not be displayed")

    def frames(self, e: Entry, delimited: bool, root: str) -> list[str]:
        """The folded stack of ``e``, root first: ``root;user...;[-;]kernel...``."""
        st = [root] if root else []
        if self.want_user:
            st += [MISSED_USER] if e.user is None else e.user[::-1]
        if self.want_kernel:
            if delimited and self.want_user and e.user and e.kernel:
                st.append(DELIMITER)
            st += [MISSED_KERNEL] if e.kernel is None else e.kernel[::-1]
        return st

    def profile(self, *, unit: str = "samples", delimited: bool = False, title: str = "") -> StackProfile:
        """The stacks folded by name, each rooted at its command, as bcc folds them."""
        stacks, counts = [], []
        kinds = dict(self.kinds)
        for e in self.entries:
            kinds.setdefault(e.comm, "process")
            stacks.append(self.frames(e, delimited, e.comm))
            counts.append(e.count)
        kinds.setdefault(DELIMITER, "separator")
        prof = StackProfile.from_frames(stacks, counts, unit=unit, title=title, kinds=kinds)
        prof.warnings = list(self.warnings)
        return prof


def name_rows(rows: Rows, sym: Symbolizer, *, user: bool, kernel: bool, offsets: bool = False,
              scale: float = 1.0, from_tracepoint: bool = False) -> Report:
    """Symbolize every stack of ``rows`` (one vectorised lookup per process and one for the
    kernel) into a :class:`Report`. ``from_tracepoint``: the kernel stacks were taken inside a
    tracepoint program, whose own frames are dropped."""
    n = len(rows)
    uerr = [stack_id_error(int(i)) for i in rows.user_ids]
    kerr = [stack_id_error(int(i)) for i in rows.kernel_ids]
    named = name_stacks(user=list(rows.user) if user else None, kernel=list(rows.kernel) if kernel else None,
                        pids=rows.pids if user else None, symbolizer=sym, offsets=offsets)
    entries = []
    missing = 0
    for i in range(n):
        u: Optional[list[str]] = None
        k: Optional[list[str]] = None
        if user:
            missing += uerr[i]
            u = None if uerr[i] else (named.user[i] if named.user is not None else [])
        if kernel:
            missing += kerr[i]
            k = None if kerr[i] else (named.kernel[i] if named.kernel is not None else [])
        ua = rows.user[i][rows.user[i] != 0].tolist() if user else []
        ka = rows.kernel[i][rows.kernel[i] != 0].tolist() if kernel else []
        if from_tracepoint and k:
            cut = strip_machinery(k)
            k, ka = k[cut:], ka[cut:]
        # whole units, as bcc prints them (offcputime: ns summed in the kernel, shown in µs)
        count = float(rows.counts[i] // scale) if scale != 1.0 else float(rows.counts[i])
        entries.append(Entry(int(rows.pids[i]), int(rows.tids[i]), rows.comms[i], count, u, k, ua, ka))
    kinds = dict(named.kinds)
    kinds.update({MISSED_USER: "unknown", MISSED_KERNEL: "unknown"})
    return Report(entries, kinds, named.warnings, user, kernel, missing)


# -- options --------------------------------------------------------------------------------------

def add_stack_options(p: argparse.ArgumentParser, *, storage_default: int, delimited: str = "--delimited",
                      folded: bool = True) -> None:
    """-U/-K, the delimiter option, -f, --stack-storage-size, --svg, --speedscope."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-U", "--user-stacks-only", action="store_true",
                   help="show stacks from user space only (no kernel space stacks)")
    g.add_argument("-K", "--kernel-stacks-only", action="store_true",
                   help="show stacks from kernel space only (no user space stacks)")
    flags = [delimited] if delimited.startswith("--") else [delimited, "--delimited"]
    p.add_argument(*flags, dest="delimited", action="store_true", help="insert delimiter between kernel/user stacks")
    if folded:
        p.add_argument("-f", "--folded", action="store_true",
                       help="output folded format, one line per stack (for flame graphs)")
    p.add_argument("--stack-storage-size", type=positive_int, default=storage_default,
                   help="the number of unique stack traces that can be stored and displayed (default %(default)s)")
    p.add_argument("--svg", metavar="FILE", help="also write an interactive flame graph (SVG) to FILE")
    p.add_argument("--speedscope", metavar="FILE", help="also write the profile as speedscope JSON to FILE")


# -- running --------------------------------------------------------------------------------------

def run_until(duration: Optional[float], tick: Optional[Callable[[], None]] = None, period: float = 0.25) -> bool:
    """Sleep ``duration`` seconds (None: until Ctrl-C/SIGTERM), calling ``tick`` every ``period``
    seconds (e.g. to remember processes before they exit). True if a signal ended it."""
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while True:
            left = period if deadline is None else min(period, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
            if tick is not None:
                tick()
    except KeyboardInterrupt:
        return True


class Rememberer:
    """Remembers every new process a count map names, so that its user stacks still resolve
    after it exits (its mappings; its symbol tables too when it maps deleted files). Call it now
    and then while tracing."""

    def __init__(self, obj: Any, sym: Symbolizer, pid_field: str = "pid", pid: Optional[int] = None) -> None:
        self.obj, self.sym, self.pid_field = obj, sym, pid_field
        self.seen: set[int] = set()
        if pid is not None:  # the traced process is known: remember it before it can exit
            self.seen.add(pid)
            sym.remember(pid)

    def __call__(self) -> None:
        keys, _ = self.obj.maps.counts.to_numpy()
        new = [int(p) for p in np.unique(keys[self.pid_field]).tolist() if p and p not in self.seen]
        self.seen.update(new)
        # Snapshot each new process's mappings (cheap): its files are found again by path (same
        # inode) after it exits. Only a process mapping a deleted file has its symbol tables
        # loaded now, while /proc/PID/map_files still reaches the file -- loading every process's
        # tables while tracing would take CPU from what is being traced.
        late = []
        for pid in new:
            try:
                ps = self.sym.process(pid)
            except BpfError:
                continue  # gone already
            if any(m.deleted for m in ps.maps.mappings):
                late.append(pid)
        for pid in late:
            self.sym.remember(pid)


# -- output ---------------------------------------------------------------------------------------

def write_outputs(prof: StackProfile, args: argparse.Namespace) -> None:
    """--svg and --speedscope files."""
    if getattr(args, "svg", None):
        prof.write_svg(args.svg)
    if getattr(args, "speedscope", None):
        prof.write_speedscope(args.speedscope)


def print_warnings(prof: StackProfile, losses: StackLosses, missing: int, out: Optional[IO[str]] = None) -> None:
    """Frame-pointer and exited-process warnings, lost stacks, and bcc's missing-stacks line."""
    out = out if out is not None else sys.stderr
    gone = []
    for w in prof.warnings:
        m = _UNNAMED.match(w)
        if m:  # one line for all of them: a busy system has many short-lived processes
            gone.append(m.group(1))
            continue
        print(f"WARNING: {w}", file=out)
    if len(gone) == 1:
        print(f"WARNING: {next(w for w in prof.warnings if _UNNAMED.match(w))}", file=out)
    elif gone:
        shown = ", ".join(gone[:10]) + (", ..." if len(gone) > 10 else "")
        print(f"WARNING: user stacks of {len(gone)} processes are unnamed: they exited before bpfkit could read "
              f"their mappings (pids {shown})", file=out)
    for line in losses.messages():
        print(f"WARNING: {line}", file=out)
    if missing:
        hint = " Consider increasing --stack-storage-size." if losses.collision or losses.nomem else ""
        print(f"WARNING: {missing} stack traces could not be displayed.{hint}", file=out)


def entries_json(report: Report, prof: StackProfile, losses: StackLosses, unit: str) -> dict[str, Any]:
    """The --json document: every stack with its process, names innermost first, and the counters."""
    return {
        "unit": unit,
        "total": prof.total,
        "stacks": [{"pid": e.pid, "tid": e.tid, "comm": e.comm, "count": e.count, "user": e.user, "kernel": e.kernel}
                   for e in report.entries],
        "missing": report.missing,
        "lost": {"collision": losses.collision, "nomem": losses.nomem, "other": losses.other,
                 "keys_full": losses.keys_full},
        "warnings": prof.warnings,
    }


def dump_json(report: Report, prof: StackProfile, losses: StackLosses, unit: str) -> None:
    print_json(entries_json(report, prof, losses, unit))
