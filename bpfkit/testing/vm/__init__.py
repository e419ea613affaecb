"""Run commands and pytest inside other Linux kernels under qemu.

The host kernel lacks kprobes and fentry, so tests that need them boot a
Debian kernel in qemu. The guest sees the host's ``/`` read-only over 9p (with
a tmpfs overlay, so it may write anywhere), so the host's Python, virtualenv
and built objects run unchanged; results come back through a read-write 9p
share. Kernels are downloaded with ``apt-get`` and cached, unpacked, under
``$BPFKIT_KERNEL_CACHE`` (default ``~/.cache/bpfkit/kernels``). Progress (downloads, boots, a
heartbeat while a guest runs) goes to the ``bpfkit.testing.vm`` logger.

Example::

    from bpfkit.testing import vm
    kernel = vm.prepare_kernel("6.1")
    result = vm.run_in_guest(kernel, ["uname", "-r"], timeout=120)
    print(result.output, result.boot_seconds)

From the shell, run the ``guest``-marked tests on every known kernel::

    python -m bpfkit.testing.vm [--kernel 6.1 --kernel 6.12] [-- pytest args]

Inside: ``types`` (kernels, results, errors), ``kernels`` (apt, download, unpack), ``initramfs`` and
``image`` (the boot files), ``qemu`` (booting), ``junit`` (pytest in a guest), ``cli``.
"""
from .cli import main
from .junit import run_pytest
from .kernels import Apt, download, prepare_kernel, resolve_package
from .qemu import run_in_guest
from .types import (GUEST_ENV_VAR, KERNELS, GuestBootError, GuestError, GuestKernel, GuestResult, GuestTimeout,
                    GuestUnavailable, KernelSpec, PytestResult, cache_dir, in_guest)

__all__ = ["KERNELS", "KernelSpec", "GuestKernel", "GuestResult", "PytestResult", "GuestError", "GuestUnavailable",
           "GuestBootError", "GuestTimeout", "Apt", "download", "prepare_kernel", "resolve_package", "run_in_guest", "run_pytest",
           "in_guest", "cache_dir", "GUEST_ENV_VAR", "main"]
