"""The parsers bpfkit runs on input it does not control (``.bpf.o`` objects through ``bpfkit.open``
too), each as a function of bytes, with the valid inputs mutated from (issue 11). ``test_fuzz.py``
drives them with hypothesis; a target passes an input if it returns or raises a
:class:`bpfkit.BpfError` subclass: anything else (IndexError, UnicodeDecodeError, RecursionError...),
a crash or a hang is a bug.

Example::

    from fuzz_targets import TARGETS
    TARGETS["btf"].run(TARGETS["btf"].seeds()[0])
"""
from __future__ import annotations

import functools
import itertools
import os
import random
import struct
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bpfkit.binaries import libraries, usdt_notes
from bpfkit.binaries import elf as binelf
from bpfkit.binaries import procfs
from bpfkit.btf import Btf, Kind, encode
from bpfkit.errors import BpfError
from bpfkit.probes import discovery
from bpfkit.binaries import elfreader as symelf
from bpfkit.symbols import kernel as ksyms
from bpfkit.symbols import perfmap, procmaps
from bpfkit.symbols.elfsyms import ElfCache
from bpfkit import _sys as sc
from bpfkit import tracefs


EDGE_WORDS = [0, 1, 2, 3, 4, 8, 12, 16, 24, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
              0xFFFFFFFE, 0xFFFFFFFF]
EDGE_BYTES = [0, 1, 0x20, 0x2D, 0x30, 0x3A, 0x7F, 0x80, 0xC2, 0xFF]


