"""Attaching programs to probes (every kind is a context manager), and finding what to probe.

Example::

    import bpfkit.probes

    bpfkit.probes.list("tracepoint:sched:*")
    bpfkit.probes.tracepoint_fields("syscalls:sys_enter_openat")
    bpfkit.probes.raw_tracepoint_args("sched_switch")     # what a raw_tp / tp_btf program gets
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .discovery import (ProbeInfo, TracepointField, list_probes, raw_tracepoint_args, tracepoint_dtype,
                            tracepoint_fields)
    from .link import Link, LinkGroup, MultiLink

    list = list_probes

_LAZY = {
    "list": ("discovery", "list_probes"),
    "list_probes": ("discovery", "list_probes"),
    "ProbeInfo": ("discovery", "ProbeInfo"),
    "TracepointField": ("discovery", "TracepointField"),
    "tracepoint_fields": ("discovery", "tracepoint_fields"),
    "tracepoint_dtype": ("discovery", "tracepoint_dtype"),
    "raw_tracepoint_args": ("discovery", "raw_tracepoint_args"),
    "kernel_functions": ("kprobe", "kernel_functions"),
    "Link": ("link", "Link"),
    "LinkGroup": ("link", "LinkGroup"),
    "MultiLink": ("link", "MultiLink"),
}


def __getattr__(name: str) -> Any:
    # Lazy: the attach paths import single submodules, and listing needs numpy/pyelftools.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["list", "list_probes", "ProbeInfo", "TracepointField", "tracepoint_fields", "tracepoint_dtype",
           "raw_tracepoint_args",
           "kernel_functions", "Link", "LinkGroup", "MultiLink"]
