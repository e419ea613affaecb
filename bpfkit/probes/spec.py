"""Probe specs as people type them on a command line, parsed into one :class:`ProbeSpec`.

bcc's syntax (``trace``, ``argdist``, ``funccount``, ``stackcount``):

=================================  =====================================================
``p:c:malloc``, ``c:malloc``       uprobe on malloc in libc (``p:LIB:FUNC``; ``p`` may go)
``r:c:read``                       uretprobe
``p::vfs_read``, ``vfs_read``      kprobe (an empty library is the kernel)
``r::vfs_read``                    kretprobe
``t:syscalls:sys_enter_openat``    tracepoint
``u:/usr/bin/python3:function__entry``, ``u:LIB:PROVIDER:NAME``   USDT probe
``p:c:write(int fd, char *buf, size_t count)``                     with a C signature
``p:c:malloc+0x10``                an offset into the function (entry probes only)
=================================  =====================================================

bpftrace's names work too: ``uprobe:c:malloc``, ``uretprobe:BIN:FUNC``, ``kprobe:FUNC``,
``kretprobe:FUNC``, ``tracepoint:CAT:NAME``, ``usdt:BIN:[PROVIDER:]NAME`` (short: ``k``, ``kr``,
``ur``, ``U``; single-letter ``u`` and ``p``/``r``/``t`` keep bcc's meaning). Globs (``c:str*``,
``t:syscalls:sys_enter_*``) where the caller allows them (funccount).

A malformed spec raises :class:`ProbeSpecError`, whose message shows the spec with a caret under
the offending part and says what was expected; :func:`check_probe` does the same for a function,
tracepoint or USDT probe that does not exist, suggesting close names.

Example::

    spec = parse_probe("p:c:write(int fd, char *buf, size_t count)")
    spec.kind, spec.binary, spec.name, [p.name for p in spec.params]
    # ('uprobe', 'c', 'write', ['fd', 'buf', 'count'])
    str(parse_probe("t:syscalls:sys_enter_openat"))    # 'tracepoint:syscalls:sys_enter_openat'
    spec, end = parse_probe_prefix("r:c:read():ssize_t:$retval", colon_tail=True)   # argdist
"""
from __future__ import annotations

import difflib
import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from ..errors import BpfError, BpfUsageError

__all__ = ["KINDS", "Param", "ProbeSpec", "ProbeSpecError", "CType", "c_type", "parse_probe", "parse_probe_prefix",
           "parse_params", "check_probe", "close_names"]

# What the word before the first ':' means. bcc's single letters come first: ``p``/``r`` are uprobes
# when a library is named and kprobes when it is empty ("p::vfs_read"), ``u`` is USDT as in bcc.
KINDS: dict[str, str] = {
    "p": "entry", "r": "return",
    "t": "tracepoint", "tracepoint": "tracepoint", "tp": "tracepoint",
    "u": "usdt", "usdt": "usdt", "U": "usdt",
    "uprobe": "uprobe", "uretprobe": "uretprobe", "ur": "uretprobe",
    "kprobe": "kprobe", "k": "kprobe", "kretprobe": "kretprobe", "kr": "kretprobe",
}
# The kinds a ProbeSpec ends up with, and how bpftrace spells them.
_RETURN = {"uretprobe", "kretprobe"}
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.$@*?\[\]\-]+")
_OFFSET = re.compile(r"\+(0[xX][0-9a-fA-F]+|\d+)")
_PARAM = re.compile(r"^(?P<type>.*?[\s*])(?P<name>[A-Za-z_]\w*)$", re.S)


class ProbeSpecError(BpfUsageError):
    """A probe spec (or an expression in it) that cannot be used. The message shows the text with
    a caret under position ``pos`` and says what was ``expected``.

    Example::

        try:
            parse_probe("p:c:(int x)")
        except ProbeSpecError as e:
            print(e)      # expected a function name after 'p:c:' ... with the spec and a caret
    """

    def __init__(self, text: str, pos: int, expected: str, hint: str = "") -> None:
        self.text = text
        self.pos = max(0, min(pos, len(text)))
        self.expected = expected
        self.hint = hint
        shown = text.replace("\t", " ").replace("\n", " ")
        msg = f"{expected}\n    {shown}\n    {' ' * self.pos}^"
        if hint:
            msg += f"\n{hint}"
        super().__init__(msg)


