"""What every output of a stack profile reads: the stacks (root first), their weights, the unit.

The renderers (:mod:`~bpfkit.stacks.flamegraph`, :mod:`~bpfkit.stacks.speedscope`) take any
:class:`Folded` — a :class:`~bpfkit.stacks.StackProfile` is one — so they need not know the
profile class, which in turn calls them.

Example::

    render_svg(prof)     # prof: anything with stacks, counts, unit and kinds
"""
from __future__ import annotations

from typing import Mapping, Protocol, Sequence

import numpy as np

__all__ = ["Folded", "UNITS"]

# bpfkit's units and speedscope's names for them
UNITS = {"samples": "none", "ns": "nanoseconds", "us": "microseconds", "ms": "milliseconds", "s": "seconds",
         "bytes": "bytes", "none": "none"}


class Folded(Protocol):
    """Stacks as tuples of frame names, root first, each with a weight in ``unit``; ``kinds``
    maps a frame name to its kind (``"kernel"``, ``"user"``, ``"jit"``...) for colours."""

    @property
    def stacks(self) -> Sequence[tuple[str, ...]]: ...

    @property
    def counts(self) -> np.ndarray: ...

    @property
    def unit(self) -> str: ...

    @property
    def kinds(self) -> Mapping[str, str]: ...
