"""``bpfkit list [-v] [-p PID] PATTERN...``: print matching probes, like ``bpftrace -l`` / ``-lv``.

The listing itself is :func:`bpfkit.probes.list`; this module is only its command line.

Example::

    $ sudo bpfkit list 'tracepoint:sched:*'
    $ sudo bpfkit list -v rawtracepoint:sched_switch
    $ sudo bpfkit list -p 1234 usdt
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..errors import BpfError
from ..probes.discovery import list_probes

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``bpfkit list`` with ``argv`` (without the subcommand); returns the exit status:
    0 when every pattern matched something, 1 otherwise.

    Example::

        main(["-v", "tracepoint:syscalls:sys_enter_read"])
    """
    ap = argparse.ArgumentParser(prog="bpfkit list", description="List probes, like bpftrace -l. Patterns: "
                                 "tracepoint:CAT:NAME, rawtracepoint:NAME, kprobe:FUNC, fentry:FUNC, "
                                 "uprobe:BINARY:FUNC, usdt:BINARY:PROVIDER:NAME, software:NAME, hardware:NAME")
    ap.add_argument("patterns", nargs="*", default=["tracepoint:*"], metavar="PATTERN")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show tracepoint fields, raw tracepoint arguments and USDT arguments")
    ap.add_argument("-p", "--pid", type=int, help="search the binaries mapped by this process (uprobe/usdt)")
    args = ap.parse_args(argv)
    status = 0
    for pattern in args.patterns:
        if args.pid is not None and pattern.partition(":")[0] in ("usdt", "U", "uprobe", "u") and pattern.count(":") == 0:
            pattern += ":*"
        try:
            probes = list_probes(pattern, pid=args.pid, verbose=args.verbose)
        except BpfError as e:
            print(f"bpfkit list: {e}", file=sys.stderr)
            status = 1
            continue
        for p in probes:
            print(p)
            if args.verbose:
                for f in p.fields:
                    print(f"    {f.declaration}")
                if p.args:
                    print(f"    args: {p.args}")
        if not probes:
            print(f"bpfkit list: no probe matches {pattern!r}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
