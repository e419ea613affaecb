"""Kernel symbolization (bpfkit.symbols.KernelSymbols) against /proc/kallsyms read independently."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import bpfkit
from bpfkit.errors import BpfNotFoundError, BpfPermissionError
from bpfkit.symbols import UNKNOWN, KernelSymbols, Symbolizer, kernel_symbols

KNOWN = ("do_syscall_64", "vfs_read", "schedule", "__x64_sys_getpid", "entry_SYSCALL_64")


def kallsyms_text() -> dict[int, list[tuple[str, str, str]]]:
    """address -> [(type, name, module)] for text symbols, parsed line by line the plain way."""
    out: dict[int, list[tuple[str, str, str]]] = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            head, _tab, mod = line.rstrip("\n").partition("\t")
            addr, typ, name = head.split(" ", 2)
            if typ in "tTwW":
                out.setdefault(int(addr, 16), []).append((typ, name, mod.strip("[]")))
    return out


@pytest.fixture(scope="module")
def ks() -> KernelSymbols:
    return KernelSymbols()


@pytest.fixture(scope="module")
def plain() -> dict[int, list[tuple[str, str, str]]]:
    return kallsyms_text()


def test_known_functions(ks: KernelSymbols, plain: dict[int, list[tuple[str, str, str]]]) -> None:
    by_name = {name: a for a, entries in plain.items() for _t, name, _m in entries}
    addrs, want = [], []
    for name in KNOWN:
        a = by_name[name]
        nxt = min(x for x in plain if x > a)
        for off in (0, 1, nxt - a - 1):
            addrs.append(a + off)
            want.append((name, off, "[kernel]"))
    fr = ks.lookup(np.array(addrs, np.uint64))
    assert list(zip(fr.names.tolist(), fr.offsets.tolist(), fr.modules.tolist())) == want
    assert ks.address("do_syscall_64") == by_name["do_syscall_64"]
    assert ks.name(by_name["vfs_read"] + 2) == "vfs_read"


def test_every_symbol_resolves_to_one_of_its_names(ks: KernelSymbols,
                                                   plain: dict[int, list[tuple[str, str, str]]]) -> None:
    """All text symbols at once (one vectorised call): each address gets one of the names kallsyms
    lists at that address, a global one when there is one."""
    core = {a: e for a, e in plain.items() if not any(m for _t, _n, m in e)}
    addrs = np.array(sorted(core), np.uint64)
    fr = ks.lookup(addrs)
    assert (fr.offsets == 0).all()
    for a, name in zip(addrs.tolist(), fr.names.tolist()):
        entries = core[a]
        names = {n for _t, n, _m in entries}
        globals_ = {n for t, n, _m in entries if t.isupper()}
        assert name in (globals_ or names), (hex(a), name, entries)


def test_hidden_or_missing_kallsyms(tmp_path: Path) -> None:
    zeros = b"".join(b"0000000000000000 T f%d\n" % i for i in range(3))
    with pytest.raises(BpfPermissionError, match="kptr_restrict"):
        KernelSymbols(data=zeros)
    with pytest.raises(BpfNotFoundError):
        KernelSymbols(str(tmp_path / "no-kallsyms"))


def test_malformed_lines_are_skipped() -> None:
    data = (b"ffffffff81000000 T _stext\n"
            b"garbage\n"
            b"ffffffff8100zz00 T bad_hex\n"
            b"ffffffff81000100 t good_local\n"
            b"ffffffff81000200 D some_data\n"
            b"ffffffffc0001000 t mod_func\t[my_mod]\n"
            b"ffffffffc0001100 t mod_func2\t[my_mod]")  # no trailing newline
    ks = KernelSymbols(data=data)
    assert ks.skipped == 2 and len(ks.skipped_reasons) == 2
    fr = ks.lookup(np.array([0xFFFFFFFF81000004, 0xFFFFFFFF81000104, 0xFFFFFFFFC0001002,
                             0xFFFFFFFFC0001101, 0x1000], np.uint64))
    assert fr.names.tolist() == ["_stext", "good_local", "mod_func", "mod_func2", UNKNOWN]
    assert fr.modules.tolist() == ["[kernel]", "[kernel]", "[my_mod]", "[my_mod]", ""]
    assert fr.offsets.tolist() == [4, 4, 2, 1, 0x1000]


def test_bpf_program_symbols_are_module_symbols() -> None:
    """A loaded BPF program appears in kallsyms as ``bpf_prog_TAG_NAME [bpf]``."""
    obj = bpfkit.load(str(Path(bpfkit.__file__).resolve().parent / "bpf" / "tests" / "minimal.bpf.o"))
    try:
        lines = [ln for ln in Path("/proc/kallsyms").read_text().splitlines()
                 if ln.endswith("_count_getpid\t[bpf]")]
        assert lines, "the loaded program is not in /proc/kallsyms"
        ks = kernel_symbols(refresh=True)
        addrs = np.array([int(ln.split()[0], 16) + 3 for ln in lines], np.uint64)
        fr = ks.lookup(addrs)
        assert fr.names.tolist() == [ln.split()[2] for ln in lines]
        assert fr.modules.tolist() == ["[bpf]"] * len(lines)
        assert fr.offsets.tolist() == [3] * len(lines)
    finally:
        obj.close()


def test_loadable_module_symbol(ks: KernelSymbols, plain: dict[int, list[tuple[str, str, str]]]) -> None:
    if not os.path.exists("/proc/modules"):
        pytest.skip("kernel built without CONFIG_MODULES: no loadable module symbols to check "
                    "([bpf] pseudo-module symbols are checked above)")
    mods = [(a, n, m) for a, e in plain.items() for _t, n, m in e if m and m not in ("bpf", "__builtin__ftrace")]
    if not mods:
        pytest.skip("no kernel module is loaded")
    a, n, m = mods[0]
    f = ks.lookup(np.array([a], np.uint64))[0]
    assert (f.module, f.offset) == (f"[{m}]", 0)
    assert f.name in {name for _t, name, _m in plain[a]}


def test_symbolizer_kernel_matches() -> None:
    ks = kernel_symbols()
    a = ks.address("do_syscall_64")
    assert Symbolizer().kernel([a + 9]).labels(offset=True, module=True) == ["do_syscall_64+0x9 [kernel]"]
