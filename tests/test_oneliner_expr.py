"""The one-liners' expressions: C semantics on numpy columns, and the split of a filter into the
comparisons BPF evaluates and the rest Python does."""
from __future__ import annotations

import os

import numpy as np
import pytest

from bpfkit.probes.spec import ProbeSpecError, parse_probe
from bpfkit.tools.oneliner.expr import evaluate, parse_expr, truth
from bpfkit.tools.oneliner.plan import build_plan


class Env:
    def __init__(self, **cols: np.ndarray) -> None:
        self.cols = cols
        self.n = len(next(iter(cols.values())))

    def value(self, name: str) -> np.ndarray:
        return self.cols[name]

    def string(self, name: str) -> np.ndarray | None:
        v = self.cols.get(name + "$s")
        return v


ENV = Env(a=np.array([-7, 0, 5, 9], np.int32), u=np.array([1, 2, 2**64 - 1, 8], np.uint64),
          path=np.array([0x1000, 0x2000, 0, 0x3000], np.uint64),
          **{"path$s": np.array([b"/etc/passwd", b"/tmp/x", b"", b"/etc/hostname"], "S16")})


@pytest.mark.parametrize("text, want", [
    ("a > 0", [False, False, True, True]),
    ("a / 2", [-3, 0, 2, 4]),            # C truncates toward zero
    ("a % 4", [-3, 0, 1, 1]),
    ("u > -1", [False, False, False, False]),  # -1 becomes unsigned: the largest value
    ("u == 18446744073709551615", [False, False, True, False]),
    ("a > 0 && u < 9", [False, False, False, True]),
    ("!a || a == 9", [False, True, False, True]),
    ("(u32)u", [1, 2, 4294967295, 8]),
    ("(char)a", [-7, 0, 5, 9]),
    ("a & 1", [1, 0, 1, 1]),
    ("a << 2", [-28, 0, 20, 36]),
    ('path == "/etc/passwd"', [True, False, False, False]),
    ('STRCMP("/tmp/x", path)', [False, True, False, False]),
    ('path != "" && a > 0', [False, False, False, True]),
    ("'a' + 0", [97, 97, 97, 97]),
])
def test_c_semantics(text: str, want: list) -> None:
    got = evaluate(parse_expr(text), ENV)
    got = np.broadcast_to(got, (ENV.n,))
    assert [type(w)(x) for w, x in zip(want, got)] == want


def test_strings_and_names_are_collected() -> None:
    e = parse_expr('(char *)$retval == "x" && $entry(size) > 4 && args->flags & 0x40')
    assert e.names == {"retval", "entry__size", "args.flags"}
    assert e.strings == {"retval"}
    assert list(truth(evaluate(parse_expr("path"), ENV), 4)) == [True, True, False, True]


@pytest.mark.parametrize("text, pos, msg", [
    ("a > ", 3, "expected a C expression"),
    ("a ? 1 : 2", 2, "?: operator"),
    ("$bogus > 1", 0, "expected one of"),
    ("foo(a)", 0, "the only function is STRCMP"),
    ("x->y > 1", 0, "only args->FIELD"),
])
def test_bad_expressions_point_into_the_spec(text: str, pos: int, msg: str) -> None:
    spec = f"p:c:f({text})"
    with pytest.raises(ProbeSpecError) as exc:
        parse_expr(text, spec, 6)
    assert msg in str(exc.value)
    assert exc.value.pos == 6 + pos


@pytest.mark.skipif(os.geteuid() != 0, reason="reads tracefs")
def test_filter_split_between_bpf_and_python() -> None:
    plan = build_plan(parse_probe("p:c:write(int fd, char *buf, size_t count)"),
                      filter='fd == 1 && count > 4096 && 3 <= fd && buf == "x" && count * 2 > 5 && !(fd & 4)')
    assert [(c.off, c.size, c.signed, c.op, c.value) for c in plan.conds] == [
        (0, 4, True, 1, 1), (16, 8, False, 5, 4096), (0, 4, True, 6, 3), (0, 4, True, 8, 4)]
    assert plan.py_filter is not None and plan.py_filter.strings == {"buf"}
    assert "buf" in plan.strings and plan.strings["buf"].field == "buf"
    # an unsigned value against a negative constant follows C's promotion: Python does it
    plan = build_plan(parse_probe("p:c:malloc(size_t size)"), filter="size > -1")
    assert plan.conds == [] and plan.py_filter is not None
    # tracepoint fields: the declared type's bytes (int dfd in an 8-byte slot), strings fetched from user memory
    plan = build_plan(parse_probe("t:syscalls:sys_enter_openat"), filter="dfd == -100", strings="all")
    assert plan.dtype["dfd"] == np.dtype("<i4") and plan.dtype["filename"] == np.dtype("S80")
    assert [(c.size, c.signed, c.value) for c in plan.conds] == [(4, True, 2**64 - 100)]
    assert [(f.kind, f.mem) for f in plan.fetches] == [(1, 1)]
    with pytest.raises(ProbeSpecError, match="unknown name 'sizee'") as exc:
        build_plan(parse_probe("p:c:malloc(size_t size)"), filter="sizee > 1")
    assert "did you mean size" in str(exc.value)
