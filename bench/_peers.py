"""Side-by-side plumbing for tool benchmarks: run a bcc / libbpf-tools / bpftrace / bpfkit tool the way a user
does (in a terminal, until Ctrl-C), know when it is attached, and measure (1) time from exec to the first event a
1 ms trigger causes, with the tool's own peak RSS, and (2) how much a fixed workload slows down while it runs.
Stdlib only, so it runs under any python3 (bcc's tools run under Debian's /usr/bin/python3 by their shebang).

Why the details are the way they are:
- Tools write to a pseudo-terminal: stdout to a pipe is block-buffered in C and Python alike, which would delay
  the first event line by up to 4-8 KiB of output; in a terminal every tool flushes per line, as users see it.
- Peak RSS comes from ``/usr/bin/time -f %M`` around the tool: a child forked from this Python process inherits
  its high-water RSS at exec (the kernel keeps the pre-exec mm's maximum), so ``wait4`` here would report at
  least the harness's ~15-30 MiB. ``time`` adds ~1 MiB as a floor (``rss_floor_mib()``) and ~1 ms of start.
- Ready = the kernel shows the tool holding attached programs (a BPF link, or a perf event with a program:
  BPF_TASK_FD_QUERY), and then a header line arrives (bcc and libbpf-tools print "Tracing ..."/column titles after
  attaching) or, for tools that print nothing until their summary, nothing new attaches for ``SETTLE_S``. A header
  alone is not enough: bcc's profile prints one before it compiles.
- Runs are interleaved and the tool order rotates per round, so machine noise (2 shared CPUs) hits all alike.

The workloads are in ``_workloads.py``, the measurements and their tables in ``_measure.py``. Example::

    from _peers import Running, libbpf_tool
    from _workloads import workload
    with Running(libbpf_tool("opensnoop")) as run:       # returns once attached
        subprocess.run([workload("openloop"), "10", "0", "/etc/hostname"])
        print(run.wait_for("hostname", timeout=5))
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TIME = "/usr/bin/time"
SETTLE_S = 0.25  # kernel-side readiness: no new attachment for this long
# Lines bcc/libbpf-tools/bpftrace print once attached: "Tracing ...", "Sampling ...", "Attaching N probes...",
# "... Hit Ctrl-C ...", or a column header (execsnoop's PCOMM, opensnoop's PID, syscount's SYSCALL, ...).
HEADER_RE = r"Tracing|Sampling|Attaching|Ctrl-C|Ctrl\+C|^\s*(TIME\S*\s+)?(PID|PCOMM|COMM|UID|SYSCALL|FUNC)\s"


# -- statistics ---------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    """Median and spread of one measurement over n runs."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def n(self) -> int:
        return len(self.values)

    def fmt(self, scale: float = 1.0, unit: str = "") -> str:
        """``'412 ms [398-455] n=7'`` (``scale=1e3, unit=' ms'``)."""
        if not self.values:
            return "n/a"
        return f"{_num(self.median * scale)}{unit} [{_num(min(self.values) * scale)}-" \
               f"{_num(max(self.values) * scale)}] n={self.n}"


def _num(v: float) -> str:
    """3 significant digits without exponents for the magnitudes seen here."""
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3g}"


# -- tools --------------------------------------------------------------------------------------------------------
@dataclass
class Tool:
    """A command that traces until SIGINT. ``missing`` is why it cannot run here (None: try it)."""

    label: str
    argv: list[str]
    ready: Optional[str] = HEADER_RE  # regex on its output meaning "attached"; None: only the kernel check
    env: Optional[dict[str, str]] = None
    missing: Optional[str] = None


def bcc_tool(name: str, *args: str) -> Tool:
    """bcc's Python tool by its bcc name: Debian's /usr/sbin/NAME-bpfcc, else /usr/share/bcc/tools/NAME.

    Example: ``bcc_tool("opensnoop", "-x")``"""
    for path in (f"/usr/sbin/{name}-bpfcc", f"/usr/share/bcc/tools/{name}"):
        if os.access(path, os.X_OK):
            return Tool(f"bcc {name}", [path, *args])
    return Tool(f"bcc {name}", [name, *args],
                missing=f"not installed (no /usr/sbin/{name}-bpfcc, /usr/share/bcc/tools/{name}; "
                        "bench/setup_peers.sh installs bpfcc-tools)")


