"""Live objects: a loaded BPF object with its programs, maps, global variables and event readers.

An :class:`Object` is built from the spec's parts and the fds a loader backend handed back; it owns
all of them, and the links and readers made through it, until :meth:`Object.close`.

Example::

    with bpfkit.load("count.bpf.o") as obj:
        with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
            ...
        print(obj.maps.counts[1234], obj.bss.total)
        for batch in obj.reader("events").read(timeout=0.5): ...
"""
from __future__ import annotations

import mmap
from functools import partial
from typing import Any, Callable, Optional

import numpy as np

from .. import _sys as sc
from .._sys import Resource
from ..btf import Btf
from ..errors import AttachError, BpfError, BpfUsageError, ClosedError
from ..events import EventReader, PerfBuffer, RingBuffer
from ..maps import Map
from ..probes.auto import UsdtMaps, attach_by_section
from ..probes.link import Link, LinkGroup
from .buffermap import BufferMap
from .dtypes import DROPS_PREFIX, WAKE_NS_PREFIX
from .globals import GlobalVars, MapGlobalVars
from .parts import Loaded, MapSpec, Namespace, ProgramSpec, value_dtype_of
from . import views
from .program import Program, explicit_attach_call

__all__ = ["Object"]

_READERS: dict[int, type[EventReader]] = {sc.BPF_MAP_TYPE_RINGBUF: RingBuffer,
                                          sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY: PerfBuffer}


def _readonly(section: str) -> str:
    return "rodata is frozen at load; set it on the spec before load()" if section.startswith(".rodata") else ""


