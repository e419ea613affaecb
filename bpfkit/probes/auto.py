"""Attach a program by its SEC() name, as libbpf's skeletons do.

Supported: ``tracepoint/CAT/NAME`` (``tp/``), ``raw_tracepoint/NAME`` (``raw_tp/``),
``tp_btf/NAME``, ``fentry/``, ``fexit/``, ``fmod_ret/``, ``lsm/``, ``kprobe/FUNC[+OFF]``,
``kretprobe/FUNC``, ``ksyscall/NAME``, ``kretsyscall/NAME``, ``kprobe.multi/PATTERN``,
``kretprobe.multi/PATTERN``, ``uprobe/BINARY:SYMBOL[+OFF]``, ``uretprobe/...``,
``uprobe.multi/BINARY:PATTERN``, ``uretprobe.multi/...``, ``usdt/BINARY:PROVIDER:NAME``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..errors import AttachError
from .fentry import attach_fentry
from .kprobe import attach_kprobe, syscall_function
from .link import Link
from .tracepoint import attach_raw_tracepoint, attach_tracepoint
from .uprobe import attach_uprobe

# (prog fd, rest of the section after the first '/', whole section) -> Link
Handler = Callable[[int, str, str], Link]
# Handlers that need the Program (its object's maps), e.g. USDT: (program, rest, section) -> Link
ProgramHandler = Callable[[Any, str, str], Link]


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
    return attach_fentry(fd, sec)


def _uprobe(retprobe: bool, multi: bool = False) -> Handler:
    def handler(fd: int, rest: str, sec: str) -> Link:
        binary, sep, func = rest.rpartition(":")
        if not sep or not binary or not func:
            kind = sec.partition("/")[0]
            raise AttachError(f"SEC({sec!r}): expected {kind}/BINARY:FUNCTION "
                              "(a bare SEC needs attach_uprobe() with explicit arguments)")
        sym, plus, off = func.partition("+")
        return attach_uprobe(fd, binary, sym, offset=int(off, 0) if plus else 0, retprobe=retprobe, multi=multi)
    return handler


def _kprobe(retprobe: bool, multi: bool = False) -> Handler:
    def handler(fd: int, rest: str, sec: str) -> Link:
        func, plus, off = rest.partition("+")
        return attach_kprobe(fd, func, offset=int(off, 0) if plus else 0, retprobe=retprobe, multi=multi)
    return handler


def _ksyscall(retprobe: bool) -> Handler:
    def handler(fd: int, rest: str, sec: str) -> Link:
        return attach_kprobe(fd, syscall_function(rest), retprobe=retprobe)
    return handler


def _usdt(program: Any, rest: str, sec: str) -> Link:
    parts = rest.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise AttachError(f"SEC({sec!r}): expected usdt/BINARY:PROVIDER:NAME (a bare SEC(\"usdt\") needs "
                          "attach_usdt() with explicit arguments)")
    return program.attach_usdt(parts[0], parts[1], parts[2])


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
    "fmod_ret.s": _btf,
    "lsm": _btf,
    "lsm.s": _btf,
    "kprobe": _kprobe(False),
    "kretprobe": _kprobe(True),
    "kprobe.multi": _kprobe(False, multi=True),
    "kretprobe.multi": _kprobe(True, multi=True),
    "ksyscall": _ksyscall(False),
    "kretsyscall": _ksyscall(True),
    "uprobe": _uprobe(False),
    "uretprobe": _uprobe(True),
    "uprobe.s": _uprobe(False),
    "uretprobe.s": _uprobe(True),
    "uprobe.multi": _uprobe(False, multi=True),
    "uretprobe.multi": _uprobe(True, multi=True),
    "uprobe.multi.s": _uprobe(False, multi=True),
    "uretprobe.multi.s": _uprobe(True, multi=True),
}
PROGRAM_HANDLERS: dict[str, ProgramHandler] = {
    "usdt": _usdt,
    "usdt.s": _usdt,
}
# SEC() names whose target is fixed at load time, so attaching needs nothing after the kind
_NO_TARGET_NEEDED = ("tp_btf", "fentry", "fexit", "fmod_ret", "fentry.s", "fexit.s", "fmod_ret.s", "lsm", "lsm.s")


def attach_by_section(prog_fd: int, section: str, program: Optional[Any] = None) -> Optional[Link]:
    """Attach according to ``section``; None when the section carries no target (e.g. bare
    ``SEC("uprobe")``, ``SEC("usdt")``, ``SEC("xdp")``, ``SEC("perf_event")``), which needs an
    explicit attach call. ``program`` (the :class:`~bpfkit.Program`) is needed for USDT.

    Example::

        link = attach_by_section(prog.fd, "tracepoint/syscalls/sys_enter_openat")
        attach_by_section(prog.fd, "uprobe")     # None: bare SEC, attach explicitly
    """
    kind, _, rest = section.partition("/")
    if kind in PROGRAM_HANDLERS:
        if not rest:
            return None
        if program is None:
            raise AttachError(f"SEC({section!r}) needs the Program (its object's USDT maps) to attach")
        return PROGRAM_HANDLERS[kind](program, rest, section)
    handler = HANDLERS.get(kind)
    if handler is None or (not rest and kind not in _NO_TARGET_NEEDED):
        return None
    return handler(prog_fd, rest, section)
