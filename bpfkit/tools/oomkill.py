"""oomkill: OOM killer events — who triggered it, which process was killed, and the victim's
memory — as bcc's oomkill. From the ``oom:mark_victim`` tracepoint instead of bcc's kprobe on
oom_kill_process; bcc's "N pages" is the OOM domain's total, which the tracepoint does not carry:
here it is the victim's resident pages (anon + file + shmem), and ``--json`` gives each part in kB.

Example::

    $ sudo bpfkit oomkill
    21:03:39 Triggered by PID 3297 ("python"), OOM kill of PID 3297 ("python"), 8192 pages, loadavg: ...

    from bpfkit.tools import oomkill
    with oomkill.stream() as s:
        for batch in s:
            print(oomkill.decode(batch))
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ._part2 import Traced, follow, tool_spec
from .common import parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def stream(duration: Optional[float] = None) -> Traced:
    """Start tracing OOM kills; batches of ``struct oom_event`` (``tpid``, ``tcomm``, ``vpid``,
    ``vcomm``, ``total_vm_kb``, ``anon_rss_kb``, ``file_rss_kb``, ``shmem_rss_kb``, ``uid``,
    ``oom_score_adj``)."""
    return Traced(tool_spec("oomkill"), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per kill: ``ts_ns``, ``trigger_pid``, ``trigger_comm``, ``pid``, ``comm`` (the
    victim), its ``total_vm_kb``, ``anon_rss_kb``, ``file_rss_kb``, ``shmem_rss_kb``, ``uid``,
    ``oom_score_adj``."""
    return [{"ts_ns": int(r["ts"]), "trigger_pid": int(r["tpid"]), "trigger_comm": r["tcomm"].decode(errors="replace"),
             "pid": int(r["vpid"]), "comm": r["vcomm"].decode(errors="replace"),
             "total_vm_kb": int(r["total_vm_kb"]), "anon_rss_kb": int(r["anon_rss_kb"]),
             "file_rss_kb": int(r["file_rss_kb"]), "shmem_rss_kb": int(r["shmem_rss_kb"]), "uid": int(r["uid"]),
             "oom_score_adj": int(r["oom_score_adj"])} for r in batch]


def build_parser() -> argparse.ArgumentParser:
    p = parser("oomkill", "Trace OOM killer", "examples:\n    bpfkit oomkill          # trace OOM kills\n")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    p.add_argument("--json", action="store_true", help="one JSON object per kill")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream()
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def show(batch: np.ndarray) -> None:
        for row in decode(batch):
            if args.json:
                print_json(row)
                continue
            with open("/proc/loadavg") as f:
                load = f.read().strip()
            pages = (row["anon_rss_kb"] + row["file_rss_kb"] + row["shmem_rss_kb"]) // page_kb
            print('%s Triggered by PID %d ("%s"), OOM kill of PID %d ("%s"), %d pages, loadavg: %s' % (
                time.strftime("%H:%M:%S"), row["trigger_pid"], row["trigger_comm"], row["pid"], row["comm"], pages,
                load))

    follow("oomkill", s, show, tracing="Tracing OOM kills... Ctrl-C to stop.", json_mode=args.json,
           duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit oomkill [--duration S] [--json]``"""
    return run_tool("oomkill", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
