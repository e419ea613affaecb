"""The plugin's leak check and markers, seen from outside: inner test files run by pytester in a
subprocess (its own fds, its own pins), and we check which inner tests errored and why (issue 6)."""
from __future__ import annotations

import os
import re
import textwrap

import pytest

import bpfkit
from bpfkit.testing.leaks import LeakChecker, bpf_fds

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.root

INNER_LEAKS = """
    import os
    import bpfkit
    from bpfkit import _sys as sc
    from bpfkit.probes.tracepoint import attach_tracepoint

    KEEP = []
    PIN = "/sys/fs/bpf/bpfkit-leaktest-{pid}"

    def test_clean(bpf_load, bpf_trigger):
        t = bpf_trigger.syscalls("getpid", 3)
        obj = bpf_load("tests/count", target_pid=t.pid)
        obj.attach()               # left attached on purpose: closing it is the fixture's job
        t.run()
        assert obj.maps.counts[t.pid] == 3

    def test_leaks_link_fd(bpf_load):
        obj = bpf_load("tests/count")
        KEEP.append(attach_tracepoint(obj.progs.on_getpid.fd, "syscalls", "sys_enter_getpid"))

    def test_leaks_object(bpf_leak_check):
        KEEP.append(bpfkit.load("tests/count"))

    def test_leaks_pinned_map(bpf_load):
        obj = bpf_load("tests/count")
        obj.maps.counts.pin(PIN)

    def test_pins_and_unpins(bpf_load):
        obj = bpf_load("tests/count")
        obj.maps.counts.pin(PIN + "-ok")
        os.unlink(PIN + "-ok")

    def test_leaks_pinned_link(bpf_load):
        obj = bpf_load("tests/count")
        link = obj.progs.on_getpid.attach_tracepoint("syscalls:sys_enter_getpid")
        sc.obj_pin(link.fd, PIN + "-link")
        link.close()

    def test_leaves_pin_in_pin_dir(bpf_load, bpf_pin_dir):
        obj = bpf_load("tests/count")
        (bpf_pin_dir / "sub").mkdir()
        obj.maps.counts.pin(bpf_pin_dir / "sub" / "counts")
        KEEP.append(str(bpf_pin_dir))

    def test_fails_and_leaks_nothing(bpf_load):
        bpf_load("tests/count")
        assert False, "plain failure"

    def test_fails_holding_a_view(bpf_load):
        obj = bpf_load("tests/count")
        b = obj.bss               # the failure's traceback keeps this view (and its mmap) alive
        assert b.total == 1, "failure with a view"

    def test_keeps_a_view(bpf_load):
        obj = bpf_load("tests/count")
        KEEP.append(obj.bss)
"""


