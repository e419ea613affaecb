"""C signatures in probe specs (``p:c:write(int fd, char *buf, size_t count)``): the parameter
list, what each C type means for reading it from a register, and :class:`ProbeSpecError`, the error
of every probe-spec parser (it shows the spec with a caret under the problem).

Example::

    [(p.type, p.name) for p in parse_params("const char *path, int flags")]
    # [('const char *', 'path'), ('int', 'flags')]
    c_type("size_t").size, c_type("char *").string        # (8, True)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BpfUsageError

__all__ = ["ProbeSpecError", "CType", "c_type", "Param", "parse_params", "parse_signature"]

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
    # typedefs of the syscalls:* tracepoint formats
    "key_serial_t": (4, True), "rwf_t": (4, True), "aio_context_t": (8, False), "qid_t": (4, False),
    "mqd_t": (4, True), "timer_t": (4, True), "__kernel_old_time_t": (8, True),
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


def parse_signature(text: str, pos: int) -> tuple[tuple[Param, ...], int]:
    """Parse the signature ``(...)`` starting at ``text[pos]``; returns the params and the
    position after ')'."""
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
