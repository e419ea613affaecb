"""bpfkit: eBPF tracing from Python — compile, load, attach, read maps and events as numpy.

Example::

    import bpfkit
    spec = bpfkit.open(bpfkit.compile("count.bpf.c"))
    spec.rodata.target_pid = 1234
    with spec.load() as obj:
        with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
            ...
        print(obj.maps.counts[1234])

The packages, from the bottom up: ``errors``; ``btf`` (the kernel's type format); ``features``,
``tracefs``, ``sections`` (what the kernel has, and the one table of ``SEC()`` names); ``maps``,
``events`` (ring/perf buffer readers), ``hist``, ``probes`` (attaching), ``counters`` (like
``perf stat``), ``record`` (batches to Parquet, :func:`replay`); ``loader`` (spec → kernel → live
object); ``compiler``, ``tools``, ``testing``. ``columnar`` turns record arrays into Arrow/pandas/
polars columns, ``display`` draws every object in a notebook; ``%load_ext bpfkit`` adds ``%%bpf``.
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import (
    AttachError,
    BpfError,
    BpfNotFoundError,
    BpfPermissionError,
    BpfUsageError,
    ClosedError,
    CompileError,
    FeatureNotSupported,
    LoadError,
    MapError,
    MapFullError,
    MapKeyError,
    ObjectFormatError,
    VerifierError,
)

# A library must not print: libbpf's messages go to the "bpfkit.libbpf" logger, shown only if the
# application configures logging.
logging.getLogger("bpfkit").addHandler(logging.NullHandler())

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the real signatures; at run time they load on first use
    from . import (btf, columnar, compiler, counters, display, events, features, hist, loader, maps,  # noqa: F401
                   probes, record, sections, shipped, testing, tools, tracefs)
    from .compiler import compile  # noqa: F401
    from .record import Recorder, replay  # noqa: F401
    from .tools.trace import trace  # noqa: F401
    from .loader import Object, ObjectSpec, Program, load, open  # noqa: F401
    from .maps import Map

# name -> (module, attribute): loaded on first use, so that `import bpfkit` stays cheap (no libbpf,
# no numpy) until something is used
_LAZY = {
    "open": ("loader", "open"), "load": ("loader", "load"), "Object": ("loader", "Object"),
    "ObjectSpec": ("loader", "ObjectSpec"), "Program": ("loader", "Program"), "Map": ("maps", "Map"),
    "compile": ("compiler", "compile"), "replay": ("record", "replay"), "Recorder": ("record", "Recorder"),
    "trace": ("tools.trace", "trace"),
}
_SUBPACKAGES = ("btf", "columnar", "compiler", "counters", "display", "events", "features", "hist", "loader", "maps",
                "probes", "record", "sections", "shipped", "testing", "tools", "tracefs")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'bpfkit' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bpfkit``: the ``%%bpf NAME`` cell magic and record arrays shown as tables
    (:mod:`bpfkit.ipython`, imported only here).

    Example::

        %load_ext bpfkit
    """
    from .ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext bpfkit``.

    Example::

        %unload_ext bpfkit
    """
    from .ipython import unload_ipython_extension as unload

    unload(ipython)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))


# `from bpfkit import *` leaves out open and compile, which would shadow the builtins of those names
__all__ = [
    "load", "Object", "ObjectSpec", "Program", "Map", "replay", "Recorder", "load_ipython_extension", "trace",
    "BpfError", "BpfUsageError", "BpfPermissionError", "BpfNotFoundError", "FeatureNotSupported", "ObjectFormatError",
    "CompileError", "LoadError", "VerifierError", "AttachError", "MapError", "MapKeyError", "MapFullError",
    "ClosedError",
]
