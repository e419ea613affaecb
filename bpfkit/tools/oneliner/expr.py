"""The C-like expressions of the one-liner tools -- filters (``size > 4096 && fd == 3``), trace's
print arguments, argdist's expressions -- parsed once and evaluated on a decoded batch, one numpy
operation per node (never a Python step per event).

The text is translated to a Python expression and parsed with :mod:`ast`; only a small set of
node kinds is accepted (names, ``args->field``, integer and string constants, arithmetic,
comparisons, ``&&``/``||``/``!``, casts, ``STRCMP``). Integer arithmetic follows C's usual
conversions: everything is 64-bit, and unsigned when either side is unsigned.

A name is resolved by an :class:`Env` (the decoded batch of one probe): ``value(name)`` gives the
integer column, ``string(name)`` the string read behind a pointer. Comparing a name with a string
constant compares the string; ``(char *)x`` asks for the string too.

Example::

    e = parse_expr("size > 4096 && comm == \\"bash\\"")
    mask = evaluate(e, env)               # a bool array, one per event
    e.names                               # {'size', 'comm'}
"""
from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import numpy as np

from ...errors import BpfUsageError
from ...probes.spec import ProbeSpecError, c_type

__all__ = ["Expr", "Env", "parse_expr", "evaluate", "truth", "conjuncts", "split_top", "CAST_PREFIX"]

CAST_PREFIX = "__cast"
_ENTRY = re.compile(r"\$entry\(\s*([A-Za-z_]\w*)\s*\)")
_DOLLAR = re.compile(r"\$([A-Za-z_]\w*)")
_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|\d+)([uUlL]*)")
_CAST = re.compile(r"\(\s*((?:const\s+|volatile\s+|unsigned\s+|signed\s+|struct\s+)*[A-Za-z_]\w*"
                   r"(?:\s+[A-Za-z_]\w*)*\s*\**)\s*\)")
# bcc's $-names: $pid is the thread id there, $tgid the process id
_DOLLAR_NAMES = {"retval": "retval", "latency": "latency", "pid": "tid", "tgid": "pid", "uid": "uid",
                 "cpu": "cpu", "comm": "comm", "PID": "pid", "TID": "tid", "tid": "tid", "ts": "ts", "gid": "gid"}


class Env(Protocol):
    """What evaluation needs from a decoded batch."""

    n: int

    def value(self, name: str) -> np.ndarray: ...

    def string(self, name: str) -> Optional[np.ndarray]: ...


@dataclass
class Expr:
    """A parsed expression: its ``text``, where it sits in the spec (``spec``, ``base``), the
    Python ``tree``, the ``names`` it reads and the ``strings`` it reads as strings."""

    text: str
    tree: ast.expr
    spec: str = ""
    base: int = 0
    casts: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)

    def error(self, message: str, node: Optional[ast.AST] = None) -> ProbeSpecError:
        """A ProbeSpecError with the caret at ``node`` (or at the expression's start)."""
        col = getattr(node, "col_offset", 0) if node is not None else 0
        return ProbeSpecError(self.spec or self.text, self.base + self._source_col(col), message)

    _map: list[int] = field(default_factory=list, repr=False)

    def _source_col(self, col: int) -> int:
        if not self._map:
            return 0
        return self._map[min(col, len(self._map) - 1)]