def _errors_by_test(output: str) -> dict[str, str]:
    """'ERROR at teardown of test_x' sections of pytest's output, by test name."""
    parts = re.split(r"_+ ERROR at teardown of (\w+) _+", output)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_leaks_fail_the_test_with_what_to_fix(pytester: pytest.Pytester) -> None:
    pid = os.getpid()
    pytester.makepyfile(test_inner=textwrap.dedent(INNER_LEAKS).replace("{pid}", str(pid)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    out = result.stdout.str()
    result.assert_outcomes(passed=8, failed=2, errors=6, warnings=1)
    errors = _errors_by_test(out)
    assert set(errors) == {"test_leaks_link_fd", "test_leaks_object", "test_leaks_pinned_map",
                           "test_leaks_pinned_link", "test_leaves_pin_in_pin_dir", "test_keeps_a_view"}, out

    link = errors["test_leaks_link_fd"]
    assert "left 2 BPF resource(s)" in link, link
    assert re.search(r"fd \d+ is still open: link id \d+ \(program id \d+\)", link)
    assert re.search(r"fd \d+ is still open: perf event", link)

    obj = errors["test_leaks_object"]
    assert "program 'on_getpid'" in obj and "map 'counts'" in obj and "BTF object" in obj

    pinned = errors["test_leaks_pinned_map"]
    assert f"/sys/fs/bpf/bpfkit-leaktest-{pid} (map id" in pinned and "bpfkit removed it" in pinned
    assert "left 1 BPF resource(s)" in pinned  # the pin explains why the map survived: one report

    plink = errors["test_leaks_pinned_link"]
    assert f"bpfkit-leaktest-{pid}-link (link id" in plink and "left 1 BPF resource(s)" in plink

    pindir = errors["test_leaves_pin_in_pin_dir"]
    assert re.search(r"/sys/fs/bpf/bpfkit-test-\d+-\d+/sub/counts \(map id \d+\) is still pinned", pindir)

    # Leaked pins were removed, and so was the per-test pin directory.
    assert not any(os.path.exists(f"/sys/fs/bpf/bpfkit-leaktest-{pid}{s}") for s in ("", "-ok", "-link"))
    pin_dir = re.search(r"(/sys/fs/bpf/bpfkit-test-\d+-\d+)/sub", pindir)
    assert pin_dir and not os.path.exists(pin_dir.group(1))
    assert "plain failure" in out and "test_fails_and_leaks_nothing" not in errors

    # A failed test's leftovers (held by its traceback) are a warning, not a second error.
    assert "failure with a view" in out and "test_fails_holding_a_view" not in errors
    assert re.search(r"test_fails_holding_a_view failed, so its 1 leftover BPF resource\(s\) are not "
                     r"reported as an error", out), out
    # A view kept past the test is named as such, not as an unexplained map fd.
    view = errors["test_keeps_a_view"]
    assert "left 1 BPF resource(s)" in view, view
    assert re.search(r"fd \d+ is still open: map '.bss' of 'count' was closed, but a numpy view of its "
                     r"globals/map is still referenced", view), view


INNER_MARKERS = """
    import sys
    import pytest

    def test_plugin_import_is_lazy():
        # Loading the plugin must not import numpy/libbpf into every pytest run.
        import conftest
        assert conftest.AT_CONFIGURE == {"plugin": True, "numpy": False, "bpfkit.syscall": False}

    @pytest.mark.requires("kprobes")
    def test_needs_kprobes():
        pass

    @pytest.mark.requires("ringbuf", "tracefs")
    def test_needs_ringbuf():
        pass

    @pytest.mark.requires("stub_missing")
    def test_needs_stub():
        pass

    @pytest.mark.requires("prog:xdp")
    @pytest.mark.requires("stub_present")
    def test_needs_two_markers():
        pass

    @pytest.mark.requires("kprobez")
    def test_typo_is_an_error():
        pass
"""

INNER_CONFTEST = """
    import sys
    import pytest

    AT_CONFIGURE = {}

    def pytest_configure(config):
        AT_CONFIGURE["plugin"] = "bpfkit.testing.plugin" in sys.modules
        AT_CONFIGURE["numpy"] = "numpy" in sys.modules
        AT_CONFIGURE["bpfkit.syscall"] = "bpfkit.syscall" in sys.modules

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(session):
        from bpfkit import features
        features.KERNEL_FEATURES["stub_missing"] = lambda: (False, "the stub says no (CONFIG_STUB)")
        features.KERNEL_FEATURES["stub_present"] = lambda: (True, "the stub says yes")
"""


def test_requires_marker_skips_with_the_feature_and_reason(pytester: pytest.Pytester) -> None:
    from bpfkit import features

    pytester.makepyfile(test_inner=textwrap.dedent(INNER_MARKERS))
    pytester.makeconftest(textwrap.dedent(INNER_CONFTEST))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rsE", "--strict-markers", "-q")
    out = result.stdout.str()
    kprobes_ok, kprobes_reason = features.check("kprobes")
    result.assert_outcomes(passed=3 + kprobes_ok, skipped=1 + (not kprobes_ok), errors=1)
    # Reported at the test's own line, like a skipif mark, with the feature and the probe's reason.
    assert re.search(r"SKIPPED \[1\] test_inner.py:\d+: requires stub_missing: the stub says no \(CONFIG_STUB\)",
                     out), out
    assert "During handling" not in out
    if not kprobes_ok:
        assert f"requires kprobes: {kprobes_reason}" in out
    assert re.search(r"^ERROR test_inner.py::test_typo_is_an_error - Failed: @pytest", out, re.M), out
    assert re.search(r"ERROR at setup of test_typo_is_an_error _+\n@pytest.mark.requires\('kprobez'\): "
                     r"unknown feature 'kprobez'; known:", out), out


def test_checker_alone_sees_only_new_fds() -> None:
    """Direct use of LeakChecker: fds opened before start() are not this test's leaks."""
    import bpfkit
    from bpfkit.shipped import find_object

    path = str(find_object("tests/count"))
    with bpfkit.load(path) as before:
        checker = LeakChecker.start()
        kinds = set(bpf_fds().values())
        assert {"prog", "map"} <= kinds
        leaked = bpfkit.load(path)
        new_fds = set(bpf_fds()) - set(checker.fds)
        # every fd of the leaked object: programs, maps, its BTF and the mmaps of its globals
        assert len(new_fds) == len(leaked.progs) + len(leaked.maps) + 1 + len(leaked.sections)
        checker.track(leaked)
        found = checker.finish()
        assert [leak.kind for leak in found] == ["fd"] * len(new_fds)
        assert {int(re.match(r"fd (\d+) ", str(leak)).group(1)) for leak in found} == new_fds  # type: ignore[union-attr]
        assert not any(f"id {before.progs.on_getpid.id})" in str(leak) for leak in found)
        leaked.close()
        checker = LeakChecker.start()
        with bpfkit.load(path) as obj:
            checker.track(obj)
        assert checker.finish() == []


INNER_TRIGGER_TEARDOWN = """
    import os

    def test_leaves_a_paused_trigger(bpf_trigger):
        t = bpf_trigger.syscalls("getpid", 1)
        assert os.path.exists(f"/proc/{t.pid}")
        with open("trigger.pid", "w") as f:
            f.write(str(t.pid))

    def test_it_was_killed_and_reaped():
        pid = int(open("trigger.pid").read())
        assert not os.path.exists(f"/proc/{pid}")  # not running, and not a zombie either
"""


def test_bpf_trigger_kills_a_paused_child_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=textwrap.dedent(INNER_TRIGGER_TEARDOWN))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)


def test_loader_close_closes_every_object_when_one_close_fails() -> None:
    from bpfkit.testing.plugin import BpfLoader

    checker = LeakChecker.start()
    loader = BpfLoader(checker, None)
    first, second, third = (loader("tests/count") for _ in range(3))

    def broken_close() -> None:
        raise RuntimeError("close failed")

    real_close = second.close
    second.close = broken_close  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="close failed"):
        loader.close()
    assert loader.objects == []
    with pytest.raises(bpfkit.ClosedError):
        first.bss
    with pytest.raises(bpfkit.ClosedError):
        third.bss
    real_close()
    assert checker.finish() == []
