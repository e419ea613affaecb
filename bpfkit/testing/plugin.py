"""pytest plugin for testing BPF programs against the real kernel (pytest11 entry point ``bpfkit``).

Installed with bpfkit, so any project depending on bpfkit gets, without configuration:

* ``bpf_load``: load an object (a ``.bpf.c`` file or C text is compiled first) and close it after
  the test; with it comes the leak check, which fails the test at teardown if it left BPF fds,
  links, loaded programs/maps or pinned objects behind.
* ``bpf_leak_check``: the leak check alone (a :class:`~bpfkit.testing.leaks.LeakChecker`).
* ``bpf_pin_dir``: a fresh directory under /sys/fs/bpf; anything left in it is a leak.
* ``bpf_trigger``: make the kernel do known things N times from a child with a known pid
  (syscalls, uprobe'd function calls, USDT probes); see :mod:`bpfkit.testing.triggers`.
* ``@pytest.mark.requires("kprobes", "ringbuf", ...)``: skip unless :func:`bpfkit.features.check`
  says the kernel has each feature; the skip reason names the feature and why it is missing.

Example::

    def test_counts_writes_of_one_process(bpf_load, bpf_trigger):
        t = bpf_trigger.syscalls("write", 10, size=100)   # paused child, pid known
        obj = bpf_load("probes/write_stats.bpf.c", target_pid=t.pid)
        obj.attach()
        t.run()                                           # exactly 10 writes of 100 bytes
        assert obj.maps.stats[t.pid]["bytes"] == 1000

(docs/testing.md walks through it.)

This module is imported by every pytest run where bpfkit is installed, so it imports nothing from
bpfkit (no numpy, no libbpf) until a test uses one of its fixtures or markers.
"""
from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator, Iterator, Optional, Sequence, Union

import pytest

__all__ = [
    "pytest_configure", "pytest_runtest_setup", "pytest_runtest_makereport", "bpf_leak_check", "BpfLoader",
    "bpf_load", "bpf_pin_dir", "Triggers", "bpf_trigger",
]

if TYPE_CHECKING:
    from ..loader import ObjectSpec
    from ..loader import Object
    from .leaks import LeakChecker
    from .triggers import Trigger

_pin_counter = itertools.count()
# Set on an item whose setup or call phase failed: its leak report is downgraded to a warning.
_FAILED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*features): skip unless the kernel has each bpfkit.features feature "
        "(kprobes, fentry, hw_pmu, ringbuf, prog:TYPE, map:TYPE, helper:NAME ...)",
    )


def _skip_at_item(reason: str) -> None:
    # Report the skip at the test's location (as skipif marks do), not at this line.
    try:
        raise pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # pytest < 7 has no _use_item_location
        pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Evaluate ``requires`` markers before any fixture is set up."""
    markers = list(item.iter_markers("requires"))
    if not markers:
        return
    from .. import features

    for marker in markers:
        for name in marker.args:
            try:
                ok, reason = features.check(str(name))
            except ValueError as e:  # a typo in a feature name must not silently skip the test
                ok, reason = False, f"@pytest.mark.requires({name!r}): {e}"
                typo = True
            else:
                typo = False
            if typo:  # failed outside the except block, so the report has no chained traceback
                pytest.fail(reason, pytrace=False)
            if not ok:
                _skip_at_item(f"requires {name}: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Remember that a test failed, for its leak check at teardown."""
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call") and report.failed:
        item.stash[_FAILED] = True


