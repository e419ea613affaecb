"""``python -m bpfkit.testing.vm``: run the ``guest``-marked tests (or any command) inside the
kernels the runner knows.

Example::

    python -m bpfkit.testing.vm --kernel 6.1 -- -m guest tests/test_kprobe.py
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .junit import run_pytest
from .kernels import prepare_kernel
from .qemu import run_in_guest
from .types import KERNELS, GuestError, GuestResult

__all__ = ["main"]



def _parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(
        prog="python -m bpfkit.testing.vm",
        description="Run the guest-marked tests (or any pytest args after --) inside other kernels under qemu.",
    )
    p.add_argument("--kernel", action="append", metavar="NAME",
                   help=f"kernel to boot, repeatable: {', '.join(KERNELS)} or a linux-image-* package "
                        "(default: all)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per kernel (default 1800)")
    p.add_argument("--run", action="store_true", help="treat the words after -- as a command, not pytest args")
    p.add_argument("--prepare-only", action="store_true", help="download and build the kernels, boot nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="print each guest's output, not only on failure")
    return p.parse_args(argv), rest


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # _boot has already killed and reaped qemu on the way out.
        print("interrupted; qemu stopped", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args, rest = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.kernel or list(KERNELS)
    if args.run and not rest:
        print("--run needs a command after --", file=sys.stderr)
        return 2
    test_args = rest or ["-m", "guest", "tests"]
    if not args.run and not rest and not Path("tests").is_dir():
        print("no tests/ directory here: run from the repository root or pass pytest args after --",
              file=sys.stderr)
        return 2
    summaries: list[str] = []
    ok = True
    recap = False  # repeat the summary lines at the end when guest output came in between
    for name in names:
        try:
            kernel = prepare_kernel(name)
            if args.prepare_only:
                print(f"guest {kernel.version}: ready ({kernel.vmlinux.parent})")
                continue
            if args.run:
                res: GuestResult = run_in_guest(kernel, rest, timeout=args.timeout)
                good = res.returncode == 0
                what = f"exit status {res.returncode}"
            else:
                pres = run_pytest(kernel, test_args, timeout=args.timeout)
                res, good, what = pres, pres.ok, pres.summary()
                if pres.returncode == 5:
                    what += " (no tests collected)"
                elif pres.passed == 0 and pres.returncode == 0:
                    what += " (nothing passed: every test was skipped)"
                elif not good and pres.failed + pres.errors == 0:
                    what += f" (pytest exit status {pres.returncode})"
        except GuestError as e:
            ok = False
            summaries.append(f"guest {name}: FAILED to run: {e}")
            print(summaries[-1], file=sys.stderr)
            continue
        if args.verbose or not good:
            sys.stdout.write(res.output)
            recap = True
        ok = ok and good
        summaries.append(f"guest {kernel.version}: {what} (boot {res.boot_seconds:.1f}s, "
                         f"total {res.total_seconds:.1f}s)")
        print(summaries[-1], flush=True)
    if recap and len(summaries) > 1:
        print("\n".join(summaries))
    return 0 if ok else 1
