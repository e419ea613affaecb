"""Packaging for bpfkit. The custom build_py compiles c/**/*.bpf.c with clang.

``pip install .``     -> objects built into the wheel under bpfkit/bpf/, headers under bpfkit/include/
``pip install -e .``  -> objects built into the source tree's bpfkit/bpf/ (gitignored)
Both also generate bpfkit/loader/_libbpf_ffi.py, cffi's out-of-line module for the libbpf bindings.
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70 has it from the wheel package
    from wheel.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent


def _load_build_module() -> ModuleType:
    # By file path: importing it as bpfkit._build would run bpfkit/__init__.py,
    # which needs numpy/cffi that the isolated build env does not have.
    spec = importlib.util.spec_from_file_location("_bpfkit_build", ROOT / "bpfkit" / "_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks the module up while building classes
    spec.loader.exec_module(module)
    return module


class BuildPyWithBpf(build_py):
    """build_py that also compiles the BPF objects and ships the BPF headers."""

    def run(self) -> None:
        super().run()
        _build = _load_build_module()
        editable = bool(getattr(self, "editable_mode", False))
        # Editable installs import bpfkit from the source tree, so the objects
        # must land there; include_dir() then reads c/include directly.
        pkg_out = ROOT / "bpfkit" if editable else Path(self.build_lib) / "bpfkit"
        # Dependency records must not end up inside the wheel; in the source
        # tree they sit next to the objects, shared with `python bpfkit/_build.py`.
        state_dir = None if editable else ROOT / "build" / "bpf-deps"
        try:
            results = _build.build_all(
                ROOT / "c",
                pkg_out / "bpf",
                vmlinux_dir=ROOT / "build" / "include",
                state_dir=state_dir,
            )
        except _build.BuildError as e:
            raise SystemExit(f"error: building BPF objects failed:\n{e}") from None
        for r in results:
            if r.rebuilt:
                self.announce(f"compiled {r.src} -> {r.out}", level=2)
        self._generated = [str(r.out) for r in results]
        if not editable:
            self._generated += self._copy_headers(pkg_out / "include")
        # syscall names for machines without <asm/unistd*.h> (bpfkit/_sys/syscall_names.py)
        table = pkg_out / "_sys" / "_syscall_table.py"
        _build.generate_syscall_table(table)
        if table.exists():
            self._generated.append(str(table))
        # cffi's out-of-line ABI module: importing it skips parsing the libbpf declarations
        ffi_out = pkg_out / "loader" / "_libbpf_ffi.py"
        try:
            _build.generate_libbpf_ffi(ffi_out, ROOT / "bpfkit" / "loader" / "libbpf_cdef.py")
            self._generated.append(str(ffi_out))
        except ImportError:
            self.announce("cffi missing at build time: bpfkit will parse the libbpf declarations at run time",
                          level=3)

    def _copy_headers(self, dest: Path) -> list[str]:
        src = ROOT / "c" / "include"
        if dest.exists():
            shutil.rmtree(dest)
        copied = []
        for header in sorted(src.rglob("*.h")) if src.is_dir() else []:
            target = dest / header.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(header, target)
            copied.append(str(target))
        return copied

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return list(super().get_outputs(include_bytecode)) + list(getattr(self, "_generated", []))


class PlatformWheel(bdist_wheel):
    """The BPF objects are compiled for the build machine's CPU architecture (``__TARGET_ARCH_*``,
    pt_regs layouts), so the wheel says so: ``py3-none-<platform>``, any Python 3, no C ABI."""

    def get_tag(self) -> tuple[str, str, str]:
        plat = self.plat_name if getattr(self, "plat_name_supplied", False) else sysconfig.get_platform()
        return "py3", "none", plat.replace("-", "_").replace(".", "_")


setup(
    name="bpfkit",
    version="0.1.0",
    description="Python SDK for Linux eBPF tracing: compile, load, attach, read maps as numpy",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["bpfkit", "bpfkit.*"]),
    package_data={
        "bpfkit": ["py.typed", "bpf/**/*.bpf.o", "include/**/*.h"],
        "bpfkit.testing.vm": ["*.sh"],
        "bpfkit.testing.fixtures": ["*.c", "*.h"],
    },
    install_requires=["numpy>=1.22", "pyelftools>=0.29"],
    extras_require={
        # loader="libbpf": the system libbpf (Debian: libbpf1) through cffi; the default loader needs neither
        "libbpf": ["cffi>=1.15"],
        "net": ["pyroute2>=0.7"],
        # the optional paths' packages, so that they are tested, not skipped; build for
        # tests/test_packaging.py (sdist, then the wheel from it); nbconvert renders an executed example
        # notebook to HTML in tests/test_notebooks.py; cffi for the
        # loader="libbpf" tests; hypothesis for the parsers' fuzz test
        "test": ["pytest>=7", "mypy>=1.0", "build>=1.0", "pyroute2>=0.7", "pandas>=1.5", "matplotlib>=3.5",
                 "prometheus_client>=0.16", "tomli>=1.1; python_version<'3.11'", "pyarrow>=14", "polars>=0.20",
                 "ipython>=8", "ipykernel>=6", "nbclient>=0.7", "nbformat>=5", "nbconvert>=7", "cffi>=1.15",
                 "hypothesis>=6.0"],
        "pandas": ["pandas>=1.5"],
        # to_arrow(), Recorder / bpfkit record / replay (Parquet)
        "arrow": ["pyarrow>=14"],
        "polars": ["polars>=0.20", "pyarrow>=14"],
        "plot": ["matplotlib>=3.5"],
        # %load_ext bpfkit and running the example notebooks headless
        "notebook": ["ipython>=8", "ipykernel>=6", "nbclient>=0.7", "nbformat>=5", "matplotlib>=3.5"],
        # `bpfkit exporter`: TOML configs are read with tomllib (3.11+) or tomli
        "exporter": ["prometheus_client>=0.16", "tomli>=1.1; python_version<'3.11'"],
    },
    entry_points={
        "console_scripts": ["bpfkit = bpfkit.cli:main"],
        "pytest11": ["bpfkit = bpfkit.testing.plugin"],
    },
    cmdclass={"build_py": BuildPyWithBpf, "bdist_wheel": PlatformWheel},
    zip_safe=False,
    classifiers=[
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Monitoring",
    ],
)
