"""Probe specs as people type them on a command line (``bpfkit stackcount PROBE``, one-liners),
parsed into a :class:`ProbeSpec` and attached to a program fd.

bpftrace's spelling, with its short kinds, plus bcc's where it does not clash:

=====================================  ===================================================
``tracepoint:CAT:NAME`` / ``t:``       a tracefs tracepoint (globs expand: ``t:sched:sched_*``)
``rawtracepoint:NAME`` / ``rt:``       a raw tracepoint
``kprobe:FUNC`` / ``k:`` / ``FUNC``    a kernel function (globs attach every match); bcc's bare name
``kretprobe:FUNC`` / ``kr:``           its return
``uprobe:BIN:FUNC`` / ``u:BIN:FUNC``   a function of a program or library (``c`` = libc); globs
``uretprobe:BIN:FUNC`` / ``ur:``       its return
``BIN:FUNC``, ``p:BIN:FUNC``           bcc's uprobe spelling (``c:malloc``); ``r:BIN:FUNC`` returns
``usdt:BIN:[PROVIDER:]NAME`` / ``U:``  a USDT probe (globs; no BIN with ``pid``: every mapped file)
``software:EVENT[:PERIOD]`` / ``s:``   a software perf event, every PERIOD occurrences (default 1)
``hardware:EVENT[:PERIOD]`` / ``h:``   a hardware one (default period 1,000,000)
=====================================  ===================================================

``u:`` is a uprobe as in bpftrace; bcc's stackcount used ``u:`` for USDT, so a ``u:`` spec that
names no function but names a USDT probe says to write ``usdt:``.

Each spec says which program type it needs (:attr:`ProbeSpec.program`): ``"tracepoint"``,
``"raw_tracepoint"``, ``"kprobe"`` (kprobes, uprobes and USDT all run kprobe-type programs) or
``"perf_event"``. :func:`attach_probe` attaches a program of that type; a USDT probe is attached
as plain uprobes on its sites (with the semaphore counted), enough for programs that do not read
USDT arguments.

Example::

    spec = parse_probe("u:c:malloc")
    spec.kind, spec.target, spec.name, spec.program      # ('uprobe', 'c', 'malloc', 'kprobe')
    with attach_probe(obj.progs.on_kprobe.fd, spec, pid=1234): ...
"""
from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import AttachError, BpfError, BpfNotFoundError, BpfUsageError
from .discovery import _KINDS, list_probes
from .kprobe import attach_kprobe, is_pattern
from .link import Link, group_links
from .sampling import attach_perf_event
from .tracepoint import attach_raw_tracepoint, attach_tracepoint
from .uprobe import attach_uprobe, attach_uprobe_offset
from .usdt import find_usdt

__all__ = ["ProbeSpec", "parse_probe", "attach_probe", "PROGRAM_FOR_KIND"]

# the program type (as sections.py names it) each kind of probe runs
PROGRAM_FOR_KIND = {
    "tracepoint": "tracepoint", "rawtracepoint": "raw_tracepoint",
    "kprobe": "kprobe", "kretprobe": "kprobe", "uprobe": "kprobe", "uretprobe": "kprobe", "usdt": "kprobe",
    "software": "perf_event", "hardware": "perf_event",
}
_RETURN = {"kretprobe", "kr", "uretprobe", "ur", "r"}
_BCC_UPROBE = {"p": "uprobe", "r": "uretprobe"}
_DEFAULT_PERIOD = {"software": 1, "hardware": 1_000_000}
_NAME = re.compile(r"^[A-Za-z0-9_.*?\[\]+-]+$")


@dataclass(frozen=True)
class ProbeSpec:
    """One parsed probe. ``kind``: tracepoint, rawtracepoint, kprobe, kretprobe, uprobe,
    uretprobe, usdt, software or hardware; ``target``: the tracepoint category, the binary, or
    '' (kernel functions, perf events; a USDT spec with no binary searches ``pid``'s files);
    ``name``: tracepoint, function, USDT probe or event name (may hold globs); ``provider``: the
    USDT provider ('' or a glob: any); ``period``: perf events, every how many occurrences.

    Example::

        parse_probe("t:sched:sched_switch")   # ProbeSpec(kind='tracepoint', target='sched', name='sched_switch', ...)
    """

    kind: str
    target: str
    name: str
    provider: str = ""
    period: int = 0
    text: str = ""

    @property
    def program(self) -> str:
        """The program type this probe runs: tracepoint, raw_tracepoint, kprobe or perf_event."""
        return PROGRAM_FOR_KIND[self.kind]

    @property
    def is_pattern(self) -> bool:
        """True when the spec may match several probes (globs)."""
        return is_pattern(self.name) or is_pattern(self.target) or is_pattern(self.provider)

    def __str__(self) -> str:
        if self.kind == "usdt":
            return f"usdt:{self.target}:{self.provider + ':' if self.provider else ''}{self.name}"
        if self.kind in ("software", "hardware"):
            return f"{self.kind}:{self.name}:{self.period}"
        return f"{self.kind}:{self.target + ':' if self.target else ''}{self.name}"


