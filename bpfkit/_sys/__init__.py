"""Private: the bottom layer, ``bpf(2)`` and ``perf_event_open(2)`` through ctypes (like cilium/ebpf's
``internal/sys``). Not public API: the layers above wrap it.

``consts`` holds every number, ``attrs`` the ctypes structs; the syscall wrappers are ``bpf`` (the
call itself, objects and ids), ``maps``, ``progs`` (programs, links, stats, BTF) and ``perf``;
``cpus`` lists CPUs and ``fd`` has the base class of every handle owner; ``args`` checks the values
that go into kernel structs (ranges, NULs, name lengths) and ``bpffs`` keeps pins on a bpf
filesystem. This face re-exports them,
so code above writes ``from bpfkit import _sys as sc; sc.map_lookup(...)``.
"""
from .args import *  # noqa: F401,F403
from .attrs import *  # noqa: F401,F403
from .bpf import *  # noqa: F401,F403
from .bpffs import *  # noqa: F401,F403
from .consts import *  # noqa: F401,F403
from .cpus import *  # noqa: F401,F403
from .elem import ElemCall  # noqa: F401
from .fd import OwnedFd, Resource, fd_kind  # noqa: F401
from .maps import *  # noqa: F401,F403
from .perf import *  # noqa: F401,F403
from .progs import *  # noqa: F401,F403
from .syscall_names import syscall_name, syscall_names  # noqa: F401
