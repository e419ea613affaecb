"""Running plans: the prebuilt generic object loaded and attached once per probe, its ring buffer
read as numpy batches, strings cut at their NUL and the Python part of the filter applied.

Example::

    plans = [build_plan(parse_probe("t:syscalls:sys_enter_openat"), strings="all")]
    with Tracer(plans, scope=Scope(pid=1234)) as t:
        for index, batch in t.batches(duration=5.0):
            print(batch["filename"])
"""
from __future__ import annotations

import time
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..._sys import Resource
from ...errors import BpfUsageError
from ...events import Poller
from ...loader import open as open_object
from ...probes.link import LinkGroup
from ...probes.uprobe import attach_uprobe_offset
from ..common import Scope
from .expr import evaluate, truth
from .plan import Plan

__all__ = ["OBJECT", "DEFAULT_RING_BYTES", "BatchEnv", "ProbeSession", "Tracer", "ring_size"]

OBJECT = "tools/oneliner"
DEFAULT_RING_BYTES = 4 << 20
STACK_ENTRIES = 16384


def ring_size(nbytes: int) -> int:
    """``nbytes`` rounded up to a power of two of at least one page (what a ring buffer takes)."""
    size = 4096
    while size < nbytes:
        size <<= 1
    return size


class BatchEnv:
    """Names → columns of one decoded batch, for :func:`~.expr.evaluate`."""

    def __init__(self, plan: Plan, batch: np.ndarray) -> None:
        self.plan = plan
        self.batch = batch
        self.n = len(batch)

    def value(self, name: str) -> np.ndarray:
        col = self.plan.ints.get(name)
        if col is None:
            if name in self.plan.strings:
                raise BpfUsageError(f"{name!r} is a string; compare it with a string constant")
            raise BpfUsageError(f"no value {name!r} in {self.plan.spec}")
        return self.batch[col.field].view(col.dtype) if self.batch.dtype[col.field] != col.dtype \
            else self.batch[col.field]

    def string(self, name: str) -> Optional[np.ndarray]:
        col = self.plan.strings.get(name)
        return None if col is None else self.batch[col.field]


