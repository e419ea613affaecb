"""Why a load failed, in words: what was not found (an fentry or tp_btf target, a kernel symbol or
config option an extern names, a type a CO-RE relocation needs) and which map or program the
kernel refused, and why. A bare ``ESRCH 3`` or ``EINVAL 22`` says none of that.

The explanations are plain functions of what failed, so every backend gives the same words: the
libbpf backend finds the facts in libbpf's messages (:func:`from_libbpf_messages`), a backend that
loads by itself calls :func:`missing_attach_target`, :func:`missing_extern`,
:func:`core_relocation` and :func:`map_refused` directly.

Example::

    missing_attach_target("on_open", "fentry/do_sys_opn", "do_sys_opn")
    # "program 'on_open' (SEC('fentry/do_sys_opn')): the kernel has no function 'do_sys_opn' ..."
"""
from __future__ import annotations

import errno
import re
from typing import Iterable, Optional

from .. import _sys as sc
from ..errors import ENOTSUPP, LoadError
from ..maps.rules import MapShape, map_create_problem
from .parts import MapSpec, Namespace, ProgramSpec

__all__ = ["missing_attach_target", "missing_extern", "core_relocation", "map_refused", "program_refused",
           "unknown_section", "from_libbpf_messages", "load_error"]

# what an attach target is, by the section kind that names one (and where to list the candidates)
_TARGETS = {
    "fentry": ("function", "fentry:*"), "fexit": ("function", "fentry:*"),
    "fmod_ret": ("function", "fentry:*"), "lsm": ("LSM hook (bpf_lsm_*)", "fentry:bpf_lsm_*"),
    "tp_btf": ("raw tracepoint", "rawtracepoint:*"), "iter": ("BPF iterator", ""),
    "freplace": ("BPF program function", ""), "struct_ops": ("struct_ops member", ""),
}


def missing_attach_target(program: str, section: str, target: str) -> str:
    """The explanation for a program whose attach target is not in the kernel's BTF.

    Example::

        missing_attach_target("on_x", "tp_btf/sched_swich", "sched_swich")
    """
    kind = section.split("/", 1)[0].split(".", 1)[0].removesuffix(".s")
    what, listing = _TARGETS.get(kind, ("attach target", ""))
    name = target.removeprefix("btf_trace_")
    hint = f"; list them with bpfkit.probes.list('{listing}')" if listing else ""
    return (f"program {program!r} (SEC({section!r})): this kernel has no {what} {name!r} in its BTF, so there "
            f"is nothing to attach to (a typo, a name this kernel version does not have, or one in a module "
            f"that is not loaded){hint}")


def missing_extern(kind: str, name: str, weak_ok: bool = True) -> str:
    """The explanation for an ``extern`` the running kernel cannot satisfy: ``kind`` is
    "kconfig" (``__kconfig``), "kfunc" (a kernel function called through ``__ksym``) or "ksym"
    (a kernel variable).

    Example::

        missing_extern("kconfig", "CONFIG_FOO")
    """
    weak = " Declare it __weak to load without it" if weak_ok else ""
    if kind == "kconfig" or name.startswith("CONFIG_"):
        return (f"the object needs kernel config option {name}, which this kernel's config does not have."
                f"{weak} (its value is then 0).")
    if kind == "kfunc":
        return (f"the object calls kernel function (kfunc) {name!r}, which this kernel does not export in its "
                f"BTF (too old, or the function is not a kfunc).{weak} and test bpf_ksym_exists({name}) first.")
    return (f"the object uses kernel symbol {name!r}, which is not in this kernel's BTF (or kallsyms)."
            f"{weak} and test bpf_ksym_exists({name}) first.")


_CORE = re.compile(r"failed to resolve CO-RE relocation (?P<kind><\w+>) \[\d+\] (?P<what>[^\n(]+?)\s*\((?P<acc>[^)]*)\)")


def core_relocation(program: str, log_line: str) -> str:
    """The explanation for a CO-RE relocation libbpf could not resolve against the kernel's BTF,
    from its ``failed to resolve CO-RE relocation ...`` line.

    Example::

        core_relocation("on_x", "failed to resolve CO-RE relocation <byte_off> [5] struct task_struct.foo (0:9 @ offset 4)")
    """
    m = _CORE.search(log_line)
    what = m.group("what").strip() if m else "a type or field"
    kind = m.group("kind") if m else ""
    thing = "type" if kind in ("<type_id>", "<type_size>", "<type_exists>", "<type_matches>") else "field"
    return (f"program {program!r}: a CO-RE relocation failed: the running kernel has no {thing} {what} "
            f"(its BTF differs from the headers the program was compiled with). Guard the access with "
            f"bpf_core_{thing}_exists() and read it only where it exists, or drop it.")


def map_refused(name: str, shape: MapShape, err: int) -> str:
    """The explanation for a map the kernel would not create.

    Example::

        map_refused("events", MapShape(sc.BPF_MAP_TYPE_RINGBUF, 0, 0, 12345, 0), errno.EINVAL)
    """
    kind = sc.MAP_TYPE_NAMES.get(shape.map_type, str(shape.map_type))
    why = map_create_problem(shape)
    if not why and err == errno.E2BIG:
        why = "it is too big (key, value or max_entries beyond what the kernel allocates)"
    if not why and err in (errno.EPERM, errno.EACCES):
        why = "not permitted (root, or CAP_BPF; some map types need CAP_SYS_ADMIN or CAP_NET_ADMIN)"
    if not why and err in (ENOTSUPP, errno.EOPNOTSUPP):
        why = "this kernel does not support that map type or flag"
    return (f"map {name!r} ({kind}, key {shape.key_size} B, value {shape.value_size} B, max_entries "
            f"{shape.max_entries}, flags {shape.flags:#x}) was refused by the kernel "
            f"({errno.errorcode.get(err, err)}): {why or 'the kernel gave no more reason'}")


