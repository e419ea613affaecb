"""cffi ABI-mode bindings to the system ``libbpf.so.1`` (no C extension to build).

The declarations are in :mod:`bpfkit.loader.libbpf_cdef`; the build turns them into an out-of-line
module (``_libbpf_ffi``) so that a start-up does not parse them.

Only the loader uses these: libbpf parses the ELF object, applies CO-RE
relocations and creates maps and programs. Attaching, map access and event
reading are bpfkit's own code on top of the fds libbpf hands back.

libbpf's messages are routed to the ``bpfkit.libbpf`` logger instead of stderr.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Iterator, Optional

from ..errors import FeatureNotSupported
from .libbpf_cdef import CDEF, cdef_digest

__all__ = [
    "capture_messages", "string", "prog_type_name", "attach_type_name", "open_object", "programs", "maps",
    "object_btf", "initial_value", "ffi", "lib",
]


def _make_ffi() -> Any:
    """The FFI of the out-of-line module generated at build time (only cffi's C backend needed),
    else one made by parsing CDEF now (cffi + pycparser, ~60 ms)."""
    try:
        import importlib

        generated = importlib.import_module(f"{__package__}._libbpf_ffi")
        if getattr(generated, "CDEF_DIGEST", None) == cdef_digest():
            return generated.ffi
        logging.getLogger("bpfkit").debug("bpfkit.loader._libbpf_ffi is stale: parsing the declarations")
    except ImportError:
        pass
    import cffi

    made = cffi.FFI()
    made.cdef(CDEF)
    return made


ffi = _make_ffi()

_log = logging.getLogger("bpfkit.libbpf")
_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


def _open_lib() -> Any:
    for name in ("libbpf.so.1", "libbpf.so"):
        try:
            return ffi.dlopen(name)
        except OSError:
            continue
    raise FeatureNotSupported(
        "libbpf.so.1 not found: install it (Debian/Ubuntu: apt-get install libbpf1)", feature="libbpf")


lib = _open_lib()
_libc = ffi.dlopen(None)

# Messages from the current thread's load are also collected here so that a
# failed load can quote them (which program failed, libbpf's reason).
_capture = threading.local()


_PRINT_BUF = 65536


@ffi.callback("int(int, const char *, void *)")
def _print_cb(level: int, fmt: Any, args: Any) -> int:
    try:
        sink = getattr(_capture, "lines", None)
        py_level = _LEVELS.get(level, logging.DEBUG)
        if sink is None and not _log.isEnabledFor(py_level):
            return 0  # a load prints ~100 debug lines: format only what someone reads
        buf = getattr(_capture, "buf", None)
        if buf is None:  # one buffer per thread, not 64 KiB zeroed per message
            buf = _capture.buf = ffi.new("char[]", _PRINT_BUF)
        n = _libc.vsnprintf(buf, _PRINT_BUF, fmt, args)
        text = ffi.string(buf).decode(errors="replace").rstrip("\n")
        if sink is not None:
            sink.append((level, text))
        _log.log(py_level, "%s", text)
        return int(n)
    except Exception:  # never let an exception unwind into C
        return 0


lib.libbpf_set_print(_print_cb)


@contextlib.contextmanager
def capture_messages() -> Iterator[list[tuple[int, str]]]:
    """Collect libbpf's messages (level, text) printed in this thread inside the block."""
    prev = getattr(_capture, "lines", None)
    lines: list[tuple[int, str]] = []
    _capture.lines = lines
    try:
        yield lines
    finally:
        _capture.lines = prev


def string(p: Any) -> str:
    """A C string as str ('' for NULL)."""
    return "" if p == ffi.NULL else ffi.string(p).decode()


def prog_type_name(t: int) -> str:
    """libbpf's name for a program type, e.g. 'tracepoint'."""
    return string(lib.libbpf_bpf_prog_type_str(t)) or str(t)


def attach_type_name(t: int) -> str:
    """libbpf's name for an attach type, e.g. 'trace_fentry'."""
    return string(lib.libbpf_bpf_attach_type_str(t)) or str(t)


def open_object(data: bytes, name: Optional[str] = None, log_buf: Any = None) -> Any:
    """``bpf_object__open_mem`` with our options; returns (obj pointer, keep-alive tuple)."""
    opts = ffi.new("struct bpf_object_open_opts *")
    opts.sz = ffi.sizeof("struct bpf_object_open_opts")
    keep: list[Any] = [opts]
    if name:
        cname = ffi.new("char[]", name.encode())
        keep.append(cname)
        opts.object_name = cname
    if log_buf is not None:
        opts.kernel_log_buf = log_buf
        opts.kernel_log_size = len(log_buf)
    buf = ffi.from_buffer(data)
    keep.append(buf)
    with capture_messages() as lines:
        obj = lib.bpf_object__open_mem(buf, len(data), opts)
    if obj == ffi.NULL:
        from ..errors import ObjectFormatError

        err = ffi.errno
        detail = "; ".join(t for _, t in lines if t) or "no details from libbpf"
        raise ObjectFormatError(f"cannot open BPF object {name or ''}: {detail}".replace("  ", " "), err)
    return obj, keep


def programs(obj: Any) -> Iterator[Any]:
    """Iterate a bpf_object's programs."""
    p = lib.bpf_object__next_program(obj, ffi.NULL)
    while p != ffi.NULL:
        yield p
        p = lib.bpf_object__next_program(obj, p)


def maps(obj: Any) -> Iterator[Any]:
    """Iterate a bpf_object's maps."""
    m = lib.bpf_object__next_map(obj, ffi.NULL)
    while m != ffi.NULL:
        yield m
        m = lib.bpf_object__next_map(obj, m)


def object_btf(obj: Any) -> bytes:
    """The object's (finalized) BTF as raw bytes, b'' if it has none."""
    btf = lib.bpf_object__btf(obj)
    if btf == ffi.NULL:
        return b""
    size = ffi.new("uint32_t *")
    data = lib.btf__raw_data(btf, size)
    if data == ffi.NULL:
        return b""
    return bytes(ffi.buffer(data, size[0]))


def initial_value(m: Any) -> bytes:
    """A global-data map's initial contents."""
    size = ffi.new("size_t *")
    data = lib.bpf_map__initial_value(m, size)
    if data == ffi.NULL:
        return b""
    return bytes(ffi.buffer(data, size[0]))
