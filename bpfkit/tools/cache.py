"""``bpfkit cache {info,prune}``: what the compile cache and the guest kernel images take, and
shrinking them (see :mod:`bpfkit.compiler.cache` for what is kept and why it is trusted).

Example::

    $ bpfkit cache info
    $ bpfkit cache prune --max-size 64M --older-than 14 --kernels-older-than 30
    $ bpfkit cache prune --dry-run
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Optional, Sequence

from ..compiler import cache_root
from ..compiler.cache import DEFAULT_MAX_BYTES, kernel_cache_dir, prune

__all__ = ["main", "parse_size"]

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``64M`` / ``1G`` / ``500000`` as bytes.

    Example::

        parse_size("64M")   # 67108864
    """
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _du(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink()) if p.is_dir() else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``bpfkit cache`` with ``argv`` (without the subcommand); returns the exit status.

    Example::

        main(["prune", "--max-size", "64M", "--dry-run"])
    """
    ap = argparse.ArgumentParser(prog="bpfkit cache", description="Show or prune bpfkit's caches: compiled "
                                 "objects (bpfkit.compile) and guest kernel images (bpfkit.testing.vm).")
    ap.add_argument("--cache-dir", default=None, help="cache root (default: $BPFKIT_CACHE_DIR or ~/.cache/bpfkit)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="where the caches are and how big")
    pr = sub.add_parser("prune", help="remove least recently used objects and old kernel images")
    pr.add_argument("--max-size", type=parse_size, default=DEFAULT_MAX_BYTES,
                    help="keep compiled objects within this size (default 256M)")
    pr.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                    help="also remove objects not used for DAYS days")
    pr.add_argument("--kernels-older-than", type=float, default=30.0, metavar="DAYS",
                    help="remove guest kernel images not used for DAYS days (default 30)")
    pr.add_argument("--keep-kernels", action="store_true", help="leave kernel images alone")
    pr.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    pr.add_argument("-v", "--verbose", action="store_true", help="list what is removed")
    args = ap.parse_args(argv)
    root = cache_root(args.cache_dir)
    kernels = kernel_cache_dir()
    if args.cmd == "info":
        mib = 1 << 20
        print(f"compiled objects  {root / 'obj'}  {_du(root / 'obj') / mib:.1f} MiB")
        print(f"kernel images     {kernels}  {_du(kernels) / mib:.1f} MiB")
        return 0
    report = prune(root, max_bytes=args.max_size, older_than_days=args.older_than, kernels=kernels,
                   kernels_older_than_days=None if args.keep_kernels else args.kernels_older_than,
                   dry_run=args.dry_run)
    if args.verbose or args.dry_run:
        for p in report.removed:
            print(("would remove " if args.dry_run else "removed ") + p)
    print(("dry run: " if args.dry_run else "") + str(report))
    return 0
