"""``bpfkit strace``: strace's output and options, with BPF doing the capture (see :mod:`.tool`).

Example::

    from bpfkit.tools.strace import strace_counts
    rows, status = strace_counts(["true"])
"""
from __future__ import annotations

from .tool import Strace, SyscallCount, format_summary, main, strace_counts

__all__ = ["Strace", "SyscallCount", "format_summary", "main", "strace_counts"]
