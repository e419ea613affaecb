"""Where tracefs is, and what it says about tracepoints, traceable functions and dynamic PMUs.

bpfkit reads tracefs (ids and field formats of tracepoints) but never writes
probe definitions into it: probes are perf events or BPF links. This module sits
below both :mod:`bpfkit.features` and :mod:`bpfkit.probes`, which both read it.

Example::

    from bpfkit import tracefs

    tracefs.tracepoint_id("sched", "sched_switch")    # 321
    tracefs.pmu_type("uprobe")                         # 7
    funcs = tracefs.available_filter_functions()      # None where the kernel hides the list
"""
from __future__ import annotations

import errno
import logging
import os
import re
from functools import lru_cache
from typing import Optional

from .errors import BpfError, BpfNotFoundError, BpfPermissionError, FeatureNotSupported, ObjectFormatError

__all__ = ["available_filter_functions", "parse_id", "parse_pmu_bit", "pmu_retprobe_bit", "pmu_type", "tracefs_root",
           "tracepoint_id"]

log = logging.getLogger("bpfkit.tracefs")

_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@lru_cache(maxsize=None)
def tracefs_root() -> str:
    """The tracefs mount point; mounts it at /sys/kernel/tracing when we are root and it is missing.

    Example::

        os.path.join(tracefs_root(), "events", "sched")
    """
    for path in _CANDIDATES:
        try:
            os.stat(os.path.join(path, "events"))
            return path
        except PermissionError:  # mounted, but not for this process: say that, not "not mounted"
            raise permission_error(os.path.join(path, "events"), "tracefs") from None
        except OSError:
            continue
    if os.geteuid() == 0 and os.path.isdir(_CANDIDATES[0]):
        import subprocess  # rarely needed: not worth its import at every start

        res = subprocess.run(["mount", "-t", "tracefs", "tracefs", _CANDIDATES[0]], capture_output=True)
        if res.returncode == 0 and os.path.isdir(os.path.join(_CANDIDATES[0], "events")):
            return _CANDIDATES[0]
    raise FeatureNotSupported(
        "tracefs is not mounted: run `mount -t tracefs tracefs /sys/kernel/tracing` as root "
        "(needs CONFIG_TRACING)", feature="tracefs")


_TP_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def tracepoint_id(category: str, name: str) -> int:
    """The perf event config of tracepoint ``category:name``.

    Example::

        attr.config = tracepoint_id("syscalls", "sys_enter_getpid")
    """
    for part in (category, name):
        # names are C identifiers (plus a few with '-' or '.'); never let one walk the tracefs tree
        if not _TP_NAME.fullmatch(part) or part in (".", ".."):
            raise BpfNotFoundError(f"tracepoint {category}:{name} not found ({part!r} is not a tracepoint "
                                   "or category name; list them with bpfkit.probes.list('tracepoint:*'))")
    path = os.path.join(tracefs_root(), "events", category, name, "id")
    try:
        with open(path) as f:
            return parse_id(f.read(), path)
    except FileNotFoundError:
        hint = ""
        if os.path.isdir(os.path.join(tracefs_root(), "events", category)):
            hint = f" (category {category!r} exists; list it with bpfkit.probes.list('tracepoint:{category}:*'))"
        else:
            hint = " (no such category; list them with bpfkit.probes.list('tracepoint:*'))"
        raise BpfNotFoundError(f"tracepoint {category}:{name} not found{hint}") from None
    except PermissionError:
        raise permission_error(path, "tracepoint ids") from None


def parse_id(text: str, path: str) -> int:
    """The number in a tracefs/sysfs ``id`` or ``type`` file; ObjectFormatError naming ``path`` if
    it holds anything else.

    Example::

        parse_id("321\n", "/sys/kernel/tracing/events/sched/sched_switch/id")   # 321
    """
    t = text.strip()
    if not t.isascii() or not t.isdigit() or len(t) > 19:
        raise ObjectFormatError(f"{path} does not hold a number: {text[:40]!r}")
    return int(t)


