"""Verifier logs explained: what the kernel rejected, in plain words, at the source line, with the
usual fix; then the failing instruction and the lines before it.

The verifier's own words (``R0 invalid mem access 'map_value_or_null'``) name registers and
internal types; :data:`RULES` maps the common rejections to what a C programmer needs to know. It
reads only the log text (and the errno), so every loader backend shares it.

Example::

    print(summarize_verifier_log(e.log))   # where, what, the fix, then the log's tail
    explain(e.log).kind                     # 'null_check'
"""
from __future__ import annotations

import errno as _errno
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

__all__ = ["Rule", "RULES", "SourceLine", "Explanation", "explain", "explain_too_large", "summarize_verifier_log",
           "MAX_INSNS"]

MAX_INSNS = 1_000_000  # BPF_COMPLEXITY_LIMIT_INSNS: the most a privileged program may have (and process)


@dataclass(frozen=True)
class Rule:
    """One kind of rejection: ``pattern`` matches the verifier's error line; ``problem`` and
    ``fix`` may use the pattern's groups as ``{0}``, ``{1}``..."""

    kind: str
    pattern: str
    problem: str
    fix: str


RULES: tuple[Rule, ...] = (
    Rule("null_check", r"R\d+ invalid mem access '\w*or_null\w*'",
         "a pointer that may be NULL is used without checking it: bpf_map_lookup_elem() returns NULL when "
         "the key is not in the map (and other helpers returning pointers may too)",
         "check it before using it, e.g. `if (!value) return 0;`"),
    Rule("scalar_deref", r"R\d+ invalid mem access '(?:scalar|inv)'",
         "a plain number is used as a pointer: kernel memory cannot be read by dereferencing a pointer "
         "the verifier does not know",
         "read kernel memory with BPF_CORE_READ(ptr, field...) or bpf_probe_read_kernel(&dst, sizeof(dst), ptr), "
         "user memory with bpf_probe_read_user()"),
    Rule("too_complex", r"BPF program is too large\. Processed \d+ insn|The sequence of \d+ jumps is too complex"
         r"|infinite loop detected|back-edge from insn|loop is not bounded",
         "the verifier gave up: following every path through the program took more than its limit of "
         "1,000,000 instructions, usually because of a loop whose end it cannot prove",
         "bound every loop by a constant (`for (int i = 0; i < 64 && i < n; i++)`), or use bpf_loop() "
         "(Linux 5.17+) for long loops; fewer branches inside loops help too"),
    Rule("stack", r"invalid (?:unbounded )?variable-offset (?:read|write)|invalid (?:indirect )?(?:read|write) "
         r"(?:from|to) stack|invalid stack off=|combined stack size",
         "the program accesses its stack where the verifier cannot prove it stays inside a local variable: "
         "an index it cannot bound, an uninitialised read, or more than 512 bytes of stack",
         "check or mask the index before using it (`if (i >= sizeof(buf)) return 0;` or `i &= 15` for "
         "16 bytes), initialise locals (`char buf[16] = {};`), and keep big buffers in a per-CPU array map"),
    Rule("packet", r"invalid access to packet",
         "packet data is accessed before the program proves the access lies inside the packet",
         "compare against data_end first: `if ((void *)(eth + 1) > data_end) return XDP_PASS;`"),
    Rule("bounds", r"unbounded memory access|(?:min|max) value is outside of the allowed memory range"
         r"|invalid access to map value|R\d+ min value is negative",
         "memory (a map value, an array) is indexed with a value the verifier cannot prove to be in range",
         "check the index against the size before using it, with an unsigned type "
         "(`if (i >= 16) return 0;`)"),
    Rule("ctx", r"invalid bpf_context access off=(\d+) size=(\d+)",
         "the program reads {1} bytes of its context at offset {0}, outside what its program type may access",
         "give the program the context type of its section (struct trace_event_raw_sys_enter for "
         "tracepoint/syscalls/sys_enter_*, struct xdp_md for xdp...) and read only its fields; in raw_tp, "
         "tp_btf and fentry programs take the arguments with BPF_PROG()"),
    Rule("helper", r"program of this type cannot use helper (\w+)#\d+|unknown func (\w+)#\d+",
         "this type of program may not call {0}",
         "call it from a program type that may (networking helpers from xdp/tc, tracing helpers from "
         "tracepoints/kprobes...); bpfkit.features.helper(NAME) tells what this kernel allows"),
    Rule("reference", r"Unreleased reference id=\d+",
         "what is acquired here is not released on every path: a ring buffer record reserved but never "
         "submitted or discarded, a socket looked up and not released, a lock not unlocked",
         "on every path after bpf_ringbuf_reserve() call bpf_ringbuf_submit() or bpf_ringbuf_discard() "
         "(likewise bpf_sk_release(), bpf_spin_unlock())"),
    Rule("r0_not_set", r"R0 !read_ok",
         "the program ends without a return value: a BPF program returns an int",
         "declare it `int NAME(...)`, not void, and end every path with `return 0;`"),
)


@lru_cache(maxsize=1)
def _compiled() -> tuple[tuple[Rule, re.Pattern[str]], ...]:
    # on the first rejection, not at every start-up (compiling them costs milliseconds)
    return tuple((r, re.compile(r.pattern)) for r in RULES)


