"""What an :class:`ObjectSpec` and a live :class:`Object` show in a notebook (``_repr_html_``) and
at an IPython prompt (``_repr_pretty_``): programs with their sections and attach state, maps with
type and sizes, global variables with their values.

The attach state comes from the kernel: each live link's ``BPF_OBJ_GET_INFO_BY_FD`` names the
program it runs, so a program shows the links that really run it.

Example::

    spec                # in a notebook: tables of programs, maps, globals
    obj                 # the same, live: program ids, links, map element counts
"""
from __future__ import annotations

from typing import Any, Optional

from .. import _sys as sc
from .. import display
from ..errors import BpfError
from ..maps.kinds import EVENT_TYPES

__all__ = ["spec_tables", "object_tables", "attachments", "html", "text"]

Table = tuple[str, list[str], list[list[Any]]]


def _dt(dtype: Any, size: int) -> str:
    if dtype is not None:
        return display.dtype_text(dtype)
    return f"{size} B" if size else "-"


def _value(m: Any, map_type: int) -> str:
    """The value column: event buffers name their record type (BPFKIT_RINGBUF / BPFKIT_PERFBUF)."""
    if map_type in EVENT_TYPES:
        rec = getattr(m, "record_dtype", None)
        return f"records {display.dtype_text(rec)}" if rec is not None else "-"
    return _dt(m.value_dtype, m.value_size)


def _globals(sections: dict[str, Any]) -> Optional[Table]:
    rows = []
    for sec, gv in sections.items():
        try:
            arr = gv.array
        except BpfError:
            continue
        for name in arr.dtype.names or ():
            if name.startswith("__bpfkit_"):
                continue  # bpfkit.h's drop counters: shown by the readers as `dropped`
            rows.append([sec, name, display.dtype_text(arr.dtype.fields[name][0]), arr[name][0]])
    return ("globals", ["section", "name", "type", "value"], rows) if rows else None


def spec_tables(spec: Any) -> list[Table]:
    """(caption, header, rows) of a spec's programs, maps and globals.

    Example::

        [caption for caption, _, _ in spec_tables(spec)]   # ['programs', 'maps', 'globals']
    """
    progs = [[p.name, p.section, p.type, p.insn_count, "yes" if p.autoload else "no"] for p in spec.programs.values()]
    maps = [[m.name, m.type, _dt(m.key_dtype, m.key_size), _value(m, m.map_type), m.max_entries]
            for m in spec.maps.values() if not m.internal]
    tables: list[Table] = [("programs", ["name", "section", "type", "insns", "autoload"], progs),
                           ("maps", ["name", "type", "key", "value", "max_entries"], maps)]
    g = _globals(spec.sections)
    return tables + ([g] if g else [])


def _links(link: Any) -> list[Any]:
    subs = getattr(link, "links", None)
    return [link] if subs is None else [s for sub in subs for s in _links(sub)]


def attachments(obj: Any) -> dict[int, list[str]]:
    """Program id -> descriptions of the live links (made through ``obj``) that run it.

    Example::

        attachments(obj)[obj.progs.on_getpid.id]   # ['tracepoint syscalls:sys_enter_getpid']
    """
    out: dict[int, list[str]] = {}
    for link in obj.links:
        ids = set()
        for sub in _links(link):
            fd = -1 if sub.closed else sub.fd
            if fd >= 0:  # perf events attached by ioctl have no link fd to ask
                try:
                    ids.add(int(sc.link_info(fd).prog_id))
                except BpfError:
                    pass
        for pid in ids:
            out.setdefault(pid, []).append(link.description)
    return out


def _entries(m: Any) -> str:
    if m.type in EVENT_TYPES:
        return "-"
    try:
        return f"{len(m):,}"
    except BpfError:
        return "?"


def object_tables(obj: Any) -> list[Table]:
    """(caption, header, rows) of a live object's programs (id, attached links), maps (element
    counts) and globals (current values).

    Example::

        object_tables(obj)[0][2][0]   # ['on_getpid', 'tracepoint/syscalls/...', 'tracepoint', 42, '-']
    """
    attached = attachments(obj)
    progs = []
    for p in obj.progs.values():
        pid = p.id
        progs.append([p.name, p.section, p.type, pid, "; ".join(attached.get(pid, [])) or "-"])
    # internal maps (.bss, .data, .rodata, .kconfig) are shown as the globals they hold
    maps = [[m.name, m.type_name, _dt(m.key_dtype, m.key_size), _value(m, m.type), m.max_entries, _entries(m)]
            for m in obj.maps.values() if not m.name.startswith(".")]
    tables: list[Table] = [("programs", ["name", "section", "type", "id", "attached"], progs),
                           ("maps", ["name", "type", "key", "value", "max_entries", "elements"], maps)]
    g = _globals(obj.sections)
    return tables + ([g] if g else [])


def html(title: str, facts: list[tuple[str, Any]], tables: list[Table]) -> str:
    """A card with ``tables`` (as :func:`spec_tables` gives them).

    Example::

        html("ObjectSpec count", [("programs", 1)], spec_tables(spec))
    """
    return display.card(title, facts, [display.html_table(h, r, caption=c) for c, h, r in tables if r])


def text(title: str, facts: list[tuple[str, Any]], tables: list[Table]) -> str:
    """The same as text.

    Example::

        print(text("ObjectSpec count", [], spec_tables(spec)))
    """
    out = [title + (": " + ", ".join(f"{k} {v}" for k, v in facts) if facts else "")]
    for caption, header, rows in tables:
        if rows:
            out.append(f" {caption}:")
            out.append(display.text_table(header, rows, indent="   "))
    return "\n".join(out)
