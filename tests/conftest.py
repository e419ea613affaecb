"""Shared pytest configuration for bpfkit's own tests."""
from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # `guest`: needs a kernel feature the host lacks (kprobes, fentry); `python -m bpfkit.testing.vm`
    # runs these inside Debian kernels under qemu. `vm`: boots qemu from the host (slow, ~1 min).
    config.addinivalue_line("markers", "guest: run inside a guest kernel by python -m bpfkit.testing.vm")
    config.addinivalue_line("markers", "vm: boots guest kernels under qemu from the host (slow)")
