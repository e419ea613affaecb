"""Loading BPF objects: parse into a spec, load through a backend, use the live object.

Inside, one direction: the spec's parts (``parts``, ``globals``, ``dtypes``) → the live object
(``program``, ``object``) → the backends (``native``: bpfkit's own reader and loader, the default;
``libbpf``: cffi bindings, ``libbpf_open``, ``libbpf_load``, loaded only when asked for) → the spec
(``spec``) → the entry points (``api``).

Example::

    from bpfkit.loader import open, ObjectSpec, Object
"""
from .api import load, open
from .object import Object
from .parts import Loaded, MapSpec, Namespace, ProgramSpec
from .program import Program, TestRunResult
from .spec import ObjectSpec

__all__ = ["open", "load", "ObjectSpec", "Object", "Program", "ProgramSpec", "MapSpec", "Namespace", "Loaded",
           "TestRunResult"]
