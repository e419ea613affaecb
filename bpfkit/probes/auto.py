"""Attach a program by its SEC() name, as libbpf's skeletons do.

Which attach path a section takes, and the syntax of its target, come from the section table
(:mod:`bpfkit.sections`): ``tracepoint/CAT/NAME``, ``raw_tp/NAME``, ``tp_btf/``, ``fentry/``,
``fexit/``, ``fmod_ret/``, ``lsm/``, ``kprobe/FUNC[+OFF]``, ``kretprobe/FUNC``, ``ksyscall/NAME``,
``kprobe.multi/PATTERN``, ``uprobe/BINARY:SYMBOL[+OFF]``, ``uprobe.multi/BINARY:PATTERN``,
``usdt/BINARY:PROVIDER:NAME`` and their ``ret``/``.s`` forms.

Example::

    link = attach_by_section(prog.fd, "tracepoint/syscalls/sys_enter_openat")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import AttachError
from ..sections import Match, find
from .link import Link

if TYPE_CHECKING:
    from .usdt import MapLike

# Each handler imports its probe kind's module when it runs: a tool that attaches tracepoints
# does not pay at start-up for ELF parsing (uprobes), USDT notes, BTF lookups (fentry)...

__all__ = ["UsdtMaps", "attach_by_section", "needs_explicit_attach"]


@dataclass(frozen=True)
class UsdtMaps:
    """The USDT maps of a program's object (``usdt.bpf.h``), which a ``usdt/`` section needs."""

    specs: Optional["MapLike"]
    ip_to_spec: Optional["MapLike"]


Handler = Callable[[int, Match, UsdtMaps], Link]


def _tracepoint(fd: int, m: Match, usdt: UsdtMaps) -> Link:
    from .tracepoint import attach_tracepoint

    cat, sep, name = m.target.partition("/")
    if not sep or not name:
        raise AttachError(f"SEC({m.section!r}): expected {m.definition.prefix}/CATEGORY/NAME")
    return attach_tracepoint(fd, cat, name)


def _raw_tp(fd: int, m: Match, usdt: UsdtMaps) -> Link:
    from .tracepoint import attach_raw_tracepoint

    return attach_raw_tracepoint(fd, m.target)


def _btf(fd: int, m: Match, usdt: UsdtMaps) -> Link:
    from .fentry import attach_fentry

    return attach_fentry(fd, m.section)


def _offset(text: str) -> tuple[str, int]:
    name, plus, off = text.partition("+")
    return name, int(off, 0) if plus else 0


def _uprobe(retprobe: bool, multi: bool) -> Handler:
    def handler(fd: int, m: Match, usdt: UsdtMaps) -> Link:
        binary, sep, func = m.target.rpartition(":")
        if not sep or not binary or not func:
            raise AttachError(f"SEC({m.section!r}): expected {m.definition.prefix}/{m.definition.syntax}")
        sym, off = _offset(func)
        from .uprobe import attach_uprobe

        return attach_uprobe(fd, binary, sym, offset=off, retprobe=retprobe, multi=multi)
    return handler


def _kprobe(retprobe: bool, multi: bool) -> Handler:
    def handler(fd: int, m: Match, usdt: UsdtMaps) -> Link:
        func, off = _offset(m.target)
        from .kprobe import attach_kprobe

        return attach_kprobe(fd, func, offset=off, retprobe=retprobe, multi=multi)
    return handler


def _ksyscall(retprobe: bool) -> Handler:
    def handler(fd: int, m: Match, usdt: UsdtMaps) -> Link:
        from .kprobe import attach_kprobe, syscall_function

        return attach_kprobe(fd, syscall_function(m.target), retprobe=retprobe)
    return handler


def _usdt(fd: int, m: Match, usdt: UsdtMaps) -> Link:
    parts = m.target.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise AttachError(f"SEC({m.section!r}): expected usdt/BINARY:PROVIDER:NAME")
    from .usdt import attach_usdt

    return attach_usdt(fd, usdt.specs, usdt.ip_to_spec, parts[0], parts[1], parts[2])


# the section table's `attach` values -> how to attach
HANDLERS: dict[str, Handler] = {
    "tracepoint": _tracepoint,
    "raw_tp": _raw_tp,
    "btf": _btf,
    "kprobe": _kprobe(False, multi=False),
    "kretprobe": _kprobe(True, multi=False),
    "kprobe_multi": _kprobe(False, multi=True),
    "kretprobe_multi": _kprobe(True, multi=True),
    "ksyscall": _ksyscall(False),
    "kretsyscall": _ksyscall(True),
    "uprobe": _uprobe(False, multi=False),
    "uretprobe": _uprobe(True, multi=False),
    "uprobe_multi": _uprobe(False, multi=True),
    "uretprobe_multi": _uprobe(True, multi=True),
    "usdt": _usdt,
}


def needs_explicit_attach(section: str) -> Optional[str]:
    """Why ``section`` cannot be attached from its name alone (None when it can): a bare
    ``SEC("uprobe")``, ``SEC("xdp")``, ``SEC("perf_event")``... names no target.

    Example::

        needs_explicit_attach("uprobe")   # 'SEC("uprobe") names no target: call attach_uprobe(...)'
    """
    m = find(section)
    if m is None:
        return f"SEC({section!r}) is not a section name bpfkit knows"
    d = m.definition
    if d.attach in HANDLERS and (m.target or d.attach == "btf"):
        return None
    call = f"{d.method}(...)" if d.method else "an explicit attach call"
    return f"SEC({section!r}) names no target: call {call}"


def attach_by_section(prog_fd: int, section: str, usdt: UsdtMaps = UsdtMaps(None, None)) -> Optional[Link]:
    """Attach according to ``section``; None when the section carries no target (e.g. bare
    ``SEC("uprobe")``, ``SEC("usdt")``, ``SEC("xdp")``, ``SEC("perf_event")``), which needs an
    explicit attach call. ``usdt`` gives the object's USDT maps, for ``usdt/`` sections.

    Example::

        link = attach_by_section(prog.fd, "tracepoint/syscalls/sys_enter_openat")
        attach_by_section(prog.fd, "uprobe")     # None: bare SEC, attach explicitly
    """
    if needs_explicit_attach(section) is not None:
        return None
    m = find(section)
    assert m is not None
    return HANDLERS[m.definition.attach](prog_fd, m, usdt)
