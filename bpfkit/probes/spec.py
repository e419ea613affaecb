"""Probe specs as people type them on a command line (``bpfkit trace``, ``argdist``, ``funccount``,
``stackcount``, ``bpfkit.trace()``), parsed into one :class:`ProbeSpec`, checked, and attached.

bcc's spelling and bpftrace's:

=====================================  =========================================================
``p:c:malloc``, ``c:malloc``           uprobe on malloc in libc (bcc: ``p:LIB:FUNC``, ``p`` may go)
``uprobe:BIN:FUNC``                    the same, bpftrace's spelling
``r:c:read``, ``uretprobe:``, ``ur:``  its return
``p::vfs_read``, ``vfs_read``          kprobe (an empty library is the kernel; bcc's bare name)
``kprobe:FUNC``, ``k:``                the same, bpftrace's spelling; ``r::``/``kretprobe:``/``kr:`` return
``t:CAT:NAME``, ``tracepoint:``        a tracefs tracepoint
``rawtracepoint:NAME``, ``rt:``        a raw tracepoint
``usdt:BIN:[PROVIDER:]NAME``, ``U:``   a USDT probe (no BIN with ``pid``: every mapped file)
``u:BIN:NAME``                         bcc's tools: a USDT probe; bpftrace: a uprobe (``u=``)
``software:EVENT[:PERIOD]``, ``s:``    a software perf event, every PERIOD occurrences (default 1)
``hardware:EVENT[:PERIOD]``, ``h:``    a hardware one (default period 1,000,000)
``p:c:write(int fd, char *buf, size_t count)``   with a C signature (names and types of the arguments)
``p:c:malloc+0x10``                    an offset into the function (entry probes only)
=====================================  =========================================================

``u:`` means USDT in bcc's tools (``trace 'u:/usr/bin/python3:function__entry'``) and a uprobe in
bpftrace: :func:`parse_probe` takes ``u="usdt"`` or ``u="uprobe"`` (the default; a uprobe spelled
``u:`` that finds no function but names a USDT probe says to write ``usdt:``). Globs
(``c:str*``, ``t:syscalls:sys_enter_*``) are allowed unless the caller says ``patterns=False``.

A malformed spec raises :class:`ProbeSpecError` (a BpfUsageError), whose message shows the spec with
a caret under the offending part and says what was expected; :func:`check_probe` does the same for a
function, tracepoint or USDT probe that does not exist, suggesting close names. Each spec says which
program type it needs (:attr:`ProbeSpec.program`); :func:`attach_probe` attaches a program of that
type.

One module for parsing, checking and attaching (about 550 lines): the kinds, their spellings and the
program type each runs are one table, and every tool that takes a probe goes through here. The C
signature part is :mod:`.signature`.

Example::

    spec = parse_probe("p:c:write(int fd, char *buf, size_t count)")
    spec.kind, spec.target, spec.name, [p.name for p in spec.params]
    # ('uprobe', 'c', 'write', ['fd', 'buf', 'count'])
    parse_probe("u:/usr/bin/python3:function__entry", u="usdt").kind     # 'usdt'
    spec, end = parse_probe_prefix("r:c:read():ssize_t:$retval", colon_tail=True)   # argdist
    with attach_probe(obj.progs.on_kprobe.fd, parse_probe("u:c:malloc"), pid=1234): ...
"""
from __future__ import annotations

import difflib
import errno
import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from ..errors import AttachError, BpfError, BpfNotFoundError, BpfUsageError
from .discovery import list_probes
from .kprobe import attach_kprobe, is_pattern
from .link import Link, group_links
from .signature import CType, Param, ProbeSpecError, c_type, parse_params, parse_signature
from .sampling import attach_perf_event
from .tracepoint import attach_raw_tracepoint, attach_tracepoint
from .uprobe import attach_uprobe, attach_uprobe_offset
from .usdt import find_usdt

