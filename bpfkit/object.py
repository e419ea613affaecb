"""Live objects: a loaded BPF object with its programs, maps and global variables.

Example::

    with bpfkit.load("count.bpf.o") as obj:
        with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
            ...
        print(obj.maps.counts[1234], obj.bss.total)
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from typing import Any, Optional, Union

from . import _sys as sc
from .errors import AttachError, BpfError, BpfUsageError, ClosedError
from .loader.load import Loaded, load as _load
from .loader.spec import Namespace, ObjectSpec, ProgramSpec, open_spec
from .maps import GlobalVars, Map, map_class
from .maps.poller import EventSource
from .probes.auto import attach_by_section
from .probes.link import Link, LinkGroup
from .probes.net import attach_tc, attach_xdp
from .probes.fentry import attach_fentry
from .probes.kprobe import attach_kprobe, syscall_function
from .probes.perf_event import EventSpec, attach_perf_event
from .probes.tracepoint import attach_raw_tracepoint, attach_tracepoint
from .probes.uprobe import attach_uprobe
from .probes.usdt import IP_MAP, SPECS_MAP, attach_usdt


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

# a SEC() name per attach method, for error messages
_SECTION_HINT = {
    "attach_tracepoint": "tracepoint/sched/sched_switch", "attach_raw_tracepoint": "raw_tp/sys_enter",
    "attach_btf": "tp_btf/sched_switch", "attach_uprobe": "uprobe", "attach_uretprobe": "uretprobe",
    "attach_kprobe": "kprobe", "attach_kretprobe": "kretprobe", "attach_ksyscall": "ksyscall/openat",
    "attach_usdt": "usdt", "attach_perf_event": "perf_event", "attach_xdp": "xdp", "attach_tc": "tc",
}


class Program:
    """A loaded program. Attach methods return a :class:`~bpfkit.probes.link.Link`, a context
    manager that detaches on exit."""

    def __init__(self, spec: ProgramSpec, fd: int, owner: "Object") -> None:
        self.spec = spec
        self.name = spec.name
        self.section = spec.section
        self.type = spec.type
        self._fd = fd
        self._owner = owner

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
        self._owner._links.add(link)
        return link

    def _expect(self, method: str, *prog_types: int) -> None:
        # The kernel answers a wrong program type with a bare EINVAL; say what is wrong instead.
        if self.spec.prog_type not in prog_types:
            want = " or ".join(sc.PROG_TYPE_NAMES.get(t, str(t)) for t in prog_types)
            raise AttachError(f"program {self.name!r} is a {self.type} program (SEC({self.section!r})); "
                              f"{method}() needs a {want} program, e.g. SEC(\"{_SECTION_HINT[method]}\")")

    def attach(self) -> Link:
        """Attach according to the program's SEC() name (e.g. ``tracepoint/syscalls/sys_enter_read``)."""
        link = attach_by_section(self.fd, self.section, self)
        if link is None:
            raise AttachError(f"program {self.name!r}: SEC({self.section!r}) does not name a target; "
                              "use an explicit attach_*() method")
        return self._track(link)

    def attach_tracepoint(self, category: str, name: Optional[str] = None, cookie: int = 0) -> Link:
        """Attach to tracepoint ``category:name`` (or one ``"category:name"`` string).

        Example: ``with prog.attach_tracepoint("sched", "sched_switch"): ...``"""
        self._expect("attach_tracepoint", sc.BPF_PROG_TYPE_TRACEPOINT)
        if name is None:
            category, _, name = category.partition(":")
        return self._track(attach_tracepoint(self.fd, category, name, cookie))

    def attach_raw_tracepoint(self, name: str) -> Link:
        """Attach a raw_tp program to raw tracepoint ``name``.

        Example: ``with prog.attach_raw_tracepoint("sys_enter"): ...``"""
        self._expect("attach_raw_tracepoint", sc.BPF_PROG_TYPE_RAW_TRACEPOINT,
                     sc.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE)
        return self._track(attach_raw_tracepoint(self.fd, name))

    def attach_btf(self) -> Link:
        """Attach a tp_btf/fentry/fexit/fmod_ret/lsm program to the target named in its SEC().

        Example: ``with obj.progs.on_switch.attach_btf(): ...``  (``SEC("tp_btf/sched_switch")``)"""
        self._expect("attach_btf", sc.BPF_PROG_TYPE_TRACING, sc.BPF_PROG_TYPE_LSM)
        return self._track(attach_fentry(self.fd, self.section, self.name))

    attach_tp_btf = attach_btf
    attach_fentry = attach_btf
    attach_fexit = attach_btf

    # -- kind-specific attach methods: thin delegations to bpfkit.probes.* --------------------
    def _multi(self, attach_type: int) -> bool:
        return self.spec.expected_attach_type == attach_type

    def attach_uprobe(self, binary: str, symbol: Union[str, int], *, offset: int = 0, pid: int = -1,
                      cookie: int = 0) -> Link:
        """uprobe on ``symbol`` (name, ``name+0x10``, glob pattern, or address) in ``binary`` (path,
        program on $PATH, or library short name).

        Example: ``with prog.attach_uprobe("c", "malloc", pid=1234): ...``"""
        self._expect("attach_uprobe", sc.BPF_PROG_TYPE_KPROBE)
        return self._track(attach_uprobe(self.fd, binary, symbol, offset=offset, pid=pid, cookie=cookie,
                                         multi=self._multi(sc.BPF_TRACE_UPROBE_MULTI)))

    def attach_uretprobe(self, binary: str, symbol: Union[str, int], *, offset: int = 0, pid: int = -1,
                         cookie: int = 0) -> Link:
        """uretprobe on ``symbol`` in ``binary`` (sees the return value).

        Example: ``with prog.attach_uretprobe("/usr/bin/bash", "readline"): ...``"""
        self._expect("attach_uretprobe", sc.BPF_PROG_TYPE_KPROBE)
        return self._track(attach_uprobe(self.fd, binary, symbol, offset=offset, pid=pid, retprobe=True,
                                         cookie=cookie, multi=self._multi(sc.BPF_TRACE_UPROBE_MULTI)))

    def attach_kprobe(self, func: Union[str, int], *, offset: int = 0, cookie: int = 0) -> Link:
        """kprobe on kernel function ``func`` (name, glob pattern, or address).

        Example: ``with prog.attach_kprobe("do_sys_openat2"): ...``"""
        self._expect("attach_kprobe", sc.BPF_PROG_TYPE_KPROBE)
        return self._track(attach_kprobe(self.fd, func, offset=offset, cookie=cookie,
                                         multi=self._multi(sc.BPF_TRACE_KPROBE_MULTI)))

    def attach_kretprobe(self, func: Union[str, int], *, cookie: int = 0) -> Link:
        """kretprobe on kernel function ``func``.

        Example: ``with prog.attach_kretprobe("vfs_read"): ...``"""
        self._expect("attach_kretprobe", sc.BPF_PROG_TYPE_KPROBE)
        return self._track(attach_kprobe(self.fd, func, retprobe=True, cookie=cookie,
                                         multi=self._multi(sc.BPF_TRACE_KPROBE_MULTI)))

    def attach_ksyscall(self, syscall: str, *, retprobe: bool = False) -> Link:
        """kprobe on the kernel entry of syscall ``syscall``, for BPF_KSYSCALL programs.

        Example: ``with prog.attach_ksyscall("openat"): ...``"""
        self._expect("attach_ksyscall", sc.BPF_PROG_TYPE_KPROBE)
        return self._track(attach_kprobe(self.fd, syscall_function(syscall), retprobe=retprobe))

    def attach_usdt(self, binary: Optional[str], provider: str, name: str, *, pid: int = -1,
                    cookie: int = 0) -> Link:
        """USDT probe ``provider:name`` in ``binary`` (or in every file mapped by ``pid`` when
        ``binary`` is None), for programs written with libbpf's ``usdt.bpf.h``.

        Example: ``with prog.attach_usdt("/usr/bin/python3", "python", "function__entry"): ...``"""
        self._expect("attach_usdt", sc.BPF_PROG_TYPE_KPROBE)
        maps = self._owner.maps
        return self._track(attach_usdt(self.fd, maps[SPECS_MAP] if SPECS_MAP in maps else None,
                                       maps[IP_MAP] if IP_MAP in maps else None, binary, provider, name,
                                       pid=pid, cookie=cookie))

    def attach_perf_event(self, event: EventSpec, *, frequency: int = 0, period: int = 0, pid: int = -1,
                          cpus: Optional[list[int]] = None, cookie: int = 0) -> Link:
        """Sample ``event`` (``"cpu-clock"``, ``"page-faults"``, ``"cycles"``...) with a SEC("perf_event")
        program at ``frequency`` Hz or every ``period`` events, on every CPU or for ``pid``.

        Example: ``with prog.attach_perf_event("cpu-clock", frequency=99): ...``"""
        self._expect("attach_perf_event", sc.BPF_PROG_TYPE_PERF_EVENT)
        return self._track(attach_perf_event(self.fd, event, frequency=frequency, period=period, pid=pid,
                                             cpus=cpus, cookie=cookie))

    def attach_xdp(self, iface: Union[str, int], *, mode: str = "auto") -> Link:
        """XDP on network interface ``iface`` (name or ifindex); ``mode`` "native", "generic" or "auto".

        Example: ``with prog.attach_xdp("eth0", mode="generic"): ...``"""
        self._expect("attach_xdp", sc.BPF_PROG_TYPE_XDP)
        return self._track(attach_xdp(self.fd, iface, mode=mode))

    def attach_tc(self, iface: Union[str, int], direction: str = "ingress") -> Link:
        """tcx link on ``iface``'s "ingress" or "egress" hook (Linux 6.6+), after programs already there.

        Example: ``with prog.attach_tc("eth0", "egress"): ...``"""
        self._expect("attach_tc", sc.BPF_PROG_TYPE_SCHED_CLS)
        return self._track(attach_tc(self.fd, iface, direction))

    def test_run(self, data: Optional[bytes] = None, *, ctx: Optional[bytes] = None, repeat: int = 0,
                 data_out_size: Optional[int] = None, ctx_out_size: int = 0, flags: int = 0,
                 cpu: int = 0) -> TestRunResult:
        """Run the program on synthetic input with BPF_PROG_TEST_RUN (``repeat=0`` runs it once and is
        the only value raw_tp and syscall programs accept). See :mod:`bpfkit.testing.testrun` for typed
        helpers per program type.

        Example: ``r = obj.progs.xdp_filter.test_run(packet); r.retval == 2  # XDP_PASS``"""
        self.check_test_runnable()
        if data_out_size is None:
            # room for programs that grow the packet (bpf_xdp_adjust_head/tail, skb helpers)
            data_out_size = len(data) + 4096 if data is not None else 0
        r = sc.prog_test_run(self.fd, data_in=data, data_out_size=data_out_size, ctx_in=ctx,
                             ctx_out_size=ctx_out_size, repeat=repeat, flags=flags, cpu=cpu)
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


