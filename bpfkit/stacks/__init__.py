"""Stacks as people read them: folded lines, flame graphs (SVG, written by bpfkit), speedscope,
pandas, and inline in a notebook.

Example::

    from bpfkit.stacks import StackProfile
    from bpfkit.symbols import Symbolizer

    prof = StackProfile.from_addresses(counts, user=ustacks, kernel=kstacks, pids=pids,
                                       comms=comms, symbolizer=Symbolizer())
    print(prof.folded())
    prof.write_svg("profile.svg")
    prof                      # in Jupyter: the interactive flame graph
"""
from __future__ import annotations

from .flamegraph import render_svg
from .profile import MISSED_KERNEL, MISSED_USER, SEPARATOR, FunctionStat, NamedStacks, StackProfile, name_stacks
from .speedscope import to_speedscope

__all__ = ["MISSED_KERNEL", "MISSED_USER", "SEPARATOR", "FunctionStat", "NamedStacks", "StackProfile",
           "name_stacks", "render_svg", "to_speedscope"]
