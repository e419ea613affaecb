"""The ``bpfkit`` command.

Example::

    $ bpfkit compile prog.bpf.c -o prog.bpf.o
    $ sudo bpfkit syscount --duration 5
    $ sudo bpfkit list 'tracepoint:sched:*'
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Optional, Sequence

__all__ = ["COMMANDS", "main"]

# subcommand -> (module, function taking argv without the subcommand, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "compile": ("bpfkit.compiler", "compile_main", "compile BPF C into a cached CO-RE .bpf.o"),
    "list": ("bpfkit.tools.list", "main", "list probes: tracepoints, functions, symbols, USDT"),
    "syscount": ("bpfkit.tools.syscount", "main", "syscalls per process and a histogram of read sizes"),
    "profile": ("bpfkit.tools.profile", "main", "CPU profile: sampled stacks, folded or as a flame graph"),
    "offcputime": ("bpfkit.tools.offcputime", "main", "time blocked off CPU per stack"),
    "stackcount": ("bpfkit.tools.stackcount", "main", "count the stacks that reach a probe"),
    "exporter": ("bpfkit.exporter.cli", "main", "serve BPF maps as Prometheus metrics (config file)"),
    "argdist": ("bpfkit.tools.argdist", "main", "count or histogram a function's arguments or return values"),
    "funccount": ("bpfkit.tools.funccount", "main", "count calls of functions, tracepoints or USDT probes (patterns)"),
    "strace": ("bpfkit.tools.strace", "main", "system calls of a command or process, shown as strace does (-c, -f, -e, -T)"),
    "trace": ("bpfkit.tools.trace", "main", "print a line per call of a function, tracepoint or USDT probe"),
}


def _usage() -> str:
    lines = ["usage: bpfkit COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {helptext}" for name, (_, _, helptext) in COMMANDS.items()]
    lines += ["", "`bpfkit COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Dispatch to a subcommand; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"bpfkit: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), func)
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
