"""``bpfkit exporter``: serve BPF maps as Prometheus metrics until SIGINT/SIGTERM.

Example::

    $ sudo bpfkit exporter --config exporter.toml --listen 127.0.0.1:9435
    $ sudo bpfkit exporter --config exporter.toml --check     # validate, load, attach, exit
    $ sudo bpfkit exporter --config exporter.toml --once      # print one scrape and exit
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Optional, Sequence

from ..errors import BpfError


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: ``bpfkit exporter --config FILE [--listen HOST:PORT] [--check | --once]``."""
    ap = argparse.ArgumentParser(prog="bpfkit exporter", description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("-c", "--config", required=True, help="config file (TOML; see docs/exporter.md)")
    ap.add_argument("-l", "--listen", help="HOST:PORT to serve /metrics on (default: the config's "
                                           "[exporter] listen, else 127.0.0.1:9435)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="load and attach everything, then exit")
    mode.add_argument("--once", action="store_true", help="print one scrape to stdout and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="log scrapes and warnings to stderr")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        from .app import Exporter

        exporter = Exporter(args.config, listen=args.listen)
        try:
            exporter.start(serve=not (args.check or args.once))
            if args.once:
                sys.stdout.write(exporter.metrics_text())
            elif args.check:
                print(f"exporter: {args.config}: {len(exporter.config.entries)} entries loaded and attached")
            else:
                print(f"exporter: serving {exporter.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
                while not stop.wait(3600):
                    pass
                print("exporter: stopping", file=sys.stderr)
        finally:
            exporter.close()
    except BpfError as e:
        print(f"exporter: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"exporter: {e}; install the extra: pip install 'bpfkit[exporter]'", file=sys.stderr)
        return 1
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
