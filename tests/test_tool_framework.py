"""The framework pieces the process/CPU tools added: a stop flag that a signal sets (and wakes
sleeps) without raising, interval ticks driven by it, and bcc's histogram layouts."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np

from bpfkit.hist import Keyed, Log2Hist
from bpfkit.tools import bcc_format
from bpfkit.tools.common import stop_flag, ticks


def _signal_soon(sig: int, after: float) -> threading.Timer:
    t = threading.Timer(after, os.kill, (os.getpid(), sig))
    t.start()
    return t


def test_stop_flag_wakes_a_sleep_and_never_raises() -> None:
    with stop_flag() as stop:
        _signal_soon(signal.SIGTERM, 0.2)
        t0 = time.monotonic()
        assert stop.sleep(30) is True  # woken by the signal, not by the 30 s
        assert time.monotonic() - t0 < 5 and bool(stop)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_ticks_with_a_stop_flag_end_on_a_signal_with_a_last_tick() -> None:
    with stop_flag() as stop:
        _signal_soon(signal.SIGINT, 0.35)
        got = list(ticks(0.1, None, None, stop=stop))
    assert got[-1] is True and 2 <= len(got) <= 6 and not any(got[:-1])
    with stop_flag() as stop:
        assert list(ticks(0.01, 3, None, stop=stop)) == [False, False, True]


def test_bcc_log2_layout() -> None:
    h = Log2Hist.from_values([0, 1, 1, 2, 3, 900])
    text = bcc_format.log2_hist(h, "usecs")
    lines = text.splitlines()
    assert lines[0] == "     usecs               : count     distribution"
    assert lines[1] == "         0 -> 1          : 3        |****************************************|"
    assert lines[2] == "         2 -> 3          : 2        |**************************              |"
    assert lines[-1].startswith("       512 -> 1023       : 1 ")
    assert len(lines) == 11 and bcc_format.bcc_slots(h).sum() == 6
    assert bcc_format.log2_hist(Log2Hist(np.zeros(66, np.uint64)), "usecs") == ""
    keyed = bcc_format.keyed_log2_hist(Keyed({7: h, 3: h}), "usecs", "pid")
    assert keyed.startswith("\npid = 3\n     usecs") and "\n\npid = 7\n" in keyed
    assert bcc_format.linear_hist([2, 0, 1], "runqlen").splitlines()[1:] == [
        "        0          : 2        |****************************************|",
        "        1          : 0        |                                        |",
        "        2          : 1        |********************                    |"]
    assert bcc_format.signal_name(9) == "KILL" and bcc_format.signal_name(200) == "unknown"
