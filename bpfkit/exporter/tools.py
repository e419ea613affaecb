"""Ready metrics from the toolkit: a config entry can name a tool instead of an object.

Each tool is a config fragment in the same structure as an ``[[objects]]`` entry (the
object, its rodata, its metrics), checked by the same code as a user's config; or, for
``bpf_stats``, a collector that reads the kernel's BPF statistics instead of a map.
A user's entry may add ``rodata`` (merged over the tool's), ``attach`` and more ``metrics``.

Adding a tool when its BPF object lands is one row here: the object's shipped name and
the metrics. Rows with ``planned`` set are names reserved for tools not written yet.

Example::

    [[objects]]
    tool = "syscalls"            # bpfkit_syscalls_total{syscall="read"}

    [[objects]]
    tool = "bpf_stats"           # bpfkit_prog_run_time_seconds_total{id, name, type, tag}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..errors import BpfUsageError

__all__ = ["Tool", "TOOLS", "lookup", "available"]


@dataclass(frozen=True)
class Tool:
    """One ready metric set: a config ``fragment`` (object + metrics), or a ``collector``
    ("module:Class" below bpfkit.exporter) with the metric ``families`` it exposes, or
    ``planned``: why it is not available yet."""

    help: str
    fragment: Optional[dict[str, Any]] = None
    collector: str = ""
    families: tuple[str, ...] = ()
    planned: str = ""


# enum TCP_ESTABLISHED... (include/net/tcp_states.h)
_TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
               7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}

_PID_COMM = [{"name": "pid", "field": "key"}, {"name": "comm", "field": "value.comm"}]

TOOLS: dict[str, Tool] = {
    "syscalls": Tool(
        "system calls entered, by name (raw_syscalls:sys_enter, every process or rodata target_pid)",
        fragment={
            "object": "exporter/syscalls",
            "metrics": [
                {"name": "bpfkit_syscalls_total", "type": "counter", "map": "calls",
                 "help": "System calls entered, by syscall name",
                 "labels": [{"name": "syscall", "field": "key", "decoder": "syscall"}]},
                {"name": "bpfkit_syscalls_out_of_range_total", "type": "counter", "global": "out_of_range",
                 "skip_zero": False, "help": "System calls with a number above the per-syscall table, not counted"},
            ],
        }),
    "syscount": Tool(
        "syscalls and reads per process, and the sizes read() returned (every process or rodata target_pid)",
        fragment={
            "object": "exporter/procs",
            "metrics": [
                {"name": "bpfkit_process_syscalls_total", "type": "counter", "map": "procs", "value": "calls",
                 "help": "System calls per process (tgid) and its name at its first call",
                 "labels": _PID_COMM},
                {"name": "bpfkit_process_reads_total", "type": "counter", "map": "procs", "value": "reads",
                 "help": "Successful read() calls per process", "labels": _PID_COMM},
                # reads return at most 2 GiB: buckets up to le=2**32-1, the rest is only in +Inf
                {"name": "bpfkit_read_bytes", "type": "histogram", "map": "read_bytes", "buckets": "log2",
                 "max_le": 4294967295,
                 "help": "Bytes returned by successful read() calls (log2 buckets; no _sum: the BPF side "
                         "keeps none)"},
                {"name": "bpfkit_syscount_untracked_total", "type": "counter", "global": "dropped",
                 "skip_zero": False, "help": "Syscalls not counted because the process table was full"},
            ],
        }),
    "bpf_stats": Tool(
        "run time and run count of every BPF program on the machine (BPF_ENABLE_STATS while running)",
        collector="progstats:ProgStatsCollector",
        families=("bpfkit_prog_run_time_seconds", "bpfkit_prog_runs", "bpfkit_prog_recursion_misses")),
    "runqlat": Tool(
        "run-queue latency: wake-up or preemption to running (sched_wakeup/_new, sched_switch; every task, "
        "or rodata bpfkit_filter_tgid / bpfkit_filter_cgroup)",
        fragment={
            "object": "tools/runqlat",
            # nanosecond values: each log2 slot's bound is an exact number of ns, and so of seconds
            "rodata": {"unit_ns": 1, "with_sum": 1},
            "metrics": [
                # waits over 2**36 ns (68.7 s) are only in +Inf
                {"name": "bpfkit_runqueue_latency_seconds", "type": "histogram", "map": "hist", "buckets": "log2",
                 "scale": 1e-9, "sum_map": "hist_sum", "max_le": 68.719476735,
                 "help": "Time from a task being woken or preempted until it runs (log2 buckets of ns)"},
                {"name": "bpfkit_runqlat_missed_total", "type": "counter", "global": "missed", "skip_zero": False,
                 "help": "Run-queue waits not recorded: the tool's per-thread start table was full"},
            ],
        }),
    "tcpretrans": Tool(
        "TCP retransmits by address, port and state (tcp:tcp_retransmit_skb; the tcpretrans tool's object)",
        fragment={
            "object": "tools/tcpretrans",
            "rodata": {"count_only": 1},
            "metrics": [
                {"name": "bpfkit_tcp_retransmits_total", "type": "counter", "map": "counts",
                 "help": "TCP segments retransmitted, by flow and the socket's state at the time",
                 "labels": [{"name": "laddr", "field": "key.saddr", "decoder": "ip"},
                            {"name": "lport", "field": "key.lport"},
                            {"name": "raddr", "field": "key.daddr", "decoder": "ip"},
                            {"name": "rport", "field": "key.dport"},
                            {"name": "state", "field": "key.state", "decoder": "static",
                             "map": _TCP_STATES}]},
                {"name": "bpfkit_tcpretrans_untracked_total", "type": "counter", "global": "missed",
                 "skip_zero": False, "help": "Retransmits not counted because the flow table was full"},
            ],
        }),
}


def available() -> list[str]:
    """Names of the tools usable now.

    Example::

        tools.available()   # ['syscalls', 'syscount', 'bpf_stats', 'runqlat', 'tcpretrans']
    """
    return [n for n, t in TOOLS.items() if not t.planned]


def lookup(name: str, where: str = "tool") -> Tool:
    """The tool called ``name``; BpfUsageError for planned or unknown names.

    Example::

        tools.lookup("syscalls").fragment["object"]   # 'exporter/syscalls'
    """
    tool = TOOLS.get(name)
    if tool is None:
        raise BpfUsageError(f"{where}: unknown tool {name!r}; available: {', '.join(available())}")
    if tool.planned:
        raise BpfUsageError(f"{where}: tool {name!r} ({tool.help}) is not available in this bpfkit yet: "
                            f"{tool.planned}. Available now: {', '.join(available())}")
    return tool
