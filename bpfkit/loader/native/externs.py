"""Resolving an object's externs: ``__kconfig`` values (``CONFIG_*`` from the kernel's config,
``LINUX_KERNEL_VERSION``, ``LINUX_HAS_*``) written into the ``.kconfig`` map, and ``__ksym``
symbols — typed ones (variables and kfuncs) by kernel BTF id, typeless ones by address from
``/proc/kallsyms``.

Example::

    data, values = resolve(model, target)
    data          # the .kconfig map's initial bytes
    values[i]     # ExternValue of model.externs[i]
"""
from __future__ import annotations

import errno
import os
import re
import struct
from typing import Optional

from ...btf.index import KIND_FUNC, KIND_VAR, BtfIndex
from ...errors import BpfError, LoadError
from . import core
from .collect import kernel_version
from .model import (EXT_KCFG, EXT_KSYM, KCFG_BOOL, KCFG_CHAR, KCFG_CHAR_ARR, KCFG_INT, KCFG_TRISTATE, Extern,
                    Model)
from .relocate import ExternValue
from .target import Target

__all__ = ["resolve", "read_kconfig", "assign_fd_array"]

_TRISTATE = {"n": 0, "y": 1, "m": 2}  # enum libbpf_tristate


def read_kconfig() -> tuple[str, list[str]]:
    """(where from, lines) of the running kernel's config: /boot/config-$(uname -r), else /proc/config.gz."""
    for path in (f"/boot/config-{os.uname().release}", "/proc/config.gz"):
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if raw[:2] == b"\x1f\x8b":
            import gzip  # only for /proc/config.gz

            raw = gzip.decompress(raw)
        return path, raw.decode(errors="replace").splitlines()
    raise LoadError("the kernel's config is not readable (/boot/config-$(uname -r) nor /proc/config.gz, which "
                    "needs CONFIG_IKCONFIG_PROC): the object's CONFIG_* __kconfig externs need it", errno.ENOENT)


def _set_num(ext: Extern, buf: bytearray, value: int) -> None:
    if ext.kcfg_type not in (KCFG_INT, KCFG_CHAR, KCFG_BOOL):
        raise LoadError(f"extern (kcfg) '{ext.name}': value {value} implies an integer, char or bool type")
    if ext.kcfg_type == KCFG_BOOL and value > 1:
        raise LoadError(f"extern (kcfg) '{ext.name}': value {value} isn't boolean compatible")
    bits = ext.kcfg_size * 8
    if ext.kcfg_size != 8:
        ok = (value + (1 << (bits - 1))) < (1 << bits) if ext.kcfg_signed else value >> bits == 0
        if not ok or value < -(1 << 63):
            raise LoadError(f"extern (kcfg) '{ext.name}': value {value} doesn't fit in {ext.kcfg_size} bytes")
    fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}.get(ext.kcfg_size)
    if fmt is None:
        raise LoadError(f"extern (kcfg) '{ext.name}': unsupported size {ext.kcfg_size}")
    struct.pack_into(fmt, buf, ext.data_off, value & ((1 << bits) - 1))


def _set_line(ext: Extern, buf: bytearray, value: str) -> None:
    first = value[:1]
    where = f"extern (kcfg) '{ext.name}'"
    if first in ("y", "n", "m"):
        if ext.kcfg_type == KCFG_BOOL:
            if first == "m":
                raise LoadError(f"{where}: value 'm' implies a tristate or char type")
            buf[ext.data_off] = int(first == "y")
        elif ext.kcfg_type == KCFG_TRISTATE:
            struct.pack_into("<I", buf, ext.data_off, _TRISTATE[first])
        elif ext.kcfg_type == KCFG_CHAR:
            buf[ext.data_off] = ord(first)
        else:
            raise LoadError(f"{where}: value '{first}' implies a bool, tristate or char type")
    elif first == '"':
        if ext.kcfg_type != KCFG_CHAR_ARR or not value.endswith('"') or len(value) < 2:
            raise LoadError(f"{where}: value {value} implies a char array type")
        s = value[1:-1].encode()[: ext.kcfg_size - 1]
        buf[ext.data_off: ext.data_off + len(s) + 1] = s + b"\0"
    else:
        try:
            num = int(value, 0)
        except ValueError:
            raise LoadError(f"{where}: value {value!r} isn't a valid integer") from None
        if ext.kcfg_type not in (KCFG_INT, KCFG_CHAR):
            raise LoadError(f"{where}: value {value} implies an integer type")
        _set_num(ext, buf, num)


def _has_syscall_wrapper(target: Target) -> bool:
    """LINUX_HAS_SYSCALL_WRAPPER, as libbpf finds it: a kprobe on ``__<arch>_sys_bpf`` can be made
    (so a kernel without kprobes says 0, as it does under libbpf). The function is looked up in the
    kernel's BTF rather than in /proc/kallsyms (a long read)."""
    if not os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        return False
    from ...probes.kprobe import syscall_function  # only objects with this extern need it

    try:
        return target.find(syscall_function("bpf"), KIND_FUNC)[0] > 0
    except BpfError:
        return False


def _has_bpf_cookie() -> bool:
    from ...features import helper  # only objects with this extern need it

    return helper("get_attach_cookie", "tracepoint")