class ProbeSession(Resource):
    """One plan in the kernel: the generic object loaded with the plan's settings, attached, and
    the reader of its ring buffer (``reader.dtype`` is the plan's record dtype).

    Example::

        with ProbeSession(plan) as s:
            batch = s.decode(s.reader.poll(1.0))
    """

    def __init__(self, plan: Plan, *, scope: Optional[Scope] = None, ring_bytes: int = DEFAULT_RING_BYTES,
                 cookie: int = 0) -> None:
        self.plan = plan
        self.obj: Any = None
        self.links = LinkGroup()
        spec = open_object(OBJECT)
        wanted = {plan.program} | ({"ol_fn_entry"} if plan.paired else set())
        for p in spec.programs.values():
            p.autoload = p.name in wanted
        ro = spec.rodata
        for k, v in plan.rodata().items():
            setattr(ro, k, v)
        fetches = ro.ol_fetches
        for i, f in enumerate(plan.fetches):
            fetches[i] = (f.src, f.dst, f.size, f.len_src, f.len_dst, f.kind, f.mem)
        conds = ro.ol_conds
        for i, c in enumerate(plan.conds):
            row = conds[i]
            row["value"], row["off"], row["size"] = c.value, c.off, c.size
            row["is_signed"], row["op"] = int(c.signed), c.op
        scope = scope or Scope()
        scope.apply(spec)
        spec.maps.ol_events.max_entries = ring_size(ring_bytes)
        if plan.ustack or plan.kstack:
            spec.maps.ol_stacks.max_entries = STACK_ENTRIES
        self.obj = spec.load()
        try:
            self._attach(scope, cookie)
            self.reader = self.obj.reader("ol_events")
            self.reader.dtype = plan.dtype
        except BaseException:
            self.close()
            raise
        self._strings = [(c.field, plan.dtype[c.field].itemsize) for c in plan.strings.values()
                         if f"{c.field}__len" in (plan.dtype.names or ())]
        self._strings = list(dict.fromkeys(self._strings))
        # char arrays of a tracepoint's record (rwbs[10], prev_comm[16]): the kernel writes them up
        # to their NUL and leaves the rest of the reused trace buffer as it was
        names = plan.dtype.names or ()
        self._arrays = list(dict.fromkeys((c.field, plan.dtype[c.field].itemsize) for c in plan.strings.values()
                                          if c.field != "comm" and f"{c.field}__len" not in names))

    def _attach(self, scope: Scope, cookie: int) -> None:
        s = self.plan.spec
        prog = self.obj.progs[self.plan.program]
        pid = scope.pid
        if s.kind == "tracepoint":
            prog.attach_tracepoint(s.category, s.name, cookie=cookie)
        elif s.kind == "kprobe":
            prog.attach_kprobe(s.name, offset=s.offset, cookie=cookie)
        elif s.kind == "kretprobe":
            if self.plan.paired:
                self.obj.progs.ol_fn_entry.attach_kprobe(s.name)
            prog.attach_kretprobe(s.name, cookie=cookie)
        elif s.kind in ("uprobe", "uretprobe"):
            ret = s.kind == "uretprobe"
            found = _function_offset(s.binary, s.name)
            if found is None:  # versioned names, ifuncs: the full ELF reader
                if self.plan.paired:
                    self.obj.progs.ol_fn_entry.attach_uprobe(s.binary, s.name, pid=pid)
                (prog.attach_uretprobe(s.binary, s.name, pid=pid, cookie=cookie) if ret else
                 prog.attach_uprobe(s.binary, s.name, offset=s.offset, pid=pid, cookie=cookie))
                return
            path, off = found
            kpid = -1 if pid is None else pid
            what = f"{s.kind} {path}:{s.name}" + (f"+{s.offset:#x}" if s.offset else "")
            if self.plan.paired:
                self.links.add(attach_uprobe_offset(self.obj.progs.ol_fn_entry.fd, path, off, pid=kpid,
                                                    what=f"uprobe {path}:{s.name}"))
            self.links.add(attach_uprobe_offset(prog.fd, path, off + s.offset, pid=kpid, retprobe=ret,
                                                cookie=cookie, what=what))
        elif s.kind == "usdt":
            prog.attach_usdt(s.binary or None, self.plan.provider, s.name, pid=pid, cookie=cookie)
        else:  # pragma: no cover - the parser knows no other kinds
            raise BpfUsageError(f"cannot attach a {s.kind}")

    # -- decoding -------------------------------------------------------------------------
    def decode(self, batch: np.ndarray) -> np.ndarray:
        """Cut the strings of a raw batch at their NUL (the scratch record is reused, so bytes after
        it are an older event's), then apply the Python part of the filter."""
        n = len(batch)
        if n == 0:
            return batch
        for fld, size in self._strings:
            lens = batch[f"{fld}__len"].astype(np.int64)
            keep = np.clip(lens - 1, 0, size)  # bpf_probe_read_str counts the NUL; <0 is an error
            raw = batch[fld].view(np.dtype((np.uint8, (size,))))
            raw[np.arange(size)[None, :] >= keep[:, None]] = 0
        for fld, size in self._arrays:
            raw = batch[fld].view(np.dtype((np.uint8, (size,))))
            raw[np.cumsum(raw == 0, axis=1, dtype=np.int32) > 0] = 0
        if self.plan.py_filter is not None:
            mask = truth(evaluate(self.plan.py_filter, BatchEnv(self.plan, batch)), n)
            batch = batch[mask]
        return batch

    @property
    def filtered(self) -> int:
        """Events the BPF-side comparisons dropped so far."""
        return int(self.obj.bss.ol_filtered) if self.obj is not None else 0

    @property
    def dropped(self) -> int:
        """Events lost because the ring buffer was full."""
        return self.reader.dropped if self.obj is not None else 0

    @property
    def unpaired(self) -> int:
        """Return events without their entry (paired probes only)."""
        return int(self.obj.bss.ol_unpaired) if self.obj is not None else 0

    def stack(self, stack_id: int) -> np.ndarray:
        """The addresses of a stack id from a record's ``ustack``/``kstack`` (innermost first)."""
        return self.obj.maps.ol_stacks.addresses(int(stack_id))

    def close(self) -> None:
        links = getattr(self, "links", None)
        if links is not None:
            links.close()
        obj, self.obj = getattr(self, "obj", None), None
        if obj is not None:
            obj.close()


