"""The ``bpf_stats`` ready metrics: run time and run count of every BPF program on the machine.

While the collector is open it holds a BPF_ENABLE_STATS fd, so the kernel accounts every
program's ``run_time_ns``/``run_cnt`` (kernel 5.8+; the accounting costs a few ns per run
and stops when the last such fd closes). Each scrape walks the program ids and reads each
program's info: the kernel has no batch call for program info, so this is two syscalls per
program (open by id, get info) plus a close.

Example::

    with ProgStatsCollector() as c:
        for fam in c.collect():
            print(fam.name, len(fam.values))
"""
from __future__ import annotations

import os
from typing import Any, Optional

from .. import _sys as sc
from ..errors import BpfNotFoundError
from .exposition import Family

__all__ = ["ProgStatsCollector"]

LABELS = ("id", "name", "type", "tag")


class ProgStatsCollector:
    """Counters per BPF program: ``bpfkit_prog_run_time_seconds_total``, ``bpfkit_prog_runs_total``
    and ``bpfkit_prog_recursion_misses_total``, labelled by program id, name, type and tag."""

    def __init__(self) -> None:
        self._stats: Optional[sc.OwnedFd] = sc.enable_stats()

    def _families(self) -> list[Family]:
        return [
            Family("bpfkit_prog_run_time_seconds", "counter", "Time spent running each BPF program while BPF "
                   "statistics were enabled", LABELS),
            Family("bpfkit_prog_runs", "counter", "Runs of each BPF program while BPF statistics were enabled",
                   LABELS),
            Family("bpfkit_prog_recursion_misses", "counter", "Runs of each BPF program skipped because it was "
                   "already running on that CPU", LABELS),
        ]

    def describe(self) -> list[Family]:
        """The families without samples."""
        return self._families()

    def collect(self) -> list[Family]:
        """One sample per program per family, read now."""
        run_time, runs, misses = fams = self._families()
        for prog_id in sc.prog_ids():
            try:
                fd = sc.prog_fd_by_id(prog_id)
            except BpfNotFoundError:  # unloaded between listing and opening
                continue
            try:
                info = sc.prog_info(fd)
            finally:
                os.close(fd)
            labels = (str(prog_id), info.name.decode(errors="replace"),
                      sc.PROG_TYPE_NAMES.get(info.type, str(info.type)), bytes(info.tag).hex())
            run_time.values[labels] = info.run_time_ns / 1e9
            runs.values[labels] = int(info.run_cnt)
            misses.values[labels] = int(info.recursion_misses)
        return fams

    def close(self) -> None:
        """Release the statistics fd (accounting stops once no one else holds one). Idempotent."""
        if self._stats is not None:
            self._stats.close()
            self._stats = None

    def __enter__(self) -> "ProgStatsCollector":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