def libbpf_tool(name: str, *args: str) -> Tool:
    """bcc's libbpf-tools (CO-RE C) version: Debian's /usr/sbin/NAME from package libbpf-tools.

    Example: ``libbpf_tool("biolatency")``"""
    for path in (f"/usr/sbin/{name}", f"/usr/share/bcc/libbpf-tools/{name}"):
        if os.access(path, os.X_OK):
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":  # not some other /usr/sbin/NAME script
                    return Tool(f"libbpf-tools {name}", [path, *args])
    return Tool(f"libbpf-tools {name}", [name, *args],
                missing=f"not installed (no /usr/sbin/{name}; bench/setup_peers.sh installs libbpf-tools)")


_has_cmd: dict[tuple[str, str], Optional[str]] = {}


def bpfkit_tool(name: str, *args: str) -> Tool:
    """``bpfkit NAME ARGS`` from $BPFKIT (default: this tree's .venv/bin/bpfkit); ``missing`` says so when this
    bpfkit has no such command (checked once with ``bpfkit NAME --help``).

    Example: ``bpfkit_tool("syscount", "-d", "3600")``"""
    exe = os.environ.get("BPFKIT", str(ROOT / ".venv/bin/bpfkit"))
    if (exe, name) not in _has_cmd:
        if not os.access(exe, os.X_OK):
            _has_cmd[exe, name] = f"not installed ({exe}; run make setup)"
        else:
            r = subprocess.run([exe, name, "--help"], capture_output=True, text=True, timeout=120)
            last = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
            _has_cmd[exe, name] = f"no such command in this bpfkit ({last[0]})" if r.returncode else None
    return Tool(f"bpfkit {name}", [exe, name, *args], missing=_has_cmd[exe, name])


def bpftrace_tool(label: str, program: str, *args: str) -> Tool:
    """``bpftrace -e PROGRAM``; it announces "Attaching N probes..." once attached.

    Example: ``bpftrace_tool("bpftrace opens", "tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }")``"""
    exe = shutil.which("bpftrace")
    return Tool(label, [exe or "bpftrace", *args, "-e", program],
                missing=None if exe else "not installed (apt-get install bpftrace)")


# -- kernel-side readiness ----------------------------------------------------------------------------------------
_BPF_TASK_FD_QUERY, _NR_BPF = 20, {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, 321)
_libc = ctypes.CDLL(None, use_errno=True)


def _perf_fd_has_prog(pid: int, fd: int) -> bool:
    """BPF_TASK_FD_QUERY: is a BPF program attached to this perf event / raw tracepoint fd of pid? The kernel
    answers ENOENT for a perf event without one (a perf buffer's), EOPNOTSUPP for a sampling event with a
    perf_event program (profile's), which it attaches but does not describe."""
    attr = (ctypes.c_uint8 * 48)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(pid, fd), 8)  # pid, fd; flags=0, buf_len=0, buf=NULL
    if _libc.syscall(_NR_BPF, _BPF_TASK_FD_QUERY, attr, 48) == 0:
        return True
    return ctypes.get_errno() == errno.EOPNOTSUPP


def attached_probes(pid: int) -> int:
    """How many attachments the process holds: BPF link fds with a program, plus perf event fds with a
    program (bcc attaches tracepoints/uprobes that way, without links). 0 if the process is gone."""
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target == "anon_inode:bpf_link":
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    n += "prog_id:" in f.read()
            elif target == "anon_inode:[perf_event]":
                n += _perf_fd_has_prog(pid, int(fd))
        except OSError:
            continue
    return n


# -- a running tool -----------------------------------------------------------------------------------------------
class ToolError(RuntimeError):
    """The tool could not start (exited, or never became ready); the message ends with its last output."""