def program_refused(program: str, section: str, prog_type: int, attach_type: int, flags: int, err: int) -> str:
    """The explanation for a program the kernel refused before verifying it (no verifier log).

    Example::

        program_refused("on_x", "tracepoint/a/b", 999, 0, 0, errno.EINVAL)
    """
    kind = sc.PROG_TYPE_NAMES.get(prog_type, f"unknown type {prog_type}")
    why = {errno.EINVAL: "its program type, expected attach type and flags do not fit each other or this kernel",
           errno.E2BIG: "it is too big (more instructions than the kernel takes)",
           ENOTSUPP: "this kernel does not support that program type"}.get(err, "")
    return (f"program {program!r} (SEC({section!r}), {kind}, expected_attach_type {attach_type}, flags {flags:#x}) "
            f"was refused before verification ({errno.errorcode.get(err, err)})" + (f": {why}" if why else ""))


def unknown_section(program: str, section: str) -> str:
    """The explanation for a program in a section that names no program type.

    Example::

        unknown_section("on_x", "tracepoint_typo/foo")
    """
    return (f"program {program!r} is in SEC({section!r}), which names no BPF program type; see "
            "bpfkit.sections for the section names (e.g. 'tracepoint/CATEGORY/NAME', 'kprobe/FUNC', "
            "'uprobe', 'fentry/FUNC')")


_MSG_TARGET = re.compile(r"prog '(?P<prog>[^']+)': failed to find kernel BTF type ID of '(?P<target>[^']+)'")
_MSG_EXTERN_NOT_FOUND = re.compile(r"extern \((?P<kind>[\w ]+)\) '(?P<name>[^']+)': not found")
_MSG_EXTERN_UNRESOLVED = re.compile(r"extern '(?P<name>[^']+)' \(strong\): not resolved")
_MSG_MAP = re.compile(r"map '(?P<map>[^']+)': failed to create: .*?\((?P<err>-?\d+)\)")
_MSG_PROG_FAILED = re.compile(r"prog '(?P<prog>[^']+)': BPF program load failed: ")
_MSG_SECTION = re.compile(r"prog '(?P<prog>[^']+)': missing BPF prog type, check ELF section name '(?P<sec>[^']+)'")


def from_libbpf_messages(obj: str, programs: Namespace[ProgramSpec], maps: Namespace[MapSpec], err: int,
                         messages: Iterable[str], log: str = "") -> Optional[tuple[str, int]]:
    """``(explanation, errno)`` for a failed libbpf load of object ``obj``, from libbpf's messages
    (and the verifier log); None when nothing in them is one of the failures above.

    Example::

        found = from_libbpf_messages("x", spec.programs, spec.maps, 3, ["prog 'on_x': failed to find kernel BTF type ID of 'foo': -3"])
    """
    text = "\n".join(messages)
    if m := _MSG_TARGET.search(text):
        prog = m.group("prog")
        section = programs[prog].section if prog in programs else "?"
        return missing_attach_target(prog, section, m.group("target")), errno.ESRCH
    if m := _MSG_EXTERN_NOT_FOUND.search(text):
        kind = "kfunc" if "func" in m.group("kind") else "ksym"
        return missing_extern(kind, m.group("name")), errno.ESRCH
    if m := _MSG_EXTERN_UNRESOLVED.search(text):
        name = m.group("name")
        return missing_extern("kconfig" if name.startswith("CONFIG_") else "ksym", name), errno.ESRCH
    if m := _MSG_SECTION.search(text):
        return unknown_section(m.group("prog"), m.group("sec")), errno.EINVAL
    if m := _MSG_MAP.search(text):
        libbpf_name = m.group("map")
        ms = next((s for s in maps.values() if s.libbpf_name == libbpf_name or s.name == libbpf_name), None)
        merr = abs(int(m.group("err"))) or err
        if ms is None:
            return f"map {libbpf_name!r} was refused by the kernel ({errno.errorcode.get(merr, merr)})", merr
        shape = MapShape(ms.map_type, ms.key_size, ms.value_size, ms.max_entries, ms.flags,
                         has_btf=bool(ms.key_type_id or ms.value_type_id))
        return map_refused(ms.name, shape, merr), merr
    if (m := _MSG_PROG_FAILED.search(text)) and not log and m.group("prog") in programs:
        ps = programs[m.group("prog")]
        return program_refused(ps.name, ps.section, ps.prog_type, ps.expected_attach_type, ps.flags, err), err
    if "failed to resolve CO-RE relocation" in log:
        line = next(ln for ln in log.splitlines() if "failed to resolve CO-RE relocation" in ln)
        prog = next((p for p in programs if f"prog '{p}'" in text), "?")
        return core_relocation(prog, line), err
    return None


def load_error(obj: str, explanation: str, err: int, detail: str = "", log: str = "") -> LoadError:
    """The LoadError for a failure :func:`from_libbpf_messages` explained.

    Example::

        raise load_error("x", missing_extern("kconfig", "CONFIG_FOO"), errno.ESRCH)
    """
    return LoadError(f"loading {obj!r} failed: {explanation}" + (f"\n{detail}" if detail else ""), err, log)
