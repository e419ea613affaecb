"""``%load_ext bpfkit`` in a real IPython shell: the ``%%bpf`` cell magic (compile, bind, load,
clang's errors with the cell's line numbers) and record arrays shown as tables."""
from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np
import pytest

import bpfkit
from bpfkit.errors import BpfUsageError

pytest.importorskip("IPython", reason="the extension needs IPython (pip install 'bpfkit[notebook]')")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

CELL = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
const volatile __u32 target_pid = 0;
__u64 calls = 0;
SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
        __sync_fetch_and_add(&calls, 1);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture
def ip() -> Iterator[Any]:
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext bpfkit", store_history=False)
    yield shell
    shell.run_cell("%unload_ext bpfkit", store_history=False)
    for name in ("counter", "bad", "live"):
        shell.user_ns.pop(name, None)


def test_the_cell_magic_binds_an_object_spec(ip: Any) -> None:
    result = ip.run_cell("%%bpf counter\n" + CELL)
    assert result.success
    spec = ip.user_ns["counter"]
    assert isinstance(spec, bpfkit.ObjectSpec) and spec.name == "counter"
    assert list(spec.programs) == ["on_getpid"] and spec.programs.on_getpid.section == \
        "tracepoint/syscalls/sys_enter_getpid"
    assert spec.rodata.target_pid == 0  # editable before load, as any spec


def test_compile_errors_are_clangs_with_the_cells_line_numbers(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cell = '#include "vmlinux.h"\nint f(void)\n{\n    return undeclared_thing;\n}\n'
    result = ip.run_cell("%%bpf bad\n" + cell)
    assert not result.success and "bad" not in ip.user_ns
    err = result.error_in_exec
    assert isinstance(err, bpfkit.CompileError)
    # the %%bpf line is line 1 of the cell, so `return undeclared_thing;` is line 5, column 12
    assert err.clang.startswith("cell[bad]:5:12: error: use of undeclared identifier 'undeclared_thing'")
    assert "/.cache/" not in str(err)  # clang's message, not our cache file's path
    shown = capsys.readouterr()
    assert "cell[bad]:5:12: error" in shown.out + shown.err and "Traceback" not in shown.out + shown.err


def test_usage_errors(ip: Any) -> None:
    for line, message in (("%%bpf", "usage"), ("%%bpf 2fast", "identifier"), ("%%bpf x --nope", "usage")):
        result = ip.run_cell(f"{line}\n{CELL}")
        assert isinstance(result.error_in_exec, BpfUsageError) and message in str(result.error_in_exec)
    result = ip.run_cell("%%bpf empty\n   \n")
    assert isinstance(result.error_in_exec, BpfUsageError) and "empty" in str(result.error_in_exec)


@pytest.mark.root
def test_load_binds_a_live_object_and_a_rerun_closes_the_old_one(ip: Any) -> None:
    assert ip.run_cell("%%bpf live --load -D UNUSED=1\n" + CELL).success
    first = ip.user_ns["live"]
    assert isinstance(first, bpfkit.Object)
    with first.progs.on_getpid.attach():
        first_id = first.progs.on_getpid.id
    assert ip.run_cell("%%bpf live --load\n" + CELL).success
    second = ip.user_ns["live"]
    assert second is not first and "closed" in repr(first) and second.progs.on_getpid.id != first_id
    second.close()


def test_record_arrays_show_as_tables(ip: Any) -> None:
    arr = np.zeros(3, [("pid", "u4"), ("comm", "S16")])
    arr["comm"] = b"bash"
    data, _ = ip.display_formatter.format(arr)
    assert data["text/plain"].splitlines()[:3] == ["records: 3 records, dtype {pid: u4, comm: S16}", "  pid  comm",
                                                  "    0  bash"]
    assert "<td class='l'>bash</td>" in data["text/html"]
    plain, _ = ip.display_formatter.format(np.arange(3))  # other arrays: numpy's own repr
    assert plain == {"text/plain": "array([0, 1, 2])"}
    ip.run_cell("%unload_ext bpfkit", store_history=False)
    assert "text/html" not in ip.display_formatter.format(arr)[0]
    ip.run_cell("%load_ext bpfkit", store_history=False)


def test_extension_is_loaded_lazily() -> None:
    # `import bpfkit` does not import IPython or the extension; load_ipython_extension does
    import subprocess
    import sys
    code = "import sys, bpfkit; print('bpfkit.ipython' in sys.modules, 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.split() == ["False", "False"]
