"""Sampled or weighted stacks, and every way to look at them: folded text, an SVG flame graph,
speedscope JSON, a pandas DataFrame, inline notebook HTML.

A :class:`StackProfile` is a set of distinct stacks (tuples of frame names, **root first**) with
a weight each: a sample count (``profile``, ``stackcount``) or a time (``offcputime``: set
``unit``). Tools build one from raw addresses with :meth:`StackProfile.from_addresses`, which
symbolizes every address of every stack in one vectorised call per process (plus one for the
kernel), and joins user and kernel frames with a separator frame as bcc does.

Example::

    prof = StackProfile.from_frames([["main", "outer", "inner"], ["main", "idle"]], [90, 10])
    print(prof.folded())          # main;idle 10 / main;outer;inner 90
    prof.write_svg("cpu.svg")     # interactive flame graph, no perl
    prof.to_dataframe()           # one row per stack
"""
from __future__ import annotations

import html
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Sequence

import numpy as np

from ..errors import BpfError, BpfUsageError
from .base import UNITS
from .flamegraph import render_svg, svg_height
from .speedscope import to_speedscope

if TYPE_CHECKING:
    import pandas

    from ..symbols import Symbolizer

SEPARATOR = "--"
MISSED_USER = "[Missed User Stack]"
MISSED_KERNEL = "[Missed Kernel Stack]"


def _clean(frame: str) -> str:
    # ';' separates frames and ' N' ends a folded line: a frame must not contain ';' or a newline.
    return frame.replace(";", ":").replace("\n", " ").replace("\r", " ") or "[empty]"


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


class FunctionStat(NamedTuple):
    """Per-function totals: ``self`` (the function was the leaf) and ``total`` (it was anywhere on
    the stack, counted once per stack even when recursive)."""

    name: str
    self: float
    total: float


def _as_list(stack: Any) -> list[int]:
    if stack is None:
        return []
    a = np.asarray(stack, np.uint64).ravel()
    nz = np.flatnonzero(a == 0)
    return a[: nz[0]].tolist() if len(nz) else a.tolist()  # stack maps zero-pad after the last frame