__all__ = ["KINDS", "PROGRAM_FOR_KIND", "Param", "ProbeSpec", "ProbeSpecError", "CType", "c_type", "parse_probe",
           "parse_probe_prefix", "parse_params", "check_probe", "close_names", "attach_probe"]

# What the word before the first ':' means. bcc's single letters come first: ``p``/``r`` are uprobes
# when a library is named and kprobes when it is empty ("p::vfs_read"), ``u`` is USDT as in bcc.
KINDS: dict[str, str] = {
    "p": "entry", "r": "return",
    "t": "tracepoint", "tracepoint": "tracepoint", "tp": "tracepoint",
    "u": "u", "usdt": "usdt", "U": "usdt",
    "uprobe": "uprobe", "uretprobe": "uretprobe", "ur": "uretprobe",
    "kprobe": "kprobe", "k": "kprobe", "kretprobe": "kretprobe", "kr": "kretprobe",
    "rawtracepoint": "rawtracepoint", "raw_tracepoint": "rawtracepoint", "rt": "rawtracepoint",
    "raw_tp": "rawtracepoint", "software": "software", "s": "software", "hardware": "hardware", "h": "hardware",
    "fentry": "fentry", "fexit": "fentry", "kfunc": "fentry", "kretfunc": "fentry", "f": "fentry",
}
# the program type (as sections.py names it) each kind of probe runs
PROGRAM_FOR_KIND = {
    "tracepoint": "tracepoint", "rawtracepoint": "raw_tracepoint",
    "kprobe": "kprobe", "kretprobe": "kprobe", "uprobe": "kprobe", "uretprobe": "kprobe", "usdt": "kprobe",
    "software": "perf_event", "hardware": "perf_event",
}
_DEFAULT_PERIOD = {"software": 1, "hardware": 1_000_000}
# The kinds a ProbeSpec ends up with, and how bpftrace spells them.
_RETURN = {"uretprobe", "kretprobe"}
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.$@*?\[\]\-]+")
_OFFSET = re.compile(r"\+(0[xX][0-9a-fA-F]+|\d+)")


@dataclass(frozen=True)
class ProbeSpec:
    """A parsed probe. ``kind``: tracepoint, rawtracepoint, kprobe, kretprobe, uprobe, uretprobe,
    usdt, software or hardware; ``target``: the tracepoint category, the binary or library
    (uprobes, USDT; '' for a USDT spec that searches a pid's files), '' for kernel functions and
    perf events; ``name``: the function, tracepoint, USDT probe or event (a glob where allowed);
    ``provider``: the USDT provider ('' for any); ``period``: perf events, every how many
    occurrences; ``offset``: bytes into the function; ``params``: the C signature (None when none
    was given). ``text`` is what was parsed and ``spans`` where each part sits in it (for carets).

    Example::

        s = parse_probe("r:c:read")
        s.kind, s.target, s.is_return, str(s)      # ('uretprobe', 'c', True, 'uretprobe:c:read')
    """

    kind: str
    target: str
    name: str
    provider: str = ""
    period: int = 0
    text: str = ""
    offset: int = 0
    params: Optional[tuple[Param, ...]] = None
    spans: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)

    @property
    def program(self) -> str:
        """The program type this probe runs: tracepoint, raw_tracepoint, kprobe or perf_event."""
        return PROGRAM_FOR_KIND[self.kind]

    @property
    def binary(self) -> str:
        """The program or library of a uprobe or USDT probe ('' otherwise)."""
        return self.target if self.kind in ("uprobe", "uretprobe", "usdt") else ""

    @property
    def category(self) -> str:
        """A tracepoint's category ('' otherwise)."""
        return self.target if self.kind == "tracepoint" else ""

    @property
    def is_return(self) -> bool:
        return self.kind in _RETURN

    @property
    def is_kernel(self) -> bool:
        """Whether the probe is in the kernel (kprobes, tracepoints) rather than a user program."""
        return self.kind in ("kprobe", "kretprobe", "tracepoint", "rawtracepoint")

    @property
    def is_pattern(self) -> bool:
        """True when the spec may match several probes (globs)."""
        return is_pattern(self.name) or is_pattern(self.target) or is_pattern(self.provider)

    @property
    def display_name(self) -> str:
        """What bcc's tools print for the probe: the function, tracepoint event or USDT name."""
        return self.name

    def span(self, part: str) -> tuple[int, int]:
        """(start, end) in :attr:`text` of ``part`` ("kind", "binary", "category", "provider",
        "name", "offset", "signature"); the whole text when unknown."""
        for name, start, end in self.spans:
            if name == part:
                return start, end
        return 0, len(self.text)

    def error(self, part: str, expected: str, hint: str = "") -> ProbeSpecError:
        """A ProbeSpecError with the caret under ``part`` of this spec."""
        return ProbeSpecError(self.text, self.span(part)[0], expected, hint)

    def __str__(self) -> str:
        if self.kind == "usdt":
            return f"usdt:{self.target}:{self.provider + ':' if self.provider else ''}{self.name}"
        if self.kind in ("software", "hardware"):
            return f"{self.kind}:{self.name}:{self.period}"
        off = f"+{self.offset:#x}" if self.offset else ""
        return f"{self.kind}:{self.target + ':' if self.target else ''}{self.name}{off}"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _part(text: str, pos: int) -> tuple[str, int]:
    """A run of non-separator characters (':', '(', whitespace end a part)."""
    end = pos
    while end < len(text) and text[end] not in ":( \t\n":
        end += 1
    return text[pos:end], end


