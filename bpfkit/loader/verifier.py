"""Verifier logs: the part a reader needs first.

Example::

    print(summarize_verifier_log(e.log))   # the failing instruction and the lines before it
"""
from __future__ import annotations

__all__ = ["summarize_verifier_log"]


def summarize_verifier_log(log: str, context: int = 12) -> str:
    """The part of a verifier log a reader needs first: the failing instruction, the
    error and the lines leading to it (the tail of the log, minus the statistics line)."""
    lines = [ln for ln in log.rstrip("\n").split("\n")]
    while lines and (lines[-1].startswith("processed ") or lines[-1].startswith("verification time")
                     or lines[-1].startswith("stack depth") or not lines[-1].strip()):
        lines.pop()
    tail = lines[-context:]
    return "\n".join("  " + ln for ln in tail)
