"""bpfkit: eBPF tracing from Python — compile, load, attach, read maps and events as numpy.

Example::

    import bpfkit
    spec = bpfkit.open(bpfkit.compile("count.bpf.c"))
    spec.rodata.target_pid = 1234
    with spec.load() as obj:
        with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
            ...
        print(obj.maps.counts[1234])
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .errors import (
    AttachError,
    BpfError,
    BpfUsageError,
    BpfNotFoundError,
    BpfPermissionError,
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
    from . import btf, events, features, hist, maps, objects, perf, probes, testing, tracefs
    from .compiler import compile
    from .loader.spec import ObjectSpec
    from .object import Object, Program, load, open


_SUBMODULES = ("features", "perf", "probes", "hist", "maps", "events", "btf", "objects", "testing",
               "tracefs")


def __getattr__(name: str) -> Any:
    # Lazy so that `import bpfkit` stays cheap (no libbpf dlopen, no numpy) until something is used.
    if name in ("open", "load", "Object", "Program"):
        from . import object as _object

        return getattr(_object, name)
    if name == "ObjectSpec":
        from .loader.spec import ObjectSpec

        return ObjectSpec
    if name == "compile":
        from .compiler import compile

        return compile
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'bpfkit' has no attribute {name!r}")


__all__ = [
    "open", "load", "compile", "Object", "ObjectSpec", "Program",
    "BpfError", "BpfUsageError", "BpfPermissionError", "BpfNotFoundError", "FeatureNotSupported", "ObjectFormatError",
    "CompileError", "LoadError", "VerifierError", "AttachError", "MapError", "MapKeyError", "MapFullError",
    "ClosedError",
]