@dataclass
class Finished:
    """What a stopped tool left: exit status, output, and /usr/bin/time's figures for the tool process."""

    rc: int
    output: str
    lines: int
    maxrss_kib: Optional[int]
    cpu_s: Optional[float]
    killed: bool = False


class Running:
    """One run of a tool on a pty. ``start()`` execs it and waits until it is ready; ``stop()`` sends SIGINT (to
    its process group, as Ctrl-C does), waits, and returns a :class:`Finished`.

    Example::

        with Running(bcc_tool("execsnoop")) as run:
            subprocess.run(["/bin/true"])
            t, line = run.wait_for(r"true", timeout=5)
        print(run.finished.output)
    """

    KEEP = 1 << 20  # bytes of output kept from the start and from the end (the summary)
    RESEND_S = 3.0  # stop(): SIGINT again after this long

    def __init__(self, tool: Tool, ready_timeout: float = 60.0, stop_timeout: float = 60.0) -> None:
        if tool.missing:
            raise ToolError(f"{tool.label}: {tool.missing}")
        self.tool = tool
        self.ready_timeout, self.stop_timeout = ready_timeout, stop_timeout
        self.t_exec = self.t_ready = self.t_int = 0.0
        self.ready_how = ""
        self.finished: Optional[Finished] = None
        self._chunks: list[tuple[float, bytes]] = []  # (arrival time, bytes): the first KEEP bytes
        self._tail = bytearray()  # the last KEEP bytes
        self._kept = self._nl = self._total = 0
        self._cv = threading.Condition()
        self._eof = False
        self._parsed, self._part = 0, b""  # chunks split into _lines so far, and the unfinished line
        self._lines: list[tuple[float, str]] = []

    # process
    def start(self, wait_ready: bool = True) -> "Running":
        """Exec the tool (t_exec is taken just before the fork) and, by default, wait until it is attached."""
        master, slave = os.openpty()
        import fcntl
        import struct
        import termios
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 250, 0, 0))  # wide: no truncated columns
        self._rss_file = tempfile.NamedTemporaryFile("r", prefix="bench-rss-", suffix=".txt")
        argv = self.tool.argv
        self._timed = os.access(TIME, os.X_OK)
        if self._timed:
            argv = [TIME, "-f", "%M %U %S", "-o", self._rss_file.name, *argv]
        env = dict(os.environ, **(self.tool.env or {}))
        self.t_exec = time.perf_counter()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env,
                                         start_new_session=True)
        except OSError as e:
            os.close(master)
            raise ToolError(f"{self.tool.label}: cannot exec {argv[0]}: {e}") from e
        finally:
            os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait_ready:
            self.wait_ready()
        return self

    def tool_pid(self) -> Optional[int]:
        """The tool's own pid (the child of /usr/bin/time), or None while it is not forked yet / gone."""
        if not self._timed:
            return self.proc.pid
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def cpu_s(self) -> float:
        """CPU seconds (user+sys) the tool process has used so far; 0 if it is gone."""
        pid = self.tool_pid()
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, TypeError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_ready(self) -> float:
        """Block until the tool is attached; returns seconds since exec. Attached = the kernel shows it holding
        attached programs (links or perf events with a program) and then either a header line (``tool.ready``)
        arrives or the count stays the same for ``SETTLE_S`` (the time of its last change counts). The header alone
        is not trusted: bcc's profile prints "Sampling at ..." before it compiles. Raises ToolError (with the
        tool's output) when it exits first or after ``ready_timeout``."""
        deadline = self.t_exec + self.ready_timeout
        count, since, since_lo, prev = 0, 0.0, 0.0, self.t_exec  # the last change happened in (since_lo, since]
        while True:
            hit = self.wait_for(self.tool.ready, timeout=0.01) if self.tool.ready else None
            now = time.perf_counter()
            prev_poll, prev = prev, now
            if self.proc.poll() is not None:
                self.stop()  # reap, collect output, close the temp file
                raise ToolError(f"{self.tool.label} exited ({self.proc.returncode}) before attaching: "
                                f"{self.tail_text(600)}")
            pid = self.tool_pid()
            c = attached_probes(pid) if pid else 0
            if c != count:
                count, since, since_lo = c, now, prev_poll
                continue
            if c and hit and hit[0] >= since_lo:
                self.t_ready, self.ready_how = hit[0], "header"
                return self.t_ready - self.t_exec
            if c and now - since >= SETTLE_S:
                self.t_ready, self.ready_how = since, "kernel"
                return since - self.t_exec
            if now > deadline:
                self.stop()
                raise ToolError(f"{self.tool.label} not attached after {self.ready_timeout:.0f} s: "
                                f"{self.tail_text(600)}")
            if not self.tool.ready:
                time.sleep(0.01)

    def stop(self) -> Finished:
        """SIGINT to the tool's process group (``time`` ignores it), repeated every ``RESEND_S`` as a user would
        press Ctrl-C again (one landing inside a bcc perf-buffer callback is swallowed there; the pause lets slow
        detaches and summaries finish undisturbed); SIGTERM, then SIGKILL, after ``stop_timeout``."""
        if self.finished:
            return self.finished
        self.t_int = time.perf_counter()
        killed, end = False, self.t_int + self.stop_timeout
        sigs = [signal.SIGINT] * max(1, int(self.stop_timeout / self.RESEND_S)) + [signal.SIGTERM, signal.SIGKILL]
        for sig in sigs:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            killed = sig != signal.SIGINT
            try:
                self.proc.wait(max(0.1, min(self.RESEND_S, end - time.perf_counter())) if not killed else 5.0)
                break
            except subprocess.TimeoutExpired:
                pass
        self._reader.join(5)
        rss = cpu = None
        figures = self._rss_file.read().split()  # "Command exited with..." lines precede the format's
        self._rss_file.close()
        if len(figures) >= 3 and figures[-3].isdigit():
            rss, cpu = int(figures[-3]), float(figures[-2]) + float(figures[-1])
        self.finished = Finished(self.proc.returncode, self.text(), self._nl, rss, cpu, killed)
        return self.finished

    def __enter__(self) -> "Running":
        return self.start() if not hasattr(self, "proc") else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # output
    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: every writer closed the pty
                chunk = b""
            t = time.perf_counter()
            with self._cv:
                if not chunk:
                    self._eof = True
                    self._cv.notify_all()
                    os.close(self._master)
                    return
                self._nl += chunk.count(b"\n")
                self._total += len(chunk)
                if self._kept < self.KEEP:
                    self._chunks.append((t, chunk))
                    self._kept += len(chunk)
                self._tail += chunk
                del self._tail[:-self.KEEP]
                self._cv.notify_all()

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> Optional[tuple[float, str]]:
        """The first output line (from line index ``start``) matching ``pattern`` (regex): (perf_counter time it
        arrived, line), or None after ``timeout`` seconds or at the end of the output."""
        rx = re.compile(pattern)
        end = time.perf_counter() + timeout
        i = start
        with self._cv:
            while True:
                self._parse()
                while i < len(self._lines):
                    t, line = self._lines[i]
                    i += 1
                    if rx.search(line):
                        return t, line
                left = end - time.perf_counter()
                if left <= 0 or self._eof:
                    return None
                self._cv.wait(left)

    def _parse(self) -> None:
        while self._parsed < len(self._chunks):
            t, chunk = self._chunks[self._parsed]
            self._parsed += 1
            *done, self._part = (self._part + chunk).split(b"\n")
            self._lines += [(t, raw.decode(errors="replace").rstrip("\r")) for raw in done]

    def text(self) -> str:
        """Everything the tool printed (the first and last MiB if it printed more), with \\r\\n as \\n."""
        head = b"".join(c for _, c in self._chunks)
        if self._total > len(head):
            gap = self._total - len(head) - len(self._tail)  # bytes in neither part (< 0: the parts overlap)
            head += (b"\n[... %d bytes elided ...]\n" % gap if gap > 0 else b"") + bytes(self._tail[max(0, -gap):])
        return head.decode(errors="replace").replace("\r\n", "\n")

    def lines(self) -> list[tuple[float, str]]:
        """Every complete output line so far (of the first MiB), with the time it arrived."""
        with self._cv:
            self._parse()
            return list(self._lines)

    def tail_text(self, n: int) -> str:
        return bytes(self._tail[-n:]).decode(errors="replace").replace("\r\n", "\n").strip()


