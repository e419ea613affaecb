"""What a start-up imports: `import bpfkit` nothing heavy, and a tracepoint tool's whole path (open,
load, attach, read the first ring-buffer record) nothing it does not use. Checked in a fresh
interpreter, since this process has imported everything already."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

FIRST_EVENT = """
import json, os, sys, bpfkit
spec = bpfkit.open("tests/count")
spec.rodata.target_pid = os.getpid()
with spec.load() as obj, obj.attach():
    os.getpid()
    [batch] = list(obj.reader("events").read(timeout=0.2))
    assert len(batch) == 1
print(json.dumps(sorted(sys.modules)))
"""


def _modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_bpfkit_imports_no_numpy_cffi_or_pyelftools() -> None:
    mods = _modules("import json, sys, bpfkit; print(json.dumps(sorted(sys.modules)))")
    heavy = {m for m in mods if m.split(".")[0] in ("numpy", "cffi", "_cffi_backend", "pycparser", "elftools",
                                                    "ctypes", "subprocess", "asyncio")}
    assert heavy == set()


@pytest.mark.parametrize("loader", ["native", "libbpf"])
def test_a_tracepoint_tool_imports_only_what_it_uses(loader: str) -> None:
    import bpfkit.loader.libbpf as lb

    if type(lb.ffi).__module__ != "_cffi_backend":
        pytest.fail("bpfkit/loader/_libbpf_ffi.py is missing or stale: run `make setup` (bpfkit/_build.py)")
    mods = _modules(FIRST_EVENT.replace('bpfkit.open("tests/count")', f'bpfkit.open("tests/count", loader="{loader}")'))
    # parsing C declarations, ELF files, USDT notes, sockets, asyncio, subprocesses: none of it is needed;
    # nor OpenSSL's hashlib (3.6 MiB of RSS), tempfile or gzip, which only CO-RE's index cache and
    # /proc/config.gz use (tests/count has no CO-RE relocations), nor html (notebook views only)
    unwanted = {m for m in mods if m.split(".")[0] in ("cffi", "pycparser", "elftools", "asyncio", "socket",
                                                       "subprocess", "difflib", "hashlib", "_hashlib",
                                                       "tempfile", "gzip", "html")}
    assert unwanted == set()
    assert not {m for m in mods if m.startswith(("bpfkit.binaries", "bpfkit.probes.uprobe", "bpfkit.probes.usdt",
                                                 "bpfkit.probes.kprobe", "bpfkit.probes.fentry",
                                                 "bpfkit.probes.net", "bpfkit.features", "bpfkit.symbols",
                                                 "bpfkit.stacks"))}
    # the default loader needs no libbpf bindings at all; libbpf's come from the generated module
    assert ("bpfkit.loader._libbpf_ffi" in mods) == (loader == "libbpf")
    assert ("_cffi_backend" in mods) == (loader == "libbpf")


@pytest.mark.parametrize("generated", ["missing", "stale"])
def test_bindings_fall_back_to_parsing_the_declarations(generated: str) -> None:
    # a checkout whose generated module is missing (cffi absent at build) or stale (CDEF edited
    # since): the bindings still work, by parsing the declarations at import
    setup = ("sys.modules['bpfkit.loader._libbpf_ffi'] = None" if generated == "missing" else
             "import types; m = types.ModuleType('bpfkit.loader._libbpf_ffi'); m.CDEF_DIGEST = 'stale'; "
             "m.ffi = None; sys.modules[m.__name__] = m")
    code = f"""
import json, os, sys
{setup}
import bpfkit, bpfkit.loader.libbpf as lb
with bpfkit.load("tests/count") as obj, obj.attach():
    os.getpid()
print(json.dumps([type(lb.ffi).__module__, "pycparser" in sys.modules]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["cffi.api", True]


@pytest.mark.root
def test_kconfig_feature_externs_do_not_parse_all_of_vmlinux_btf() -> None:
    # LINUX_HAS_BPF_COOKIE (libbpf's usdt.bpf.h) asks whether a helper exists: that comes from the
    # numpy index of kernel BTF, not from parsing ~100k types into Python objects (a second or more
    # at every start-up of a tool that uses USDT or the one-liner engine)
    out = subprocess.run([sys.executable, "-c", """
import bpfkit
from bpfkit.btf.kernel import vmlinux_btf
with bpfkit.open("tests/corpus/externs").load():
    pass
print(vmlinux_btf.cache_info().currsize)
"""], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0"]
