"""The engine behind bpfkit's one-liner tools (trace, argdist, the bpfkit.trace() API): a probe
spec becomes a :class:`~.plan.Plan` (the configuration of the prebuilt generic program
``c/tools/oneliner.bpf.c``), a :class:`~.engine.Tracer` runs plans and yields decoded numpy
batches, and :mod:`.expr` evaluates C-like expressions on them, vectorised.

Example::

    from bpfkit.probes.spec import parse_probe
    from bpfkit.tools.oneliner import Tracer, build_plan
    plan = build_plan(parse_probe("p:c:malloc(size_t size)"), filter="size > 4096")
    with Tracer([plan]) as t:
        for _, batch in t.batches(duration=1.0):
            print(batch["size"])
"""
from __future__ import annotations

from .engine import BatchEnv, ProbeSession, Tracer
from .expr import Expr, evaluate, parse_expr
from .plan import Plan, build_plan

__all__ = ["BatchEnv", "ProbeSession", "Tracer", "Expr", "evaluate", "parse_expr", "Plan", "build_plan"]