class Object:
    """A loaded BPF object: ``progs``, ``maps``, and ``bss``/``data``/``rodata`` globals.
    Closing it (or leaving its ``with`` block) detaches its links and closes every fd."""

    def __init__(self, spec: ObjectSpec, loaded: Loaded) -> None:
        self.spec = spec
        self.name = spec.name
        self._loaded = loaded
        self._links = LinkGroup()
        self._mmaps: list[mmap.mmap] = []
        self.sections: dict[str, GlobalVars] = {}
        self.progs: Namespace[Program] = Namespace({}, "program")
        self.maps: Namespace[Map] = Namespace({}, "map")
        try:
            self._build(spec, loaded)
        except BaseException:
            self.close()  # the kernel objects exist already: never leave them behind
            raise

    def _build(self, spec: ObjectSpec, loaded: Loaded) -> None:
        progs = {n: Program(ps, loaded.prog_fds[n], self) for n, ps in spec.programs.items()
                 if n in loaded.prog_fds and loaded.prog_fds[n] >= 0}
        self.progs = Namespace(progs, "program")
        maps: dict[str, Map] = {}
        self.maps = Namespace(maps, "map")  # filled below; close() sees what was made so far
        for name, ms in spec.maps.items():
            fd = loaded.map_fds.get(name, -1)
            if fd < 0:
                continue
            if ms.internal and ms.value_dtype is not None and ms.section != ".kconfig":
                self.sections[ms.section] = self._map_globals(fd, ms.section, ms.value_size,
                                                              ms.value_dtype, ms.flags)
            cls = map_class(ms.map_type)
            kwargs: dict[str, Any] = {}
            if ms.record_dtype is not None:
                kwargs["record_dtype"] = ms.record_dtype
            maps[name] = cls(fd, name, ms.map_type, ms.key_size, ms.value_size, ms.max_entries, ms.flags,
                             ms.key_dtype, ms.value_dtype, **kwargs)
            maps[name].dtype_error = ms.dtype_error
        # event buffers find their drop counters (bpfkit.h's __bpfkit_drops__<map>) in the globals,
        # and record types by C struct name (read(dtype="event")) in the object's BTF
        for m in maps.values():
            if isinstance(m, EventSource):
                m.bind_globals(self.sections)
                m.bind_btf(spec.btf)

    @classmethod
    def load(cls, spec: ObjectSpec) -> "Object":
        """Load ``spec`` into the kernel."""
        return cls(spec, _load(spec))

    def _map_globals(self, fd: int, section: str, size: int, dtype: Any, flags: int) -> GlobalVars:
        length = (size + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)
        readonly = section.startswith(".rodata")
        prot = mmap.PROT_READ if readonly else mmap.PROT_READ | mmap.PROT_WRITE
        try:
            mm = mmap.mmap(fd, length, mmap.MAP_SHARED, prot)
        except OSError as e:
            raise BpfError.from_errno(e.errno or 0, f"mmap of {section} (needs kernel 5.5+ for mmapable "
                                      "global data)") from None
        self._mmaps.append(mm)
        reason = "rodata is frozen at load; set it on the spec before load()" if readonly else ""
        return GlobalVars(memoryview(mm)[:size], dtype, section, readonly_reason=reason, owner=mm)

    def _section(self, name: str) -> GlobalVars:
        if self._loaded is None:
            raise ClosedError(f"object {self.name!r} is closed")
        if name not in self.sections:
            raise AttributeError(f"object {self.name!r} has no {name} section")
        return self.sections[name]

    @property
    def bss(self) -> GlobalVars:
        """Live zero-initialised globals (mmap of the .bss map)."""
        return self._section(".bss")

    @property
    def data(self) -> GlobalVars:
        """Live initialised globals (mmap of the .data map)."""
        return self._section(".data")

    @property
    def rodata(self) -> GlobalVars:
        """The frozen ``const volatile`` globals (read-only)."""
        return self._section(".rodata")

    def attach(self) -> LinkGroup:
        """Attach every program whose SEC() names its target; returns a LinkGroup (context manager).
        Programs with bare sections (``SEC("uprobe")``, ``SEC("xdp")``...) are left for explicit calls."""
        group = LinkGroup()
        try:
            for prog in self.progs.values():
                link = attach_by_section(prog.fd, prog.section, prog)
                if link is not None:
                    group.add(prog._track(link))
        except BaseException:
            group.close()
            raise
        return group

    @property
    def links(self) -> list[Link]:
        """Links made through this object that are still attached."""
        return [lk for lk in self._links if not lk.closed]

    def close(self) -> None:
        """Detach all links, unmap globals, close every fd. Idempotent."""
        if self._loaded is None:
            return
        self._links.close()
        for m in self.maps.values():
            m.close()
        for prog in self.progs.values():
            prog._fd = -1
        for gv in self.sections.values():
            gv.close()
        self.sections.clear()
        for mm in self._mmaps:
            try:
                mm.close()
            except BufferError:  # the user still holds a numpy view: unmapped when it is freed
                pass
        self._mmaps.clear()
        self._loaded.close()
        self._loaded = None  # type: ignore[assignment]

    def __enter__(self) -> "Object":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._loaded is None else f"progs={list(self.progs)} maps={list(self.maps)}"
        return f"<Object {self.name} {state}>"


def open(source: Union[str, os.PathLike, bytes], name: Optional[str] = None) -> ObjectSpec:  # noqa: A001
    """Parse a BPF object file (or its bytes) into an editable :class:`ObjectSpec`.

    Example::

        spec = bpfkit.open("count.bpf.o"); spec.rodata.target_pid = 42
    """
    return open_spec(_resolve(source), name)


def load(source: Union[str, os.PathLike, bytes, ObjectSpec], name: Optional[str] = None) -> Object:
    """Open and load in one step. Example: ``with bpfkit.load("x.bpf.o") as obj: ...``"""
    spec = source if isinstance(source, ObjectSpec) else open(source, name)
    return spec.load()


def _resolve(source: Union[str, os.PathLike, bytes]) -> Union[str, os.PathLike, bytes]:
    """Bare names of shipped objects ('syscount') resolve to the package's prebuilt .bpf.o."""
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        from .objects import find_object

        found = find_object(os.fspath(source))
        if found is not None:
            return found
    return source