def parse_probe_prefix(text: str, pos: int = 0, *, colon_tail: bool = False, signature: bool = True,
                       patterns: bool = True, default: str = "p", u: str = "uprobe") -> tuple[ProbeSpec, int]:
    """Parse the probe at ``text[pos:]`` and return it with the position where it ends (a tool
    parses its own syntax from there: a filter, a format string, argdist's ``:type:expr``).
    ``colon_tail`` says a ':' may follow the probe (argdist); ``patterns`` allows globs;
    ``default`` is the kind assumed when the spec names none (bcc: "p", so ``vfs_read`` is a
    kprobe and ``c:malloc`` a uprobe); ``u`` is what ``u:`` means ("usdt" in bcc's tools,
    "uprobe" in bpftrace).

    Example::

        spec, end = parse_probe_prefix('p:c:open "%s", arg1')     # end == 8
    """
    if u not in ("usdt", "uprobe"):
        raise BpfUsageError(f"u={u!r}: 'u:' means 'usdt' or 'uprobe'")
    spans: list[tuple[str, int, int]] = []
    start = pos = _skip_ws(text, pos)
    word, after = _part(text, pos)
    if not word and (after >= len(text) or text[after] != ":"):
        raise ProbeSpecError(text, pos, "expected a probe (the spec is empty), e.g. p:c:malloc, r::vfs_read, "
                             "t:sched:sched_switch, usdt:/usr/bin/python3:function__entry")
    kind_word = ""
    explicit = False
    if after < len(text) and text[after] == ":" and word in KINDS:
        kind_word, explicit = word, True
        spans.append(("kind", pos, after))
        pos = after + 1
    elif word in KINDS and KINDS[word] not in ("entry", "return") and (after >= len(text) or text[after] != ":"):
        raise ProbeSpecError(text, after, f"expected ':' after the probe kind {word!r}")
    elif default:
        kind_word = default
    else:
        raise ProbeSpecError(text, pos, f"unknown probe kind {word!r}; expected one of "
                             f"{', '.join(sorted(set(KINDS), key=str.lower))}")
    kind = KINDS[kind_word]
    if kind == "u":
        kind = u
    if kind == "fentry":
        raise ProbeSpecError(text, start, "fentry/fexit probes need a program of their own (BTF-typed); use kprobe:")
    # the parts up to the name: how many depend on the kind
    parts: list[tuple[str, int]] = []

    def take() -> None:
        nonlocal pos
        p, end = _part(text, pos)
        parts.append((p, pos))
        pos = end

    def colon() -> bool:
        return pos < len(text) and text[pos] == ":"

    take()
    if kind in ("entry", "return"):
        if not explicit or colon():
            if colon():
                pos += 1
                take()
        else:
            raise ProbeSpecError(text, pos, f"expected ':FUNCTION' after '{text[start:pos]}' (bcc: {kind_word}:LIBRARY:"
                                 f"FUNCTION, or {kind_word}::FUNCTION for a kernel function)")
    elif kind in ("tracepoint", "uprobe", "uretprobe"):
        if not colon():
            what = "CATEGORY:NAME" if kind == "tracepoint" else "BINARY:FUNCTION"
            raise ProbeSpecError(text, pos, f"expected ':' and the second part of {kind_word}:{what}")
        pos += 1
        take()
    elif kind == "usdt":
        if not colon():
            raise ProbeSpecError(text, pos, f"expected ':' and the probe name ({kind_word}:BINARY:[PROVIDER:]NAME)")
        pos += 1
        take()
        if colon():
            nxt, nend = _part(text, pos + 1)
            # argdist's tail (":type:expr") also starts with ':' -- a provider is followed by a name
            # that ends the probe (end of text, '(' or a blank), a type is followed by ':'
            if nxt and (not colon_tail or nend >= len(text) or text[nend] in "( \t"):
                pos += 1
                take()
    elif kind in ("kprobe", "kretprobe") and explicit and not parts[0][0] and colon():
        pos += 1  # kprobe::func, as bcc's p::func
        take()
    elif kind == "rawtracepoint" and colon() and not colon_tail:
        pos += 1  # bpftrace's rawtracepoint:MODULE:NAME
        take()
    period = 0
    if kind in ("software", "hardware"):
        period = _DEFAULT_PERIOD[kind]
        if colon() and not colon_tail:
            pstart = pos + 1
            ptext, pos = _part(text, pstart)
            try:
                period = int(ptext, 0)
            except ValueError:
                raise ProbeSpecError(text, pstart, f"period {ptext!r} is not an integer") from None
            if period <= 0:
                raise ProbeSpecError(text, pstart, "the period must be greater than 0")
    # -- the name, an offset, the signature
    name, name_pos = parts[-1]
    offset = 0
    m = _OFFSET.search(name)
    if m and m.end() == len(name) and kind not in ("software", "hardware"):
        offset = int(m.group(1), 0)
        spans.append(("offset", name_pos + m.start(), name_pos + len(name)))
        name = name[:m.start()]
    if not name:
        expected = {"tracepoint": "an event name", "usdt": "a USDT probe name", "rawtracepoint": "a raw tracepoint",
                    "software": "an event", "hardware": "an event"}.get(kind, "a function name")
        raise ProbeSpecError(text, name_pos, f"expected {expected} after '{text[start:name_pos]}'")
    if _NAME_CHARS.fullmatch(name) is None:
        col = name_pos + next((i for i, c in enumerate(name) if not _NAME_CHARS.fullmatch(c)), 0)
        raise ProbeSpecError(text, col, f"unexpected character {text[col]!r} in the name {name!r}")
    if not patterns and any(c in name for c in "*?["):
        raise ProbeSpecError(text, name_pos, f"expected one name, not the pattern {name!r} (patterns are for "
                             "funccount and stackcount)")
    spans.append(("name", name_pos, name_pos + len(name)))
    target = provider = ""
    if kind in ("entry", "return"):
        if len(parts) == 2:
            target = parts[0][0]
            spans.append(("binary", parts[0][1], parts[0][1] + len(target)))
        if target:
            kind = "uprobe" if kind == "entry" else "uretprobe"
        else:
            kind = "kprobe" if kind == "entry" else "kretprobe"
    elif kind == "tracepoint":
        target = parts[0][0]
        spans.append(("category", parts[0][1], parts[0][1] + len(target)))
        if not target:
            raise ProbeSpecError(text, parts[0][1], "expected a tracepoint category (tracepoint:CATEGORY:NAME)")
        if _NAME_CHARS.fullmatch(target) is None:
            raise ProbeSpecError(text, parts[0][1], f"unexpected characters in the category {target!r}")
        if not patterns and any(c in target for c in "*?["):
            raise ProbeSpecError(text, parts[0][1], "expected one category, not a pattern")
    elif kind in ("uprobe", "uretprobe", "usdt"):
        target = parts[0][0]
        spans.append(("binary", parts[0][1], parts[0][1] + len(target)))
        if kind == "usdt" and len(parts) == 3:
            provider = parts[1][0]
            spans.append(("provider", parts[1][1], parts[1][1] + len(provider)))
        if not target and kind != "usdt":
            raise ProbeSpecError(text, parts[0][1], f"expected a binary or library (e.g. c, /usr/bin/bash): "
                                 f"{kind}:BINARY:FUNCTION")
    if offset and kind in _RETURN:
        raise ProbeSpecError(text, dict((n, a) for n, a, _ in spans)["offset"],
                             "a return probe sits on the function's entry: drop the +offset")
    if offset and kind in ("tracepoint", "usdt", "rawtracepoint"):
        raise ProbeSpecError(text, name_pos + len(name), f"a {kind} takes no +offset")
    params: Optional[tuple[Param, ...]] = None
    if pos < len(text) and text[pos] == "(":
        if not signature:
            raise ProbeSpecError(text, pos, "this tool takes no signature after the probe")
        sig_start = pos
        params, pos = parse_signature(text, pos)
        spans.append(("signature", sig_start, pos))
        if params and kind in ("tracepoint", "usdt", "rawtracepoint", "software", "hardware"):
            raise ProbeSpecError(text, sig_start, f"a {kind} has no C signature: use its "
                                 f"{'fields (args->NAME)' if kind == 'tracepoint' else 'arguments arg1, arg2...'}")
    if pos < len(text) and text[pos] == ":" and not colon_tail:
        if not explicit:
            raise ProbeSpecError(text, start, f"unknown probe kind {word!r}; expected one of "
                                 f"{', '.join(sorted(set(KINDS), key=str.lower))}")
        raise ProbeSpecError(text, pos, f"unexpected ':' after the {kind} (too many parts?)")
    return ProbeSpec(kind, target, name, provider, period, text, offset, params, tuple(spans)), pos