# Tools are stopped with SIGINT. Started from a background job of a non-interactive shell, this harness has SIGINT
# ignored, and an ignored signal stays ignored across fork+exec: Python tools without their own handler would never
# stop. A caught signal is reset to default at exec, so catching it here gives every tool the default back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_probe_cache: dict[tuple[str, ...], Optional[str]] = {}


# An error printed after attaching. Exit codes say nothing: bcc's trace exits 1 on every Ctrl-C by design.
_FAILED_RE = re.compile(r"Traceback|Exception:|Error:|object has no attribute")


def unavailable(tool: Tool, timeout: float = 60.0, trigger: Optional[Sequence[object]] = None,
                seconds: float = 1.0) -> Optional[str]:
    """Why ``tool`` cannot run here, or None: not installed, exits or hangs before attaching, or attaches but
    then prints an error (or does not stop on SIGINT). Runs it once for ``seconds`` with
    ``trigger`` (a command run meanwhile, to give it events), once per argv (cached).

    Example: ``unavailable(bcc_tool("biolatency"))`` -> ``"exited (1) before attaching: ... kprobes/blacklist"``"""
    if tool.missing:
        return tool.missing
    key = tuple(tool.argv)
    if key not in _probe_cache:
        try:
            run = Running(tool, ready_timeout=timeout).start()
            n = len(run.lines())
            if trigger:
                subprocess.run([str(a) for a in trigger], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(seconds)
            fin = run.stop()
            bad = [ln for t, ln in run.lines()[n:] if t < run.t_int and _FAILED_RE.search(ln)]
            _probe_cache[key] = (f"attached, then failed (exit {fin.rc}): {bad[-1] if bad else run.tail_text(300)}"
                                 if bad or fin.killed else None)
        except ToolError as e:
            _probe_cache[key] = str(e).split(": ", 1)[-1]
    return _probe_cache[key]


def skip_note(tool: Tool, reason: str) -> str:
    """The line printed instead of a row for a tool that does not run."""
    last = [ln for ln in reason.splitlines() if ln.strip()]
    return f"{tool.label}: not installed/does not run here: {last[-1] if last else reason}"


def rss_floor_mib() -> float:
    """Peak RSS ``/usr/bin/time`` reports for ``/bin/true``: the floor under every RSS figure here."""
    with tempfile.NamedTemporaryFile("r") as f:
        subprocess.run([TIME, "-f", "%M", "-o", f.name, "/bin/true"], check=True)
        return int(f.read().split()[-1]) / 1024


# The bcc tools the toolkit is compared with, and arguments that make each trace something (tracepoints where the
# tool takes a probe spec). ``python3 bench/_peers.py [NAME...]`` says which run here, as bcc and as libbpf-tools.
CHECK_ARGS: dict[str, list[str]] = {
    "execsnoop": [], "opensnoop": [], "runqlat": [], "biolatency": [], "tcplife": [],
    "trace": ['t:syscalls:sys_enter_openat "%s", args->filename'],
    "argdist": ["-C", "t:syscalls:sys_enter_openat():int:args->flags"],
    "funccount": ["t:syscalls:sys_enter_openat"], "profile": ["-F", "49"], "offcputime": [],
    "stackcount": ["t:syscalls:sys_enter_openat"], "syscount": [],
}


def main(names: Sequence[str]) -> None:
    from _workloads import workload
    trigger = [workload("execloop"), 20, 1000, "/bin/cat", "/etc/hostname"]
    for name in names or CHECK_ARGS:
        for tool in (bcc_tool(name, *CHECK_ARGS.get(name, [])), libbpf_tool(name)):
            why = unavailable(tool, trigger=trigger)
            print(f"{tool.label:<26} {'works' if why is None else skip_note(tool, why).split(': ', 1)[1]}",
                  flush=True)


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