class Object(Resource):
    """A loaded BPF object: ``progs``, ``maps``, ``bss``/``data``/``rodata`` globals, and
    :meth:`reader` for its ring and perf buffers. Closing it (or leaving its ``with`` block)
    detaches its links, closes its readers and closes every fd.

    Example::

        with spec.load() as obj:
            print(obj.progs, obj.maps, obj.bss.total)
    """

    def __init__(self, name: str, programs: Namespace[ProgramSpec], maps: Namespace[MapSpec],
                 btf: Optional[Btf], loaded: Loaded, spec_sections: dict[str, GlobalVars]) -> None:
        # spec_sections: the spec's global-data sections; each gets its live view here
        self.name = name
        self.btf = btf
        self._loaded: Optional[Loaded] = loaded
        self._links = LinkGroup()
        self._mmaps: list[mmap.mmap] = []
        self._readers: dict[str, EventReader] = {}
        self.sections: dict[str, GlobalVars] = {}
        self.progs: Namespace[Program] = Namespace({}, "program")
        self.maps: Namespace[Map] = Namespace({}, "map")
        try:
            self._build(programs, maps, loaded, spec_sections)
        except BaseException:
            self.close()  # the kernel objects exist already: never leave them behind
            raise

    def _build(self, programs: Namespace[ProgramSpec], maps: Namespace[MapSpec], loaded: Loaded,
               spec_sections: dict[str, GlobalVars]) -> None:
        live: dict[str, Map] = {}
        self.maps = Namespace(live, "map")  # filled below; close() sees what was made so far
        for name, ms in maps.items():
            fd = loaded.map_fds.get(name, -1)
            if fd < 0:
                continue
            # the dtypes are made when first used, by the map or its section's globals
            dtypes = ms.live_dtypes()
            if ms.internal and ms.section in spec_sections:
                value_dtype = partial(value_dtype_of, dtypes)
                if ms.flags & sc.BPF_F_MMAPABLE:
                    self.sections[ms.section] = self._map_globals(fd, ms.section, ms.value_size, value_dtype)
                else:  # e.g. only `static` variables: libbpf made the map without BPF_F_MMAPABLE
                    self.sections[ms.section] = MapGlobalVars(fd, value_dtype, ms.section, _readonly(ms.section))
            cls = BufferMap if ms.map_type in _READERS else Map.class_for(ms.map_type)
            m = cls(fd, name, ms.map_type, ms.key_size, ms.value_size, ms.max_entries, ms.flags, dtypes=dtypes)
            if isinstance(m, BufferMap):
                m.bind_reader(self.reader)
            live[name] = m
        usdt = UsdtMaps(None, None)
        if any(n.startswith("__bpf_usdt_") for n in live):  # libbpf's usdt.bpf.h maps: only then load USDT code
            from ..probes.usdt import IP_MAP, SPECS_MAP

            usdt = UsdtMaps(live.get(SPECS_MAP), live.get(IP_MAP))
        self.progs = Namespace({n: Program(ps, loaded.prog_fds[n], self._links, usdt) for n, ps in programs.items()
                                if loaded.prog_fds.get(n, -1) >= 0}, "program")

    def _map_globals(self, fd: int, section: str, size: int, dtype: Callable[[], np.dtype]) -> GlobalVars:
        length = (size + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)
        readonly = section.startswith(".rodata")
        prot = mmap.PROT_READ if readonly else mmap.PROT_READ | mmap.PROT_WRITE
        try:
            mm = mmap.mmap(fd, length, mmap.MAP_SHARED, prot)
        except OSError as e:
            raise BpfError.from_errno(e.errno or 0, f"mmap of {section} (needs kernel 5.5+ for mmapable "
                                      "global data)") from None
        self._mmaps.append(mm)
        return GlobalVars(memoryview(mm)[:size], dtype, section, readonly_reason=_readonly(section), owner=mm,
                          lazy=True)

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

    # -- event buffers --------------------------------------------------------------
    def reader(self, name: str) -> EventReader:
        """The reader of ring buffer or perf buffer map ``name`` (made on first use, then the same
        one; closed with the object), with the object's BTF (C type names as dtypes) and the map's
        ``bpfkit.h`` drop counter bound.

        Example::

            for batch in obj.reader("events").read(timeout=1.0):
                print(batch["pid"])
            obj.reader("pevents").open(pages=256)    # a perf buffer: open before the program runs
        """
        if self._loaded is None:
            raise ClosedError(f"object {self.name!r} is closed")
        r = self._readers.get(name)
        if r is not None:
            return r
        m = self.maps[name]
        kind = _READERS.get(m.type)
        if kind is None:
            buffers = [n for n, mm in self.maps.items() if mm.type in _READERS]
            raise BpfUsageError(f"map {name!r} is a {m.type_name} map, not a ring or perf buffer; this object's "
                                f"event buffers: {', '.join(buffers) or 'none'}")
        r = self._readers[name] = kind(m, btf=self.btf, drops=self._global(DROPS_PREFIX + name, (".bss", ".data")))
        wake_ns = self._global(WAKE_NS_PREFIX + name, (".rodata",))
        if isinstance(r, RingBuffer) and wake_ns is not None and int(wake_ns[0]):
            r.wake_window = int(wake_ns[0]) / 1e9  # BPFKIT_SUBMIT may skip wake-ups this long
        return r

    def _global(self, var: str, sections: tuple[str, ...]) -> Optional[np.ndarray]:
        """The 1-element view of global ``var`` (bpfkit.h's per-map state) in one of ``sections``."""
        for sec in sections:
            gv = self.sections.get(sec)
            if gv is not None and gv.dtype.names and var in gv.dtype.names:
                return gv.array[var]
        return None

    # -- attaching ------------------------------------------------------------------
    def attach(self, *names: str) -> LinkGroup:
        """Attach every program (or only the programs ``names``) by its SEC() name; returns a
        LinkGroup (a context manager). A program whose SEC() names no target (``SEC("uprobe")``,
        ``SEC("perf_event")``, ``SEC("xdp")``...) cannot be attached this way: AttachError names
        each one and the call that attaches it, and nothing is attached. To attach the others
        only, name them.

        Example: ``with obj.attach(): ...``  or  ``with obj.attach("on_exec", "on_exit"): ...``"""
        chosen = [self.progs[n] for n in names] if names else list(self.progs.values())
        bare = {p.name: why for p in chosen if (why := explicit_attach_call(p)) is not None}
        if bare:
            lines = [f"  {name}: {why}" for name, why in bare.items()]
            others = [p.name for p in chosen if p.name not in bare]
            hint = (f"\nTo attach only the programs that name their target: "
                    f"obj.attach({', '.join(repr(n) for n in others)})") if others else ""
            raise AttachError(f"object {self.name!r}: {len(bare)} of {len(chosen)} programs cannot be attached by "
                              f"their SEC() name:\n" + "\n".join(lines) + hint)
        group = LinkGroup()
        try:
            for prog in chosen:
                link = attach_by_section(prog.fd, prog.section, prog._usdt)
                assert link is not None  # explicit_attach_call() said it has a target
                group.add(self._links.add(link))
        except BaseException:
            group.close()
            raise
        return group

    @property
    def links(self) -> list[Link]:
        """Links made through this object that are still attached."""
        return [lk for lk in self._links if not lk.closed]

    def close(self) -> None:
        """Detach all links, close the readers, unmap globals, close every fd. Idempotent."""
        loaded = getattr(self, "_loaded", None)
        if loaded is None:
            return
        self._links.close()
        for r in self._readers.values():
            r.close()
        self._readers.clear()
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
        loaded.close()
        self._loaded = None

    def __repr__(self) -> str:
        state = "closed" if self._loaded is None else f"progs={list(self.progs)} maps={list(self.maps)}"
        return f"<Object {self.name} {state}>"

    def _view(self) -> tuple[str, list[tuple[str, object]], list[views.Table]]:
        if self._loaded is None:
            return f"Object {self.name}", [("state", "closed")], []
        return f"Object {self.name}", [("programs", len(self.progs)), ("links", len(self.links))], \
            views.object_tables(self)

    def _repr_html_(self) -> str:
        return views.html(*self._view())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else views.text(*self._view()))