def resolve(model: Model, target: Target, local: BtfIndex) -> tuple[Optional[bytearray], list[ExternValue]]:
    """(initial .kconfig map bytes or None, one ExternValue per extern) — LoadError for a strong
    extern that cannot be resolved."""
    values = [ExternValue() for _ in model.externs]
    kcfg = bytearray(model.maps[model.kconfig_map].value_size) if model.kconfig_map >= 0 else None
    need_config = need_kallsyms = False
    for i, ext in enumerate(model.externs):
        if ext.kind == EXT_KSYM:
            if ext.ksym_type_id:
                _resolve_typed_ksym(ext, values[i], target, local)
            else:
                need_kallsyms = True
        elif ext.kind == EXT_KCFG and kcfg is not None:
            if ext.name.startswith("CONFIG_"):
                need_config = True
                continue
            if ext.name == "LINUX_KERNEL_VERSION":
                value = kernel_version()
            elif ext.name == "LINUX_HAS_BPF_COOKIE":
                value = int(_has_bpf_cookie())
            elif ext.name == "LINUX_HAS_SYSCALL_WRAPPER":
                value = int(_has_syscall_wrapper(target))
            elif not ext.name.startswith("LINUX_") or not ext.is_weak:
                raise LoadError(f"extern (kcfg) '{ext.name}': unknown virtual extern (bpfkit fills CONFIG_*, "
                                "LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE, LINUX_HAS_SYSCALL_WRAPPER)")
            else:
                continue
            _set_num(ext, kcfg, value)
            values[i].is_set = True
    if need_config and kcfg is not None:
        _, lines = read_kconfig()
        by_name = {e.name: i for i, e in enumerate(model.externs) if e.kind == EXT_KCFG}
        for line in lines:
            if not line.startswith("CONFIG_"):
                continue
            key, sep, text = line.partition("=")
            if not sep or not text:
                raise LoadError(f"kernel config line {line!r} has no value")
            found = by_name.get(key)
            if found is None or values[found].is_set:
                continue
            _set_line(model.externs[found], kcfg, text)
            values[found].is_set = True
    if need_kallsyms:
        _resolve_kallsyms(model, values)
    for ext, val in zip(model.externs, values):
        if not val.is_set and not ext.is_weak:
            what = "__kconfig" if ext.kind == EXT_KCFG else "__ksym"
            raise LoadError(f"extern {what} '{ext.name}' was not found in this kernel ({target.name}); declare it "
                            "__weak to default it to zero")
    return kcfg, values


def _resolve_kallsyms(model: Model, values: list[ExternValue]) -> None:
    want = {e.name: i for i, e in enumerate(model.externs)
            if e.kind == EXT_KSYM and not e.ksym_type_id and not e.is_func}
    try:
        with open("/proc/kallsyms", "rb") as f:
            text = f.read()
    except OSError as e:
        raise LoadError(f"cannot read /proc/kallsyms for the object's __ksym externs: {e}", e.errno or 0) from None
    for name, i in want.items():
        # one regular-expression scan per symbol: the file has 100k+ lines, a Python loop is slow
        for m in re.finditer(rb"^([0-9a-f]+) \S " + re.escape(name.encode()) + rb"(?:\t.*)?$", text, re.M):
            addr = int(m.group(1), 16)
            if values[i].is_set and values[i].addr != addr:
                raise LoadError(f"extern (ksym) '{name}': ambiguous, at {values[i].addr:#x} and {addr:#x}")
            values[i].is_set, values[i].addr = True, addr


def _resolve_typed_ksym(ext: Extern, val: ExternValue, target: Target, local: BtfIndex) -> None:
    kind = KIND_FUNC if ext.is_func else KIND_VAR
    tid, module = target.find(ext.name, kind)
    if tid < 0:
        if ext.is_weak:
            return
        what = "function (kfunc)" if ext.is_func else "variable"
        raise LoadError(f"extern __ksym {what} '{ext.name}' is not in the kernel's BTF ({target.name})")
    btf = target.index_of(module)
    local_t = ext.ksym_type_id
    targ_t = btf.ref(tid) if ext.is_func else btf.skip_mods(btf.ref(tid))
    if not core.types_are_compat(local, local_t, btf, targ_t):
        raise LoadError(f"extern __ksym '{ext.name}': its declared type [{local_t}] {local.kind_name(local_t)} "
                        f"{local.name(local_t)} is incompatible with the kernel's [{targ_t}] {btf.kind_name(targ_t)} "
                        f"{btf.name(targ_t)}")
    val.is_set = True
    val.btf_id = tid
    if module is not None:
        val.btf_fd = target.module_fd(module)


def assign_fd_array(model: Model, values: list[ExternValue]) -> list[int]:
    """fd_array for kfuncs in module BTF: each module's fd gets a slot (never 0), written into the
    call's ``off`` (libbpf's layout). Returns the array ([] when no module kfunc is used)."""
    fds: list[int] = []
    slot: dict[int, int] = {}
    for ext, val in zip(model.externs, values):
        if ext.kind != EXT_KSYM or not ext.is_func or not val.is_set or not val.btf_fd:
            continue
        if val.btf_fd not in slot:
            if not fds:
                fds.append(0)
            slot[val.btf_fd] = len(fds)
            fds.append(val.btf_fd)
        val.fd_index = slot[val.btf_fd]
    return fds
