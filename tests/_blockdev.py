"""Block-tool fixtures: a loop device of the test's own (backed by a file in /dev/shm, removed
afterwards) and a process that makes an exact number of O_DIRECT reads and writes on it.

Example::

    with loop_device() as dev, dio(dev, [("w", 4096, 8), ("r", 16384, 3)]) as p:
        ...                 # start tracing; p.pid is the submitter
        p.finish()          # 8 writes of 4 KiB, then 3 reads of 16 KiB, each a request of its own
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from typing import Iterator, Sequence

import pytest

from bpfkit.testing.fixtures import FixtureProcess

__all__ = ["loop_device", "dio", "DIO_SCRIPT"]

# Prints "ready PID", waits for a line, then for each (op, size, count): `count` O_DIRECT
# preadv/pwritev of `size` bytes at offsets 2*size apart (never adjacent: no merging), each
# waiting for the one before, so each is one request issued by this process.
DIO_SCRIPT = r"""
import mmap, os, sys
dev = sys.argv[1]
ops = [(a.split(":")[0], int(a.split(":")[1]), int(a.split(":")[2])) for a in sys.argv[2:]]
rfd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
wfd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
bufs = {size: mmap.mmap(-1, size) for _, size, _ in ops}
print("ready", os.getpid(), flush=True)
sys.stdin.readline()
off = 0
for op, size, count in ops:
    for _ in range(count):
        off = (off + 2 * size + size - 1) // size * size
        if op == "r":
            assert os.preadv(rfd, [bufs[size]], off) == size
        else:
            assert os.pwritev(wfd, [bufs[size]], off) == size
        off += size
print("done", flush=True)
"""


@contextlib.contextmanager
def loop_device(size_mb: int = 64) -> Iterator[str]:
    """A fresh loop device (``/dev/loopN``) over a sparse file in /dev/shm; detached after."""
    if shutil.which("losetup") is None:
        pytest.skip("losetup missing (Debian: apt-get install mount)")
    backing = f"/dev/shm/bpfkit-test-loop-{os.getpid()}-{uuid.uuid4().hex[:8]}.img"
    with open(backing, "wb") as f:
        f.truncate(size_mb << 20)
    dev = ""
    try:
        out = subprocess.run(["losetup", "-f", "--show", backing], capture_output=True, text=True, check=True)
        dev = out.stdout.strip()
        yield dev
    finally:
        if dev:
            subprocess.run(["losetup", "-d", dev], capture_output=True)
        os.unlink(backing)


def dio(dev: str, ops: Sequence[tuple[str, int, int]], timeout: float = 30) -> FixtureProcess:
    """A paused process that will make ``ops`` (``("r"|"w", size, count)``) on ``dev`` with
    O_DIRECT once released."""
    return FixtureProcess([sys.executable, "-c", DIO_SCRIPT, dev, *(f"{o}:{s}:{n}" for o, s, n in ops)],
                          timeout=timeout)
