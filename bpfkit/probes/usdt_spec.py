"""libbpf's ``struct __bpf_usdt_spec``: how ``<bpf/usdt.bpf.h>`` learns where a USDT probe's arguments
live. ``encode_usdt_spec`` emits it exactly, from the operands read off a binary's notes.

Example::

    value = encode_usdt_spec(note.arg_specs, cookie=7)   # 208 bytes for __bpf_usdt_specs
"""
from __future__ import annotations

import struct
from typing import Sequence

from ..binaries.usdt_notes import PT_REGS_OFFSETS, UsdtArg, UsdtArgKind, parse_usdt_args
from ..errors import ObjectFormatError

__all__ = ["USDT_MAX_ARGS", "USDT_SPEC_SIZE", "encode_usdt_spec"]

USDT_MAX_ARGS = 12  # BPF_USDT_MAX_ARG_CNT
# struct __bpf_usdt_arg_spec { __u64 val_off; enum arg_type; short reg_off; bool arg_signed; char arg_bitshift; }
_ARG_SPEC = struct.Struct("=QihBb")
# struct __bpf_usdt_spec { args[12]; __u64 usdt_cookie; short arg_cnt; } padded to 8
_SPEC_TAIL = struct.Struct("=Qh6x")
USDT_SPEC_SIZE = USDT_MAX_ARGS * _ARG_SPEC.size + _SPEC_TAIL.size  # 208
_U64 = (1 << 64) - 1


def _encode_arg(arg: UsdtArg) -> bytes:
    reg_off = 0
    val_off = 0
    if arg.kind == UsdtArgKind.CONST:
        val_off = arg.value
    else:
        if arg.symbol is not None:
            raise ObjectFormatError(
                f"USDT argument {arg.text or arg.symbol!r}: RIP-relative symbol operands are not supported by "
                f"libbpf's usdt.bpf.h (the value lives at the symbol's run-time address)"
            )
        if arg.register not in PT_REGS_OFFSETS or (arg.register == "rip" and arg.kind == UsdtArgKind.REG_DEREF):
            raise ObjectFormatError(f"USDT argument {arg.text!r}: register {arg.register!r} cannot be read from pt_regs")
        reg_off = PT_REGS_OFFSETS[arg.register]
        val_off = arg.offset if arg.kind == UsdtArgKind.REG_DEREF else 0
    if not -(1 << 63) <= val_off <= _U64:
        raise ObjectFormatError(f"USDT argument {arg.text!r}: value {val_off} does not fit in 64 bits")
    if arg.size not in (1, 2, 4, 8):
        raise ObjectFormatError(f"USDT argument {arg.text!r}: size {arg.size} is not 1, 2, 4 or 8 bytes")
    return _ARG_SPEC.pack(val_off & _U64, int(arg.kind), reg_off, int(arg.signed), 64 - 8 * arg.size)


def encode_usdt_spec(args: Sequence[UsdtArg] | str, cookie: int = 0) -> bytes:
    """Bytes of libbpf's ``struct __bpf_usdt_spec`` for ``args``.

    Store them in the ``__bpf_usdt_specs`` map at some spec id and pass that
    id as the attachment's BPF cookie; ``cookie`` is what ``bpf_usdt_cookie()``
    returns in the program. ``args`` may also be a raw argument string.

    Raises ObjectFormatError for more than 12 arguments or an operand
    usdt.bpf.h cannot evaluate.

    Example::

        value = encode_usdt_spec("-4@%edi -8@%rax", cookie=1)
        assert len(value) == USDT_SPEC_SIZE
    """
    if isinstance(args, str):
        args = parse_usdt_args(args)
    if len(args) > USDT_MAX_ARGS:
        raise ObjectFormatError(f"USDT probe has {len(args)} arguments; usdt.bpf.h supports at most {USDT_MAX_ARGS}")
    if not -(1 << 63) <= cookie <= _U64:
        raise ObjectFormatError(f"USDT cookie {cookie} does not fit in 64 bits")
    body = b"".join(_encode_arg(a) for a in args)
    body += bytes(_ARG_SPEC.size * (USDT_MAX_ARGS - len(args)))
    return body + _SPEC_TAIL.pack(cookie & _U64, len(args))
