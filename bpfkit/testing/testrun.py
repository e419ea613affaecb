"""Run a loaded program on synthetic input with ``BPF_PROG_TEST_RUN`` and check what it did.

The kernel can run some program types without attaching them: XDP and TC/skb programs on a
packet, flow dissectors on a packet (the output is the ``struct bpf_flow_keys`` they filled),
raw tracepoint programs on an argument array, and ``SEC("syscall")`` programs on a context
struct that the kernel copies back. Each helper checks that the program has the right type,
fills in what that type's test run requires, and decodes the result.

Example::

    from bpfkit.testing import testrun

    pkt = testrun.udp4_packet(payload=b"hi")
    res = testrun.run_xdp(obj.progs.my_xdp, pkt)
    assert res.action == "XDP_TX" and res.data[42:44] == b"hi"

    res = testrun.run_skb(obj.progs.my_tc, pkt, mark=20)
    assert res.action == "TC_ACT_OK" and res.skb["mark"] == 41
"""
from __future__ import annotations

import ctypes
import errno as _errno
import ipaddress
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from .. import _sys as sc
from ..errors import ENOTSUPP, BpfError, BpfUsageError, FeatureNotSupported

if TYPE_CHECKING:
    from ..loader import Program

__all__ = [
    "RunResult", "TC_ACTIONS", "XDP_ACTIONS", "flow_keys_dtype", "run", "run_flow_dissector",
    "run_raw_tp", "run_skb", "run_syscall", "run_xdp", "skb_dtype", "udp4_packet",
]

XDP_ACTIONS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
TC_ACTIONS = {-1: "TC_ACT_UNSPEC", 0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT",
              3: "TC_ACT_PIPE", 4: "TC_ACT_STOLEN", 5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT",
              7: "TC_ACT_REDIRECT", 8: "TC_ACT_TRAP"}

# Program types (as Program.type names them) whose test run takes a packet, by helper.
_SKB_TYPES = ("sched_cls", "sched_act", "socket_filter", "cgroup_skb", "lwt_in", "lwt_out",
              "lwt_xmit", "lwt_seg6local")
_ETH_HLEN = 14
BPF_F_TEST_RUN_ON_CPU = 1 << 0
# Types whose kernel bpf_prog_ops have no test_run at all: they only run when their event fires.
# XDP programs may grow the packet into the tailroom; the kernel fails with ENOSPC rather than
# truncate, so leave room for any growth that fits in a page.
_XDP_OUT_SLACK = 4096


@dataclass
class RunResult:
    """What one BPF_PROG_TEST_RUN returned.

    ``data`` is the output packet (or flow keys), ``ctx`` the output context bytes,
    ``duration_ns`` the kernel's average time per run (0 for types it does not time).
    """

    retval: int
    data: bytes
    ctx: bytes
    duration_ns: int
    prog_type: str = ""

    @property
    def action(self) -> str:
        """``retval`` as an XDP or TC action name (``"XDP_TX"``, ``"TC_ACT_SHOT"``), else the number."""
        if self.prog_type == "xdp":
            return XDP_ACTIONS.get(self.retval, str(self.retval))
        if self.prog_type in ("sched_cls", "sched_act"):
            return TC_ACTIONS.get(self.signed_retval, str(self.signed_retval))
        return str(self.retval)

    @property
    def signed_retval(self) -> int:
        """``retval`` as the s32 the program returned (the kernel reports it as u32)."""
        return self.retval - (1 << 32) if self.retval >= 1 << 31 else self.retval

    def ctx_as(self, dtype: Any) -> Any:
        """The output context decoded as one record of ``dtype`` (a numpy structured scalar)."""
        dt = np.dtype(dtype)
        if len(self.ctx) < dt.itemsize:
            raise BpfUsageError(f"output context has {len(self.ctx)} bytes, {dt} needs {dt.itemsize}")
        return np.frombuffer(self.ctx, dtype=dt, count=1)[0]

    @property
    def skb(self) -> Any:
        """The output ``struct __sk_buff`` (mark, priority, cb...) of a TC/skb run."""
        return self.ctx_as(skb_dtype())

    @property
    def flow_keys(self) -> Any:
        """The ``struct bpf_flow_keys`` a flow dissector filled in."""
        dt = flow_keys_dtype()
        return np.frombuffer(self.data[: dt.itemsize].ljust(dt.itemsize, b"\0"), dtype=dt, count=1)[0]


