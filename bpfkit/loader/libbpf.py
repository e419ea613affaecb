"""cffi ABI-mode bindings to the system ``libbpf.so.1`` (no C extension to build).

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

import cffi

from ..errors import FeatureNotSupported

__all__ = [
    "capture_messages", "string", "prog_type_name", "attach_type_name", "open_object", "programs", "maps",
    "object_btf", "initial_value", "ffi", "lib",
]

CDEF = """
struct bpf_object;
struct bpf_program;
struct bpf_map;
struct btf;

struct bpf_object_open_opts {
    size_t sz;
    const char *object_name;
    bool relaxed_maps;
    const char *pin_root_path;
    uint32_t _stub_attach_prog_fd;
    const char *kconfig;
    const char *btf_custom_path;
    char *kernel_log_buf;
    size_t kernel_log_size;
    uint32_t kernel_log_level;
};

typedef int (*libbpf_print_fn_t)(int level, const char *fmt, void *args);
libbpf_print_fn_t libbpf_set_print(libbpf_print_fn_t fn);
int vsnprintf(char *str, size_t size, const char *format, void *ap);

struct bpf_object *bpf_object__open_mem(const void *obj_buf, size_t obj_buf_sz,
                                        const struct bpf_object_open_opts *opts);
struct bpf_object *bpf_object__open_file(const char *path, const struct bpf_object_open_opts *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
const char *bpf_object__name(const struct bpf_object *obj);
struct btf *bpf_object__btf(const struct bpf_object *obj);
const void *btf__raw_data(const struct btf *btf, uint32_t *size);

struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog);
const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
size_t bpf_program__insn_cnt(const struct bpf_program *prog);
int bpf_program__fd(const struct bpf_program *prog);
int bpf_program__type(const struct bpf_program *prog);
int bpf_program__set_type(struct bpf_program *prog, int type);
int bpf_program__expected_attach_type(const struct bpf_program *prog);
int bpf_program__set_expected_attach_type(struct bpf_program *prog, int type);
uint32_t bpf_program__flags(const struct bpf_program *prog);
int bpf_program__set_flags(struct bpf_program *prog, uint32_t flags);
int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd,
                                   const char *attach_func_name);

struct bpf_map *bpf_object__next_map(const struct bpf_object *obj, const struct bpf_map *map);
const char *bpf_map__name(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
int bpf_map__type(const struct bpf_map *map);
uint32_t bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, uint32_t max_entries);
uint32_t bpf_map__map_flags(const struct bpf_map *map);
int bpf_map__set_map_flags(struct bpf_map *map, uint32_t flags);
uint32_t bpf_map__key_size(const struct bpf_map *map);
uint32_t bpf_map__value_size(const struct bpf_map *map);
int bpf_map__set_value_size(struct bpf_map *map, uint32_t size);
uint32_t bpf_map__btf_key_type_id(const struct bpf_map *map);
uint32_t bpf_map__btf_value_type_id(const struct bpf_map *map);
int bpf_map__set_initial_value(struct bpf_map *map, const void *data, size_t size);
const void *bpf_map__initial_value(struct bpf_map *map, size_t *psize);
bool bpf_map__is_internal(const struct bpf_map *map);
bool bpf_map__autocreate(const struct bpf_map *map);
struct bpf_map *bpf_map__inner_map(struct bpf_map *map);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
uint64_t bpf_map__map_extra(const struct bpf_map *map);

const char *libbpf_bpf_prog_type_str(int t);
const char *libbpf_bpf_attach_type_str(int t);
"""

ffi = cffi.FFI()
ffi.cdef(CDEF)

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


@ffi.callback("int(int, const char *, void *)")
def _print_cb(level: int, fmt: Any, args: Any) -> int:
    try:
        buf = ffi.new("char[]", 65536)
        n = _libc.vsnprintf(buf, 65536, fmt, args)
        text = ffi.string(buf).decode(errors="replace").rstrip("\n")
        sink = getattr(_capture, "lines", None)
        if sink is not None:
            sink.append((level, text))
        _log.log(_LEVELS.get(level, logging.DEBUG), "%s", text)
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