def _function_offset(binary: str, name: str) -> Optional[tuple[str, int]]:
    """(path, file offset) of function ``name`` through the fast symbol table, or None when only
    the full ELF reader can resolve it (``name@VERSION``, ifuncs)."""
    from ...binaries import resolve_library
    from ...binaries.functions import function_offsets

    if "@" in name:
        return None
    path = resolve_library(binary)
    off = function_offsets(path).get(name)
    return None if off is None else (path, off)


class Tracer(Resource):
    """Several plans traced together; :meth:`batches` yields ``(plan index, batch)`` as events
    arrive, already decoded and filtered.

    Example::

        with Tracer([plan_a, plan_b]) as t:
            for i, batch in t.batches(duration=2.0): ...
    """

    def __init__(self, plans: Sequence[Plan], *, scope: Optional[Scope] = None,
                 ring_bytes: int = DEFAULT_RING_BYTES) -> None:
        self.sessions: list[ProbeSession] = []
        self._poller: Optional[Poller] = None
        try:
            for i, plan in enumerate(plans):
                self.sessions.append(ProbeSession(plan, scope=scope, ring_bytes=ring_bytes, cookie=i))
            self._poller = Poller(*(s.reader for s in self.sessions))
        except BaseException:
            self.close()
            raise
        self._index = {id(s.reader): i for i, s in enumerate(self.sessions)}
        self.interrupted = False
        #: CLOCK_MONOTONIC (the clock of the records' ``ts``) just before the last look at the
        #: buffers: every record stamped before it that was already committed came in that look
        self.looked_ns = 0

    def batches(self, *, duration: Optional[float] = None, timeout: Optional[float] = None,
                stop: Any = None) -> Iterator[tuple[int, np.ndarray]]:
        """Decoded batches until ``duration`` seconds pass, nothing arrives for ``timeout``
        seconds, ``stop()`` returns True (checked between waits) or Ctrl-C (then
        :attr:`interrupted` is True). Empty batches (all filtered out) are skipped."""
        for group in self.rounds(duration=duration, timeout=timeout, stop=stop):
            yield from group

    def rounds(self, *, duration: Optional[float] = None, timeout: Optional[float] = None,
               stop: Any = None, gather: float = 0.005) -> Iterator[list[tuple[int, np.ndarray]]]:
        """Like :meth:`batches`, but everything one look at the buffers found comes together, so
        events of several probes can be put in time order. After a look that found events, the
        next one waits ``gather`` seconds: under a steady stream the batches grow and the kernel
        stops waking a consumer that keeps catching up (both cost more than the records)."""
        assert self._poller is not None
        deadline = None if duration is None else time.monotonic() + duration
        idle_since = time.monotonic()
        self.interrupted = False
        try:
            while True:
                wait = 0.2
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = min(wait, left)
                self._poller.wait(wait)
                self.looked_ns = time.monotonic_ns()
                pairs = self._poller.drain()
                now = time.monotonic()
                if pairs:
                    idle_since = now
                    group = self._decode(pairs)
                    if group:
                        yield group
                    if gather:
                        time.sleep(gather)
                if stop is not None and stop():
                    return
                if timeout is not None and not pairs and now - idle_since >= timeout:
                    break
        except KeyboardInterrupt:
            self.interrupted = True
        # the last records: events up to the end are delivered even when the deadline cut the wait
        try:
            self.looked_ns = time.monotonic_ns()
            group = self._decode(self._poller.drain())
            if group:
                yield group
        except KeyboardInterrupt:
            self.interrupted = True

    def _decode(self, pairs: list[Any]) -> list[tuple[int, np.ndarray]]:
        out = []
        for reader, raw in pairs:
            i = self._index[id(reader)]
            batch = self.sessions[i].decode(raw)
            if len(batch):
                out.append((i, batch))
        return out

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.sessions)

    @property
    def filtered(self) -> int:
        return sum(s.filtered for s in self.sessions)

    def close(self) -> None:
        p, self._poller = getattr(self, "_poller", None), None
        if p is not None:
            p.close()
        for s in getattr(self, "sessions", []):
            s.close()
        self.sessions = []