def _kernel_dtype(struct_name: str) -> np.dtype:
    from ..btf import Kind, vmlinux_btf  # parsed once per process, shared with other users

    btf = vmlinux_btf()
    return btf.dtype(btf.find(struct_name, Kind.STRUCT).id)


def skb_dtype() -> np.dtype:
    """numpy dtype of this kernel's ``struct __sk_buff`` (from vmlinux BTF)."""
    return _kernel_dtype("__sk_buff")


def flow_keys_dtype() -> np.dtype:
    """numpy dtype of this kernel's ``struct bpf_flow_keys``; ``n_proto``/``sport``/``dport``/
    addresses are in network byte order, as the program stored them."""
    return _kernel_dtype("bpf_flow_keys")


def _check_runnable(prog: "Program") -> None:
    prog.check_test_runnable()


def _check_type(prog: "Program", allowed: tuple[str, ...], helper: str) -> None:
    _check_runnable(prog)
    if prog.type not in allowed:
        raise BpfUsageError(f"{helper}() runs {', '.join(allowed)} programs; {prog.name!r} is a {prog.type} "
                       f"program (SEC({prog.section!r})). Use the helper for its type or testrun.run().")


def _explain(prog: "Program", e: BpfError, hint: str) -> BpfError:
    err = e.errno or 0
    if err == ENOTSUPP or err in (_errno.EOPNOTSUPP, _errno.ENOTSUP):
        name = "ENOTSUPP" if err == ENOTSUPP else _errno.errorcode.get(err, str(err))
        return FeatureNotSupported(f"this kernel has no BPF_PROG_TEST_RUN for {prog.type} programs "
                                   f"({prog.name!r}, {name} {err}); newer kernels may have it",
                                   err, f"test_run:{prog.type}")
    if err == _errno.EINVAL and hint:
        return BpfError(f"BPF_PROG_TEST_RUN of {prog.type} program {prog.name!r} rejected its input "
                        f"(EINVAL): {hint}", err)
    return e


def _test_run(prog: "Program", hint: str, **kw: Any) -> tuple[int, bytes, bytes, int]:
    for name in ("repeat", "flags", "data_out_size", "ctx_out_size"):
        if name in kw:
            kw[name] = sc.check_u32(name, kw[name])
    if "cpu" in kw:
        kw["cpu"] = sc.check_cpu(kw["cpu"])
    try:
        return sc.prog_test_run(prog.fd, **kw)
    except BpfError as e:
        raise _explain(prog, e, hint) from None


def _cpu_kw(cpu: Optional[int]) -> dict[str, int]:
    return {} if cpu is None else {"flags": BPF_F_TEST_RUN_ON_CPU, "cpu": cpu}


