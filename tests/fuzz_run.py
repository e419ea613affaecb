"""``make fuzz``: every parser of :mod:`fuzz_targets` against N inputs each (default 100,000): seeds
mutated by :func:`fuzz_targets.mutate`, and one in ten random bytes. The same property as
test_fuzz.py (a parser returns or raises a BpfError), without hypothesis's per-case cost, so long
runs take minutes, not hours.

Each parser runs in a child process, so a crash (the child killed by a signal) is caught and
named with the input that did it; a case taking over 10 s is a hang. Every input that breaks the
property is written to build/fuzz-failures/. The counts go to --report as JSON.

Example::

    $ python tests/fuzz_run.py --examples 100000 --report build/fuzz-report.json
    $ python tests/fuzz_run.py --examples 1000 btf cpu_list
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
HANG_SECONDS = 10
FAILURES = HERE.parent / "build" / "fuzz-failures"


class _Hang(BaseException):
    pass


def _child(name: str, examples: int, seed: int, out: Path) -> int:
    sys.path.insert(0, str(HERE))
    from fuzz_targets import TARGETS, mutate

    from bpfkit.errors import BpfError

    target = TARGETS[name]
    seeds = target.seeds()
    rng = random.Random(f"{seed}:{name}")
    counts: Counter[str] = Counter()
    bad: list[dict[str, object]] = []
    current = out.with_suffix(".input")

    def on_alarm(signum: int, frame: object) -> None:
        raise _Hang

    signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    for i in range(examples):
        data = mutate(rng, rng.choice(seeds)) if rng.random() < 0.9 else rng.randbytes(rng.randint(0, 512))
        if i % 64 == 0 or len(data) > 4096:  # cheap enough, and a crash names its input
            current.write_bytes(data)
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            target.run(data)
            counts["ok"] += 1
        except BpfError as e:
            counts[type(e).__name__] += 1
        except (Exception, _Hang, RecursionError) as e:  # noqa: BLE001 - the property under test
            kind = "hang" if isinstance(e, _Hang) else type(e).__name__
            counts[f"BAD {kind}"] += 1
            FAILURES.mkdir(parents=True, exist_ok=True)
            saved = FAILURES / f"{name}-{i}.bin"
            saved.write_bytes(data)
            where = traceback.extract_tb(e.__traceback__)[-1]
            bad.append({"case": i, "kind": kind, "message": str(e)[:300], "input": str(saved),
                        "at": f"{where.filename}:{where.lineno}"})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    current.unlink(missing_ok=True)
    out.write_text(json.dumps({"cases": examples, "seconds": round(time.monotonic() - started, 1),
                               "outcomes": dict(counts), "failures": bad[:50]}))
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help="parsers to run (default: all)")
    ap.add_argument("--examples", type=int, default=int(os.environ.get("BPFKIT_FUZZ_EXAMPLES", "100000")))
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child, args.examples, args.seed, args.out)
    sys.path.insert(0, str(HERE))
    from fuzz_targets import TARGETS

    names = args.targets or sorted(TARGETS)
    report: dict[str, object] = {"seed": args.seed, "examples": args.examples, "parsers": {}}
    failed = False
    tmp = HERE.parent / "build" / "fuzz-run"
    tmp.mkdir(parents=True, exist_ok=True)
    for name in names:
        out = tmp / f"{name}.json"
        out.unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, __file__, "--child", name, "--examples", str(args.examples),
                               "--seed", str(args.seed), "--out", str(out)])
        if proc.returncode < 0:  # killed by a signal: a crash
            crash_input = out.with_suffix(".input")
            row: dict[str, object] = {"crash": f"signal {-proc.returncode}",
                                      "input": str(crash_input) if crash_input.exists() else "?"}
        else:
            row = json.loads(out.read_text())
        report["parsers"][name] = row  # type: ignore[index]
        bad = row.get("crash") or any(k.startswith("BAD") for k in row.get("outcomes", {}))  # type: ignore[union-attr]
        failed = failed or bool(bad)
        line = (f"{name:18} CRASH {row['crash']} (input {row['input']})" if "crash" in row else
                f"{name:18} {row['cases']:>7} cases in {row['seconds']:>6} s  " +
                ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items(), key=lambda kv: -kv[1])))  # type: ignore[union-attr]
        print(line, flush=True)
        if args.report:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(json.dumps(report, indent=1))
    print("every input gave a return or a BpfError" if not failed else "FAILURES: see build/fuzz-failures/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
