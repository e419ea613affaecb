"""Attach a program by its SEC() name, as libbpf's skeletons do.

Supported: ``tracepoint/CAT/NAME`` (``tp/``), ``raw_tracepoint/NAME`` (``raw_tp/``),
``tp_btf/NAME``, ``fentry/``, ``fexit/``, ``fmod_ret/``, ``uprobe/BINARY:SYMBOL[+OFF]``,
``uretprobe/...``.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..errors import AttachError
from .link import Link
from .tracepoint import attach_btf_traced, attach_raw_tracepoint, attach_tracepoint
from .uprobe import attach_uprobe

# section prefix -> (prog fd, rest of the section) -> Link
Handler = Callable[[int, str, str], Link]


def _tracepoint(fd: int, rest: str, sec: str) -> Link:
    cat, sep, name = rest.partition("/")
    if not sep or not name:
        raise AttachError(f"SEC({sec!r}): expected tracepoint/CATEGORY/NAME")
    return attach_tracepoint(fd, cat, name)


def _raw_tp(fd: int, rest: str, sec: str) -> Link:
    if not rest:
        raise AttachError(f"SEC({sec!r}): expected raw_tp/NAME")
    return attach_raw_tracepoint(fd, rest)


def _btf(fd: int, rest: str, sec: str) -> Link:
    return attach_btf_traced(fd, sec)


def _uprobe(retprobe: bool) -> Handler:
    def handler(fd: int, rest: str, sec: str) -> Link:
        binary, sep, func = rest.rpartition(":")
        if not sep or not binary or not func:
            raise AttachError(f"SEC({sec!r}): expected {'uretprobe' if retprobe else 'uprobe'}/BINARY:FUNCTION "
                              "(a bare SEC needs attach_uprobe() with explicit arguments)")
        sym, plus, off = func.partition("+")
        return attach_uprobe(fd, binary, sym, offset=int(off, 0) if plus else 0, retprobe=retprobe)
    return handler


HANDLERS: dict[str, Handler] = {
    "tracepoint": _tracepoint,
    "tp": _tracepoint,
    "raw_tracepoint": _raw_tp,
    "raw_tp": _raw_tp,
    "raw_tracepoint.w": _raw_tp,
    "raw_tp.w": _raw_tp,
    "tp_btf": _btf,
    "fentry": _btf,
    "fexit": _btf,
    "fmod_ret": _btf,
    "fentry.s": _btf,
    "fexit.s": _btf,
    "lsm": _btf,
    "uprobe": _uprobe(False),
    "uretprobe": _uprobe(True),
    "uprobe.s": _uprobe(False),
    "uretprobe.s": _uprobe(True),
}


def attach_by_section(prog_fd: int, section: str) -> Optional[Link]:
    """Attach according to ``section``; None when the section carries no target (e.g. bare
    ``SEC("uprobe")``, ``SEC("xdp")``, ``SEC("perf_event")``), which needs an explicit attach call."""
    kind, _, rest = section.partition("/")
    handler = HANDLERS.get(kind)
    if handler is None or (not rest and kind not in ("tp_btf",)):
        return None
    return handler(prog_fd, rest, section)