def parse_pmu_bit(text: str, path: str) -> int:
    """The bit of a PMU ``format/`` file like ``config:9``; ObjectFormatError otherwise.

    Example::

        parse_pmu_bit("config:0\n", ".../uprobe/format/retprobe")   # 0
    """
    field, _, bit = text.strip().partition(":")
    if field != "config" or not bit.isascii() or not bit.isdigit() or len(bit) > 2 or int(bit) > 63:
        raise ObjectFormatError(f"{path} is not 'config:BIT' with BIT 0..63: {text[:40]!r}")
    return int(bit)


def permission_error(path: str, what: str) -> BpfPermissionError:
    """The error for a tracefs/sysfs file this process may not read, saying why: as root it is
    not a matter of being root (a mount mode root cannot pass without CAP_DAC_OVERRIDE, a user
    namespace, lockdown), otherwise it is.

    Example::

        raise permission_error("/sys/kernel/tracing/events/sched/sched_switch/format", "tracepoint formats")
    """
    if os.geteuid() != 0:
        return BpfPermissionError(f"cannot read {path}: reading {what} needs root (or a tracefs mounted with "
                                  "a mode or gid= that lets this user in)", errno.EACCES)
    try:
        st = os.stat(os.path.dirname(path))
        mode = f"its directory is mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid}; "
    except OSError:
        mode = ""
    return BpfPermissionError(
        f"cannot read {path} even as root: {mode}this process lacks CAP_DAC_OVERRIDE (a container or user "
        "namespace) or the kernel is locked down; run with full root capabilities, or remount tracefs "
        "with `mount -o remount,mode=755 /sys/kernel/tracing`", errno.EACCES)


def pmu_type(pmu: str) -> int:
    """The perf ``type`` of a dynamic PMU (``kprobe``, ``uprobe``, ...).

    Example::

        attr.type = pmu_type("uprobe")   # FeatureNotSupported naming CONFIG_UPROBES if missing
    """
    path = f"/sys/bus/event_source/devices/{pmu}/type"
    try:
        with open(path) as f:
            return parse_id(f.read(), path)
    except FileNotFoundError:
        config = {"kprobe": "CONFIG_KPROBES (and CONFIG_KPROBE_EVENTS)",
                  "uprobe": "CONFIG_UPROBES (and CONFIG_UPROBE_EVENTS)"}.get(pmu, f"the {pmu} PMU")
        raise FeatureNotSupported(f"this kernel has no {pmu} PMU ({path} is missing): it needs {config}",
                                  feature=pmu) from None


def pmu_retprobe_bit(pmu: str) -> int:
    """Bit of ``config`` that turns a k/uprobe into a return probe (``format/retprobe``).

    Example::

        attr.config |= 1 << pmu_retprobe_bit("uprobe")
    """
    path = f"/sys/bus/event_source/devices/{pmu}/format/retprobe"
    try:
        with open(path) as f:
            return parse_pmu_bit(f.read(), path)  # e.g. "config:0"
    except FileNotFoundError:
        return 0


@lru_cache(maxsize=1)
def available_filter_functions() -> Optional[frozenset[str]]:
    """Kernel functions ftrace can patch (tracefs ``available_filter_functions``, module
    suffixes stripped), i.e. what kprobes and fentry can attach to; None when the file cannot
    be read (no tracefs, or a locked-down kernel that refuses even root), which is logged once.

    Example::

        funcs = available_filter_functions()
        "vfs_read" in funcs if funcs is not None else "unknown"
    """
    try:
        path = os.path.join(tracefs_root(), "available_filter_functions")
    except BpfError as e:
        log.info("kernel function list unavailable: %s", e)
        return None
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        log.info("cannot read %s (%s); falling back to less precise sources", path, e.strerror or e)
        return None
    return frozenset(ln.split()[0] for ln in lines if ln and not ln.startswith("__ftrace_invalid_address"))