@pytest.fixture
def bpf_leak_check(request: pytest.FixtureRequest) -> Iterator["LeakChecker"]:
    """Fail the test (at teardown) if it leaves BPF fds, links, programs, maps or pins behind.

    The other bpfkit fixtures use it, so they are torn down before it looks. Only what this test
    created is judged, never global kernel counts. A test that already failed gets a warning
    instead: pytest keeps the failure's traceback, whose frames still reference the test's
    objects (a numpy view of ``obj.bss`` keeps its map mmap'd), so an error would only be noise.
    """
    from .leaks import LeakChecker

    checker = LeakChecker.start()
    yield checker
    leaks = checker.finish()
    if not leaks:
        return
    lines = "\n".join(f"  - {leak}" for leak in leaks)
    if request.node.stash.get(_FAILED, False):
        warnings.warn(pytest.PytestWarning(
            f"bpfkit leak check: {request.node.nodeid} failed, so its {len(leaks)} leftover BPF "
            f"resource(s) are not reported as an error (its traceback may still hold them):\n{lines}"))
        return
    pytest.fail(f"bpfkit leak check: the test left {len(leaks)} BPF resource(s) behind:\n{lines}",
                pytrace=False)


class BpfLoader:
    """The ``bpf_load`` fixture: ``bpf_load(source, **globals) -> Object``, closed after the test.

    ``source`` is a ``.bpf.c`` path or C source text (compiled with :func:`bpfkit.compile`,
    ``cflags`` passed on), a ``.bpf.o`` path, a shipped object name (``"tests/count"``), object
    bytes, or an :class:`~bpfkit.loader.ObjectSpec` (edit it first with :meth:`open`).
    Relative paths are also looked up next to the test file. Keyword arguments set global
    variables before load: each name is looked up in .rodata, .data and .bss (an unknown name
    raises :class:`~bpfkit.errors.BpfUsageError` listing the globals).
    """

    def __init__(self, checker: "LeakChecker", test_dir: Optional[Path]) -> None:
        self._checker = checker
        self._test_dir = test_dir
        self.objects: list["Object"] = []

    def _path(self, source: Union[str, "os.PathLike[str]"]) -> Union[str, "os.PathLike[str]"]:
        if isinstance(source, str) and ("\n" in source or "{" in source):
            return source  # C text
        path = Path(source)
        if not path.is_absolute() and not path.exists() and self._test_dir is not None:
            beside = self._test_dir / path
            if beside.exists():
                return beside
        return source

    def open(self, source: Union[str, "os.PathLike[str]", bytes], *, cflags: Sequence[str] = (),
             name: Optional[str] = None) -> "ObjectSpec":
        """Compile if needed and parse ``source`` into an editable ObjectSpec (nothing loaded yet)."""
        from ..compiler import compile as compile_c
        from ..loader import open as open_object

        if isinstance(source, bytes):
            return open_object(source, name)
        src = self._path(source)
        text = isinstance(src, str) and ("\n" in src or "{" in src)
        if text or os.fspath(src).endswith(".c"):
            src = compile_c(src, cflags=cflags)
        return open_object(src, name)

    def __call__(self, source: Union[str, "os.PathLike[str]", bytes, "ObjectSpec"], *,
                 cflags: Sequence[str] = (), name: Optional[str] = None, **globals_: Any) -> "Object":
        from ..errors import BpfUsageError
        from ..loader import ObjectSpec

        spec = source if isinstance(source, ObjectSpec) else self.open(source, cflags=cflags, name=name)
        for var, value in globals_.items():
            for section in (".rodata", ".data", ".bss"):
                gv = spec.sections.get(section)
                if gv is not None and var in (gv.dtype.names or ()):
                    setattr(gv, var, value)
                    break
            else:
                have = [n for s in (".rodata", ".data", ".bss") if s in spec.sections
                        for n in (spec.sections[s].dtype.names or ())]
                raise BpfUsageError(f"bpf_load: {spec.name!r} has no global variable {var!r}; "
                                     f"it has: {', '.join(have) or 'none'}")
        obj = spec.load()
        self.objects.append(obj)
        self._checker.track(obj)
        return obj

    def close(self) -> None:
        """Close every object loaded through this fixture, newest first.

        One object failing to close does not leave the others open; the first error is raised
        after all were tried.
        """
        error: Optional[BaseException] = None
        while self.objects:
            obj = self.objects.pop()
            try:
                self._checker.track_links(obj)
            except Exception:
                pass  # already closed by the test: its links are gone with it
            try:
                obj.close()
            except BaseException as e:
                error = error or e
        if error is not None:
            raise error


