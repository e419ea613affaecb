"""A normal install works, not only the editable one the developers use.

The sdist is built from the checkout and the wheel from the sdist (`python -m build`), so a file the
sdist forgets fails here. The wheel goes into a fresh virtualenv, which then runs the README
quickstart from a directory outside the checkout and must print exactly what the README shows.
Then the checkout itself is installed there the way users do (`pip install /path/to/bpfkit`) and
runs the quickstart again.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from _readme import blocks, write_runner

ROOT = Path(__file__).resolve().parent.parent
ARCH = os.uname().machine
# what the wheel's package must hold besides Python modules
HEADERS = {"bpfkit/include/bpfkit.h", "bpfkit/include/bpfkit_hist.h"}


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    # a plain `pip install bpfkit` as a user gets it: no checkout on the path, and the default loader
    # (a suite run with BPFKIT_LOADER=libbpf would otherwise ask the venv, which has no cffi, for libbpf)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "BPFKIT_LOADER")}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc  # type: ignore[no-any-return]


def _sources() -> set[str]:
    """Shipped object names from the BPF C sources: c/examples/execs.bpf.c -> examples/execs."""
    return {str(p.relative_to(ROOT / "c"))[: -len(".bpf.c")] for p in (ROOT / "c").rglob("*.bpf.c")}


def _python_packages() -> set[str]:
    """Every directory of bpfkit/ holding Python modules: each must be a package in the wheel."""
    return {str(p.parent.relative_to(ROOT)) for p in (ROOT / "bpfkit").rglob("*.py")
            if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], timeout=900)
    [sdist] = out.glob("bpfkit-*.tar.gz")
    [wheel] = out.glob("bpfkit-*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, dist: dict[str, Path]) -> Path:
    env = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", str(env)], timeout=120)
    _run([str(env / "bin" / "pip"), "install", "-q", str(dist["wheel"])], timeout=900)
    return env


def test_sdist_has_the_sources_and_no_build_products(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {f"c/{s}.bpf.c" for s in _sources()} <= names
    assert {"c/include/bpfkit.h", "c/include/bpfkit_hist.h", "setup.py", "pyproject.toml", "README.md",
            "bpfkit/loader/__init__.py", "bpfkit/loader/libbpf_cdef.py", "bpfkit/py.typed"} <= names
    assert not [n for n in names if n.endswith((".o", ".pyc")) or n.endswith("_libbpf_ffi.py")]


def test_wheel_has_every_package_object_header_and_py_typed(dist: dict[str, Path]) -> None:
    wheel = dist["wheel"]
    # the objects are compiled for this CPU architecture: the tag says so
    assert wheel.name == f"bpfkit-0.1.0-py3-none-linux_{ARCH}.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    objects = {n[len("bpfkit/bpf/"): -len(".bpf.o")] for n in names if n.endswith(".bpf.o")}
    assert objects == _sources()
    assert HEADERS <= names and "bpfkit/py.typed" in names
    packages = {n.rpartition("/")[0] for n in names if n.endswith("/__init__.py")}
    assert packages == _python_packages(), "a directory without __init__.py is left out by find_packages"
    assert "bpfkit/loader/_libbpf_ffi.py" in names  # cffi's out-of-line module, generated at build time
    assert "bpfkit/_sys/_syscall_table.py" in names  # syscall names where <asm/unistd*.h> is missing
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "c/"))]


def _quickstart(python: Path, cwd: Path) -> str:
    [block] = [b for b in blocks() if b.section == "Quickstart" and b.lang == "python"]
    runner, src, res = write_runner(cwd, [block.code])
    _run([str(python), str(runner), str(res), str(src)], cwd=cwd, timeout=300)
    got = json.loads(res.read_text())["0"]
    assert got["error"] == "", got["error"]
    assert block.output is not None
    assert got["stdout"] == block.output  # exact counts: 3 execs, 3 'true', 3 events
    return str(got["stdout"])


def _installed_from(python: Path, cwd: Path) -> dict[str, object]:
    code = ("import json, sys, bpfkit, bpfkit.loader, bpfkit.shipped as s; bpfkit.open('examples/execs'); "
            "print(json.dumps({'file': bpfkit.__file__, 'execs': str(s.find_object('examples/execs')), "
            "'include': str(bpfkit.compiler.include_dir()), 'parser': 'pycparser' in sys.modules}))")
    out: dict[str, object] = json.loads(_run([str(python), "-c", code], cwd=cwd, timeout=120).stdout)
    return out


def test_wheel_in_a_fresh_venv_runs_the_quickstart_from_outside_the_checkout(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    where = _installed_from(python, tmp_path)
    site = str(venv / "lib")
    assert str(where["file"]).startswith(site) and str(where["execs"]).startswith(site)
    assert str(where["include"]).startswith(site)  # c/include's headers, for users' own programs
    assert where["parser"] is False  # the generated bindings: no C parser at start-up
    # pip compiled the bytecode at install: a first start does not compile 60 modules
    assert list((Path(str(where["file"])).parent / "loader" / "__pycache__").glob("api.*.pyc"))
    _quickstart(python, tmp_path)
    version = _run([str(venv / "bin" / "bpfkit"), "--version"], cwd=tmp_path, timeout=60)
    assert version.stdout == "bpfkit 0.1.0\n"


def test_pip_install_of_the_checkout_runs_the_quickstart(venv: Path, tmp_path: Path) -> None:
    # after the wheel test (same venv): replace the install with one built from the checkout
    _run([str(venv / "bin" / "pip"), "install", "-q", "--force-reinstall", "--no-deps", str(ROOT)], cwd=tmp_path,
         timeout=900)
    python = venv / "bin" / "python"
    assert str(_installed_from(python, tmp_path)["file"]).startswith(str(venv / "lib"))
    _quickstart(python, tmp_path)