_INSN = re.compile(r"^\d+: \(")
# BTF line info in the log: "; <source> @ <file>:<line>" (older kernels: "; <source>")
_SOURCE = re.compile(r"^; ?(?P<text>.*?)(?: @ (?P<file>[^\s:]+):(?P<line>\d+))?$")
_ALLOC = re.compile(r"alloc_insn=(\d+)")
_STATS = ("processed ", "verification time", "stack depth")


@dataclass(frozen=True)
class SourceLine:
    """A line of the program's C source, as the verifier log quotes it (file and line when the
    kernel gives them, 5.x+ BTF line info)."""

    text: str
    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file else ""
        return f"{where}{self.text}"


@dataclass(frozen=True)
class Explanation:
    """What the verifier rejected (``kind`` is a :data:`RULES` kind), in plain words, where, and
    the usual fix; ``said`` is the verifier's own line."""

    kind: str
    problem: str
    fix: str
    said: str
    source: Optional[SourceLine] = None
    insn: str = ""

    def lines(self) -> list[str]:
        """The explanation as the first lines of an error message."""
        out = [f"at {self.source}"] if self.source else []
        out += [f"problem: {self.problem}", f"fix: {self.fix}"]
        if self.said:
            out.append(f"the verifier said: {self.said}")
        return out


def _strip_stats(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and (lines[-1].startswith(_STATS) or not lines[-1].strip()):
        lines.pop()
    return lines


def _source_before(lines: list[str], end: int) -> Optional[SourceLine]:
    for ln in reversed(lines[:end]):
        if not ln.startswith(";"):
            continue
        m = _SOURCE.match(ln)
        if m is None or not m.group("text").strip() or m.group("line") == "0":
            continue  # "; @ file:0": compiler-made code with no line of its own
        return SourceLine(m.group("text").strip(), m.group("file") or "", int(m.group("line") or 0))
    return None


def _fill(text: str, groups: list[str]) -> str:
    # not str.format: the fixes quote C, braces included
    for k, g in enumerate(groups):
        text = text.replace("{%d}" % k, g)
    return text


def explain(log: str, errno: int = 0) -> Optional[Explanation]:
    """The explanation of a verifier log by :data:`RULES`, None for a rejection they do not know.
    The rule is matched against the lines after the last instruction (where the verifier says why),
    then against the rest of the log from the end.

    Example::

        ex = explain(e.log)
        if ex: print(ex.source, ex.problem, ex.fix)
    """
    lines = _strip_stats(log.rstrip("\n").split("\n"))
    last_insn = max((i for i, ln in enumerate(lines) if _INSN.match(ln)), default=-1)
    order = list(range(last_insn + 1, len(lines))) + list(range(last_insn, -1, -1))
    for i in order:
        for rule, rx in _compiled():
            m = rx.search(lines[i])
            if m is None:
                continue
            groups = [g for g in m.groups() if g is not None]
            insn_at = last_insn if i > last_insn else max((j for j in range(i) if _INSN.match(lines[j])), default=-1)
            acquired = _ALLOC.search(lines[i])
            if acquired:  # a leak shows at the exit; the line that took the reference is the one to fix
                at = next((j for j, ln in enumerate(lines) if ln.startswith(f"{acquired.group(1)}: (")), -1)
                insn_at = at if at >= 0 else insn_at
            return Explanation(rule.kind, _fill(rule.problem, groups), _fill(rule.fix, groups), lines[i].strip(),
                               _source_before(lines, insn_at + 1 if insn_at >= 0 else i),
                               lines[insn_at].strip() if insn_at >= 0 else "")
    return None


def explain_too_large(err: int, insn_count: int) -> Optional[Explanation]:
    """The explanation of a load refused with E2BIG before any verification (no log): a program
    of more than :data:`MAX_INSNS` instructions. None for other errors.

    Example::

        explain_too_large(errno.E2BIG, 1_200_000).problem
    """
    if err != _errno.E2BIG or insn_count <= MAX_INSNS:
        return None
    return Explanation(
        "too_large", f"the program has {insn_count:,} instructions; the kernel loads at most {MAX_INSNS:,} "
        "(4,096 without CAP_BPF)",
        "unroll less (`#pragma unroll` on big loops, large inline functions), use bounded loops or bpf_loop(), "
        "or split the work into programs joined by tail calls (bpf_tail_call)", "")


def summarize_verifier_log(log: str, context: int = 12, errno: int = 0) -> str:
    """The part of a verifier log a reader needs first: the explanation when a rule knows the
    rejection (where, what, the fix), then the failing instruction and the lines leading to it
    (the tail of the log, minus the statistics line).

    Example::

        print(summarize_verifier_log(e.log))
    """
    lines = _strip_stats(log.rstrip("\n").split("\n"))
    tail = ["  " + ln for ln in lines[-context:]]
    ex = explain(log, errno)
    if ex is None:
        return "\n".join(tail)
    return "\n".join(["  " + ln for ln in ex.lines()] + ["  last instructions of the log:"] + ["  " + t for t in tail])