def run_xdp(prog: "Program", packet: bytes, *, repeat: int = 1, ctx: Optional[bytes] = None) -> RunResult:
    """Run an XDP program on ``packet`` (at least 14 bytes: an Ethernet header).

    With ``repeat`` > 1 the kernel runs the program on the same buffer each time, so ``data`` is
    the packet after all runs and ``duration_ns`` the average. ``ctx`` is an optional
    ``struct xdp_md`` (data_meta / ingress_ifindex).

    Example::

        res = run_xdp(obj.progs.my_xdp, udp4_packet(payload=b"x"))
        assert res.action == "XDP_TX" and len(res.data) == 43
    """
    _check_type(prog, ("xdp",), "run_xdp")
    if len(packet) < _ETH_HLEN:
        raise BpfUsageError(f"run_xdp: the packet must hold at least an Ethernet header ({_ETH_HLEN} bytes), "
                       f"got {len(packet)}; build one with udp4_packet()")
    r = _test_run(prog, "the packet must be 14 bytes .. about a page; ctx must be a struct xdp_md",
                  data_in=packet, data_out_size=len(packet) + _XDP_OUT_SLACK, ctx_in=ctx,
                  ctx_out_size=len(ctx) if ctx else 0, repeat=repeat)
    return RunResult(*r, prog_type=prog.type)


def run_skb(prog: "Program", packet: bytes, *, repeat: int = 1, **skb_fields: Any) -> RunResult:
    """Run a TC (``SEC("tc")``/``classifier``), socket filter, cgroup_skb or lwt program on ``packet``.

    Keyword arguments set ``struct __sk_buff`` fields of the input context (the kernel accepts
    mark, priority, ifindex, ingress_ifindex, cb, tstamp, wire_len, gso_segs, gso_size, hwtstamp);
    the output context is ``result.skb``. For an IPv4/IPv6 ethertype the kernel also parses the
    IP header, so give it a real one (see :func:`udp4_packet`).

    Example::

        res = run_skb(obj.progs.my_tc, udp4_packet(payload=b"x"), mark=20)
        assert res.action == "TC_ACT_OK" and res.skb["mark"] == 41
    """
    _check_type(prog, _SKB_TYPES, "run_skb")
    if len(packet) < _ETH_HLEN:
        raise BpfUsageError(f"run_skb: the packet must hold at least an Ethernet header ({_ETH_HLEN} bytes), "
                       f"got {len(packet)}; build one with udp4_packet()")
    dt = skb_dtype()
    ctx = np.zeros(1, dtype=dt)
    for name, value in skb_fields.items():
        if name not in (dt.names or ()):
            raise BpfUsageError(f"struct __sk_buff has no field {name!r}")
        ctx[name] = value
    r = _test_run(prog, "an IPv4/IPv6 ethertype needs a complete IP header after the Ethernet header, "
                  "and only mark, priority, ifindex, ingress_ifindex, cb, tstamp, wire_len, gso_segs, "
                  "gso_size and hwtstamp may be set in the context",
                  data_in=packet, data_out_size=len(packet) + 256, ctx_in=ctx.tobytes(),
                  ctx_out_size=dt.itemsize, repeat=repeat)
    return RunResult(*r, prog_type=prog.type)


def run_flow_dissector(prog: "Program", packet: bytes, *, repeat: int = 1) -> RunResult:
    """Run a ``SEC("flow_dissector")`` program on ``packet``; ``result.flow_keys`` holds what it found.

    The kernel starts the program with ``nhoff`` just past the Ethernet header and ``n_proto`` set
    to its ethertype. ``retval`` is BPF_OK (0) or BPF_DROP (2).

    Example::

        res = run_flow_dissector(obj.progs.dissect, udp4_packet(sport=1234, dport=53))
        assert socket.ntohs(int(res.flow_keys["dport"])) == 53
    """
    _check_type(prog, ("flow_dissector",), "run_flow_dissector")
    r = _test_run(prog, "the packet must hold at least an Ethernet header",
                  data_in=packet, data_out_size=flow_keys_dtype().itemsize, repeat=repeat)
    return RunResult(*r, prog_type=prog.type)


