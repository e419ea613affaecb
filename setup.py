"""Packaging for bpfkit. The custom build_py compiles c/**/*.bpf.c with clang.

``pip install .``     -> objects built into the wheel under bpfkit/bpf/
``pip install -e .``  -> objects built into the source tree's bpfkit/bpf/ (gitignored)
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

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
        # pandas and matplotlib so the optional to_dataframe()/plot() paths are tested, not skipped
        "test": ["pytest>=7", "mypy>=1.0", "pyroute2>=0.7", "pandas>=1.5", "matplotlib>=3.5", "cffi>=1.15"],
        "pandas": ["pandas>=1.5"],
        "plot": ["matplotlib>=3.5"],
    },
    entry_points={
        "console_scripts": ["bpfkit = bpfkit.cli:main"],
        "pytest11": ["bpfkit = bpfkit.testing.plugin"],
    },
    cmdclass={"build_py": BuildPyWithBpf},
    zip_safe=False,
    classifiers=[
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Monitoring",
    ],
)
