"""Compatibility alias: the tracefs helpers live in :mod:`bpfkit.tracefs` (below both the probes
and :mod:`bpfkit.features`, which read them).

Example::

    from bpfkit.probes.tracefs import tracefs_root   # same function as bpfkit.tracefs.tracefs_root
"""
from __future__ import annotations

from ..tracefs import available_filter_functions, pmu_retprobe_bit, pmu_type, tracefs_root, tracepoint_id

__all__ = ["available_filter_functions", "pmu_retprobe_bit", "pmu_type", "tracefs_root", "tracepoint_id"]