def run_raw_tp(prog: "Program", *args: int, cpu: Optional[int] = None) -> RunResult:
    """Run a ``SEC("raw_tp/...")`` program once with ``ctx->args[i] = args[i]`` (u64 each).

    ``cpu`` runs it on that CPU (BPF_F_TEST_RUN_ON_CPU). The kernel does not time raw_tp runs.

    Example::

        res = run_raw_tp(obj.progs.raw_args_probe, 1, 2, 3, cpu=0)
        assert list(obj.bss.raw_args) == [1, 2, 3]
    """
    _check_type(prog, ("raw_tracepoint", "raw_tracepoint_writable"), "run_raw_tp")
    if not args:
        raise BpfUsageError("run_raw_tp needs at least one argument value (the kernel rejects an empty ctx)")
    ctx = struct.pack(f"<{len(args)}Q", *(a & 0xFFFFFFFFFFFFFFFF for a in args))
    # raw_tp test runs reject repeat, data and ctx_out: everything but the args must be zero.
    r = _test_run(prog, "the cpu must be online; raw_tp runs take only ctx args",
                  ctx_in=ctx, repeat=0, **_cpu_kw(cpu))
    return RunResult(*r, prog_type=prog.type)


def run_syscall(prog: "Program", ctx: Union[bytes, bytearray, np.ndarray, np.void]) -> RunResult:
    """Run a ``SEC("syscall")`` program once on ``ctx`` (its argument struct).

    The program may write to its context; the kernel copies it back and ``result.ctx`` holds the
    written bytes (decode with ``result.ctx_as(dtype)``). Where the bytes came from is updated in
    place too when it can be: a ``bytearray``, a writeable numpy array (contiguous or not: its
    elements are passed back to back), or a structured ``np.void`` record such as ``arr[0]``
    (written field by field, so through to ``arr``). ``bytes``, read-only arrays and unstructured
    ``np.void`` values are left as they were: read ``result.ctx``.

    Example::

        args = np.zeros(1, dtype=[("a", "i4"), ("b", "i4"), ("product", "i8")])
        args["a"], args["b"] = 6, 7
        res = run_syscall(obj.progs.calc, args)
        assert res.retval == 13 and args["product"][0] == 42
    """
    _check_type(prog, ("syscall",), "run_syscall")
    if isinstance(ctx, np.void):
        raw = bytearray(ctx.tobytes())
    elif isinstance(ctx, np.ndarray):
        raw = bytearray(np.ascontiguousarray(ctx).tobytes())
    else:
        raw = bytearray(ctx)
    if not raw:
        raise BpfUsageError("run_syscall needs a non-empty ctx (the program's argument struct)")
    buf = (ctypes.c_char * len(raw)).from_buffer(raw)
    # syscall programs write into ctx_in; repeat, data and ctx_out must all be zero.
    retval, _, _, duration = _test_run(prog, "syscall runs take only a ctx (no packet, repeat or cpu)",
                                       ctx_in=buf, repeat=0)
    del buf
    out = bytes(raw)
    if isinstance(ctx, np.ndarray) and ctx.flags.writeable:
        ctx[...] = np.frombuffer(out, dtype=ctx.dtype).reshape(ctx.shape)
    elif isinstance(ctx, np.void) and ctx.dtype.names:
        written = np.frombuffer(out, dtype=ctx.dtype, count=1)[0]
        for name in ctx.dtype.names:
            ctx[name] = written[name]
    elif isinstance(ctx, bytearray):
        ctx[:] = out
    return RunResult(retval, b"", out, duration, prog_type=prog.type)