def _bad(text: str, why: str) -> BpfUsageError:
    return BpfUsageError(f"probe {text!r}: {why}. Examples: tracepoint:sched:sched_switch, u:c:malloc, "
                         "usdt:/usr/bin/python3:python:function__entry, kprobe:vfs_read, software:page-faults:100",
                         errno.EINVAL)


def _check_name(text: str, part: str, what: str) -> str:
    if not part:
        raise _bad(text, f"no {what}")
    if not _NAME.match(part):
        raise _bad(text, f"{what} {part!r} has characters no {what} has")
    return part


def parse_probe(text: str) -> ProbeSpec:
    """Parse a probe spec (see the module docs). Raises BpfUsageError naming what is wrong.

    Example::

        parse_probe("usdt:./app:myapp:tick")     # kind='usdt', target='./app', provider='myapp', name='tick'
        parse_probe("c:malloc")                   # bcc's spelling: kind='uprobe', target='c'
    """
    text = text.strip()
    if not text:
        raise _bad(text, "empty")
    parts = text.split(":")
    head = parts[0]
    if len(parts) == 1:  # bcc: a bare kernel function (pattern)
        return ProbeSpec("kprobe", "", _check_name(text, head, "kernel function"), text=text)
    kind = _KINDS.get(head)
    if head in _RETURN and kind is not None:
        kind = "kretprobe" if kind == "kprobe" else "uretprobe"
    if kind is None and head in _BCC_UPROBE and len(parts) == 3:
        kind, parts = _BCC_UPROBE[head], parts
    elif kind is None:
        if len(parts) == 2:  # bcc: LIB:FUNC
            kind, parts = "uprobe", ["uprobe", *parts]
        else:
            raise _bad(text, f"unknown probe kind {head!r}")
    rest = parts[1:]
    if kind == "fentry":
        raise _bad(text, "fentry/fexit probes need a program of their own (BTF-typed); use kprobe:")
    if kind == "tracepoint":
        if len(rest) != 2:
            raise _bad(text, "a tracepoint is tracepoint:CATEGORY:NAME")
        return ProbeSpec(kind, _check_name(text, rest[0], "category"), _check_name(text, rest[1], "tracepoint"),
                         text=text)
    if kind == "rawtracepoint":
        name = rest[-1]  # bpftrace also takes rawtracepoint:MODULE:NAME
        if len(rest) > 2:
            raise _bad(text, "a raw tracepoint is rawtracepoint:NAME")
        return ProbeSpec(kind, "", _check_name(text, name, "raw tracepoint"), text=text)
    if kind in ("kprobe", "kretprobe"):
        if len(rest) == 2 and rest[0] == "":  # p::func, bcc's trace spelling
            rest = rest[1:]
        if len(rest) != 1:
            raise _bad(text, f"a {kind} is {kind}:FUNCTION")
        return ProbeSpec(kind, "", _check_name(text, rest[0], "kernel function"), text=text)
    if kind in ("uprobe", "uretprobe"):
        if len(rest) != 2 or not rest[0]:
            raise _bad(text, f"a {kind} is {kind}:BINARY:FUNCTION (BINARY: a path, a program on $PATH, "
                             "or a library such as c)")
        return ProbeSpec(kind, rest[0], _check_name(text, rest[1], "function"), text=text)
    if kind == "usdt":
        if len(rest) == 3:
            binary, provider, name = rest
        elif len(rest) == 2:
            binary, provider, name = rest[0], "", rest[1]
        else:
            raise _bad(text, "a USDT probe is usdt:BINARY:[PROVIDER:]NAME")
        return ProbeSpec(kind, binary, _check_name(text, name, "USDT probe"), provider=provider, text=text)
    # software / hardware perf events
    if not 1 <= len(rest) <= 2:
        raise _bad(text, f"a {kind} event is {kind}:EVENT[:PERIOD]")
    period = _DEFAULT_PERIOD[kind]
    if len(rest) == 2:
        try:
            period = int(rest[1], 0)
        except ValueError:
            raise _bad(text, f"period {rest[1]!r} is not an integer") from None
        if period <= 0:
            raise _bad(text, "the period must be greater than 0")
    return ProbeSpec(kind, "", _check_name(text, rest[0], "event"), period=period, text=text)