def _translate(text: str) -> tuple[str, list[int], dict[str, str]]:
    """C-ish text to Python source, with the source column of every output character."""
    out: list[str] = []
    cols: list[int] = []
    casts: dict[str, str] = {}
    i = 0

    def emit(s: str, col: int) -> None:
        out.append(s)
        cols.extend([col] * len(s))

    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= len(text):
                raise ProbeSpecError(text, i, "expected '\"' closing the string")
            emit(text[i:j + 1], i)
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^'\\])'", text[i:]):
            m = re.match(r"'(\\.|[^'\\])'", text[i:])
            assert m
            ch = m.group(1)
            val = ord(ch) if len(ch) == 1 else ord(ast.literal_eval(f"'{ch}'"))
            emit(str(val), i)
            i += m.end()
        elif text.startswith("&&", i):
            emit(" and ", i)
            i += 2
        elif text.startswith("||", i):
            emit(" or ", i)
            i += 2
        elif c == "!" and not text.startswith("!=", i):
            emit(" not ", i)
            i += 1
        elif text.startswith("->", i):
            emit(".", i)
            i += 2
        elif c == "?" or (c == ":" and i + 1 < len(text) and text[i + 1] != ":"):
            raise ProbeSpecError(text, i, "the ?: operator is not supported; write a filter or two probes")
        elif c == "$":
            m = _ENTRY.match(text, i)
            if m:
                emit(f"entry__{m.group(1)}", i)
                i = m.end()
                continue
            m = _DOLLAR.match(text, i)
            if not m or m.group(1) not in _DOLLAR_NAMES:
                raise ProbeSpecError(text, i, "expected one of " + ", ".join(
                    f"${n}" for n in list(_DOLLAR_NAMES)[:8]) + ", $entry(NAME)")
            emit(_DOLLAR_NAMES[m.group(1)], i)
            i = m.end()
        elif c.isdigit() and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = _NUMBER.match(text, i)
            assert m
            emit(m.group(1), i)
            i = m.end()
        elif c == "(":
            m = _CAST.match(text, i)
            if m and _is_type(m.group(1)):
                name = f"{CAST_PREFIX}{len(casts)}"
                casts[name] = " ".join(m.group(1).split())
                emit(f"{name} ** ", i)
                i = m.end()
            else:
                emit(c, i)
                i += 1
        elif c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_]\w*").match(text, i)
            assert m
            word = m.group(0)
            # an identifier that is a Python keyword (a parameter named 'from') gets a suffix
            emit(word + "__kw" if keyword.iskeyword(word) else word, i)
            i = m.end()
        else:
            emit(c, i)
            i += 1
    return "".join(out), cols, casts


def _is_type(text: str) -> bool:
    if "*" in text:
        return True
    try:
        c_type(text)
        return True
    except BpfUsageError:
        return False


_OK_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name,
             ast.Load, ast.Constant, ast.Attribute, ast.Call, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod,
             ast.FloorDiv, ast.LShift, ast.RShift, ast.BitAnd, ast.BitOr, ast.BitXor, ast.Pow, ast.Not,
             ast.USub, ast.UAdd, ast.Invert, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def parse_expr(text: str, spec: str = "", base: int = 0) -> Expr:
    """Parse ``text`` (C syntax: ``arg1 > 5 && STRCMP("bash", comm)``, ``args->filename``,
    ``$retval``, ``(char *)$retval``); ``spec``/``base`` place it in the whole spec for errors.

    Example::

        parse_expr("retval < 0").names     # {'retval'}
    """
    spec = spec or text
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if not stripped:
        raise ProbeSpecError(spec, base, "expected an expression")
    try:
        src, cols, casts = _translate(stripped)
    except ProbeSpecError as e:
        raise ProbeSpecError(spec, base + lead + e.pos, e.expected) from None
    cut = len(src) - len(src.lstrip())  # "!a" became " not a": no indent for ast
    src, cols = src[cut:], cols[cut:]
    expr = Expr(stripped, ast.Constant(0), spec, base + lead, casts)
    expr._map = cols + [len(stripped)]
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as e:
        col = e.offset - 1 if e.offset else len(src)  # 0/None: at the end of the text
        raise expr.error(f"expected a C expression ({e.msg})", ast.Constant(0, col_offset=col)) from None
    for node in ast.walk(tree):
        if not isinstance(node, _OK_NODES):
            raise expr.error(f"unsupported in an expression: {type(node).__name__}", node)
        if isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "args"):
                raise expr.error("only args->FIELD (a tracepoint field) can be dereferenced; reading through "
                                 "other pointers is not supported", node)
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == "STRCMP" and len(node.args) == 2
                    and not node.keywords):
                raise expr.error("the only function is STRCMP(\"text\", name)", node)
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, str)) or \
                isinstance(node, ast.Constant) and isinstance(node.value, bool):
            raise expr.error("expected an integer or a string constant", node)
    expr.tree = tree.body
    _collect(expr, expr.tree, False)
    return expr


def name_of(node: ast.AST) -> Optional[str]:
    """The column a Name or ``args.field`` node reads, else None."""
    if isinstance(node, ast.Name) and node.id != "STRCMP" and not node.id.startswith(CAST_PREFIX):
        return node.id[:-4] if node.id.endswith("__kw") else node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "args":
        return "args." + (node.attr[:-4] if node.attr.endswith("__kw") else node.attr)
    return None


