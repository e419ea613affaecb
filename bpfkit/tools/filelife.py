"""filelife: files created and then deleted while tracing, with their age, as bcc's filelife.
kprobes on security_inode_create and vfs_unlink (no VFS tracepoints), so FeatureNotSupported
naming kprobes on a kernel without them.

Example::

    $ sudo bpfkit filelife

    from bpfkit.tools import filelife
    with filelife.stream(pid=1234) as s:
        for batch in s:
            print(filelife.decode(batch))
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ._part2 import Traced, follow, require_kprobes, tool_spec
from .common import Scope, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def _text(raw: Any) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


def stream(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None,
           duration: Optional[float] = None) -> Traced:
    """Start tracing short-lived files (created by ``pid``/``comm``/``cgroup`` when given);
    batches of ``struct life_event`` (``ts``, ``age_ns``, ``pid``, ``tid``, ``comm`` of the
    deleter, ``name``)."""
    require_kprobes("filelife (file creation and deletion have no tracepoints)")
    return Traced(tool_spec("filelife", Scope(pid=pid, comm=comm, cgroup=cgroup)), counters=("missed",),
                  duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per deleted file: ``ts_ns``, ``pid``, ``tid``, ``comm``, ``age_ns``, ``file``."""
    return [{"ts_ns": int(r["ts"]), "pid": int(r["pid"]), "tid": int(r["tid"]), "comm": _text(r["comm"]),
             "age_ns": int(r["age_ns"]), "file": _text(r["name"])} for r in batch]


def build_parser() -> argparse.ArgumentParser:
    p = parser("filelife", "Trace the lifespan of short-lived files",
               "examples:\n    bpfkit filelife           # trace all short-lived files\n"
               "    bpfkit filelife -p 181    # only trace PID 181\n")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(pid=args.pid, comm=args.comm, cgroup=args.cgroup)

    def show(batch: np.ndarray) -> None:
        for row in decode(batch):
            if args.json:
                print_json(row)
            else:
                print("%-8s %-7d %-16s %-7.2f %s" % (time.strftime("%H:%M:%S"), row["pid"], row["comm"],
                                                     row["age_ns"] / 1e9, row["file"]))

    follow("filelife", s, show, header="%-8s %-7s %-16s %-7s %s" % ("TIME", "PID", "COMM", "AGE(s)", "FILE"),
           json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit filelife [-p PID] [--comm COMM] [--cgroup PATH] [--json]``"""
    return run_tool("filelife", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
