"""The ``bpfkit`` command.

Example::

    $ bpfkit compile prog.bpf.c -o prog.bpf.o
    $ sudo bpfkit syscount --duration 5
    $ sudo bpfkit list 'tracepoint:sched:*'
    $ bpfkit --version
"""
from __future__ import annotations

import importlib
import logging
import sys
from typing import Callable, Optional, Sequence

__all__ = ["COMMANDS", "main"]

# subcommand -> (module, function taking argv without the subcommand, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "compile": ("bpfkit.compiler", "compile_main", "compile BPF C into a cached CO-RE .bpf.o"),
    "cache": ("bpfkit.tools.cache", "main", "show or prune the compile cache and guest kernel images"),
    "core-report": ("bpfkit.loader.native.report", "main", "which CO-RE relocations resolve on this or given kernels"),
    "list": ("bpfkit.tools.list", "main", "list probes: tracepoints, functions, symbols, USDT"),
    "syscount": ("bpfkit.tools.syscount", "main", "count system calls by syscall or process, like bcc's syscount"),
    "execsnoop": ("bpfkit.tools.execsnoop", "main", "new processes (exec) with their arguments"),
    "exitsnoop": ("bpfkit.tools.exitsnoop", "main", "process exits with age, exit code or signal"),
    "killsnoop": ("bpfkit.tools.killsnoop", "main", "signals sent: sender, target, signal, result"),
    "opensnoop": ("bpfkit.tools.opensnoop", "main", "open() calls with file name and fd or errno"),
    "statsnoop": ("bpfkit.tools.statsnoop", "main", "stat() calls with path and result"),
    "syncsnoop": ("bpfkit.tools.syncsnoop", "main", "sync(), fsync() and other flushes to storage"),
    "runqlat": ("bpfkit.tools.runqlat", "main", "run-queue (scheduler) latency histogram"),
    "runqslower": ("bpfkit.tools.runqslower", "main", "threads that waited on a run queue over a threshold"),
    "runqlen": ("bpfkit.tools.runqlen", "main", "run-queue length sampled on every CPU"),
    "cpudist": ("bpfkit.tools.cpudist", "main", "on-CPU (or -O off-CPU) time per switch, as a histogram"),
    "softirqs": ("bpfkit.tools.softirqs", "main", "soft interrupt time (or counts) per kind"),
    "hardirqs": ("bpfkit.tools.hardirqs", "main", "hard interrupt handler time (or counts) per handler"),
    "capable": ("bpfkit.tools.capable", "main", "security capability checks with their verdict"),
    "top": ("bpfkit.tools.top", "main", "every BPF program's run time, runs/s and CPU share (BPF statistics)"),
    "profile": ("bpfkit.tools.profile", "main", "CPU profile: sampled stacks, folded or as a flame graph"),
    "offcputime": ("bpfkit.tools.offcputime", "main", "time blocked off CPU per stack"),
    "stackcount": ("bpfkit.tools.stackcount", "main", "count the stacks that reach a probe"),
    "biolatency": ("bpfkit.tools.biolatency", "main", "block I/O latency histogram, like bcc's biolatency"),
    "biosnoop": ("bpfkit.tools.biosnoop", "main", "trace block I/O with latency, like bcc's biosnoop"),
    "biotop": ("bpfkit.tools.biotop", "main", "top for disks: block I/O by process, like bcc's biotop"),
    "bitesize": ("bpfkit.tools.bitesize", "main", "block I/O size histogram per process, like bcc's bitesize"),
    "tcplife": ("bpfkit.tools.tcplife", "main", "TCP sessions with bytes each way and duration, like bcc's tcplife"),
    "tcpstates": ("bpfkit.tools.tcpstates", "main", "TCP state changes with time in each state, like bcc's"),
    "tcpconnect": ("bpfkit.tools.tcpconnect", "main", "trace TCP connect()s, like bcc's tcpconnect"),
    "tcpconnlat": ("bpfkit.tools.tcpconnlat", "main", "TCP connect latency, like bcc's tcpconnlat"),
    "tcpaccept": ("bpfkit.tools.tcpaccept", "main", "trace TCP accept()s, like bcc's tcpaccept"),
    "tcpretrans": ("bpfkit.tools.tcpretrans", "main", "trace or count TCP retransmissions, like bcc's"),
    "tcptop": ("bpfkit.tools.tcptop", "main", "top for TCP: bytes per process and flow, like bcc's tcptop"),
    "solisten": ("bpfkit.tools.solisten", "main", "trace listen() on TCP sockets, like bcc's solisten"),
    "oomkill": ("bpfkit.tools.oomkill", "main", "trace OOM kills: trigger and victim, like bcc's oomkill"),
    "memleak": ("bpfkit.tools.memleak", "main", "outstanding allocations of a process by stack, like bcc's memleak -p"),
    "drsnoop": ("bpfkit.tools.drsnoop", "main", "trace direct memory reclaim with latency, like bcc's drsnoop"),
    "mountsnoop": ("bpfkit.tools.mountsnoop", "main", "trace mount() and umount() calls, like bcc's mountsnoop"),
    "vfsstat": ("bpfkit.tools.vfsstat", "main", "VFS calls per second, like bcc's vfsstat (needs kprobes)"),
    "filetop": ("bpfkit.tools.filetop", "main", "file reads/writes by process and file, like bcc's filetop (kprobes)"),
    "fileslower": ("bpfkit.tools.fileslower", "main", "slow synchronous file I/O, like bcc's fileslower (kprobes)"),
    "filelife": ("bpfkit.tools.filelife", "main", "short-lived files with their age, like bcc's filelife (kprobes)"),
    "cachestat": ("bpfkit.tools.cachestat", "main", "page cache hits and misses, like bcc's cachestat (kprobes)"),
    "exporter": ("bpfkit.exporter.cli", "main", "serve BPF maps as Prometheus metrics (config file)"),
    "record": ("bpfkit.tools.record", "main", "record a ring/perf buffer to Parquet (bpfkit.replay reads it)"),
    "argdist": ("bpfkit.tools.argdist", "main", "count or histogram a function's arguments or return values"),
    "funccount": ("bpfkit.tools.funccount", "main", "count calls of functions, tracepoints or USDT probes (patterns)"),
    "strace": ("bpfkit.tools.strace", "main", "system calls of a command or process, shown as strace does (-c, -f, -e, -T)"),
    "trace": ("bpfkit.tools.trace", "main", "print a line per call of a function, tracepoint or USDT probe"),
}


def _usage() -> str:
    lines = ["usage: bpfkit [--version] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {helptext}" for name, (_, _, helptext) in COMMANDS.items()]
    lines += ["", "`bpfkit COMMAND --help` for a command's options."]
    return "\n".join(lines)


def _show_warnings() -> None:
    """bpfkit's warnings (a kind of probe this kernel lacks, symbols not found...) on stderr, as
    ``bpfkit: ...``: a library only logs them, a command must show them. libbpf's own messages
    stay in their logger: the errors that matter quote them."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("bpfkit: %(message)s"))
    handler.addFilter(lambda record: not record.name.startswith("bpfkit.libbpf"))
    handler.setLevel(logging.WARNING)
    root = logging.getLogger("bpfkit")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Dispatch to a subcommand; returns the exit status (2 for a usage error, as argparse does).

    Example::

        main(["--version"])   # prints 'bpfkit 0.1.0'
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(_usage(), file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from importlib.metadata import version  # the installed distribution's, which is what ran

        print(f"bpfkit {version('bpfkit')}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        what = "option" if name.startswith("-") else "command"
        print(f"bpfkit: unknown {what} {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if argv is None:
        _show_warnings()
    module, func, _ = COMMANDS[name]
    entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), func)
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
