"""What BPF_PROG_TEST_RUN accepts, per program type: the reason behind its bare EINVAL, in words.

One table (``RULES``): each program type lists the checks ``net/bpf/test_run.c`` makes for it, each a
predicate on the request and the message for a request that fails it. :meth:`Program.test_run`
asks it when the kernel refuses a run.

Example::

    test_run_problem("xdp", TestRunRequest(data=4, ctx=0, repeat=0, flags=0, cpu=0))
    # 'an XDP packet needs at least an Ethernet header: 14 bytes, not 4'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["TestRunRequest", "RULES", "test_run_problem"]

_ETH_HLEN = 14
_XDP_MD_SIZE = 24         # struct xdp_md
_RAW_TP_MAX_CTX = 8 * 12  # u64 args[MAX_BPF_FUNC_ARGS]
_BPF_F_TEST_RUN_ON_CPU = 1 << 0
_BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1


@dataclass(frozen=True)
class TestRunRequest:
    """The sizes and options of one BPF_PROG_TEST_RUN (``data``/``ctx``: bytes given; None: not given)."""

    __test__ = False  # not a pytest test class, whatever its name

    data: int
    ctx: int
    repeat: int
    flags: int
    cpu: int


Rule = tuple[Callable[[TestRunRequest], bool], Callable[[TestRunRequest], str]]

_PACKET: list[Rule] = [
    (lambda r: r.data < _ETH_HLEN,
     lambda r: f"a packet needs at least an Ethernet header: {_ETH_HLEN} bytes, not {r.data}"),
    (lambda r: r.flags != 0, lambda r: f"flags={r.flags:#x}: packet programs take no test-run flags"),
    (lambda r: r.cpu != 0, lambda r: "cpu= is only for raw_tp programs (packet programs run on the calling CPU)"),
]
_RUN_ONCE: list[Rule] = [
    (lambda r: r.data != 0, lambda r: "this program type takes no packet: pass ctx= (its context struct) only"),
    (lambda r: r.repeat > 1, lambda r: f"repeat={r.repeat}: this program type runs exactly once (repeat=0)"),
]

RULES: dict[str, list[Rule]] = {
    "xdp": [
        (lambda r: r.data < _ETH_HLEN,
         lambda r: f"an XDP packet needs at least an Ethernet header: {_ETH_HLEN} bytes, not {r.data}"),
        (lambda r: r.ctx not in (0, _XDP_MD_SIZE),
         lambda r: f"ctx is {r.ctx} bytes: an XDP ctx is a struct xdp_md ({_XDP_MD_SIZE} bytes) or nothing"),
        (lambda r: bool(r.flags & ~_BPF_F_TEST_XDP_LIVE_FRAMES),
         lambda r: f"flags={r.flags:#x}: XDP test runs take only BPF_F_TEST_XDP_LIVE_FRAMES"),
        (lambda r: r.cpu != 0, lambda r: "cpu= is only for raw_tp programs"),
    ],
    "sched_cls": _PACKET, "sched_act": _PACKET, "socket_filter": _PACKET, "lwt_in": _PACKET,
    "lwt_out": _PACKET, "lwt_xmit": _PACKET, "cgroup_skb": _PACKET, "flow_dissector": _PACKET,
    "raw_tracepoint": _RUN_ONCE + [
        (lambda r: r.ctx > _RAW_TP_MAX_CTX,
         lambda r: f"ctx is {r.ctx} bytes: a raw tracepoint's args are at most {_RAW_TP_MAX_CTX} (12 u64)"),
        (lambda r: bool(r.flags & ~_BPF_F_TEST_RUN_ON_CPU),
         lambda r: f"flags={r.flags:#x}: raw_tp test runs take only BPF_F_TEST_RUN_ON_CPU"),
        (lambda r: r.cpu != 0 and not r.flags & _BPF_F_TEST_RUN_ON_CPU,
         lambda r: f"cpu={r.cpu} needs flags=BPF_F_TEST_RUN_ON_CPU (1) too"),
    ],
    "syscall": _RUN_ONCE + [
        (lambda r: r.ctx > 0xFFFF, lambda r: f"ctx is {r.ctx} bytes: a syscall program's ctx is at most 65535"),
        (lambda r: r.flags != 0 or r.cpu != 0, lambda r: "syscall programs take no flags or cpu"),
    ],
}
RULES["raw_tracepoint_writable"] = RULES["raw_tracepoint"]


def test_run_problem(prog_type: str, req: TestRunRequest) -> str:
    """Why BPF_PROG_TEST_RUN refuses ``req`` for a ``prog_type`` program (the first rule it fails),
    or "" when no rule here explains it.

    Example::

        test_run_problem("raw_tracepoint", TestRunRequest(0, 24, 5, 0, 0))   # 'repeat=5: ... runs exactly once'
    """
    for check, say in RULES.get(prog_type, []):
        if check(req):
            return say(req)
    return ""


test_run_problem.__test__ = False  # type: ignore[attr-defined]  # not a pytest test either