@dataclass(frozen=True)
class CType:
    """What a C type in a signature means for reading it: ``size`` bytes (a pointer is 8),
    ``signed``, ``pointer`` and ``string`` (``char *``, read as a NUL-terminated string)."""

    text: str
    size: int
    signed: bool
    pointer: bool = False
    string: bool = False

    @property
    def numpy(self) -> str:
        """The numpy type of the value (``"<i4"``, ``"<u8"``...)."""
        return f"<{'i' if self.signed else 'u'}{self.size}"


# Integer types by name (the words, in any order, without const/volatile).
_INT_TYPES: dict[str, tuple[int, bool]] = {
    "char": (1, True), "signed char": (1, True), "unsigned char": (1, False), "bool": (1, False), "_Bool": (1, False),
    "short": (2, True), "short int": (2, True), "unsigned short": (2, False), "unsigned short int": (2, False),
    "int": (4, True), "signed": (4, True), "signed int": (4, True), "unsigned": (4, False), "unsigned int": (4, False),
    "long": (8, True), "long int": (8, True), "unsigned long": (8, False), "unsigned long int": (8, False),
    "long long": (8, True), "long long int": (8, True), "unsigned long long": (8, False),
    "unsigned long long int": (8, False),
    "size_t": (8, False), "ssize_t": (8, True), "off_t": (8, True), "loff_t": (8, True), "pid_t": (4, True),
    "uid_t": (4, False), "gid_t": (4, False), "mode_t": (4, False), "umode_t": (2, False), "dev_t": (4, False),
    "gfp_t": (4, False), "fmode_t": (4, False), "time_t": (8, True), "clockid_t": (4, True), "socklen_t": (4, False),
    "key_t": (4, True), "sector_t": (8, False), "intptr_t": (8, True), "uintptr_t": (8, False),
    "ptrdiff_t": (8, True), "int8_t": (1, True), "uint8_t": (1, False), "int16_t": (2, True),
    "uint16_t": (2, False), "int32_t": (4, True), "uint32_t": (4, False), "int64_t": (8, True),
    "uint64_t": (8, False),
}
for _bits in (8, 16, 32, 64):
    for _pre in ("u", "__u", "s", "__s"):
        _INT_TYPES[f"{_pre}{_bits}"] = (_bits // 8, "s" in _pre)
_QUALIFIERS = {"const", "volatile", "__user", "__kernel", "restrict", "__restrict", "struct", "union", "enum"}


def c_type(text: str) -> CType:
    """Size and signedness of a C type as written in a signature (``"const char *"``,
    ``"size_t"``, ``"struct file *"``); a BpfUsageError for a type that cannot be read from a
    register (a struct by value, an unknown typedef).

    Example::

        c_type("char *").string, c_type("unsigned int").size    # (True, 4)
    """
    t = " ".join(text.replace("*", " * ").split())
    stars = t.count("*")
    words = [w for w in t.replace("*", " ").split()]
    core = [w for w in words if w not in _QUALIFIERS]
    if stars:
        string = stars == 1 and core in (["char"], ["signed", "char"], ["unsigned", "char"], ["u8"], ["__u8"])
        return CType(t, 8, False, pointer=True, string=string)
    if "struct" in words or "union" in words:
        raise BpfUsageError(f"{text!r} is a struct passed by value, which cannot be read from a register; "
                            "declare it as a pointer")
    name = " ".join(core)
    if "enum" in words:
        return CType(t, 4, True)
    if name in _INT_TYPES:
        size, signed = _INT_TYPES[name]
        return CType(t, size, signed)
    raise BpfUsageError(f"unknown type {text.strip()!r}: use a C integer type (int, long, unsigned int, u32, "
                        "size_t...) or a pointer")


@dataclass(frozen=True)
class Param:
    """One parameter of a signature: its C ``type`` (normalised, e.g. ``"const char *"``) and
    ``name``; ``ctype`` says how to read it."""

    type: str
    name: str

    @property
    def ctype(self) -> CType:
        return c_type(self.type)


@dataclass(frozen=True)
class ProbeSpec:
    """A parsed probe. ``kind`` is one of kprobe, kretprobe, uprobe, uretprobe, tracepoint, usdt;
    ``binary`` the library or program (uprobes, USDT; '' for the kernel), ``category`` the
    tracepoint's, ``provider`` the USDT provider ('' for any), ``name`` the function, tracepoint
    or USDT probe (a glob where allowed), ``offset`` bytes into the function, ``params`` the C
    signature (None when none was given). ``text`` is what was parsed and ``spans`` where each
    part sits in it (for carets).

    Example::

        s = parse_probe("r:c:read")
        s.kind, s.is_return, s.target      # ('uretprobe', True, 'c:read')
    """

    kind: str
    name: str
    binary: str = ""
    category: str = ""
    provider: str = ""
    offset: int = 0
    params: Optional[tuple[Param, ...]] = None
    text: str = ""
    spans: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)

    @property
    def is_return(self) -> bool:
        return self.kind in _RETURN

    @property
    def is_kernel(self) -> bool:
        """Whether the probe is in the kernel (kprobes, tracepoints) rather than a user program."""
        return self.kind in ("kprobe", "kretprobe", "tracepoint")

    @property
    def is_pattern(self) -> bool:
        return any(c in self.name for c in "*?[") or any(c in self.category for c in "*?[")

    @property
    def target(self) -> str:
        """The probe without its kind: ``c:malloc``, ``syscalls:sys_enter_openat``, ``vfs_read``."""
        if self.kind == "tracepoint":
            return f"{self.category}:{self.name}"
        if self.kind == "usdt":
            return ":".join(p for p in (self.binary, self.provider, self.name) if p)
        base = f"{self.binary}:{self.name}" if self.binary else self.name
        return base + (f"+{self.offset:#x}" if self.offset else "")

    @property
    def display_name(self) -> str:
        """What bcc's tools print for the probe: the function, tracepoint event or USDT name."""
        return self.name

    def span(self, part: str) -> tuple[int, int]:
        """(start, end) in :attr:`text` of ``part`` ("kind", "binary", "category", "provider",
        "name", "offset", "signature", "param0"...); the whole text when unknown."""
        for name, start, end in self.spans:
            if name == part:
                return start, end
        return 0, len(self.text)

    def error(self, part: str, expected: str, hint: str = "") -> ProbeSpecError:
        """A ProbeSpecError with the caret under ``part`` of this spec."""
        return ProbeSpecError(self.text, self.span(part)[0], expected, hint)

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


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