@pytest.fixture
def bpf_load(request: pytest.FixtureRequest, bpf_leak_check: "LeakChecker") -> Iterator[BpfLoader]:
    """Load BPF objects for one test; they are closed after it and checked for leaks.

    Example::

        def test_getpid(bpf_load, bpf_trigger):
            t = bpf_trigger.syscalls("getpid", 5)
            obj = bpf_load("count.bpf.c", target_pid=t.pid)
            obj.attach()
            t.run()
            assert obj.maps.counts[t.pid] == 5
    """
    path = getattr(request, "path", None)
    loader = BpfLoader(bpf_leak_check, Path(path).parent if path is not None else None)
    yield loader
    loader.close()


@pytest.fixture
def bpf_pin_dir(bpf_leak_check: "LeakChecker") -> Path:
    """A new, empty directory in the BPF filesystem for this test's pins.

    Whatever is still pinned there after the test is reported as a leak and removed, and the
    directory is deleted. Skips the test if no BPF filesystem is mounted at /sys/fs/bpf.
    """
    from .leaks import BPFFS

    if not os.path.ismount(BPFFS):
        pytest.skip(f"requires bpffs: nothing is mounted at {BPFFS} (mount -t bpf bpf {BPFFS})")
    path = Path(BPFFS) / f"bpfkit-test-{os.getpid()}-{next(_pin_counter)}"
    path.mkdir()
    bpf_leak_check.watch_dir(path)
    return path


class Triggers:
    """The ``bpf_trigger`` fixture: start triggers that are killed after the test if still running.

    Each method starts the child paused and returns a :class:`~bpfkit.testing.triggers.Trigger`
    (``.pid`` known, nothing done yet); call ``.run()`` once your probes are attached.
    """

    def __init__(self) -> None:
        self.started: list["Trigger"] = []

    def _keep(self, t: "Trigger") -> "Trigger":
        self.started.append(t)
        return t

    def syscalls(self, kind: str = "getpid", n: int = 1, *, size: int = 0, args: Sequence[int] = (),
                 timeout: float = 10.0) -> "Trigger":
        """``n`` system calls ``kind`` from one child: getpid, read/write of ``size`` bytes, or any
        syscall by name with integer ``args`` (see :func:`bpfkit.testing.triggers.syscalls`)."""
        from . import triggers

        return self._keep(triggers.syscalls(kind, n, size=size, args=args, timeout=timeout))

    def calls(self, n: int = 1, a: int = 1, b: int = 2, *, pie: bool = True, timeout: float = 10.0) -> "Trigger":
        """``n`` calls of ``bpfkit_add(a, b)`` in ``trigger.binary`` (for uprobes)."""
        from . import triggers

        return self._keep(triggers.calls(n, a, b, pie=pie, timeout=timeout))

    def usdt(self, n: int = 1, *, timeout: float = 10.0) -> "Trigger":
        """USDT probes ``bpfkit:tick`` / ``bpfkit_lib:libtick`` fired ``n`` times (see triggers.usdt)."""
        from . import triggers

        return self._keep(triggers.usdt(n, timeout=timeout))

    def close(self) -> None:
        while self.started:
            self.started.pop().close()


@pytest.fixture
def bpf_trigger(bpf_leak_check: "LeakChecker") -> Iterator[Triggers]:
    """Start fixture programs that do a known number of known things; see :class:`Triggers`.

    Example::

        def test_reads(bpf_trigger):
            t = bpf_trigger.syscalls("read", 3, size=64)
            ...attach, filtering on t.pid...
            t.run()
    """
    triggers = Triggers()
    yield triggers
    triggers.close()