def run(prog: "Program", data: Optional[bytes] = None, *, ctx: Optional[bytes] = None, repeat: int = 1,
        cpu: Optional[int] = None, data_out_size: Optional[int] = None,
        ctx_out_size: Optional[int] = None) -> RunResult:
    """Generic BPF_PROG_TEST_RUN for any type the kernel supports; dispatches to the typed helpers
    for xdp, skb-based, flow_dissector, raw_tp and syscall programs when only data/ctx are given.

    Example::

        res = run(obj.progs.xdp_bounce, packet)
    """
    _check_runnable(prog)
    plain = cpu is None and data_out_size is None and ctx_out_size is None
    if plain and prog.type == "xdp" and data is not None:
        return run_xdp(prog, data, repeat=repeat, ctx=ctx)
    if plain and prog.type == "flow_dissector" and data is not None and ctx is None:
        return run_flow_dissector(prog, data, repeat=repeat)
    if plain and prog.type == "syscall" and ctx is not None and data is None:
        return run_syscall(prog, ctx)
    if plain and prog.type in ("raw_tracepoint", "raw_tracepoint_writable") and data is None and ctx:
        if len(ctx) % 8:
            raise BpfUsageError("a raw_tp ctx is an array of u64 arguments; its length must be a multiple of 8")
        return run_raw_tp(prog, *struct.unpack(f"<{len(ctx) // 8}Q", ctx))
    if data_out_size is None:
        data_out_size = len(data) + 256 if data is not None else 0
    if ctx_out_size is None:
        ctx_out_size = len(ctx) if ctx is not None and prog.type not in ("syscall", "raw_tracepoint") else 0
    r = _test_run(prog, "", data_in=data, data_out_size=data_out_size, ctx_in=ctx,
                  ctx_out_size=ctx_out_size, repeat=repeat, **_cpu_kw(cpu))
    return RunResult(*r, prog_type=prog.type)


def _mac(addr: Union[str, bytes], what: str) -> bytes:
    if isinstance(addr, bytes):
        if len(addr) != 6:
            raise BpfUsageError(f"udp4_packet: {what} has 6 bytes, got {len(addr)}")
        return addr
    parts = addr.split(":")
    try:
        out = bytes(int(part, 16) for part in parts)
    except ValueError:
        out = b""  # a non-hex part or one above 0xff
    if len(parts) != 6 or len(out) != 6 or any(not 1 <= len(p) <= 2 for p in parts):
        raise BpfUsageError(f"udp4_packet: {what} {addr!r} is not a MAC address like '02:00:00:00:00:01'")
    return out


def _ipv4(addr: str, what: str) -> bytes:
    try:
        return ipaddress.IPv4Address(addr).packed
    except ValueError as e:
        raise BpfUsageError(f"udp4_packet: {what} {addr!r} is not an IPv4 address: {e}") from None


def _csum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


_MAX_UDP_PAYLOAD = 0xFFFF - 20 - 8  # the IPv4 total length is 16 bits


def udp4_packet(payload: bytes = b"", *, src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 1234,
                dport: int = 53, eth_src: Union[str, bytes] = "02:00:00:00:00:01",
                eth_dst: Union[str, bytes] = "02:00:00:00:00:02", ttl: int = 64) -> bytes:
    """An Ethernet + IPv4 (valid header checksum) + UDP packet carrying ``payload``.

    The payload starts at offset 42 (14 Ethernet + 20 IP + 8 UDP). Out-of-range ports, TTL or
    payload size and malformed addresses raise :class:`~bpfkit.errors.BpfUsageError`.

    Example::

        pkt = udp4_packet(b"ping", dport=7)
    """
    for name, value, top in (("sport", sport, 0xFFFF), ("dport", dport, 0xFFFF), ("ttl", ttl, 0xFF)):
        if not isinstance(value, int) or not 0 <= value <= top:
            raise BpfUsageError(f"udp4_packet: {name} must be an integer in 0..{top}, got {value!r}")
    if len(payload) > _MAX_UDP_PAYLOAD:
        raise BpfUsageError(f"udp4_packet: the payload is at most {_MAX_UDP_PAYLOAD} bytes (IPv4 total "
                            f"length is 16 bits), got {len(payload)}")
    udp_len = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, ttl, 17, 0,
                     _ipv4(src, "src"), _ipv4(dst, "dst"))
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0)  # checksum 0: "none" is valid for UDP/IPv4
    return _mac(eth_dst, "eth_dst") + _mac(eth_src, "eth_src") + b"\x08\x00" + ip + udp + payload