def _usdt_sites(spec: ProbeSpec, pid: int) -> list[tuple[str, int, int, str]]:
    """(path, file offset, semaphore offset, provider:name) of every site the spec names."""
    binary: Optional[str] = spec.target or None
    if spec.is_pattern:
        found = list_probes(f"usdt:{spec.target or '*'}:{spec.provider or '*'}:{spec.name}",
                            pid=pid if pid >= 0 else None)
        names = sorted({(p.name.split(":", 1)[0], p.name.split(":", 1)[1]) for p in found})
    else:
        names = [(spec.provider, spec.name)]
    sites = []
    for provider, name in names:
        if not provider:  # any provider: find it from the notes
            found = list_probes(f"usdt:{spec.target or '*'}:*:{name}", pid=pid if pid >= 0 else None)
            if not found:
                raise BpfNotFoundError(f"probe {spec.text!r}: no USDT probe {name!r} in "
                                       f"{spec.target or f'process {pid}'}")
            provider = found[0].name.split(":", 1)[0]
        for note in find_usdt(binary, provider, name, pid):
            sites.append((note.path, note.offset, note.semaphore_offset, f"{provider}:{name}"))
    if not sites:
        raise BpfNotFoundError(f"probe {spec.text!r}: no USDT probe matches")
    return sites


def _uprobe_hint(spec: ProbeSpec, pid: int, err: BpfError) -> BpfError:
    """bcc's stackcount spells USDT as u:LIB:NAME: say so when that is what the spec meant."""
    if spec.kind != "uprobe" or spec.text.split(":")[0] != "u":
        return err
    try:
        hits = list_probes(f"usdt:{spec.target}:*:{spec.name}", pid=pid if pid >= 0 else None)
    except BpfError:
        return err
    if not hits:
        return err
    return BpfNotFoundError(f"{err} -- {spec.target} has a USDT probe {hits[0].name}: u: is a uprobe here "
                            f"(as in bpftrace); write usdt:{spec.target}:{hits[0].name}", errno.ENOENT)


def attach_probe(prog_fd: int, spec: ProbeSpec | str, *, pid: int = -1, cookie: int = 0) -> Link:
    """Attach program ``prog_fd`` (of type ``spec.program``) to every probe ``spec`` names;
    ``pid`` limits uprobes, USDT probes and perf events to one process (-1: all). Returns one
    link (a group when the spec matched several probes).

    Example::

        link = attach_probe(prog.fd, "t:syscalls:sys_enter_getpid")
    """
    if isinstance(spec, str):
        spec = parse_probe(spec)
    kind = spec.kind
    if kind == "tracepoint":
        if spec.is_pattern:
            tps = [(p.target, p.name) for p in list_probes(f"tracepoint:{spec.target}:{spec.name}")]
            if not tps:
                raise BpfNotFoundError(f"probe {spec.text!r}: no tracepoint matches "
                                       f"(see bpfkit list 'tracepoint:{spec.target}:*')")
            return group_links(lambda t: attach_tracepoint(prog_fd, t[0], t[1], cookie), tps,
                               f"{len(tps)} tracepoints {spec.target}:{spec.name}")
        return attach_tracepoint(prog_fd, spec.target, spec.name, cookie)
    if kind == "rawtracepoint":
        if spec.is_pattern:
            names = [p.name for p in list_probes(f"rawtracepoint:{spec.name}")]
            if not names:
                raise BpfNotFoundError(f"probe {spec.text!r}: no raw tracepoint matches")
            return group_links(lambda n: attach_raw_tracepoint(prog_fd, n), names,
                               f"{len(names)} raw tracepoints {spec.name}")
        return attach_raw_tracepoint(prog_fd, spec.name)
    if kind in ("kprobe", "kretprobe"):
        return attach_kprobe(prog_fd, spec.name, retprobe=kind == "kretprobe", cookie=cookie)
    if kind in ("uprobe", "uretprobe"):
        try:
            return attach_uprobe(prog_fd, spec.target, spec.name, pid=pid, retprobe=kind == "uretprobe",
                                 cookie=cookie)
        except BpfNotFoundError as e:
            raise _uprobe_hint(spec, pid, e) from None
    if kind == "usdt":
        sites = _usdt_sites(spec, pid)
        return group_links(
            lambda s: attach_uprobe_offset(prog_fd, s[0], s[1], pid=pid, ref_ctr_offset=s[2], cookie=cookie,
                                           what=f"usdt {s[0]}:{s[3]}@{s[1]:#x}"),
            sites, f"usdt {spec} ({len(sites)} sites)")
    if kind in ("software", "hardware"):
        return attach_perf_event(prog_fd, spec.name, period=spec.period, pid=pid, cookie=cookie)
    raise AttachError(f"probe {spec.text!r}: kind {kind} cannot be attached here")
