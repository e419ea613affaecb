"""A loaded program, and the ways to attach it: each ``attach_*`` method is a thin delegation to the
probe kind's module in :mod:`bpfkit.probes`, after checking the program is of a type that kind takes.

Example::

    with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
        ...
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from .. import _sys as sc
from ..errors import AttachError, BpfError, BpfUsageError, ClosedError
from ..probes.auto import UsdtMaps, attach_by_section, needs_explicit_attach
from ..probes.link import Link, LinkGroup
from ..sections import example_for, find, prog_types_for
from .parts import ProgramSpec

if TYPE_CHECKING:
    from ..probes.perf_events import EventSpec

# Each attach_* method imports its probe kind's module when called: start-up pays only for the
# kinds a program uses (uprobes parse ELF files, net needs sockets, fentry reads kernel BTF).

__all__ = ["Program", "TestRunResult", "explicit_attach_call"]


@dataclass
class TestRunResult:
    """Outcome of BPF_PROG_TEST_RUN."""

    retval: int
    data_out: bytes
    ctx_out: bytes
    duration_ns: int


# program types that only run when their event fires: BPF_PROG_TEST_RUN has nothing to run them on
EVENT_ONLY_TYPES = {"kprobe": "kprobes, kretprobes, uprobes, USDT", "tracepoint": "tracepoints",
                    "perf_event": "perf events"}


def _pid(pid: Optional[int]) -> int:
    """``pid=None`` (any process) as the -1 the kernel takes; anything but a real pid is refused."""
    return sc.check_pid(pid)


def explicit_attach_call(prog: "Program") -> Optional[str]:
    """Why ``prog`` cannot be attached by its SEC() name alone, with the call that attaches it
    (None when it can).

    Example::

        explicit_attach_call(obj.progs.on_malloc)   # 'SEC("uprobe") names no target: call
                                                    #  obj.progs.on_malloc.attach_uprobe(BINARY, SYMBOL)'
    """
    why = needs_explicit_attach(prog.section)
    if why is None:
        return None
    m = find(prog.section)
    if m is None:
        return why
    method = m.definition.method
    if not method:
        return f"SEC({prog.section!r}) has no attach call in bpfkit; attach its fd ({prog.name}.fd) yourself"
    return (f"SEC({prog.section!r}) names no target: call obj.progs.{prog.name}.{method}"
            f"({ATTACH_ARGS.get(method, '...')})")


# what each explicit attach call needs, for messages
ATTACH_ARGS = {
    "attach_tracepoint": "CATEGORY, NAME", "attach_raw_tracepoint": "NAME", "attach_uprobe": "BINARY, SYMBOL",
    "attach_uretprobe": "BINARY, SYMBOL", "attach_kprobe": "FUNCTION", "attach_kretprobe": "FUNCTION",
    "attach_ksyscall": "SYSCALL", "attach_usdt": "BINARY, PROVIDER, NAME", "attach_perf_event": "EVENT, frequency=HZ",
    "attach_xdp": "IFACE", "attach_tc": "IFACE, DIRECTION",
}


class Program:
    """A loaded program. Attach methods return a :class:`~bpfkit.probes.link.Link`, a context
    manager that detaches on exit; the program's object also detaches it when it closes.

    Example::

        link = obj.progs.on_exec.attach_tracepoint("sched", "sched_process_exec")
    """

    def __init__(self, spec: ProgramSpec, fd: int, links: LinkGroup, usdt: UsdtMaps) -> None:
        self.spec = spec
        self.name = spec.name
        self.section = spec.section
        self.type = spec.type
        self._fd = fd
        self._links = links  # the object's: closed with it
        self._usdt = usdt

    @property
    def fd(self) -> int:
        """The program fd, owned by the Object."""
        if self._fd < 0:
            raise ClosedError(f"program {self.name!r} is closed (its Object was closed)")
        return self._fd

    @property
    def id(self) -> int:
        """The kernel's program id."""
        return int(sc.prog_info(self.fd).id)

    def info(self) -> sc.ProgInfo:
        """BPF_OBJ_GET_INFO_BY_FD for this program (run_cnt/run_time_ns need stats enabled)."""
        return sc.prog_info(self.fd)

    def _track(self, link: Link) -> Link:
        return self._links.add(link)

    def _expect(self, method: str) -> None:
        # The kernel answers a wrong program type with a bare EINVAL; say what is wrong instead.
        prog_types = prog_types_for(method)
        if self.spec.prog_type not in prog_types:
            want = " or ".join(sc.PROG_TYPE_NAMES.get(t, str(t)) for t in prog_types)
            raise AttachError(f"program {self.name!r} is a {self.type} program (SEC({self.section!r})); "
                              f"{method}() needs a {want} program, e.g. SEC(\"{example_for(method)}\")")

    def attach(self) -> Link:
        """Attach according to the program's SEC() name (e.g. ``tracepoint/syscalls/sys_enter_read``).

        Example: ``with prog.attach(): ...``"""
        why = explicit_attach_call(self)
        if why is not None:
            raise AttachError(f"program {self.name!r}: {why}")
        link = attach_by_section(self.fd, self.section, self._usdt)
        assert link is not None
        return self._track(link)

    def attach_tracepoint(self, category: str, name: Optional[str] = None, cookie: int = 0) -> Link:
        """Attach to tracepoint ``category:name`` (or one ``"category:name"`` string).

        Example: ``with prog.attach_tracepoint("sched", "sched_switch"): ...``"""
        self._expect("attach_tracepoint")
        if name is None:
            category, _, name = category.partition(":")
        from ..probes.tracepoint import attach_tracepoint

        return self._track(attach_tracepoint(self.fd, category, name, cookie))

    def attach_raw_tracepoint(self, name: str) -> Link:
        """Attach a raw_tp program to raw tracepoint ``name``.

        Example: ``with prog.attach_raw_tracepoint("sys_enter"): ...``"""
        self._expect("attach_raw_tracepoint")
        from ..probes.tracepoint import attach_raw_tracepoint

        return self._track(attach_raw_tracepoint(self.fd, name))

    def attach_btf(self) -> Link:
        """Attach a tp_btf/fentry/fexit/fmod_ret/lsm program to the target named in its SEC().

        Example: ``with obj.progs.on_switch.attach_btf(): ...``  (``SEC("tp_btf/sched_switch")``)"""
        self._expect("attach_btf")
        from ..probes.fentry import attach_fentry

        return self._track(attach_fentry(self.fd, self.section, self.name))

    attach_tp_btf = attach_btf
    attach_fentry = attach_btf
    attach_fexit = attach_btf

    def _multi(self, attach_type: int) -> bool:
        return self.spec.expected_attach_type == attach_type

    def attach_uprobe(self, binary: str, symbol: Union[str, int], *, offset: int = 0, pid: Optional[int] = None,
                      cookie: int = 0) -> Link:
        """uprobe on ``symbol`` (name, ``name+0x10``, glob pattern, or address) in ``binary`` (path,
        program on $PATH, or library short name), in every process or only ``pid``.

        Example: ``with prog.attach_uprobe("c", "malloc", pid=1234): ...``"""
        self._expect("attach_uprobe")
        from ..probes.uprobe import attach_uprobe

        return self._track(attach_uprobe(self.fd, binary, symbol, offset=offset, pid=_pid(pid), cookie=cookie,
                                         multi=self._multi(sc.BPF_TRACE_UPROBE_MULTI)))

    def attach_uretprobe(self, binary: str, symbol: Union[str, int], *, offset: int = 0,
                         pid: Optional[int] = None, cookie: int = 0) -> Link:
        """uretprobe on ``symbol`` in ``binary`` (sees the return value).

        Example: ``with prog.attach_uretprobe("/usr/bin/bash", "readline"): ...``"""
        self._expect("attach_uretprobe")
        from ..probes.uprobe import attach_uprobe

        return self._track(attach_uprobe(self.fd, binary, symbol, offset=offset, pid=_pid(pid), retprobe=True,
                                         cookie=cookie, multi=self._multi(sc.BPF_TRACE_UPROBE_MULTI)))

    def attach_kprobe(self, func: Union[str, int], *, offset: int = 0, cookie: int = 0) -> Link:
        """kprobe on kernel function ``func`` (name, glob pattern, or address).

        Example: ``with prog.attach_kprobe("do_sys_openat2"): ...``"""
        self._expect("attach_kprobe")
        from ..probes.kprobe import attach_kprobe

        return self._track(attach_kprobe(self.fd, func, offset=offset, cookie=cookie,
                                         multi=self._multi(sc.BPF_TRACE_KPROBE_MULTI)))

    def attach_kretprobe(self, func: Union[str, int], *, cookie: int = 0) -> Link:
        """kretprobe on kernel function ``func``.

        Example: ``with prog.attach_kretprobe("vfs_read"): ...``"""
        self._expect("attach_kretprobe")
        from ..probes.kprobe import attach_kprobe

        return self._track(attach_kprobe(self.fd, func, retprobe=True, cookie=cookie,
                                         multi=self._multi(sc.BPF_TRACE_KPROBE_MULTI)))

    def attach_ksyscall(self, syscall: str, *, retprobe: bool = False) -> Link:
        """kprobe on the kernel entry of syscall ``syscall``, for BPF_KSYSCALL programs.

        Example: ``with prog.attach_ksyscall("openat"): ...``"""
        self._expect("attach_ksyscall")
        from ..probes.kprobe import attach_kprobe, syscall_function

        return self._track(attach_kprobe(self.fd, syscall_function(syscall), retprobe=retprobe))

    def attach_usdt(self, binary: Optional[str], provider: str, name: str, *, pid: Optional[int] = None,
                    cookie: int = 0) -> Link:
        """USDT probe ``provider:name`` in ``binary`` (or in every file mapped by ``pid`` when
        ``binary`` is None), for programs written with libbpf's ``usdt.bpf.h``.

        Example: ``with prog.attach_usdt("/usr/bin/python3", "python", "function__entry"): ...``"""
        self._expect("attach_usdt")
        from ..probes.usdt import attach_usdt

        return self._track(attach_usdt(self.fd, self._usdt.specs, self._usdt.ip_to_spec, binary, provider, name,
                                       pid=_pid(pid), cookie=cookie))

    def attach_perf_event(self, event: "EventSpec", *, frequency: int = 0, period: int = 0,
                          pid: Optional[int] = None, cpus: Optional[list[int]] = None, cookie: int = 0) -> Link:
        """Sample ``event`` (``"cpu-clock"``, ``"page-faults"``, ``"cycles"``...) with a SEC("perf_event")
        program at ``frequency`` Hz or every ``period`` events, on every CPU or for ``pid``.

        Example: ``with prog.attach_perf_event("cpu-clock", frequency=99): ...``"""
        self._expect("attach_perf_event")
        from ..probes.sampling import attach_perf_event

        return self._track(attach_perf_event(self.fd, event, frequency=frequency, period=period, pid=_pid(pid),
                                             cpus=cpus, cookie=cookie))

    def attach_xdp(self, iface: Union[str, int], *, mode: str = "auto") -> Link:
        """XDP on network interface ``iface`` (name or ifindex); ``mode`` "native", "generic" or "auto".

        Example: ``with prog.attach_xdp("eth0", mode="generic"): ...``"""
        self._expect("attach_xdp")
        from ..probes.net import attach_xdp

        return self._track(attach_xdp(self.fd, iface, mode=mode))

    def attach_tc(self, iface: Union[str, int], direction: str = "ingress") -> Link:
        """tcx link on ``iface``'s "ingress" or "egress" hook (Linux 6.6+), after programs already there.

        Example: ``with prog.attach_tc("eth0", "egress"): ...``"""
        self._expect("attach_tc")
        from ..probes.net import attach_tc

        return self._track(attach_tc(self.fd, iface, direction))

    def test_run(self, data: Optional[bytes] = None, *, ctx: Optional[bytes] = None, repeat: int = 0,
                 data_out_size: Optional[int] = None, ctx_out_size: int = 0, flags: int = 0,
                 cpu: int = 0) -> TestRunResult:
        """Run the program on synthetic input with BPF_PROG_TEST_RUN (``repeat=0`` runs it once and is
        the only value raw_tp and syscall programs accept). See :mod:`bpfkit.testing.testrun` for typed
        helpers per program type.

        Example: ``r = obj.progs.xdp_filter.test_run(packet); r.retval == 2  # XDP_PASS``"""
        repeat = sc.check_u32("repeat", repeat, hint="0 or 1 runs the program once")
        ctx_out_size = sc.check_u32("ctx_out_size", ctx_out_size)
        flags = sc.check_u32("flags", flags)
        cpu = sc.check_cpu(cpu)
        if data_out_size is not None:
            data_out_size = sc.check_u32("data_out_size", data_out_size)
        self.check_test_runnable()
        if data_out_size is None:
            # room for programs that grow the packet (bpf_xdp_adjust_head/tail, skb helpers)
            data_out_size = len(data) + 4096 if data is not None else 0
        try:
            r = sc.prog_test_run(self.fd, data_in=data, data_out_size=data_out_size, ctx_in=ctx,
                                 ctx_out_size=ctx_out_size, repeat=repeat, flags=flags, cpu=cpu)
        except BpfError as e:
            if e.errno != errno.EINVAL:
                raise
            from .testrun_rules import TestRunRequest, test_run_problem  # for failures: not on every start

            req = TestRunRequest(len(data) if data is not None else 0, len(ctx) if ctx is not None else 0,
                                 repeat, flags, cpu)
            why = test_run_problem(self.type, req) or "the kernel gave no more reason"
            raise BpfUsageError(f"test_run of {self.type} program {self.name!r} was refused (EINVAL): {why}",
                                e.errno) from None
        return TestRunResult(*r)

    def check_test_runnable(self) -> None:
        """Raise BpfUsageError for program types no kernel can BPF_PROG_TEST_RUN (kprobe, tracepoint,
        perf_event): they run only when their event fires."""
        kinds = EVENT_ONLY_TYPES.get(self.type)
        if kinds is not None:
            raise BpfUsageError(
                f"{self.type} programs ({kinds}) cannot be test-run: no kernel implements BPF_PROG_TEST_RUN "
                f"for them, they only run when their event fires. Attach {self.name!r} and make the event "
                "happen a known number of times with bpfkit.testing.triggers (e.g. triggers.syscalls"
                "(\"getpid\", 5), or the bpf_trigger fixture).")

    def __repr__(self) -> str:
        return f"<Program {self.name} SEC({self.section!r}) {self.type}>"
