"""SEC() names newer than the system libbpf (1.1): the spec gives them the program type a newer
libbpf would, so they load and attach as written."""
from __future__ import annotations

import textwrap

import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root

SRC = textwrap.dedent("""
    #include "vmlinux.h"
    #include <bpf/bpf_helpers.h>
    const volatile __u32 target_pid = 0;
    __u64 entries = 0, returns = 0;
    static __always_inline int mine(void) { return (bpf_get_current_pid_tgid() >> 32) == target_pid; }
    SEC("uprobe.multi")
    int on_entry(void *ctx) { if (mine()) __sync_fetch_and_add(&entries, 1); return 0; }
    SEC("uretprobe.multi")
    int on_return(void *ctx) { if (mine()) __sync_fetch_and_add(&returns, 1); return 0; }
    char LICENSE[] SEC("license") = "GPL";
""")


def test_uprobe_multi_sections_load_and_attach_one_link_for_a_pattern() -> None:
    ok, reason = bpfkit.features.check("uprobe_multi")
    if not ok:
        pytest.skip(f"requires uprobe_multi: {reason}")
    spec = bpfkit.open(bpfkit.compile(SRC))
    for name in ("on_entry", "on_return"):
        p = spec.programs[name]
        assert (p.prog_type, p.expected_attach_type) == (sc.BPF_PROG_TYPE_KPROBE, sc.BPF_TRACE_UPROBE_MULTI)
    n = 12
    exe = str(fixtures.uprobe_target())
    with fixtures.spawn(exe, str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.progs.on_entry.attach_uprobe(exe, "bpfkit_*") as entry, \
                    obj.progs.on_return.attach_uretprobe(exe, "bpfkit_*") as ret:
                for link in (entry, ret):
                    assert sc.BPF_LINK_TYPE_NAMES[sc.link_info(link.fd).type] == "uprobe_multi"
                proc.finish()
            # bpfkit_add n times and bpfkit_void once, each entered and returned from
            assert (obj.bss.entries, obj.bss.returns) == (n + 1, n + 1)
