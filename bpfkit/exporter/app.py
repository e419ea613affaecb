"""The live exporter: loads each entry's object, attaches it, and serves the metrics.

Example::

    from bpfkit.exporter import Exporter

    with Exporter("exporter.toml") as ex:          # loads and attaches; serves on ex.url
        print(ex.url)                              # http://127.0.0.1:9435/metrics
        print(ex.metrics_text())                   # one scrape, as Prometheus would see it

    ex = Exporter({"objects": [{"tool": "syscalls"}]}, registry=my_registry)
    ex.start(serve=False)                          # only register with another program's registry
    ...
    ex.close()
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, Mapping, Optional, Union

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from ..errors import AttachError, BpfError, BpfUsageError
from . import collectors, config as _config
from .config import Config, Entry
from .exposition import TEXT_FORMAT, Family, render, to_metric

log = logging.getLogger("bpfkit.exporter")

__all__ = ["Exporter"]


@dataclass
class _Unit:
    """One loaded entry: its object, links and metric readers (or a collector tool)."""

    entry: Entry
    obj: Any = None
    links: Any = None
    readers: list[collectors.Reader] = field(default_factory=list)
    collector: Any = None

    def close(self) -> None:
        for part in (self.collector, self.links, self.obj):
            if part is not None:
                part.close()
        self.collector = self.links = self.obj = None


def _open_spec(entry: Entry) -> Any:
    from ..compiler import compile as compile_c
    from ..loader import open as open_object

    if entry.kind in ("source", "code"):
        return open_object(compile_c(entry.target), entry.name)
    return open_object(entry.object_name or entry.target)


def _set_rodata(entry: Entry, spec: Any) -> None:
    for var, value in entry.rodata.items():
        try:
            section = spec.rodata
        except AttributeError:
            raise entry.error(f"rodata {var!r}: object {spec.name!r} has no const volatile globals") from None
        try:
            setattr(section, var, value)
        except AttributeError:
            have = ", ".join(section.dtype.names or ())
            raise entry.error(f"rodata: object {spec.name!r} has no const volatile {var!r}; it has: "
                              f"{have or 'none'}") from None
        except (BpfError, ValueError, TypeError) as e:
            raise entry.error(f"rodata {var} = {value!r}: {e}") from None


class _Links:
    """The links an entry made (the Object also closes them when it closes)."""

    def __init__(self, links: list[Any]) -> None:
        self.links = links

    def close(self) -> None:
        for link in self.links:
            link.close()
        self.links = []


def _attach(entry: Entry, obj: Any) -> Any:
    if entry.attach is None:
        try:
            return obj.attach()  # all or nothing: a program without a target in its SEC() is an error
        except AttachError as e:
            raise entry.error(f"{e}\nthis exporter attaches by SEC() only: list the programs to attach with "
                              "attach = [...]") from None
    links = _Links([])
    try:
        for name in entry.attach:
            links.links.append(obj.progs[name].attach())
    except BaseException:
        links.close()
        raise
    return links


def _load(entry: Entry) -> _Unit:
    unit = _Unit(entry)
    if entry.collector:
        module, _, cls = entry.collector.partition(":")
        unit.collector = getattr(importlib.import_module(f"{__package__}.{module}"), cls)()
        return unit
    spec = _open_spec(entry)
    _set_rodata(entry, spec)
    missing = [p for p in entry.attach or () if p not in spec.programs]
    if missing:
        raise entry.error(f"attach: object {spec.name!r} has no program {missing[0]!r}; its programs: "
                          f"{', '.join(spec.programs)}")
    plans = [collectors.plan(m, spec) for m in entry.metrics]  # all checked before anything is loaded
    unit.obj = spec.load()
    try:
        unit.links = _attach(entry, unit.obj)
        unit.readers = [p.bind(unit.obj) for p in plans]
    except BaseException:
        unit.close()
        raise
    return unit


class _Collector:
    """What the exporter registers in a prometheus_client registry: its families converted to
    prometheus_client's form (its own /metrics writes them directly, see Exporter._families)."""

    def __init__(self, exporter: "Exporter") -> None:
        self.exporter = exporter

    def describe(self) -> list[Metric]:
        out = [self.exporter._errors_family()]
        for unit in self.exporter._units:
            out += [r.describe() for r in unit.readers]
            if unit.collector is not None:
                out += unit.collector.describe()
        return [to_metric(f) for f in out]

    def collect(self) -> Iterator[Metric]:
        return iter([to_metric(f) for f in self.exporter._families()])