def parse_probe(text: str, *, signature: bool = True, patterns: bool = True, default: str = "p",
                u: str = "uprobe") -> ProbeSpec:
    """Parse a whole probe spec (see the module docs); anything after it is an error. ``u``:
    what ``u:`` means ("uprobe", bpftrace's; "usdt", bcc's tools').

    Example::

        parse_probe("p:c:malloc(size_t size)").params[0].ctype.size     # 8
        parse_probe("u:/usr/bin/python3:function__entry", u="usdt").kind  # 'usdt'
    """
    spec, end = parse_probe_prefix(text, 0, signature=signature, patterns=patterns, default=default, u=u)
    end = _skip_ws(text, end)
    if end < len(text):
        raise ProbeSpecError(text, end, "unexpected characters after the probe")
    return spec


def close_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``candidates`` that look like ``name`` (typos, a missing prefix)."""
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.7)
    if len(close) < n:
        close += [c for c in candidates if name in c and c not in close][: n - len(close)]
    return close


def _did_you_mean(names: list[str]) -> str:
    return f"did you mean {' / '.join(names)}?" if names else ""


def check_probe(spec: ProbeSpec, pid: Optional[int] = None) -> None:
    """Raise ProbeSpecError (caret under the part) unless ``spec``'s target exists: the
    tracepoint, the kernel function (kprobes must be available), the binary and function, the USDT
    probe. Patterns must match something. Kinds this kernel cannot attach raise
    FeatureNotSupported.

    Example::

        check_probe(parse_probe("p:c:mallocc"))   # ... did you mean malloc?
    """
    from .. import features
    from ..tracefs import tracefs_root

    if spec.kind in ("rawtracepoint", "software", "hardware"):
        return  # attaching names what is missing
    if spec.kind == "tracepoint":
        root = os.path.join(tracefs_root(), "events")
        cats = sorted(c for c in os.listdir(root) if os.path.isdir(os.path.join(root, c)))
        matching = [c for c in cats if fnmatch.fnmatchcase(c, spec.category)]
        if not matching:
            raise spec.error("category", f"no tracepoint category {spec.category!r}",
                             _did_you_mean(close_names(spec.category, cats)))
        events = sorted(e for c in matching for e in os.listdir(os.path.join(root, c))
                        if os.path.isdir(os.path.join(root, c, e)))
        if not any(fnmatch.fnmatchcase(e, spec.name) for e in events):
            what = f"no tracepoint {spec.category}:{spec.name}" if not spec.is_pattern else \
                f"no tracepoint matches {spec.category}:{spec.name}"
            raise spec.error("name", what, _did_you_mean(close_names(spec.name, events)))
        return
    if spec.kind in ("kprobe", "kretprobe"):
        features.require("kprobes", str(spec))
        from .kprobe import kernel_functions

        if not kernel_functions(spec.name):
            every = kernel_functions("*")
            raise spec.error("name", f"no kernel function {spec.name!r} can be kprobed (it does not exist, is "
                             "inlined, or is blacklisted)", _did_you_mean(close_names(spec.name, every)))
        return
    from ..binaries import list_symbols, read_usdt_notes, resolve_library

    path = ""
    if spec.binary or spec.kind != "usdt":
        try:
            path = resolve_library(spec.binary)
        except BpfError as e:
            raise spec.error("binary", f"binary or library {spec.binary!r} not found", str(e)) from None
    if spec.kind == "usdt":
        if not path:
            if pid is None:
                raise spec.error("binary", "expected a binary (or -p PID to search a process's files)")
            return
        notes = read_usdt_notes(path)
        hits = [n for n in notes if fnmatch.fnmatchcase(n.name, spec.name)
                and (not spec.provider or n.provider == spec.provider)]
        if not hits:
            have = sorted({f"{n.provider}:{n.name}" for n in notes})
            hint = _did_you_mean(close_names(spec.name, sorted({n.name for n in notes})))
            if not have:
                hint = f"{path} has no USDT probes (no .note.stapsdt section)"
            raise spec.error("provider" if spec.provider and any(n.name == spec.name for n in notes) else "name",
                             f"no USDT probe {spec.provider + ':' if spec.provider else ''}{spec.name} in {path}",
                             hint or f"it has: {', '.join(have[:12])}")
        return
    from ..binaries.functions import function_offsets

    try:
        offsets = function_offsets(path)
    except BpfError as e:
        raise spec.error("binary", f"cannot read the functions of {path}", str(e)) from None
    base = spec.name.split("@", 1)[0]
    if base in offsets or (spec.is_pattern and any(fnmatch.fnmatchcase(n, spec.name) for n in offsets)):
        return
    if "@" in spec.name or base not in offsets:
        try:  # a versioned name, an ifunc, or a symbol only the full reader knows
            if any(s.name == base for s in list_symbols(path, base)):
                return
        except BpfError:
            pass
    hint = _did_you_mean(close_names(spec.name, sorted(offsets)))
    if spec.text.split(":", 1)[0] == "u":  # bcc's u: is USDT: say so when the binary has that probe
        usdt = sorted({f"{n.provider}:{n.name}" for n in read_usdt_notes(path) if n.name == spec.name})
        if usdt:
            hint = f"{path} has a USDT probe {usdt[0]}: u: is a uprobe here (as in bpftrace); write usdt:{spec.target}:{usdt[0]}"
    raise spec.error("name", f"no function {spec.name!r} in {path}", hint)


# -- attaching ---------------------------------------------------------------------------------

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
