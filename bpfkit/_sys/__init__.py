"""Private: the bottom layer, ``bpf(2)`` and ``perf_event_open(2)`` through ctypes (like cilium/ebpf's
``internal/sys``). Not public API: the layers above wrap it.

``consts`` holds every number, ``attrs`` the ctypes structs, ``bpf`` and ``perf`` the syscall
wrappers, ``cpus`` CPU lists, ``fd`` the base class of every handle owner. This face re-exports
them, so code below writes ``from bpfkit import _sys as sc; sc.map_lookup(...)``.
"""
from .attrs import *  # noqa: F401,F403
from .bpf import *  # noqa: F401,F403
from .consts import *  # noqa: F401,F403
from .cpus import *  # noqa: F401,F403
from .fd import OwnedFd, Resource  # noqa: F401
from .perf import *  # noqa: F401,F403
