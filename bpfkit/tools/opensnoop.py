"""opensnoop: trace open(2), openat(2) and openat2(2) with the file name, fd or errno, as bcc's
opensnoop. From the syscall tracepoints (no kprobes or fentry).

Example::

    $ sudo bpfkit opensnoop -x -p 1234
    $ sudo bpfkit opensnoop -e -f O_WRONLY -f O_RDWR --json

    from bpfkit.tools import opensnoop
    with opensnoop.stream(failed=True, duration=5) as s:
        for batch in s:
            print(batch["name"], batch["ret"])
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Sequence

import numpy as np

from .common import Scope, ToolError, add_json, add_scope, parser, positive_float, positive_int, print_json, run_tool
from .streaming import Clock, EventStream, configure, cstrings, follow

__all__ = ["stream", "decode", "open_flags", "main"]

DEFAULT_PAGES = 1024  # ring buffer: 4 MiB


def open_flags(names: Sequence[str]) -> int:
    """``["O_WRONLY", "O_RDWR"]`` -> their bitwise or (ToolError for a name that is not an O_ flag)."""
    mask = 0
    for name in names:
        if not name.startswith("O_") or not isinstance(getattr(os, name, None), int):
            raise ToolError(f"Bad flag: {name}")
        mask |= getattr(os, name)
    return mask


def stream(*, failed: bool = False, pid: Optional[int] = None, tid: Optional[int] = None, uid: Optional[int] = None,
           flags: int = 0, comm: Optional[str] = None, cgroup: Optional[str] = None,
           duration: Optional[float] = None, buffer_pages: int = DEFAULT_PAGES,
           clock: Optional[Clock] = None) -> EventStream:
    """Start tracing opens; iterate for numpy batches of ``struct open_event`` (``pid``, ``tid``,
    ``uid``, ``ret``, ``flags``, ``mode``, ``comm``, ``name``). ``flags`` keeps calls with any of
    those O_ bits; ``failed`` only errors; the rest scope it on the BPF side.

    Example::

        with stream(pid=os.getpid()) as s:
            open("/etc/hostname").close()
            print(s.drain()["name"])        # [b'/etc/hostname']
    """
    if buffer_pages & (buffer_pages - 1):
        raise ToolError(f"-b {buffer_pages}: the buffer must be a power of two number of pages")
    spec = configure("opensnoop", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup), failed_only=failed,
                     filter_uid=uid is not None, target_uid=uid, flags_mask=flags)
    spec.maps.events.max_entries = buffer_pages * os.sysconf("SC_PAGE_SIZE")
    return EventStream(spec, duration=duration, counters=("missed",), clock=clock)


def decode(batch: np.ndarray, clock: Optional[Clock] = None) -> list[dict[str, Any]]:
    """One dict per call: ``time``, ``pid``, ``tid``, ``uid``, ``comm``, ``fd`` (-1 on error),
    ``err`` (errno, 0 on success), ``flags``, ``mode``, ``path``, ``truncated`` (the path was longer
    than the 255 bytes kept)."""
    clock = clock or Clock()
    out = []
    for r, name in zip(batch, cstrings(batch["name"])):
        ret = int(r["ret"])
        out.append({"time": float(clock.wall(int(r["ts"]))), "ts_ns": int(r["ts"]), "pid": int(r["pid"]),
                    "tid": int(r["tid"]), "uid": int(r["uid"]), "comm": r["comm"].decode(errors="replace"),
                    "fd": ret if ret >= 0 else -1, "err": -ret if ret < 0 else 0, "flags": int(r["flags"]),
                    "mode": int(r["mode"]), "path": name.decode(errors="replace"), "truncated": bool(r["name_cut"])})
    return out


EXAMPLES = """examples:
    bpfkit opensnoop                        # trace all open() syscalls
    bpfkit opensnoop -T                     # include timestamps
    bpfkit opensnoop -U                     # include UID
    bpfkit opensnoop -x                     # only show failed opens
    bpfkit opensnoop -p 181                 # only trace PID 181
    bpfkit opensnoop -t 123                 # only trace TID 123
    bpfkit opensnoop -u 1000                # only trace UID 1000
    bpfkit opensnoop -d 10                  # trace for 10 seconds only
    bpfkit opensnoop -n main                # only print process names containing "main"
    bpfkit opensnoop -e                     # show extended fields
    bpfkit opensnoop -f O_WRONLY -f O_RDWR  # only print calls for writing
    bpfkit opensnoop --cgroup system.slice/foo.service  # only this cgroup
    bpfkit opensnoop --json                 # one JSON object per open
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("opensnoop", "Trace open() syscalls", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    p.add_argument("-x", "--failed", action="store_true", help="only show failed opens")
    p.add_argument("-u", "--uid", type=int, help="trace this UID only")
    p.add_argument("-d", "--duration", type=positive_float, help="total duration of trace in seconds")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-e", "--extended_fields", action="store_true", help="show extended fields")
    p.add_argument("-f", "--flag_filter", action="append", help="filter on flags argument (e.g., O_WRONLY)")
    p.add_argument("-b", "--buffer-pages", type=positive_int, default=DEFAULT_PAGES,
                   help=f"size of the ring buffer (a power of two number of pages, default {DEFAULT_PAGES})")
    add_scope(p, tid=True, comm="--comm")
    add_json(p)
    return p


def _body(args: argparse.Namespace) -> int:
    clock = Clock()
    s = stream(failed=args.failed, pid=args.pid, tid=args.tid, uid=args.uid, flags=open_flags(args.flag_filter or []),
               comm=args.comm, cgroup=args.cgroup, duration=args.duration, buffer_pages=args.buffer_pages,
               clock=clock)
    head = ("%-14s" % "TIME(s)" if args.timestamp else "") + ("%-6s" % "UID" if args.print_uid else "") + \
        "%-6s %-16s %4s %3s " % ("TID" if args.tid else "PID", "COMM", "FD", "ERR") + \
        ("%-9s" % "FLAGS" if args.extended_fields else "") + "PATH"
    first: list[int] = []

    name = args.name.encode() if args.name else None
    out = sys.stdout

    def show(batch: np.ndarray) -> int:
        if name is not None:
            batch = batch[np.char.find(batch["comm"], name) >= 0]
        if args.json:
            for ev in decode(batch, clock):
                print_json(ev)
            return len(batch)
        if not len(batch):
            return 0
        # one bytes format per line, no per-event dict: opens come by the hundred thousand a second
        ts = batch["ts"].tolist()
        if not first:
            first.append(ts[0])
        ids = (batch["tid"] if args.tid else batch["pid"]).tolist()
        lines = []
        for t, i, uid, comm, ret, flags, path, cut in zip(ts, ids, batch["uid"].tolist(), batch["comm"].tolist(),
                                                             batch["ret"].tolist(), batch["flags"].tolist(),
                                                             cstrings(batch["name"]), batch["name_cut"].tolist()):
            line = b"%-14.9f" % ((t - first[0]) / 1e9) if args.timestamp else b""
            if args.print_uid:
                line += b"%-6d" % uid
            line += b"%-6d %-16s %4d %3d " % (i, comm, ret if ret >= 0 else -1, -ret if ret < 0 else 0)
            if args.extended_fields:
                line += b"%08o " % flags
            lines.append(line + path + b"..." if cut else line + path)  # "...": cut (as execsnoop's args)
        out.flush()
        out.buffer.write(b"\n".join(lines) + b"\n")
        return len(batch)

    follow("opensnoop", s, show, header=head, json_mode=args.json, summary=lambda n: f"opensnoop: {n} opens shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit opensnoop [-T] [-U] [-x] [-p PID] [-t TID] [-u UID] [-d S] [-n NAME] [-e] [-f FLAG]... [-b PAGES]
    [--comm COMM] [--cgroup PATH] [--json]``"""
    return run_tool("opensnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