def parse_params(text: str, base: int = 0, spec: str = "") -> tuple[Param, ...]:
    """The parameters of a C signature's inside (``"int fd, char *buf"``); ``base`` is where it
    starts in ``spec`` (for the caret of an error).

    Example::

        [p.type for p in parse_params("const char *path, int flags")]   # ['const char *', 'int']
    """
    spec = spec or text
    if text.strip() in ("", "void"):
        return ()
    out: list[Param] = []
    pos = 0
    seen: set[str] = set()
    for piece in text.split(","):
        start = base + pos + (len(piece) - len(piece.lstrip()))
        pos += len(piece) + 1
        p = " ".join(piece.split())
        m = _PARAM.match(p)
        if not p or not m or not m.group("type").strip():
            raise ProbeSpecError(spec, start, "expected a parameter as 'TYPE NAME' (e.g. 'size_t size', "
                                 "'char *buf')")
        ptype = re.sub(r"\s*\*\s*", "*", m.group("type").strip()).replace("*", " *").replace("* *", "**")
        ptype = " ".join(ptype.split()).replace(" * *", " **")
        name = m.group("name")
        if name in _QUALIFIERS or name in _INT_TYPES:
            raise ProbeSpecError(spec, start, f"expected a parameter name after the type in {p!r}")
        if name in seen:
            raise ProbeSpecError(spec, start, f"parameter {name!r} is declared twice")
        try:
            c_type(ptype)
        except BpfUsageError as e:
            raise ProbeSpecError(spec, start, str(e)) from None
        seen.add(name)
        out.append(Param(ptype, name))
    if len(out) > 6:
        raise ProbeSpecError(spec, base, "at most 6 parameters are passed in registers; use arg1..arg6")
    return tuple(out)


