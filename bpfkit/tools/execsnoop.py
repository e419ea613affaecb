"""execsnoop: trace new processes (every exec()), with their arguments, as bcc's execsnoop.

From the ``syscalls:sys_enter_execve``/``execveat`` tracepoints and ``sched:sched_process_exec`` /
``sys_exit_*`` for the result: no kprobes. The arguments of a successful exec are read from the new
process's argument area, where the kernel has just written them (bcc reads the caller's argv at
entry, and gets nothing for strings on pages a fresh child has not touched yet); those of a failed
one from the caller's argv. An argument list longer than ``--max-args`` ends in ``...``, and the
record says it was truncated.

Example::

    $ sudo bpfkit execsnoop -x -T
    $ sudo bpfkit execsnoop --json -P 1234

    from bpfkit.tools import execsnoop
    with execsnoop.stream(failed=True, duration=5) as s:
        for batch in s:                                   # numpy structured arrays
            for ev in execsnoop.decode(batch, s.clock):
                print(ev["pid"], ev["args"])
"""
from __future__ import annotations

import argparse
import pwd
import re
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from .common import Scope, add_duration, add_json, add_scope, parser, positive_int, print_json, \
    run_tool
from .streaming import Clock, EventStream, configure, cstrings, follow

__all__ = ["ARGS_BUF", "FLAG_ARGS_CUT", "stream", "argv_of", "decode", "main"]

ARGS_BUF = 8192     # bytes of a process's argument area the BPF side keeps
FLAG_ARGS_CUT = 1   # the arguments did not fit


def stream(*, failed: bool = False, uid: Optional[int] = None, ppid: Optional[int] = None,
           pid: Optional[int] = None, cgroup: Optional[str] = None, duration: Optional[float] = None,
           clock: Optional[Clock] = None) -> EventStream:
    """Start tracing execs; iterate the result for numpy batches of ``struct exec_event``
    (``pid``, ``ppid``, ``uid``, ``retval``, ``comm``, ``path``, ``args``...; :func:`decode` makes
    dicts). ``failed`` includes failed execs; ``uid``, ``ppid``, ``pid`` (the process calling exec)
    and ``cgroup`` restrict what is traced, on the BPF side.

    Example::

        with stream(ppid=os.getpid(), duration=2) as s:
            rows = [ev for b in s for ev in decode(b)]
    """
    spec = configure("execsnoop", Scope(pid=pid, cgroup=cgroup), report_failed=failed,
                     filter_uid=uid is not None, target_uid=uid, target_ppid=ppid)
    return EventStream(spec, duration=duration, counters=("missed",), clock=clock)


def _split(raw: bytes) -> list[str]:
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return [a.decode(errors="replace") for a in raw.split(b"\0")] if raw else []


def _args_bytes(batch: np.ndarray) -> list[bytes]:
    """Each record's used argument bytes, cut out of one byte view of the batch (converting the
    8 KiB field to bytes scans it whole: 20 us a record)."""
    if not len(batch):
        return []
    raw = np.ascontiguousarray(batch).view(np.uint8).reshape(len(batch), batch.dtype.itemsize)
    fields = batch.dtype.fields
    assert fields is not None
    off = fields["args"][1]
    return [raw[i, off:off + size].tobytes() for i, size in enumerate(batch["args_size"].tolist())]


def argv_of(rec: Any) -> list[str]:
    """The argument vector of one record (argv[0], argv[1], ...)."""
    return _split(_args_bytes(np.asarray([rec]))[0])


def decode(batch: np.ndarray, clock: Optional[Clock] = None, max_args: Optional[int] = 20) -> list[dict[str, Any]]:
    """One dict per exec: ``time`` (epoch seconds), ``elapsed`` (seconds since tracing started),
    ``pcomm``, ``pid``, ``tid``, ``ppid``, ``uid``, ``ret``, ``path``, ``argv`` (all of it, as far as
    it fit), ``args`` (bcc's ARGS: the path, then argv[1..], at most ``max_args`` of them) and
    ``truncated`` (args cut at ``max_args``, or argv did not fit the BPF side's buffer)."""
    clock = clock or Clock()
    out = []
    # whole columns to Python at once: per-record field access on a structured array is slow
    cols = [batch[n].tolist() for n in ("ts", "pid", "tid", "ppid", "uid", "retval", "flags", "comm")]
    cols.append(cstrings(batch["path"]))
    for ts, pid, tid, ppid, uid, ret, flags, comm, path_b, args_b in zip(*cols, _args_bytes(batch)):
        argv = _split(args_b)
        path = path_b.decode(errors="replace")
        args = [path, *argv[1:]]
        cut = bool(flags & FLAG_ARGS_CUT)
        if max_args is not None and len(args) > max_args:
            args, cut = args[:max_args], True
        out.append({"time": clock.wall(ts), "elapsed": clock.since_start(ts), "pcomm": comm.decode(errors="replace"),
                    "pid": pid, "tid": tid, "ppid": ppid, "uid": uid, "ret": ret, "path": path, "argv": argv,
                    "args": args, "truncated": cut})
    return out


