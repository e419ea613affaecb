"""Where tracefs is, and what it says about tracepoints and dynamic PMUs.

bpfkit reads tracefs (ids and field formats of tracepoints) but never writes
probe definitions into it: probes are perf events or BPF links.
"""
from __future__ import annotations

import os
import subprocess
from functools import lru_cache

from ..errors import BpfError, BpfNotFoundError, FeatureNotSupported

_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@lru_cache(maxsize=None)
def tracefs_root() -> str:
    """The tracefs mount point; mounts it at /sys/kernel/tracing when we are root and it is missing."""
    for path in _CANDIDATES:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    if os.geteuid() == 0 and os.path.isdir(_CANDIDATES[0]):
        res = subprocess.run(["mount", "-t", "tracefs", "tracefs", _CANDIDATES[0]], capture_output=True)
        if res.returncode == 0 and os.path.isdir(os.path.join(_CANDIDATES[0], "events")):
            return _CANDIDATES[0]
    raise FeatureNotSupported(
        "tracefs is not mounted: run `mount -t tracefs tracefs /sys/kernel/tracing` as root "
        "(needs CONFIG_TRACING)", feature="tracefs")


def tracepoint_id(category: str, name: str) -> int:
    """The perf event config of tracepoint ``category:name``."""
    path = os.path.join(tracefs_root(), "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        hint = ""
        if os.path.isdir(os.path.join(tracefs_root(), "events", category)):
            hint = f" (category {category!r} exists; list it with bpfkit.probes.list('tracepoint:{category}:*'))"
        else:
            hint = " (no such category; list them with bpfkit.probes.list('tracepoint:*'))"
        raise BpfNotFoundError(f"tracepoint {category}:{name} not found{hint}") from None
    except PermissionError:
        raise BpfError(f"cannot read {path}: reading tracepoint ids needs root") from None


def pmu_type(pmu: str) -> int:
    """The perf ``type`` of a dynamic PMU (``kprobe``, ``uprobe``, ...)."""
    path = f"/sys/bus/event_source/devices/{pmu}/type"
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        config = {"kprobe": "CONFIG_KPROBES (and CONFIG_KPROBE_EVENTS)",
                  "uprobe": "CONFIG_UPROBES (and CONFIG_UPROBE_EVENTS)"}.get(pmu, f"the {pmu} PMU")
        raise FeatureNotSupported(f"this kernel has no {pmu} PMU ({path} is missing): it needs {config}",
                                  feature=pmu) from None


def pmu_retprobe_bit(pmu: str) -> int:
    """Bit of ``config`` that turns a k/uprobe into a return probe (``format/retprobe``)."""
    try:
        with open(f"/sys/bus/event_source/devices/{pmu}/format/retprobe") as f:
            spec = f.read().strip()  # e.g. "config:0"
        return int(spec.split(":")[1])
    except (FileNotFoundError, IndexError, ValueError):
        return 0