def _signature(text: str, pos: int) -> tuple[tuple[Param, ...], int]:
    """Parse ``(...)`` at ``pos``; returns the params and the position after ')'."""
    depth, end = 0, pos
    while end < len(text):
        if text[end] == "(":
            depth += 1
        elif text[end] == ")":
            depth -= 1
            if depth == 0:
                break
        end += 1
    if end >= len(text):
        raise ProbeSpecError(text, pos, "expected ')' closing the signature")
    return parse_params(text[pos + 1:end], pos + 1, text), end + 1


def parse_probe_prefix(text: str, pos: int = 0, *, colon_tail: bool = False, signature: bool = True,
                       patterns: bool = False, default: str = "p") -> tuple[ProbeSpec, int]:
    """Parse the probe at ``text[pos:]`` and return it with the position where it ends (a tool
    parses its own syntax from there: a filter, a format string, argdist's ``:type:expr``).
    ``colon_tail`` says a ':' may follow the probe (argdist); ``patterns`` allows globs;
    ``default`` is the kind assumed when the spec names none (bcc: "p", so ``vfs_read`` is a
    kprobe and ``c:malloc`` a uprobe).

    Example::

        spec, end = parse_probe_prefix('p:c:open "%s", arg1')     # end == 8
    """
    spans: list[tuple[str, int, int]] = []
    start = pos = _skip_ws(text, pos)
    word, after = _part(text, pos)
    if not word and (after >= len(text) or text[after] != ":"):
        raise ProbeSpecError(text, pos, "expected a probe, e.g. p:c:malloc, r::vfs_read, t:sched:sched_switch, "
                             "u:/usr/bin/python3:function__entry")
    kind_word = ""
    explicit = False
    if after < len(text) and text[after] == ":" and word in KINDS:
        kind_word, explicit = word, True
        spans.append(("kind", pos, after))
        pos = after + 1
    elif word in KINDS and (after >= len(text) or text[after] != ":"):
        raise ProbeSpecError(text, after, f"expected ':' after the probe kind {word!r}")
    elif default:
        kind_word = default
    else:
        raise ProbeSpecError(text, pos, f"unknown probe kind {word!r}; expected one of "
                             f"{', '.join(sorted(set(KINDS), key=str.lower))}")
    kind = KINDS[kind_word]
    # the parts up to the name: how many depend on the kind
    parts: list[tuple[str, int]] = []

    def take() -> None:
        nonlocal pos
        p, end = _part(text, pos)
        parts.append((p, pos))
        pos = end

    take()
    if kind in ("entry", "return"):
        if not explicit or (pos < len(text) and text[pos] == ":"):
            if pos < len(text) and text[pos] == ":":
                pos += 1
                take()
        else:
            raise ProbeSpecError(text, pos, f"expected ':FUNCTION' after '{text[start:pos]}' (bcc: {kind_word}:LIBRARY:"
                                 f"FUNCTION, or {kind_word}::FUNCTION for a kernel function)")
    elif kind in ("tracepoint", "uprobe", "uretprobe"):
        if pos >= len(text) or text[pos] != ":":
            what = "CATEGORY:EVENT" if kind == "tracepoint" else "BINARY:FUNCTION"
            raise ProbeSpecError(text, pos, f"expected ':' and the second part of {kind_word}:{what}")
        pos += 1
        take()
    elif kind == "usdt":
        if pos >= len(text) or text[pos] != ":":
            raise ProbeSpecError(text, pos, f"expected ':' and the probe name ({kind_word}:BINARY:[PROVIDER:]NAME)")
        pos += 1
        take()
        if pos < len(text) and text[pos] == ":":
            nxt, nend = _part(text, pos + 1)
            # argdist's tail (":type:expr") also starts with ':' -- a provider is followed by a name
            # that ends the probe (end of text, '(' or a blank), a type is followed by ':'
            if nxt and (not colon_tail or nend >= len(text) or text[nend] in "( \t"):
                pos += 1
                take()
    # kprobe/kretprobe: one part
    # -- the name, an offset, the signature
    name, name_pos = parts[-1]
    offset = 0
    m = _OFFSET.search(name)
    if m and m.end() == len(name):
        offset = int(m.group(1), 0)
        spans.append(("offset", name_pos + m.start(), name_pos + len(name)))
        name = name[:m.start()]
    if not name:
        expected = {"tracepoint": "an event name", "usdt": "a USDT probe name"}.get(kind, "a function name")
        raise ProbeSpecError(text, name_pos, f"expected {expected} after '{text[start:name_pos]}'")
    bad = _NAME_CHARS.fullmatch(name) is None
    if bad:
        col = name_pos + next((i for i, c in enumerate(name) if not _NAME_CHARS.fullmatch(c)), 0)
        raise ProbeSpecError(text, col, f"unexpected character {text[col]!r} in the name {name!r}")
    if not patterns and any(c in name for c in "*?["):
        raise ProbeSpecError(text, name_pos, f"expected one name, not the pattern {name!r} (patterns are for "
                             "funccount)")
    spans.append(("name", name_pos, name_pos + len(name)))
    binary = category = provider = ""
    if kind in ("entry", "return"):
        if len(parts) == 2:
            binary = parts[0][0]
            spans.append(("binary", parts[0][1], parts[0][1] + len(binary)))
        if binary:
            kind = "uprobe" if kind == "entry" else "uretprobe"
        else:
            kind = "kprobe" if kind == "entry" else "kretprobe"
    elif kind == "tracepoint":
        category = parts[0][0]
        spans.append(("category", parts[0][1], parts[0][1] + len(category)))
        if not category:
            raise ProbeSpecError(text, parts[0][1], "expected a tracepoint category (e.g. syscalls, sched)")
        if not patterns and any(c in category for c in "*?["):
            raise ProbeSpecError(text, parts[0][1], "expected one category, not a pattern")
    elif kind in ("uprobe", "uretprobe", "usdt"):
        binary = parts[0][0]
        spans.append(("binary", parts[0][1], parts[0][1] + len(binary)))
        if kind == "usdt" and len(parts) == 3:
            provider = parts[1][0]
            spans.append(("provider", parts[1][1], parts[1][1] + len(provider)))
        if not binary and kind != "usdt":
            raise ProbeSpecError(text, parts[0][1], "expected a binary or library (e.g. c, /usr/bin/bash)")
    if offset and kind in _RETURN:
        raise ProbeSpecError(text, dict((n, a) for n, a, _ in spans)["offset"],
                             "a return probe sits on the function's entry: drop the +offset")
    if offset and kind in ("tracepoint", "usdt"):
        raise ProbeSpecError(text, name_pos + len(name), f"a {kind} takes no +offset")
    params: Optional[tuple[Param, ...]] = None
    if pos < len(text) and text[pos] == "(":
        if not signature:
            raise ProbeSpecError(text, pos, "this tool takes no signature after the probe")
        sig_start = pos
        params, pos = _signature(text, pos)
        spans.append(("signature", sig_start, pos))
        if params and kind in ("tracepoint", "usdt"):
            raise ProbeSpecError(text, sig_start, f"a {kind} has no C signature: use its "
                                 f"{'fields (args->NAME)' if kind == 'tracepoint' else 'arguments arg1, arg2...'}")
        if params and kind in _RETURN:
            pass  # argdist's $entry(param) reads them at the entry
    if pos < len(text) and text[pos] == ":" and not colon_tail:
        if not explicit:
            raise ProbeSpecError(text, start, f"unknown probe kind {word!r}; expected one of "
                                 f"{', '.join(sorted(set(KINDS), key=str.lower))}")
        raise ProbeSpecError(text, pos, f"unexpected ':' after the {kind} (too many parts?)")
    return ProbeSpec(kind, name, binary, category, provider, offset, params, text, tuple(spans)), pos


def parse_probe(text: str, *, signature: bool = True, patterns: bool = False, default: str = "p") -> ProbeSpec:
    """Parse a whole probe spec (see the module docs); anything after it is an error.

    Example::

        parse_probe("p:c:malloc(size_t size)").params[0].ctype.size     # 8
    """
    spec, end = parse_probe_prefix(text, 0, signature=signature, patterns=patterns, default=default)
    end = _skip_ws(text, end)
    if end < len(text):
        raise ProbeSpecError(text, end, "unexpected text after the probe")
    return spec


# -- existence, with suggestions -------------------------------------------------------------

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
    raise spec.error("name", f"no function {spec.name!r} in {path}",
                     _did_you_mean(close_names(spec.name, sorted(offsets))))