@dataclass
class StackProfile:
    """Distinct stacks (root first) with weights.

    ``kinds`` maps frame names to ``"user"``, ``"kernel"``, ``"jit"``, ``"unknown"``,
    ``"separator"`` or ``"process"``; the flame graph colours by it (names not in it are user
    frames). ``unit`` is ``"samples"`` or a unit of time/size (``"us"``, ``"ns"``, ``"bytes"``...).
    ``warnings`` (from :meth:`from_addresses`) say why stacks may be poor: binaries without frame
    pointers, processes that exited before their stacks were symbolized. Tools print them.
    ``lost`` counts what the BPF side could not record (a full stack map, hash collisions).

    Example::

        p = StackProfile.from_frames([("a", "b")], [3], unit="us")
        p.total, p.folded()          # (3.0, 'a;b 3\\n')
    """

    stacks: list[tuple[str, ...]]
    counts: np.ndarray
    unit: str = "samples"
    title: str = ""
    kinds: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    lost: int = 0  # stacks or samples the kernel side could not record (full maps, collisions)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, np.float64)
        if len(self.counts) != len(self.stacks):
            raise BpfUsageError(f"{len(self.stacks)} stacks but {len(self.counts)} counts")
        if len(self.counts) and (self.counts < 0).any():
            raise BpfUsageError("stack counts must not be negative")
        if self.unit not in UNITS:
            raise BpfUsageError(f"unknown unit {self.unit!r}; use one of {', '.join(UNITS)}")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_frames(cls, stacks: Iterable[Sequence[str]], counts: Iterable[float], *, leaf_first: bool = False,
                    unit: str = "samples", title: str = "", kinds: dict[str, str] | None = None) -> "StackProfile":
        """Stacks of frame names (root first, or ``leaf_first=True`` as BPF collects them); equal
        stacks are merged and their counts added.

        Example::

            StackProfile.from_frames([["inner", "main"]], [5], leaf_first=True).stacks   # [('main', 'inner')]
        """
        merged: dict[tuple[str, ...], float] = defaultdict(float)
        for st, c in zip(stacks, counts, strict=True):
            frames = tuple(_clean(str(f)) for f in (reversed(list(st)) if leaf_first else st))
            merged[frames] += float(c)
        return cls(list(merged), np.fromiter(merged.values(), np.float64, len(merged)), unit, title, dict(kinds or {}))

    @classmethod
    def from_folded(cls, text: str, unit: str = "samples") -> "StackProfile":
        """Parse folded stacks (``a;b;c N`` per line: bcc ``-f``, FlameGraph's stackcollapse, perf).

        Raises BpfUsageError naming the first line that is not ``frames count``.

        Example::

            StackProfile.from_folded("main;f 3\\nmain;g 1\\n").total     # 4.0
        """
        stacks, counts = [], []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            frames, _sp, num = line.rstrip().rpartition(" ")
            try:
                c = float(num)
            except ValueError:
                raise BpfUsageError(f"folded line {n} does not end in a count: {line[:120]!r}") from None
            stacks.append(frames.split(";") if frames else [])
            counts.append(c)
        return cls.from_frames(stacks, counts, unit=unit)

    @classmethod
    def from_addresses(
        cls,
        counts: Sequence[float] | np.ndarray,
        *,
        user: Sequence[Any] | None = None,
        kernel: Sequence[Any] | None = None,
        pids: Sequence[int] | np.ndarray | None = None,
        comms: Sequence[str] | None = None,
        symbolizer: "Symbolizer | None" = None,
        separator: str = SEPARATOR,
        offsets: bool = False,
        unit: str = "samples",
        title: str = "",
    ) -> "StackProfile":
        """Symbolize and fold raw stacks, as BPF collects them (innermost frame first).

        ``user``/``kernel``: one address array per stack (or None for a stack that was not
        collected or failed; a 2-D zero-padded array from a stack map works too); ``pids`` the
        process of each stack (needed for user stacks); ``comms`` an optional root frame per
        stack (bcc puts the process name there). When both user and kernel stacks are given,
        the folded stack is ``comm;user frames;--;kernel frames``. ``offsets`` adds ``+0x1a``.

        Example::

            prof = StackProfile.from_addresses(counts, user=ustacks, kernel=kstacks, pids=pids,
                                               comms=comms, symbolizer=Symbolizer())
        """
        from ..symbols import Symbolizer  # imported on use: most profiles come folded

        sym = symbolizer if symbolizer is not None else Symbolizer()
        n = len(counts)
        for what, seq in (("user", user), ("kernel", kernel), ("pids", pids), ("comms", comms)):
            if seq is not None and len(seq) != n:
                raise BpfUsageError(f"{what} has {len(seq)} entries for {n} counts")
        if user is not None and pids is None:
            raise BpfUsageError("user stacks need the pid of each stack (pids=...)")
        kinds: dict[str, str] = {separator: "separator", MISSED_USER: "unknown", MISSED_KERNEL: "unknown"}
        named = name_stacks(user=user, kernel=kernel, pids=pids, symbolizer=sym, offsets=offsets, kinds=kinds)
        unames, knames, warnings = named.user, named.kernel, named.warnings
        stacks: list[list[str]] = []
        for i in range(n):
            st: list[str] = []
            if comms is not None:
                st.append(comms[i])
                kinds.setdefault(_clean(comms[i]), "process")
            # None is a stack BPF failed to collect (bcc: a negative stack id): say so, like bcc.
            if unames is not None and user is not None:
                st += [MISSED_USER] if user[i] is None else unames[i][::-1]
            if knames is not None and kernel is not None:
                if unames is not None and user is not None and user[i] is not None and unames[i] \
                        and kernel[i] is not None and knames[i]:
                    st.append(separator)
                st += [MISSED_KERNEL] if kernel[i] is None else knames[i][::-1]
            stacks.append(st)
        prof = cls.from_frames(stacks, counts, unit=unit, title=title, kinds=kinds)
        prof.warnings = warnings
        return prof

    # -- properties and combination ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self.stacks)

    @property
    def total(self) -> float:
        """Sum of all weights."""
        return float(self.counts.sum())

    def __add__(self, other: "StackProfile") -> "StackProfile":
        if other.unit != self.unit:
            raise BpfUsageError(f"cannot add a profile in {other.unit} to one in {self.unit}")
        out = StackProfile.from_frames(self.stacks + other.stacks, np.concatenate([self.counts, other.counts]),
                                       unit=self.unit, title=self.title, kinds={**self.kinds, **other.kinds})
        out.warnings = self.warnings + [w for w in other.warnings if w not in self.warnings]
        out.lost = self.lost + other.lost
        return out

    def functions(self) -> list[FunctionStat]:
        """Self and total weight per function, heaviest self first (a ``perf report`` view).

        Example::

            prof.functions()[:3]     # [FunctionStat(name='inner', self=90.0, total=90.0), ...]
        """
        selfw: dict[str, float] = defaultdict(float)
        total: dict[str, float] = defaultdict(float)
        for st, c in zip(self.stacks, self.counts.tolist()):
            if st:
                selfw[st[-1]] += c
            for name in set(st):
                total[name] += c
        return sorted((FunctionStat(n, selfw.get(n, 0.0), t) for n, t in total.items()),
                      key=lambda f: (-f.self, -f.total, f.name))

    # -- outputs --------------------------------------------------------------------------------

    def folded(self) -> str:
        """One ``a;b;c N`` line per stack, root first, sorted by stack (FlameGraph, inferno and
        speedscope read this).

        Example::

            open("out.folded", "w").write(prof.folded())
        """
        order = sorted(range(len(self.stacks)), key=lambda i: self.stacks[i])
        return "".join(f"{';'.join(self.stacks[i])} {_number(self.counts[i])}\n" for i in order)

    def write_folded(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`folded` to ``path``."""
        with open(path, "w") as f:
            f.write(self.folded())

    def svg(self, **options: Any) -> str:
        """The interactive SVG flame graph (see :func:`bpfkit.stacks.flamegraph.render_svg` for
        ``options``: title, width, frame_height, inverted, min_width...)."""
        options.setdefault("title", self.title or "Flame Graph")
        return render_svg(self, **options)

    def write_svg(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write :meth:`svg` to ``path`` (open it in a browser)."""
        with open(path, "w") as f:
            f.write(self.svg(**options))

    def speedscope(self, name: str = "") -> dict[str, Any]:
        """The profile in speedscope's file format (a ``sampled`` profile)."""
        return to_speedscope(self, name or self.title or "bpfkit profile")

    def write_speedscope(self, path: str | os.PathLike[str], name: str = "") -> None:
        """Write :meth:`speedscope` JSON to ``path`` (open it at https://www.speedscope.app)."""
        with open(path, "w") as f:
            json.dump(self.speedscope(name), f)

    def to_dataframe(self) -> "pandas.DataFrame":
        """One row per stack: ``stack`` (tuple, root first), ``folded``, ``leaf``, ``depth``,
        ``count`` and ``percent``, heaviest first. Needs pandas (``pip install bpfkit[pandas]``).

        Example::

            df = prof.to_dataframe(); df.groupby("leaf")["count"].sum()
        """
        try:
            import pandas as pd
        except ImportError:
            raise BpfUsageError("to_dataframe() needs pandas: pip install 'bpfkit[pandas]'") from None
        total = self.total or 1.0
        df = pd.DataFrame({
            "stack": self.stacks,
            "folded": [";".join(s) for s in self.stacks],
            "leaf": [s[-1] if s else "" for s in self.stacks],
            "depth": [len(s) for s in self.stacks],
            "count": self.counts,
            "percent": self.counts * 100.0 / total,
        })
        return df.sort_values(["count", "folded"], ascending=[False, True], ignore_index=True)

    def _repr_html_(self) -> str:
        # An iframe keeps the flame graph's script and ids apart from the notebook page's.
        doc = "<!DOCTYPE html><html><body style='margin:0'>" + self.svg() + "</body></html>"
        height = svg_height(self)
        return (f'<iframe srcdoc="{html.escape(doc, quote=True)}" style="width:100%;height:{height + 20}px;'
                f'border:0" sandbox="allow-scripts allow-modals"></iframe>')  # modals: the search prompt


@dataclass
class NamedStacks:
    """What :func:`name_stacks` gives: per stack, its frame names innermost first (None where no
    stacks of that kind were given); ``kinds`` of the names for colours; ``warnings``."""

    user: list[list[str]] | None
    kernel: list[list[str]] | None
    kinds: dict[str, str]
    warnings: list[str]


def name_stacks(*, user: Sequence[Any] | None = None, kernel: Sequence[Any] | None = None,
                pids: Sequence[int] | np.ndarray | None = None, symbolizer: "Symbolizer | None" = None,
                offsets: bool = False, kinds: dict[str, str] | None = None) -> NamedStacks:
    """Symbolize raw stacks (innermost first, as in :meth:`StackProfile.from_addresses`) without
    folding them: for tools that print each stack with its process, as bcc does. One vectorised
    lookup per process plus one for the kernel. A None stack gets no names (``[]``).

    Example::

        named = name_stacks(user=ustacks, kernel=kstacks, pids=pids)
        named.user[0]          # ['inner', 'middle', 'outer', 'main', '__libc_start_call_main', ...]
    """
    from ..symbols import Symbolizer  # imported on use: most profiles come folded

    sym = symbolizer if symbolizer is not None else Symbolizer()
    if user is not None and pids is None:
        raise BpfUsageError("user stacks need the pid of each stack (pids=...)")
    kinds = kinds if kinds is not None else {}
    warnings: list[str] = []
    ulists = [_as_list(s) for s in user] if user is not None else None
    klists = [_as_list(s) for s in kernel] if kernel is not None else None
    unames = _symbolize_user(sym, ulists, pids, offsets, kinds, warnings) if ulists is not None else None
    knames = _symbolize_kernel(sym, klists, offsets, kinds) if klists is not None else None
    return NamedStacks(unames, knames, kinds, warnings)


def _symbolize_user(sym: "Symbolizer", stacks: list[list[int]], pids: Sequence[int] | np.ndarray | None,
                    offsets: bool, kinds: dict[str, str], warnings: list[str]) -> list[list[str]]:
    assert pids is not None
    out: list[list[str]] = [[] for _ in stacks]
    by_pid: dict[int, list[int]] = defaultdict(list)
    for i, pid in enumerate(np.asarray(pids).tolist()):
        if stacks[i]:
            by_pid[int(pid)].append(i)
    for pid, idx in by_pid.items():
        flat = np.fromiter((a for i in idx for a in stacks[i]), np.uint64)
        try:
            fr = sym.user(pid, flat)
        except BpfError as e:  # the process is gone and was not remembered: keep its stacks, unnamed
            names = [f"[unknown pid {pid}]"] * len(flat)
            kinds[names[0]] = "unknown"
            warnings.append(f"user stacks of pid {pid} are unnamed: {e}")
        else:
            for w in sym.frame_pointer_warnings(pid, set(fr.modules.tolist())):
                if w not in warnings:
                    warnings.append(w)
            names = fr.labels(offset=offsets)
            for name, mod, known in zip(names, fr.modules.tolist(), fr.known.tolist()):
                kinds.setdefault(_clean(name), "unknown" if not known else "jit" if mod.endswith(".map") else "user")
        pos = 0
        for i in idx:
            k = len(stacks[i])
            out[i] = names[pos:pos + k]
            pos += k
    return out


def _symbolize_kernel(sym: "Symbolizer", stacks: list[list[int]], offsets: bool,
                      kinds: dict[str, str]) -> list[list[str]]:
    flat = np.fromiter((a for st in stacks for a in st), np.uint64)
    if not len(flat):
        return [[] for _ in stacks]
    fr = sym.kernel(flat)
    names = fr.labels(offset=offsets)
    for name, known in zip(names, fr.known.tolist()):
        kinds[_clean(name)] = "kernel" if known else "unknown"
    out, pos = [], 0
    for st in stacks:
        out.append(names[pos:pos + len(st)])
        pos += len(st)
    return out