def _is_str_const(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _collect(expr: Expr, node: ast.AST, as_string: bool) -> None:
    name = name_of(node)
    if name is not None:
        expr.names.add(name)
        if as_string:
            expr.strings.add(name)
        return
    if isinstance(node, ast.Compare):
        items = [node.left, *node.comparators]
        stringy = any(_is_str_const(x) for x in items)
        for x in items:
            _collect(expr, x, stringy)
    elif isinstance(node, ast.Call):
        for a in node.args:
            _collect(expr, a, True)
    elif isinstance(node, ast.BinOp) and _cast_of(expr, node) is not None:
        _collect(expr, node.right, bool(c_type_safe(_cast_of(expr, node)).string))
    else:
        for child in ast.iter_child_nodes(node):
            _collect(expr, child, False)


def c_type_safe(text: Optional[str]) -> Any:
    try:
        return c_type(text or "")
    except BpfUsageError:
        return c_type("void *")


def _cast_of(expr: Expr, node: ast.BinOp) -> Optional[str]:
    if isinstance(node.op, ast.Pow) and isinstance(node.left, ast.Name) and node.left.id in expr.casts:
        return expr.casts[node.left.id]
    return None


# -- evaluation ------------------------------------------------------------------------------

def _as_int(a: Any) -> Any:
    if isinstance(a, np.ndarray) and a.dtype.kind in "iub":
        return a.astype(np.uint64 if a.dtype.kind == "u" and a.dtype.itemsize == 8 else np.int64, copy=False) \
            if a.dtype.kind != "b" else a.astype(np.int64)
    return a


def _unsigned(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.uint64


def _pair(a: Any, b: Any) -> tuple[Any, Any]:
    """C's usual arithmetic conversions on 64-bit values: unsigned wins."""
    a, b = _as_int(a), _as_int(b)
    if _unsigned(a) or _unsigned(b):
        if isinstance(a, np.ndarray):
            a = a.astype(np.uint64)
        else:
            a = np.uint64(a & 0xFFFFFFFFFFFFFFFF)
        if isinstance(b, np.ndarray):
            b = b.astype(np.uint64)
        else:
            b = np.uint64(b & 0xFFFFFFFFFFFFFFFF)
    return a, b


def truth(v: Any, n: int) -> np.ndarray:
    """``v`` as a bool array of length ``n`` (C truthiness; a string is true when not empty)."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "S":
            return np.broadcast_to(v != b"", (n,))
        return np.broadcast_to(v != 0, (n,))
    if isinstance(v, bytes):
        return np.full(n, bool(v))
    return np.full(n, bool(v))


def _cdiv(a: Any, b: Any, mod: bool) -> Any:
    a, b = _pair(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        if _unsigned(a) or _unsigned(b):
            bz = np.where(b == 0, 1, b) if isinstance(b, np.ndarray) else (b or 1)
            r = a % bz if mod else a // bz
            return np.where(b == 0, 0, r) if isinstance(b, np.ndarray) else (r if b else 0 * r)
        # C truncates toward zero
        a64 = np.asarray(a, dtype=np.int64)
        b64 = np.asarray(b, dtype=np.int64)
        bz = np.where(b64 == 0, 1, b64)
        q = np.abs(a64) // np.abs(bz) * np.sign(a64) * np.sign(bz)
        r = a64 - q * bz if mod else q
        return np.where(b64 == 0, 0, r)


def _cast(value: Any, ctype: str, env: Env, node: ast.AST, expr: Expr) -> Any:
    ct = c_type_safe(ctype)
    if ct.string:
        name = name_of(node)
        s = env.string(name) if name else None
        if s is None:
            raise expr.error(f"(char *) needs a name whose string was read, not {ast.unparse(node)!r}", node)
        return s
    v = _as_int(value)
    if not isinstance(v, np.ndarray):
        v = np.asarray(v, dtype=np.int64)
    if ct.pointer:
        return v.astype(np.uint64)
    return v.astype(np.dtype(ct.numpy)).astype(np.int64 if ct.signed or ct.size < 8 else np.uint64)


def evaluate(expr: Expr, env: Env, node: Optional[ast.AST] = None, as_string: bool = False) -> Any:
    """Evaluate ``expr`` (or one of its nodes) on ``env``: an array (or a scalar for constants).

    Example::

        evaluate(parse_expr("arg1 * 2"), env)
    """
    node = expr.tree if node is None else node
    name = name_of(node)
    if name is not None:
        if as_string:
            s = env.string(name)
            if s is None:
                raise expr.error(f"{name!r} is not a string (declare it char * or read it with %s)", node)
            return s
        return env.value(name)
    if isinstance(node, ast.Constant):
        return node.value.encode() if isinstance(node.value, str) else node.value
    if isinstance(node, ast.BoolOp):
        parts = [truth(evaluate(expr, env, v), env.n) for v in node.values]
        return np.logical_and.reduce(parts) if isinstance(node.op, ast.And) else np.logical_or.reduce(parts)
    if isinstance(node, ast.UnaryOp):
        v = evaluate(expr, env, node.operand)
        if isinstance(node.op, ast.Not):
            return ~truth(v, env.n)
        v = _as_int(v)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.Invert):
            return ~v
        return v
    if isinstance(node, ast.Compare):
        items = [node.left, *node.comparators]
        stringy = any(_is_str_const(x) for x in items)
        vals = [evaluate(expr, env, x, stringy) for x in items]
        out = np.ones(env.n, dtype=bool)
        for op, a, b in zip(node.ops, vals, vals[1:]):
            if not stringy:
                a, b = _pair(a, b)
            out &= np.broadcast_to(_compare(op, a, b), (env.n,))
        return out
    if isinstance(node, ast.Call):  # STRCMP("literal", name): equal strings
        a, b = (evaluate(expr, env, x, True) for x in node.args)
        return np.broadcast_to(np.asarray(a == b), (env.n,))
    if isinstance(node, ast.BinOp):
        cast = _cast_of(expr, node)
        if cast is not None:
            return _cast(evaluate(expr, env, node.right), cast, env, node.right, expr)
        a = evaluate(expr, env, node.left)
        b = evaluate(expr, env, node.right)
        if isinstance(a, bytes) or isinstance(b, bytes) or (isinstance(a, np.ndarray) and a.dtype.kind == "S") \
                or (isinstance(b, np.ndarray) and b.dtype.kind == "S"):
            raise expr.error("arithmetic on strings", node)
        if isinstance(node.op, (ast.Div, ast.FloorDiv)):
            return _cdiv(a, b, False)
        if isinstance(node.op, ast.Mod):
            return _cdiv(a, b, True)
        a, b = _pair(a, b)
        bop = node.op
        if isinstance(bop, ast.Add):
            return a + b
        if isinstance(bop, ast.Sub):
            return a - b
        if isinstance(bop, ast.Mult):
            return a * b
        if isinstance(bop, ast.LShift):
            return a << b
        if isinstance(bop, ast.RShift):
            return a >> b
        if isinstance(bop, ast.BitAnd):
            return a & b
        if isinstance(bop, ast.BitOr):
            return a | b
        if isinstance(bop, ast.BitXor):
            return a ^ b
        raise expr.error("unsupported operator", node)
    raise expr.error(f"unsupported: {ast.unparse(node)}", node)


def _compare(op: ast.cmpop, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Eq):
        return a == b
    if isinstance(op, ast.NotEq):
        return a != b
    if isinstance(op, ast.Lt):
        return a < b
    if isinstance(op, ast.LtE):
        return a <= b
    if isinstance(op, ast.Gt):
        return a > b
    return a >= b


def conjuncts(node: ast.expr) -> list[ast.expr]:
    """The parts of a top-level ``&&`` chain (the node itself when it is not one)."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        out: list[ast.expr] = []
        for v in node.values:
            out.extend(conjuncts(v))
        return out
    return [node]


def split_top(text: str, sep: str) -> list[tuple[str, int]]:
    """Split ``text`` on ``sep`` outside parentheses and string literals: (piece, start) pairs.

    Example::

        split_top('"%d %s", a, f(b, c)', ",")   # [('"%d %s"', 0), (' a', 8), (' f(b, c)', 11)]
    """
    out, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            out.append((text[start:i], start))
            start = i + len(sep)
            i = start
            continue
        i += 1
    out.append((text[start:], start))
    return out
