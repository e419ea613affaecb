"""Property-based fuzzing of every parser of untrusted input (issue 11): BTF, ELF symbols (both
readers), USDT notes and arguments, ld.so.cache and ``ldconfig -p``, tracepoint formats and tracefs
numbers, /proc maps, kallsyms, perf maps, CPU lists, probe specs as typed on a command line.

Each input is a valid one mutated (bits flipped, words set to edge values, cut, spliced) or random
bytes; the parser must return or raise a :class:`bpfkit.BpfError`: any other exception, a hang
(10 s) or a crash fails. The suite runs a fixed budget per parser (``BPFKIT_FUZZ_EXAMPLES``,
default 150); ``make fuzz`` runs 100,000 per parser and prints the counts.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfkit.errors import BpfError

from fuzz_targets import TARGETS, Target

EXAMPLES = int(os.environ.get("BPFKIT_FUZZ_EXAMPLES", "150"))
HANG_SECONDS = 10
REPORT = os.environ.get("BPFKIT_FUZZ_REPORT", "")

_counts: dict[str, Counter[str]] = {name: Counter() for name in TARGETS}

_EDGE_WORDS = [0, 1, 2, 3, 4, 8, 12, 16, 24, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFE, 0xFFFFFFFF]


@st.composite
def _mutated(draw: Any, target: Target) -> bytes:
    data = bytearray(draw(st.sampled_from(target.seeds())))
    for _ in range(draw(st.integers(1, 8))):
        n = len(data)
        op = draw(st.integers(0, 7))
        if op == 0 and n:  # flip one bit
            data[draw(st.integers(0, n - 1))] ^= 1 << draw(st.integers(0, 7))
        elif op == 1 and n:  # one byte to an edge value
            data[draw(st.integers(0, n - 1))] = draw(st.sampled_from([0, 1, 0x20, 0x2D, 0x3A, 0x7F, 0x80, 0xFF]))
        elif op == 2 and n >= 4:  # an aligned 32-bit word (offsets, sizes, counts, ids) to an edge value
            i = draw(st.integers(0, n // 4 - 1)) * 4
            word = draw(st.one_of(st.sampled_from(_EDGE_WORDS + [n, n - i, n + 1]), st.integers(0, 2**32 - 1)))
            struct.pack_into("<I", data, i, word & 0xFFFFFFFF)
        elif op == 3:  # cut
            data = data[: draw(st.integers(0, n))]
        elif op == 4:  # insert bytes
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == 5 and n:  # delete a range
            i = draw(st.integers(0, n - 1))
            del data[i: i + draw(st.integers(1, 64))]
        elif op == 6 and n:  # copy a chunk over another place
            i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            k = draw(st.integers(1, 256))
            data[j: j + k] = data[i: i + k]
        elif op == 7 and n:  # a line or field repeated many times (text formats, tables)
            i = draw(st.integers(0, n - 1))
            chunk = data[i: i + draw(st.integers(1, 80))]
            data[i:i] = chunk * draw(st.integers(2, 200))
    return bytes(data)


def _inputs(target: Target) -> st.SearchStrategy[bytes]:
    return st.one_of(_mutated(target), st.binary(max_size=512))


class _Hang(BaseException):  # a BaseException: a parser's `except Exception` must not swallow it
    pass


def _run_bounded(target: Target, data: bytes) -> str:
    def on_alarm(signum: int, frame: Any) -> None:
        raise _Hang

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        target.run(data)
        return "ok"
    except BpfError as e:
        return type(e).__name__
    except _Hang:
        pytest.fail(f"{target.name}: no answer after {HANG_SECONDS} s for input {data[:200]!r}... "
                    f"({len(data)} bytes)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    lines = [f"{name:18} {sum(c.values()):>8} cases  " + ", ".join(f"{k} {v}" for k, v in c.most_common())
             for name, c in _counts.items() if c]
    print("\nfuzz cases per parser (outcome counts; every one is a return or a BpfError):\n" + "\n".join(lines))


def _record(name: str, seconds: float) -> None:
    """Add this parser's counts to the report file (each parser as it finishes, so a long run that is
    stopped still tells what it did)."""
    if not REPORT:
        return
    path = Path(REPORT)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = {"cases": sum(_counts[name].values()), "seconds": round(seconds), **dict(_counts[name])}
    path.write_text(json.dumps(data, indent=1, sort_keys=True))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_gives_typed_errors_only(name: str) -> None:
    target = TARGETS[name]
    for seed in target.seeds():  # the seeds themselves parse
        assert _run_bounded(target, seed) == "ok", f"{name}: a valid input was refused"

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(_inputs(target))
    def fuzz(data: bytes) -> None:
        # anything but a return or a BpfError propagates and fails the test, shrunk by hypothesis
        _counts[name][_run_bounded(target, data)] += 1

    started = time.monotonic()
    fuzz()
    _record(name, time.monotonic() - started)


def test_btf_const_pointing_at_itself_is_an_error_not_a_hang() -> None:
    from bpfkit.btf import Btf
    from bpfkit.errors import ObjectFormatError

    # header, then type 1: CONST (kind 10) whose type is 1, type 2: CONST -> 3, type 3: VOLATILE -> 2
    types = struct.pack("<III", 0, 10 << 24, 1) + struct.pack("<III", 0, 10 << 24, 3) + \
        struct.pack("<III", 0, 9 << 24, 2)
    strings = b"\0"
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    with pytest.raises(ObjectFormatError, match="refers to itself"):
        Btf.parse(hdr + types + strings)
    # a two-step loop: 1 CONST -> 2, 2 VOLATILE -> 1
    types2 = struct.pack("<III", 0, 10 << 24, 2) + struct.pack("<III", 0, 9 << 24, 1)
    hdr2 = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types2), len(types2), len(strings))
    btf = Btf.parse(hdr2 + types2 + strings)
    for fn in (btf.resolve, btf.size_of, btf.dtype):
        with pytest.raises(ObjectFormatError, match="loops"):
            fn(1)
    assert "..." in btf.type_name(1)


_REGRESSIONS = sorted((Path(__file__).parent / "fuzz_regressions").glob("*.bin"))


@pytest.mark.parametrize("path", _REGRESSIONS, ids=[p.name for p in _REGRESSIONS])
def test_fuzz_regression(path: Path) -> None:
    """Inputs a fuzz run once found failing (named PARSER-CASE.bin, as ``make fuzz`` writes them to
    build/fuzz-failures/): each must now give a return or a BpfError."""
    name = path.name.rsplit("-", 1)[0]
    assert name in TARGETS, f"{path.name}: no parser {name!r}"
    _counts[name][_run_bounded(TARGETS[name], path.read_bytes())] += 1
