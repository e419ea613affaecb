"""Verifier rejections explained: one small failing program per kind of rejection, loaded into the
real kernel; the error's first lines say where, what and the fix, in plain words."""
from __future__ import annotations

import errno
import textwrap
from dataclasses import dataclass

import pytest

import bpfkit
from bpfkit.loader.verifier import RULES, explain, summarize_verifier_log

HEADER = """\
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
"""
HASH = ('struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); '
        '__type(value, __u64); } counts SEC(".maps");\n')
ARRAY = ('struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, __u32); '
         '__type(value, __u64); } arr SEC(".maps");\n')
LICENSE = 'char LICENSE[] SEC("license") = "GPL";\n'


@dataclass(frozen=True)
class Case:
    kind: str
    body: str
    line: int  # the source line the explanation must point at (the file's 1-based line)
    text: str  # what that line says


CASES = [
    Case("null_check", HASH + """\
SEC("tracepoint/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	*v += 1;
	return 0;
}
""", 10, "*v += 1;"),
    Case("too_complex", """\
volatile __u64 n = 0;
SEC("tracepoint/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	__u64 i = 0;
	while (i < n)
		i++;
	return i;
}
""", 9, "while (i < n)"),
    Case("stack", """\
SEC("tracepoint/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	char buf[16] = {};
	__u32 i = bpf_get_prandom_u32();
	buf[i] = 1;
	return buf[0];
}
""", 9, "buf[i] = 1;"),
    Case("packet", """\
SEC("xdp")
int prog(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	return eth->h_proto == 8 ? XDP_DROP : XDP_PASS;
}
""", 8, "return eth->h_proto == 8 ? XDP_DROP : XDP_PASS;"),
    Case("bounds", ARRAY + """\
SEC("tracepoint/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&arr, &key);
	if (!v)
		return 0;
	__u32 i = bpf_get_prandom_u32();
	return v[i];
}
""", 13, "return v[i];"),
    Case("ctx", """\
SEC("xdp")
int prog(struct xdp_md *ctx)
{
	__u32 *words = (__u32 *)ctx;
	return words[20] ? XDP_PASS : XDP_DROP;
}
""", 8, "return words[20] ? XDP_PASS : XDP_DROP;"),
    Case("helper", """\
SEC("tracepoint/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	return bpf_redirect(1, 0);
}
""", 7, "return bpf_redirect(1, 0);"),
    Case("reference", """\
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getpid")
int prog(void *ctx)
{
	__u64 *e = bpf_ringbuf_reserve(&rb, 8, 0);
	if (!e)
		return 0;
	*e = 1;
	return 0;
}
""", 8, "__u64 *e = bpf_ringbuf_reserve(&rb, 8, 0);"),
    Case("r0_not_set", """\
__u64 hits = 0;
SEC("tracepoint/syscalls/sys_enter_getpid")
void prog(void *ctx)
{
	hits++;
}
""", 9, "}"),
    Case("scalar_deref", """\
SEC("tp_btf/sched_switch")
int BPF_PROG(prog, bool preempt, struct task_struct *prev)
{
	long *p = (long *)prev->real_parent->pid;
	return *p;
}
""", 8, "return *p;"),
]


def _rejected(body: str) -> bpfkit.VerifierError:
    path = bpfkit.compile(HEADER + body + LICENSE)
    with pytest.raises(bpfkit.VerifierError) as exc:
        bpfkit.load(path).close()
    return exc.value


def test_every_rule_has_a_failing_program() -> None:
    assert {c.kind for c in CASES} == {r.kind for r in RULES}


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_rejection_is_explained_at_the_source_line(case: Case) -> None:
    e = _rejected(case.body)
    ex = explain(e.log)
    assert ex is not None, e.log[-2000:]
    assert ex.kind == case.kind
    assert ex.source is not None and (ex.source.file, ex.source.line, ex.source.text) == \
        ("prog.bpf.c", case.line, case.text)
    rule = next(r for r in RULES if r.kind == case.kind)
    lines = str(e).splitlines()
    # the first lines: which program, where, what is wrong, the fix, the verifier's own words
    assert lines[0].startswith("program 'prog' of 'prog' was rejected by the verifier (")
    assert lines[1] == f"  at prog.bpf.c:{case.line}: {case.text}"
    assert lines[2] == f"  problem: {ex.problem}" and lines[3] == f"  fix: {ex.fix}"
    assert lines[4] == f"  the verifier said: {ex.said}"
    if "{0}" not in rule.problem:
        assert ex.problem == rule.problem
    assert lines[5] == "  last instructions of the log:" and len(lines) > 6


def test_helper_explanation_names_the_helper() -> None:
    [case] = [c for c in CASES if c.kind == "helper"]
    ex = explain(_rejected(case.body).log)
    assert ex is not None and ex.problem == "this type of program may not call bpf_redirect"


def test_ctx_explanation_gives_offset_and_size() -> None:
    [case] = [c for c in CASES if c.kind == "ctx"]
    ex = explain(_rejected(case.body).log)
    assert ex is not None and ex.problem.startswith("the program reads 4 bytes of its context at offset 80,")


def test_program_over_a_million_instructions_is_explained() -> None:
    # refused (E2BIG) before the verifier runs, so there is no log: the size says it all
    src = HEADER + textwrap.dedent("""\
        #define R10(x) x x x x x x x x x x
        SEC("tracepoint/syscalls/sys_enter_getpid")
        int prog(void *ctx)
        {
            asm volatile(R10(R10(R10(R10(R10(R10("r1 = 0\\n")))))) ::: "r1");
            return 0;
        }
        """) + LICENSE
    spec = bpfkit.open(bpfkit.compile(src))
    assert spec.programs.prog.insn_count == 1_000_002
    with pytest.raises(bpfkit.LoadError) as exc:
        spec.load()
    assert exc.value.errno == errno.E2BIG and not isinstance(exc.value, bpfkit.VerifierError)
    lines = str(exc.value).splitlines()
    # the native loader names the program too: "loading program 'prog' of 'prog' failed (E2BIG 7):"
    assert lines[0].startswith("loading ") and lines[0].endswith("'prog' failed (E2BIG 7):")
    assert lines[1:3] == [
        "  problem: the program has 1,000,002 instructions; the kernel loads at most 1,000,000 (4,096 without "
        "CAP_BPF)",
        "  fix: unroll less (`#pragma unroll` on big loops, large inline functions), use bounded loops or "
        "bpf_loop(), or split the work into programs joined by tail calls (bpf_tail_call)"]


def test_unknown_rejections_keep_the_log_tail() -> None:
    log = "0: (b7) r0 = 0\nsomething new the kernel says\nprocessed 1 insns (limit 1000000)\n"
    assert explain(log) is None
    assert summarize_verifier_log(log) == "  0: (b7) r0 = 0\n  something new the kernel says"


def test_older_kernels_log_format_without_file_and_line() -> None:
    # before BTF line info carried "@ file:line", the log quoted the source alone
    log = ("; __u64 *v = bpf_map_lookup_elem(&counts, &key);\n6: (85) call bpf_map_lookup_elem#1\n"
           "; *v += 1;\n7: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\n")
    ex = explain(log)
    assert ex is not None and ex.kind == "null_check" and str(ex.source) == "*v += 1;"
    assert ex.insn == "7: (79) r1 = *(u64 *)(r0 +0)"
