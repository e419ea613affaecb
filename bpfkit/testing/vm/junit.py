"""pytest inside a guest: run it with a junit xml report in the share, and read back each test's
outcome by node id (so the matrix can require exact sets of tests per kernel).

Example::

    r = run_pytest(prepare_kernel("6.1"), ["-m", "guest", "tests"], timeout=900)
    print(r.summary())
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Mapping, Sequence

from .qemu import boot, share_dir
from .types import GuestKernel, PytestResult

__all__ = ["run_pytest", "junit_results"]


def _node_id(case: ET.Element) -> str:
    # xunit1 junit (asked for in run_pytest) names the file; the classname is its dotted module
    # path, plus ".Class" for a test in a class.
    name = case.get("name", "")
    classname = case.get("classname", "")
    file = case.get("file")
    if not file:
        return f"{classname}::{name}" if classname else name
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    cls = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
    return "::".join(p for p in (file, cls, name) if p)


def junit_results(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    tests: dict[str, str] = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts, tests
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        n, failures = int(s.get("tests", 0)), int(s.get("failures", 0))
        errors, skipped = int(s.get("errors", 0)), int(s.get("skipped", 0))
        counts["failed"] += failures
        counts["errors"] += errors
        counts["skipped"] += skipped
        counts["passed"] += n - failures - errors - skipped
        for case in s.iter("testcase"):
            # A teardown error is reported inside the test's own testcase: it outranks "passed".
            tags = {child.tag for child in case}
            outcome = ("error" if "error" in tags else "failed" if "failure" in tags
                       else "skipped" if "skipped" in tags else "passed")
            node = _node_id(case)
            if tests.get(node) not in ("error", "failed"):
                tests[node] = outcome
    return counts, tests


def run_pytest(kernel: GuestKernel, test_args: Sequence[str], *, timeout: float,
               env: Mapping[str, str] | None = None, cwd: str | None = None,
               memory: str = "2G", cpus: int = 2) -> PytestResult:
    """Run ``python -m pytest test_args`` in the guest from ``cwd`` (default:
    the current dir) with the host's interpreter and parse the counts.

    Example::

        r = run_pytest(prepare_kernel("6.1"), ["-m", "guest", "tests"], timeout=900)
        print(r.summary())
    """
    with share_dir() as share:
        junit = share / "junit.xml"
        # xunit1 records each test's file, so node ids can be rebuilt from the xml.
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
                "-o", "junit_family=xunit1", *test_args]
        # unbuffered: the output grows test by test, which the runner's heartbeat reports
        res = boot(kernel, share, argv, timeout=timeout, env={"PYTHONUNBUFFERED": "1", **(env or {})}, cwd=cwd,
                   memory=memory, cpus=cpus)
        counts, tests = junit_results(junit)
        return PytestResult(res.returncode, res.output, res.boot_seconds, res.total_seconds,
                            res.console, tests=tests, **counts)
