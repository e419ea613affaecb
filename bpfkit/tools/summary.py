"""What summary tools (runqlat, cpudist, runqlen, softirqs, hardirqs) share: a loaded and attached
tool object (:class:`Session`), and the CLI loop that prints a summary every interval, at the end
of ``-d``, or on Ctrl-C / SIGTERM (:func:`report`) without ever being cut off half-printed.

Example::

    with Session(spec) as s:
        time.sleep(1)
        h = hist.log2(s.obj.maps.hist)
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, Sequence

from .._sys import Resource
from ..errors import BpfError
from ..loader import Object, ObjectSpec
from .bcc_format import hist_json, keyed_log2_hist
from .common import ToolError, print_json, stop_flag, ticks
from .streaming import recursion_misses

__all__ = ["Session", "report", "wait_and_read", "irq_cli"]


class Session(Resource):
    """A tool's BPF object, loaded and attached (``attach(obj)``, default every program with a
    target in its SEC()); tracing is on once the constructor returns. ``counters`` name ``.bss``
    globals that count what the BPF side could not record (a full map): :attr:`lost` sums them.

    Example::

        with Session(configure("runqlat")) as s:
            ...
    """

    def __init__(self, spec: ObjectSpec, *, attach: Optional[Callable[[Object], Any]] = None,
                 counters: Sequence[str] = ("missed",)) -> None:
        self.counters = tuple(counters)
        self._links: Any = None
        self._final: Optional[int] = None
        self.obj: Optional[Object] = spec.load()
        try:
            self._links = attach(self.obj) if attach is not None else self.obj.attach()
        except BaseException:
            self.close()
            raise
        self.started = time.monotonic()

    @property
    def live(self) -> Object:
        """The loaded object (BpfError once closed)."""
        if self.obj is None:
            raise BpfError("this tool session is closed")
        return self.obj

    def detach(self) -> None:
        """Stop tracing but keep the maps readable (a final read then sees a closed set of events)."""
        links, self._links = self._links, None
        if links is not None:
            links.close()

    @property
    def lost(self) -> int:
        """Events the BPF side could not record (the sum of ``counters``), and runs the kernel
        skipped (:func:`~bpfkit.tools.streaming.recursion_misses`)."""
        if self._final is not None:
            return self._final
        obj = self.live
        names = (obj.bss.dtype.names or ()) if ".bss" in obj.sections else ()
        return sum(int(getattr(obj.bss, n)) for n in self.counters if n in names) + recursion_misses(obj)

    def close(self) -> None:
        """Detach and unload (the loss count stays readable). Idempotent."""
        obj = getattr(self, "obj", None)
        if obj is None:
            return
        try:
            self._final = self.lost
        except (AttributeError, BpfError):
            self._final = 0
        links, self._links = self._links, None
        if links is not None:
            links.close()
        obj.close()
        self.obj = None


def wait_and_read(session: Session, duration: Optional[float], read: Callable[[], Any]) -> Any:
    """Sleep ``duration`` seconds (None: until Ctrl-C; Ctrl-C also ends a duration early), then
    ``read()``: the body of each tool's ``run()``."""
    try:
        if duration is None:
            while True:
                time.sleep(3600)
        time.sleep(duration)
    except KeyboardInterrupt:
        pass
    return read()


def report(name: str, session: Session, emit: Callable[[bool], None], *, interval: Optional[float],
           count: Optional[int], duration: Optional[float], tracing: str, json_mode: bool = False) -> None:
    """The CLI loop of a summary tool: print ``tracing`` (bcc's "Tracing ... Hit Ctrl-C to end.";
    on stderr under ``--json``), then ``emit(last)`` every ``interval`` seconds (``count`` times),
    or once after ``duration`` or on Ctrl-C / SIGTERM; on stderr, what the BPF side lost."""
    with session, stop_flag() as stop:
        print(tracing, file=sys.stderr if json_mode else sys.stdout, flush=True)
        for last in ticks(interval, count, duration, stop=stop):
            emit(last)
            sys.stdout.flush()
        lost = session.lost
    if lost:
        print(f"{name}: {lost} events not recorded (a map was full)", file=sys.stderr)


def irq_cli(name: str, kind: str, start: Callable[[], Any], args: Any, *, width: int, count_option: str,
            json_extra: Callable[[Any], dict[str, Any]] = lambda r: {}) -> int:
    """The CLI of hardirqs and softirqs (bcc's output): per ``kind`` (``"hardirq"``), the total time
    (``-N``: ns, else us), the counts (``count_option``: ``--count``/``--events``), or with ``-d`` a
    histogram each. ``start()`` begins tracing (once the options are checked) and returns a
    :class:`Session` whose ``read(clear=True)`` gives ``counts``, ``total_ns`` and ``hist``.
    ``width`` is bcc's name column; ``json_extra(result)`` adds fields to each JSON record.

    Example::

        return irq_cli("softirqs", "softirq", lambda: trace(cpu=args.cpu), args, width=16,
                       count_option="--events")
    """
    if args.events and (args.dist or args.nanoseconds):
        raise ToolError(f"The {count_option} option can't be used with time-based options")
    session = start()
    label = "count" if args.events else session.unit
    factor = 1 if args.nanoseconds else 1000

    def emit(last: bool) -> None:
        r = session.read(clear=True)
        if args.json:
            doc: dict[str, Any] = {"time": time.time(), "counts": r.counts, **json_extra(r),
                                   "total_" + session.unit: {k: v // factor for k, v in r.total_ns.items()}}
            if r.hist is not None:
                doc["dist"] = {k: hist_json(h) for k, h in r.hist.items()}
            print_json(doc)
            return
        print()
        if args.timestamp:
            print("%-8s" % time.strftime("%H:%M:%S"))
        if args.dist and r.hist is not None:
            sys.stdout.write(keyed_log2_hist(r.hist, label, kind))
            return
        values = r.counts if args.events else {k: v // factor for k, v in r.total_ns.items()}
        print("%-*s %11s" % (width, kind.upper(), "TOTAL_" + label))
        for key, value in sorted(((k, v) for k, v in values.items() if r.counts[k]), key=lambda kv: kv[1]):
            print("%-*s %11d" % (width, key, value))

    what = kind.replace("irq", " irq")  # "hard irq", as bcc writes it
    tracing = f"Tracing {what} events... Hit Ctrl-C to end." if args.events else \
        f"Tracing {what} event time... Hit Ctrl-C to end."
    report(name, session, emit, interval=args.interval, count=args.count, duration=args.duration, tracing=tracing,
           json_mode=args.json)
    return 0
