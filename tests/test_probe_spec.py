"""Probe specs: bcc's and bpftrace's spellings parse to the same ProbeSpec; bad specs raise a
ProbeSpecError whose message points at the offending character; unknown targets suggest names."""
from __future__ import annotations

import os

import pytest

from bpfkit.errors import BpfUsageError, FeatureNotSupported
from bpfkit.probes.spec import ProbeSpecError, c_type, check_probe, parse_probe, parse_probe_prefix

IS_ROOT = os.geteuid() == 0


@pytest.mark.parametrize("text, kind, binary, category, provider, name", [
    ("p:c:malloc", "uprobe", "c", "", "", "malloc"),
    ("c:malloc", "uprobe", "c", "", "", "malloc"),
    ("uprobe:c:malloc", "uprobe", "c", "", "", "malloc"),
    ("r:c:read", "uretprobe", "c", "", "", "read"),
    ("uretprobe:/bin/bash:readline", "uretprobe", "/bin/bash", "", "", "readline"),
    ("ur:/bin/bash:readline", "uretprobe", "/bin/bash", "", "", "readline"),
    ("p::vfs_read", "kprobe", "", "", "", "vfs_read"),
    ("vfs_read", "kprobe", "", "", "", "vfs_read"),
    ("kprobe:vfs_read", "kprobe", "", "", "", "vfs_read"),
    ("k:vfs_read", "kprobe", "", "", "", "vfs_read"),
    ("r::vfs_read", "kretprobe", "", "", "", "vfs_read"),
    ("kretprobe:vfs_read", "kretprobe", "", "", "", "vfs_read"),
    ("t:syscalls:sys_enter_openat", "tracepoint", "", "syscalls", "", "sys_enter_openat"),
    ("tracepoint:syscalls:sys_enter_openat", "tracepoint", "", "syscalls", "", "sys_enter_openat"),
    ("u:/usr/bin/python3:function__entry", "usdt", "/usr/bin/python3", "", "", "function__entry"),
    ("u:/usr/bin/python3:python:function__entry", "usdt", "/usr/bin/python3", "", "python", "function__entry"),
    ("usdt:/usr/bin/python3:python:function__entry", "usdt", "/usr/bin/python3", "", "python", "function__entry"),
    ("U:./app:tick", "usdt", "./app", "", "", "tick"),
])
def test_bcc_and_bpftrace_spellings(text: str, kind: str, binary: str, category: str, provider: str,
                                    name: str) -> None:
    s = parse_probe(text, u="usdt")  # bcc's tools: u: is USDT
    assert (s.kind, s.binary, s.category, s.provider, s.name, s.offset, s.params) == \
        (kind, binary, category, provider, name, 0, None)
    assert s.text == text


def test_signature_offset_and_the_rest_of_the_line() -> None:
    s = parse_probe("p:c:write(int fd, const char  * buf, size_t count)")
    assert [(p.type, p.name) for p in s.params or ()] == [("int", "fd"), ("const char *", "buf"), ("size_t", "count")]
    assert [(p.ctype.size, p.ctype.signed, p.ctype.string) for p in s.params or ()] == \
        [(4, True, False), (8, False, True), (8, False, False)]
    assert parse_probe("p:c:malloc+0x10").offset == 16
    assert parse_probe("r:c:read()").params == ()
    spec, end = parse_probe_prefix('p:c:open (arg2 == 0) "%s", arg1')
    assert (spec.name, end) == ("open", 8)
    spec, end = parse_probe_prefix("r:c:read():ssize_t:$retval", colon_tail=True)
    assert (spec.kind, spec.params, end) == ("uretprobe", (), 10)
    spec, end = parse_probe_prefix("u:pthread:pthread_start():u64:arg2", colon_tail=True)
    assert (spec.binary, spec.provider, spec.name, end) == ("pthread", "", "pthread_start", 25)
    assert str(parse_probe("c:malloc")) == "uprobe:c:malloc"
    assert parse_probe("t:syscalls:sys_enter_*", patterns=True).is_pattern


