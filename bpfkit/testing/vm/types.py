"""What the guest-kernel runner works with: the kernels it knows, what a run returns, and its errors.

Example::

    KERNELS["6.1"].patterns      # Debian package name patterns, newest match wins
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ...compiler.cache import kernel_cache_dir
from ...errors import BpfError

__all__ = ["GUEST_ENV_VAR", "KERNELS", "KernelSpec", "GuestKernel", "GuestResult", "PytestResult", "GuestError",
           "GuestUnavailable", "GuestBootError", "GuestTimeout", "in_guest", "cache_dir"]

#: Set to the guest kernel's release in every guest command's environment.
GUEST_ENV_VAR = "BPFKIT_IN_GUEST"


class GuestError(BpfError):
    """A guest kernel could not be prepared or run."""


class GuestUnavailable(GuestError):
    """qemu, apt, busybox-static or the kernel package is not available here."""


class GuestBootError(GuestError):
    """qemu exited without the guest reporting a result. ``console`` is the serial log."""

    def __init__(self, message: str, console: str = "") -> None:
        super().__init__(message)
        self.console = console


class GuestTimeout(GuestError):
    """The guest ran past its timeout; qemu (``pid``) was killed and reaped.
    ``output`` is what the command wrote so far, ``console`` the serial log."""

    def __init__(self, message: str, pid: int, output: str = "", console: str = "") -> None:
        super().__init__(message)
        self.pid = pid
        self.output = output
        self.console = console


@dataclass(frozen=True)
class KernelSpec:
    """How a short kernel name maps to Debian packages: the first pattern that
    matches an available package wins, and among its matches the highest
    number in the pattern's group."""

    name: str
    patterns: tuple[str, ...]


KERNELS: dict[str, KernelSpec] = {
    "6.1": KernelSpec("6.1", (r"linux-image-6\.1\.0-(\d+)-amd64",)),
    "6.12": KernelSpec(
        "6.12",
        (r"linux-image-6\.12\.(\d+)\+deb\d+-amd64-unsigned", r"linux-image-6\.12\.(\d+)\+deb\d+-amd64"),
    ),
}


@dataclass(frozen=True)
class GuestKernel:
    """A kernel ready to boot: the ELF ``vmlinux`` (booted via PVH), the
    ``initrd`` that mounts the host's / and ``modules_dir`` for modprobe."""

    name: str
    package: str
    version: str
    vmlinux: Path
    initrd: Path
    modules_dir: Path


@dataclass(frozen=True)
class GuestResult:
    """What a guest run produced. ``boot_seconds`` is qemu start to the guest
    starting the command, ``total_seconds`` qemu start to qemu exit."""

    returncode: int
    output: str
    boot_seconds: float
    total_seconds: float
    console: str = ""


@dataclass(frozen=True)
class PytestResult(GuestResult):
    """A :class:`GuestResult` plus the counts from pytest's junit xml, and each test's outcome
    (``"passed"``, ``"failed"``, ``"skipped"`` or ``"error"``) by node id in ``tests``."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    tests: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """pytest exited 0 and at least one test passed: a run where nothing was collected
        (exit 5) or everything skipped tested nothing, so it is not a success."""
        return self.returncode == 0 and self.failed == 0 and self.errors == 0 and self.passed > 0

    def ids(self, outcome: str) -> set[str]:
        """Node ids of the tests with ``outcome`` (``"passed"``, ``"skipped"``...)."""
        return {t for t, o in self.tests.items() if o == outcome}

    def summary(self) -> str:
        """e.g. ``7 passed, 0 failed, 1 skipped``."""
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        return text + (f", {self.errors} errors" if self.errors else "")


def in_guest() -> bool:
    """True inside a guest started by this module (e.g. to skip host-only tests)."""
    return bool(os.environ.get(GUEST_ENV_VAR))


def cache_dir() -> Path:
    """Where unpacked kernels live: ``$BPFKIT_KERNEL_CACHE`` or ``~/.cache/bpfkit/kernels``."""
    return kernel_cache_dir()  # one definition: `bpfkit cache prune` cleans the same place