def _uid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        try:
            return pwd.getpwnam(text).pw_uid
        except KeyError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid UID or user name") from None


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None


EXAMPLES = """examples:
    bpfkit execsnoop                      # trace all exec() syscalls
    bpfkit execsnoop -x                   # include failed exec()s
    bpfkit execsnoop -T                   # include time (HH:MM:SS)
    bpfkit execsnoop -P 181               # only trace new processes whose parent PID is 181
    bpfkit execsnoop -U                   # include UID
    bpfkit execsnoop -u 1000              # only trace UID 1000
    bpfkit execsnoop -u user              # get user UID and trace only them
    bpfkit execsnoop -t                   # include timestamps
    bpfkit execsnoop -q                   # add "quotemarks" around arguments
    bpfkit execsnoop -n main              # only print command lines containing "main"
    bpfkit execsnoop -l tpkg              # only print command where arguments contains "tpkg"
    bpfkit execsnoop --cgroup system.slice/foo.service   # only this cgroup
    bpfkit execsnoop --json               # one JSON object per exec
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("execsnoop", "Trace exec() syscalls", EXAMPLES)
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    p.add_argument("-u", "--uid", type=_uid, metavar="USER", help="trace this UID only")
    p.add_argument("-q", "--quote", action="store_true", help='Add quotemarks (") around arguments.')
    p.add_argument("-n", "--name", type=_regex, help="only print commands matching this name (regex), any arg")
    p.add_argument("-l", "--line", type=_regex, help="only print commands where arg contains this line (regex)")
    p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    p.add_argument("--max-args", type=positive_int, default=20,
                   help="maximum number of arguments parsed and displayed, defaults to 20")
    p.add_argument("-P", "--ppid", type=positive_int, help="trace this parent PID only")
    add_scope(p)
    add_duration(p)
    add_json(p)
    return p


def _text(ev: dict[str, Any], quote: bool) -> str:
    args = list(ev["args"])
    if ev["truncated"]:
        args.append("...")
    if quote:
        args = ['"' + a.replace('"', '\\"') + '"' for a in args]
    return " ".join(args).replace("\n", "\\n")


def _body(args: argparse.Namespace) -> int:
    clock = Clock()
    s = stream(failed=args.fails, uid=args.uid, ppid=args.ppid, pid=args.pid, cgroup=args.cgroup,
               duration=args.duration, clock=clock)
    head = ("%-9s" % "TIME" if args.time else "") + ("%-8s" % "TIME(s)" if args.timestamp else "") + \
           ("%-6s" % "UID" if args.print_uid else "") + "%-16s %-7s %-7s %3s %s" % ("PCOMM", "PID", "PPID", "RET", "ARGS")

    def show(batch: np.ndarray) -> int:
        n = 0
        for ev in decode(batch, clock, args.max_args):
            text = _text(ev, args.quote)
            if args.name and not args.name.search(ev["pcomm"]):
                continue
            if args.line and not args.line.search(" ".join(ev["args"])):
                continue
            n += 1
            if args.json:
                print_json(ev)
                continue
            line = ""
            if args.time:
                line += "%-9s" % time.strftime("%H:%M:%S", time.localtime(ev["time"]))
            if args.timestamp:
                line += "%-8.3f" % ev["elapsed"]
            if args.print_uid:
                line += "%-6d" % ev["uid"]
            ppid = str(ev["ppid"]) if ev["ppid"] > 0 else "?"
            print(line + "%-16s %-7d %-7s %3d %s" % (ev["pcomm"], ev["pid"], ppid, ev["ret"], text))
        return n

    follow("execsnoop", s, show, header=head, json_mode=args.json, summary=lambda n: f"execsnoop: {n} execs shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit execsnoop [-T] [-t] [-x] [-u USER] [-q] [-n NAME] [-l LINE] [-U] [--max-args N] [-P PPID]
    [-p PID] [--cgroup PATH] [-d SECONDS] [--json]``"""
    return run_tool("execsnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