def _caret(err: ProbeSpecError) -> int:
    lines = str(err).splitlines()
    spec_line = next(i for i, ln in enumerate(lines) if ln.strip() == err.text.strip())
    return lines[spec_line + 1].index("^") - 4


@pytest.mark.parametrize("text, pos, expected", [
    ("p:c:(int x)", 4, "expected a function name after 'p:c:'"),
    ("p:c", 3, "expected ':FUNCTION'"),
    ("x:y:z:w", 0, "unknown probe kind 'x'"),
    ("t:syscalls", 10, "expected ':' and the second part of t:CATEGORY:NAME"),
    ("p:c:malloc(size_t)", 11, "expected a parameter as 'TYPE NAME'"),
    ("p:c:f(int a, struct foo b)", 13, "struct passed by value"),
    ("p:c:f(bogus_t x)", 6, "unknown type 'bogus_t'"),
    ("p:c:f(int a, int a)", 13, "declared twice"),
    ("r:c:read+4", 8, "a return probe sits on the function's entry"),
    ("p:c:str*", 4, "not the pattern 'str*'"),  # trace's parse: one function
    ("p:c:f(int x", 5, "expected ')' closing the signature"),
    ("t:syscalls:sys_enter_openat(int x)", 27, "a tracepoint has no C signature"),
    ("p:c:mal%loc", 7, "unexpected character '%'"),
])
def test_bad_specs_point_at_the_problem(text: str, pos: int, expected: str) -> None:
    with pytest.raises(ProbeSpecError) as exc:
        parse_probe(text, patterns=False)
    assert exc.value.pos == pos
    assert expected in str(exc.value)
    assert _caret(exc.value) == pos
    assert isinstance(exc.value, BpfUsageError)


def test_c_types() -> None:
    assert (c_type("unsigned long").size, c_type("unsigned long").signed) == (8, False)
    assert (c_type("u32").size, c_type("s16").signed) == (4, True)
    assert c_type("struct file *").pointer and not c_type("struct file *").string
    assert c_type("char **").pointer and not c_type("char **").string
    with pytest.raises(BpfUsageError, match="unknown type"):
        c_type("bogus_t")


@pytest.mark.root
def test_unknown_targets_suggest_close_names() -> None:
    with pytest.raises(ProbeSpecError) as exc:
        check_probe(parse_probe("p:c:mallocc"))
    assert exc.value.pos == 4 and "no function 'mallocc'" in str(exc.value) and "malloc" in exc.value.hint
    with pytest.raises(ProbeSpecError) as exc:
        check_probe(parse_probe("t:syscalls:sys_enter_opnat"))
    assert exc.value.pos == 11 and "did you mean sys_enter_openat" in str(exc.value)
    with pytest.raises(ProbeSpecError) as exc:
        check_probe(parse_probe("t:sycalls:sys_enter_openat"))
    assert exc.value.pos == 2 and "syscalls" in exc.value.hint
    with pytest.raises(ProbeSpecError) as exc:
        check_probe(parse_probe("p:/nonexistent/bin:f"))
    assert exc.value.pos == 2
    check_probe(parse_probe("t:sched:sched_switch"))
    check_probe(parse_probe("p:c:malloc"))


@pytest.mark.root
def test_kprobe_specs_on_a_kernel_without_kprobes_name_the_feature() -> None:
    from bpfkit import features

    if features.check("kprobes")[0]:
        pytest.skip("this kernel has kprobes")
    with pytest.raises(FeatureNotSupported, match="CONFIG_KPROBES"):
        check_probe(parse_probe("p::vfs_read"))


def test_u_is_usdt_for_bcc_tools_and_a_uprobe_for_bpftrace() -> None:
    assert parse_probe("u:c:malloc").kind == "uprobe"
    assert parse_probe("u:c:malloc", u="usdt").kind == "usdt"
    s = parse_probe("software:page-faults:100")
    assert (s.kind, s.name, s.period, s.program) == ("software", "page-faults", 100, "perf_event")
    assert parse_probe("rt:sched_switch").program == "raw_tracepoint"
    assert parse_probe("kprobe::vfs_read").name == "vfs_read"