class Exporter:
    """A Prometheus exporter for the BPF maps named in ``config`` (a path to a TOML/JSON file, a dict
    with the same structure, or a parsed :class:`~bpfkit.exporter.config.Config`). :meth:`start`
    loads and attaches everything and serves ``/metrics``; :meth:`close` (or leaving the ``with``
    block) stops serving and closes every object, link and fd.

    Example::

        with Exporter("exporter.toml", listen="127.0.0.1:0") as ex:   # any free port
            requests.get(ex.url)
    """

    def __init__(self, config: Union[Config, str, "os.PathLike[str]", Mapping[str, Any]], *,
                 listen: Optional[str] = None, registry: Optional[CollectorRegistry] = None) -> None:
        if isinstance(config, Config):
            self.config = config
        elif isinstance(config, Mapping):
            self.config = _config.parse(config)
        else:
            self.config = _config.load(config)
        self.listen = listen or self.config.listen
        _config.parse_listen(self.listen)
        self._own_registry = registry is None
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self._units: list[_Unit] = []
        self._lock = threading.Lock()
        self._collector: Optional[_Collector] = None
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._errors: dict[tuple[str, str], int] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, *, serve: bool = True) -> "Exporter":
        """Load and attach every entry (all or nothing), register with the registry, and unless
        ``serve=False`` serve it over HTTP on :attr:`listen`. Returns self."""
        if self._collector is not None:
            raise BpfUsageError("exporter already started")
        try:
            for entry in self.config.entries:
                self._units.append(_load(entry))
            self._collector = _Collector(self)
            self.registry.register(self._collector)
            if serve:
                self._serve()
        except BaseException:
            self.close()
            raise
        return self

    def _families(self) -> list[Family]:
        """Every unit's families, read now under the lock (decoder caches are not thread-safe, and
        close() must not race a scrape)."""
        with self._lock:
            families: list[Family] = []
            for unit in self._units:
                cache = collectors.MapCache()
                for r in unit.readers:
                    try:
                        families.append(r.collect(cache))
                    except BpfError as e:  # one bad map must not take the other metrics down
                        self._count_error(unit.entry.name, r.spec.name, e)
                if unit.collector is not None:
                    try:
                        families += unit.collector.collect()
                    except BpfError as e:
                        self._count_error(unit.entry.name, unit.entry.target, e)
            families.append(self._errors_family())
        return families

    def scrape(self) -> bytes:
        """One scrape in Prometheus's text format: written directly from the maps when the
        exporter has its own registry, else the whole registry through prometheus_client."""
        if self._own_registry:
            return render(self._families())
        return generate_latest(self.registry)

    def _serve(self) -> None:
        host, port = _config.parse_listen(self.listen)
        scrape = self.scrape

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    try:
                        body, ctype, code = scrape(), TEXT_FORMAT, 200
                    except Exception as e:  # a scrape must answer, not kill the server thread
                        log.exception("scrape failed")
                        body, ctype, code = f"scrape failed: {e}\n".encode(), "text/plain", 500
                elif path == "/":
                    body, ctype, code = (b"<html><body><h1>bpfkit exporter</h1>"
                                         b"<a href=\"/metrics\">metrics</a></body></html>\n",
                                         "text/html", 200)
                else:
                    body, ctype, code = b"not found: try /metrics\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("%s " + format, self.address_string(), *args)

        server_cls = ThreadingHTTPServer
        if ":" in host:
            import socket

            class V6Server(ThreadingHTTPServer):
                address_family = socket.AF_INET6
            server_cls = V6Server
        try:
            self._server = server_cls((host, port), Handler)
        except OSError as e:
            raise BpfError.from_errno(e.errno or 0, f"cannot listen on {self.listen}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bpfkit-exporter-http",
                                        daemon=True)
        self._thread.start()

    @property
    def objects(self) -> dict[str, Any]:
        """The loaded :class:`bpfkit.Object` of each started entry, by entry name (tools that read no
        object, like ``bpf_stats``, have none): e.g. to read or fill a map yourself."""
        return {u.entry.name: u.obj for u in self._units if u.obj is not None}

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually listened on (the real port when the config asked for port 0)."""
        if self._server is None:
            raise BpfUsageError("the exporter is not serving: call start()")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host, port = self.address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"

    def metrics_text(self) -> str:
        """One scrape of every metric, in Prometheus's text format."""
        return self.scrape().decode()

    def close(self) -> None:
        """Stop serving, unregister, detach and close everything. Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._collector is not None:
            try:
                self.registry.unregister(self._collector)
            except KeyError:
                pass
            self._collector = None
        with self._lock:
            errors: list[BaseException] = []
            for unit in reversed(self._units):
                try:
                    unit.close()
                except BaseException as e:  # close the rest, then report
                    errors.append(e)
            self._units.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> "Exporter":
        if self._collector is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- self-monitoring ---------------------------------------------------------------------
    def _count_error(self, entry: str, metric: str, e: BaseException) -> None:
        key = (entry, metric)
        if key not in self._errors:
            log.warning("exporter: reading %s of %s failed: %s", metric, entry, e)
        self._errors[key] = self._errors.get(key, 0) + 1

    def _errors_family(self) -> Family:
        return Family("bpfkit_exporter_read_errors", "counter", "Scrapes in which reading a metric failed (the "
                      "error is logged once)", ("entry", "metric"), dict(sorted(self._errors.items())))

    def __repr__(self) -> str:
        state = f"serving {self.url}" if self._server is not None else (
            "started" if self._collector is not None else "not started")
        return f"<Exporter {len(self.config.entries)} entries, {state}>"
