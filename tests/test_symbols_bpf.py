"""Stacks collected by the kernel (bpf_get_stack from a uprobe and a syscall tracepoint),
symbolized by bpfkit.symbols and checked against objdump's call sites and a plain kallsyms parse."""
from __future__ import annotations

import bisect
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import bpfkit
from bpfkit.stacks import StackProfile
from bpfkit.symbols import BPF_STACK_BUILD_ID_VALID, ElfCache, Symbolizer
from bpfkit.testing.fixtures import symbols as fx

pytestmark = pytest.mark.root

CHAIN = ["bpfkit_sym_middle", "bpfkit_sym_outer", "bpfkit_sym_f1", "bpfkit_sym_f2", "bpfkit_sym_f3", "bpfkit_sym_f4",
         "bpfkit_sym_f5", "bpfkit_sym_f6", "main"]
CALLEE = {"bpfkit_sym_middle": "bpfkit_sym_local", "bpfkit_sym_outer": "bpfkit_sym_middle",
          "bpfkit_sym_f1": "bpfkit_sym_outer", "bpfkit_sym_f2": "bpfkit_sym_f1", "bpfkit_sym_f3": "bpfkit_sym_f2",
          "bpfkit_sym_f4": "bpfkit_sym_f3", "bpfkit_sym_f5": "bpfkit_sym_f4", "bpfkit_sym_f6": "bpfkit_sym_f5",
          "main": "bpfkit_sym_f6"}


def return_offsets(exe: Path) -> dict[str, int]:
    """caller -> offset (from the caller's start) of the instruction after its call to CALLEE[caller],
    i.e. the return address a stack walk finds, from objdump's disassembly."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(exe)], capture_output=True, text=True,
                          check=True).stdout
    out: dict[str, int] = {}
    for block in re.split(r"\n(?=[0-9a-f]+ <)", text):
        head = re.match(r"([0-9a-f]+) <([^>]+)>:", block)
        if not head or head.group(2) not in CALLEE:
            continue
        start = int(head.group(1), 16)
        insns = re.findall(r"^\s+([0-9a-f]+):\s+(.*)$", block, re.M)
        for k, (_addr, ins) in enumerate(insns):
            if re.search(rf"call\s+[0-9a-f]+ <{CALLEE[head.group(2)]}>", ins) and k + 1 < len(insns):
                out[head.group(2)] = int(insns[k + 1][0], 16) - start
                break
    assert set(out) == set(CALLEE), out
    return out


def kallsyms_names() -> tuple[list[int], list[set[str]]]:
    by_addr: dict[int, set[str]] = {}
    for line in Path("/proc/kallsyms").read_text().splitlines():
        addr, typ, name = line.split()[:3]
        if typ in "tTwW":
            by_addr.setdefault(int(addr, 16), set()).add(name)
    keys = sorted(by_addr)
    return keys, [by_addr[k] for k in keys]


def test_kernel_collected_stacks() -> None:
    exe = fx.symbols_exe(pie=True, frame_pointers=True)
    ret = return_offsets(exe)
    with fx.SymbolsProcess([str(exe)]) as p:
        spec = bpfkit.open("tests/symbols_stacks")
        spec.rodata.target_pid = p.pid
        with spec.load() as obj:
            with obj.progs.on_inner.attach_uprobe(str(exe), "bpfkit_sym_inner", pid=p.pid), \
                    obj.progs.on_write.attach_tracepoint("syscalls", "sys_enter_write"):
                sym = Symbolizer(cache=ElfCache())
                sym.remember(p.pid)
                assert p.finish().startswith("result ")
            bss = obj.bss
            assert bss.uhits == 2  # bpfkit_sym_local calls bpfkit_sym_inner twice
            assert bss.ustack_bytes > 0 and bss.bstack_bytes > 0 and bss.kstack_bytes > 0
            ustack = np.array(bss.ustack, np.uint64)[: bss.ustack_bytes // 8]
            bstack = np.array(bss.bstack)[: bss.bstack_bytes // 32]
            kstack = np.array(bss.kstack, np.uint64)[: bss.kstack_bytes // 8]

    # user stack, innermost first. The probe is on the first instruction of bpfkit_sym_inner, before
    # it pushes its frame, so the frame-pointer walk goes from there to its caller's caller:
    # bpfkit_sym_local (the direct caller) is not in the stack -- the kernel's view, not ours.
    fr = sym.user(p.pid, ustack)
    want = [("bpfkit_sym_inner", 0)] + [(c, ret[c]) for c in CHAIN]
    assert list(zip(fr.names.tolist(), fr.offsets.tolist()))[: len(want)] == want
    assert set(fr.modules[: len(want)].tolist()) == {str(exe)}
    assert fr.modules[len(want)].endswith("libc.so.6")  # __libc_start_call_main, main's caller

    # the same stack as build-id frames resolves to the same functions
    valid = bstack["status"] == BPF_STACK_BUILD_ID_VALID
    assert valid[: len(want)].all()
    assert bytes(bstack["build_id"][0]).hex() == fx.build_id(exe)
    bfr = sym.build_id_frames(bstack)
    assert bfr.names[: len(ustack)].tolist() == fr.names.tolist()
    assert bfr.offsets[: len(want)].tolist() == fr.offsets[: len(want)].tolist()

    # kernel stack of write(2) from its tracepoint: every frame named as kallsyms says, and the
    # syscall entry path is there
    kfr = sym.kernel(kstack)
    keys, names = kallsyms_names()
    for a, name in zip(kstack.tolist(), kfr.names.tolist()):
        assert name in names[bisect.bisect_right(keys, a) - 1]
    assert {"do_syscall_64", "entry_SYSCALL_64_after_hwframe"} <= set(kfr.names.tolist())

    # and folded, bcc's way
    prof = StackProfile.from_addresses([1], user=[ustack[: len(want)]], kernel=None, pids=[p.pid],
                                       comms=["symbols_target"], symbolizer=sym)
    assert prof.folded() == "symbols_target;" + ";".join(reversed([n for n, _o in want])) + " 1\n"