def mutate(rng: random.Random, seed: bytes) -> bytes:
    """``seed`` with 1-8 random mutations: a bit flipped, a byte or an aligned word set to an edge
    value, a cut, bytes inserted, a range deleted, a chunk copied elsewhere or repeated (the same
    operations test_fuzz.py's hypothesis strategy draws).

    Example::

        mutate(random.Random(1), b"0-3,8\n")
    """
    data = bytearray(seed)
    for _ in range(rng.randint(1, 8)):
        n = len(data)
        op = rng.randint(0, 7)
        if op == 0 and n:
            data[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            data[rng.randrange(n)] = rng.choice(EDGE_BYTES)
        elif op == 2 and n >= 4:
            i = rng.randrange(n // 4) * 4
            word = rng.choice(EDGE_WORDS + [n, n - i, n + 1, rng.randrange(1 << 32)])
            struct.pack_into("<I", data, i, word & 0xFFFFFFFF)
        elif op == 3:
            data = data[: rng.randint(0, n)]
        elif op == 4:
            i = rng.randint(0, n)
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 5 and n:
            i = rng.randrange(n)
            del data[i: i + rng.randint(1, 64)]
        elif op == 6 and n:
            i, j = rng.randrange(n), rng.randrange(n)
            data[j: j + rng.randint(1, 256)] = data[i: i + rng.randint(1, 256)]
        elif op == 7 and n:
            i = rng.randrange(n)
            data[i:i] = data[i: i + rng.randint(1, 80)] * rng.randint(2, 200)
    return bytes(data)


@dataclass(frozen=True)
class Target:
    """A parser: ``run(data)`` parses and uses the result; ``seeds()`` are valid inputs."""

    name: str
    run: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]


# -- BTF -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _btf_seeds() -> list[bytes]:
    import bpfkit

    small, _, _ = encode(np.dtype("u4"), np.dtype([("n", "u8"), ("comm", "S16"), ("v", "i4", (3,)),
                                                   ("f", "f8"), ("b", "?")]))
    return [small, bpfkit.open("tests/count").btf.raw, bpfkit.open("tests/tp_kinds").btf.raw]  # type: ignore[union-attr]


def _btf(data: bytes) -> None:
    btf = Btf.parse(data)
    for t in list(btf)[:2000]:
        for fn in (btf.resolve, btf.size_of, btf.type_name, btf.dtype):
            try:
                fn(t.id)
            except BpfError:
                pass
        if t.kind == Kind.DATASEC:
            try:
                btf.datasec_dtype(t.name)
            except BpfError:
                pass


# -- BPF objects (loader.precheck, then libbpf) ----------------------------------------------

@functools.lru_cache(maxsize=1)
def _object_seeds() -> list[bytes]:
    import bpfkit

    # the objects whose mutations crashed libbpf 1.1.2 before bpfkit checked them itself
    return [open(bpfkit.open(n).path, "rb").read()  # type: ignore[arg-type]
            for n in ("tests/count", "tests/tp_kinds", "tests/probes_usdt", "examples/execs")]


def _bpf_object(data: bytes) -> None:
    import bpfkit

    spec = bpfkit.open(data)
    # the dtypes are made on first use: make them, so that their code is fuzzed too
    for ms in spec.maps.values():
        (ms.key_dtype, ms.value_dtype, ms.record_dtype, ms.dtype_error)
    for section in spec.sections.values():
        section.dtype


# -- ELF binaries (binaries.elf, binaries.usdt_notes, symbols._elf / elfsyms) --------------

@functools.lru_cache(maxsize=1)
def _elf_seeds() -> list[bytes]:
    from bpfkit.testing import fixtures

    return [fixtures.uprobe_target().read_bytes(), fixtures.usdt_target().read_bytes()]


_counter = itertools.count()


def _as_file(data: bytes) -> str:
    # a new name every time: the parsers cache by (path, inode, mtime, size)
    path = os.path.join(tempfile.gettempdir(), f"bpfkit-fuzz-{os.getpid()}-{next(_counter)}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _binaries_elf(data: bytes) -> None:
    path = _as_file(data)
    try:
        syms = binelf.list_symbols(path)
        binelf.load_segments(path)
        for s in syms[:50]:
            binelf.function_at(path, s.offset)
            try:
                binelf.symbol_offset(path, s.display_name)
            except BpfError:
                pass
        for note in usdt_notes.read_usdt_notes(path):
            try:
                note.arg_specs
            except BpfError:
                pass
    finally:
        os.unlink(path)


def _symbols_elf(data: bytes) -> None:
    with symelf.ElfReader(data, "fuzz") as r:
        r.build_id()
        r.debuglink()
        for t in (symelf.SHT_SYMTAB, symelf.SHT_DYNSYM):
            r.symbols(t)
    es = ElfCache().load_image(data, "fuzz")
    es.offsets_to_vaddrs(np.arange(0, 1 << 16, 97, dtype=np.uint64))


def _dwarf_lines(data: bytes) -> None:
    from bpfkit.symbols.dwarf import LineTable

    path = _as_file(data)
    try:
        table = LineTable.from_file(path)
        if table is not None:
            table.lookup(np.arange(0x1000, 0x1400, 7, dtype=np.uint64))
    finally:
        os.unlink(path)


# -- text formats ----------------------------------------------------------------------------

def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _usdt_args(data: bytes) -> None:
    usdt_notes.parse_usdt_args(_text(data))


def _ld_cache(data: bytes) -> None:
    libraries.parse_ld_cache(data, "x86_64")


def _ldconfig_p(data: bytes) -> None:
    libraries.parse_ldconfig_p(_text(data), "x86_64")


_FORMAT = b"""name: sys_enter_openat
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:32;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:48;\tsize:4;\tsigned:0;
\tfield:u32 vals[2][3];\toffset:52;\tsize:24;\tsigned:0;

print fmt: "dfd: 0x%08lx", ((unsigned long)(REC->dfd))
"""


def _tracepoint_format(data: bytes) -> None:
    fields = discovery.parse_tracepoint_format(_text(data))
    discovery.fields_dtype(fields)


def _tracefs_numbers(data: bytes) -> None:
    for text in (_text(data), _text(data).split("\n")[0]):
        for fn in (tracefs.parse_id, tracefs.parse_pmu_bit):
            try:
                fn(text, "fuzz")
            except BpfError:
                pass


def _proc_maps(data: bytes) -> None:
    text = _text(data)
    procmaps.parse_maps(text, 1).find(np.arange(0, 1 << 20, 4096, dtype=np.uint64))
    procfs.parse_mapped_files(text)
    procfs.parse_load_address(text, "/usr/bin/prog", 0x1000)


_MAPS = (b"55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /usr/bin/prog\n"
         b"55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 1234 /usr/bin/prog\n"
         b"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
         b"7f0000100000-7f0000200000 r-xp 00028000 08:01 99 /usr/lib/libc.so.6 (deleted)\n"
         b"7ffd0000000-7ffd0001000 r-xp 00000000 00:00 0 [vdso]\n")


def _kallsyms(data: bytes) -> None:
    ks = ksyms.KernelSymbols(path="fuzz", data=data)
    ks.lookup(np.array([0, 1 << 63, (1 << 64) - 1, 0xFFFFFFFF81000000], np.uint64))
    len(ks)


_KALLSYMS = (b"ffffffff81000000 T _stext\nffffffff81000100 t helper\nffffffff81000200 T vfs_read\n"
             b"ffffffff81000300 W weak_one\nffffffffc0000000 t mod_fn\t[mymod]\nffffffff81000400 D data\n")


def _perf_map(data: bytes) -> None:
    table, _ = perfmap.parse_perf_map(_text(data))
    table.lookup(np.array([0, 0x7F0000001000, 0x7F0000001040], np.uint64))


def _probe_spec(data: bytes) -> None:
    from bpfkit.probes.spec import parse_probe

    parse_probe(_text(data))


def _cpu_list(data: bytes) -> None:
    sc.parse_cpu_list(_text(data))


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("btf", _btf, _btf_seeds),
    Target("bpf_object", _bpf_object, _object_seeds),
    Target("elf_symbols", _binaries_elf, _elf_seeds),
    Target("symbols_elf", _symbols_elf, _elf_seeds),
    Target("dwarf_lines", _dwarf_lines, _elf_seeds),
    Target("usdt_args", _usdt_args, lambda: [b"-4@%edi 8@-16(%rbp) -8@$42 4@sym+8(%rip) 1@%al 2@8(%r12)"]),
    Target("ld_so_cache", _ld_cache, lambda: [open(libraries.LD_SO_CACHE, "rb").read()]),
    Target("ldconfig_p", _ldconfig_p, lambda: [b"3 libs found in cache `/etc/ld.so.cache'\n"
                                               b"\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n"
                                               b"\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n"]),
    Target("tracepoint_format", _tracepoint_format, lambda: [_FORMAT]),
    Target("tracefs_numbers", _tracefs_numbers, lambda: [b"700\n", b"config:9\n"]),
    Target("proc_maps", _proc_maps, lambda: [_MAPS]),
    Target("kallsyms", _kallsyms, lambda: [_KALLSYMS]),
    Target("perf_map", _perf_map, lambda: [b"7f0000001000 40 py::f:/x.py\n7f0000001040 10 [jit] g\n"]),
    Target("cpu_list", _cpu_list, lambda: [b"0-3,8,10-11\n", b"0\n"]),
    Target("probe_spec", _probe_spec, lambda: [b"u:c:malloc", b"t:sched:sched_*", b"kr:vfs_read", b"r:c:free",
                                               b"usdt:/usr/bin/python3:python:function__entry",
                                               b"software:cpu-clock:1000", b"hardware:cycles"]),
]}
