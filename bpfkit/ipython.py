"""The IPython extension: ``%load_ext bpfkit``.

It adds the ``%%bpf NAME`` cell magic, which compiles the cell's C (with :func:`bpfkit.compile`,
cached) into an :class:`~bpfkit.ObjectSpec` bound to ``NAME`` in the notebook; a compile error
shows clang's message with the line numbers the notebook shows for the cell (the ``%%bpf`` line
is line 1). ``--load`` binds the loaded :class:`~bpfkit.Object` instead (running the cell again
closes the object it replaces). And it shows numpy record arrays (event batches, map contents)
as tables, ``char[]`` fields as text.

Example::

    %load_ext bpfkit

    %%bpf counter
    #include "vmlinux.h"
    #include <bpf/bpf_helpers.h>
    ...

    obj = counter.load()
"""
from __future__ import annotations

import argparse
import re
import shlex
from typing import Any, Optional

import numpy as np

from .compiler import compile as compile_source
from .errors import BpfUsageError, CompileError
from .events.batch import batch_html, batch_text
from .loader import Object
from .loader import open as open_object

__all__ = ["load_ipython_extension", "unload_ipython_extension", "bpf_cell", "CellCompileError", "cell_source"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class CellCompileError(CompileError):
    """clang refused a ``%%bpf`` cell. IPython shows just clang's message (no Python traceback):
    the C is what needs fixing, not the notebook's Python.

    Example::

        except CellCompileError as e: print(e.clang)   # 'cell[counter]:4:5: error: ...'
    """

    def __init__(self, name: str, clang: str) -> None:
        super().__init__(f"%%bpf {name}: clang could not compile the cell:\n{clang}")
        self.clang = clang

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def cell_source(name: str, cell: str) -> str:
    """The C compiled for a cell named ``name``: a ``#line`` directive first, so that clang counts
    lines as the notebook does (the ``%%bpf`` line is 1) and names the file ``cell[NAME]``.

    Example::

        cell_source("x", "int a;")   # '#line 2 "cell[x]"\\nint a;'
    """
    return f'#line 2 "cell[{name}]"\n{cell}'


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="%%bpf", add_help=False,
                                description="compile the cell's BPF C into an ObjectSpec named NAME")
    p.add_argument("name")
    p.add_argument("--load", action="store_true", help="bind the loaded Object instead of the spec")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="MACRO[=VALUE]")
    p.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR")
    return p


def bpf_cell(line: str, cell: str, namespace: dict[str, Any]) -> Any:
    """What ``%%bpf LINE`` does with ``cell``: compile, open (and with ``--load`` load), bind the
    result in ``namespace`` under the name, and return it.

    Example::

        bpf_cell("counter", c_text, globals())   # globals()["counter"] is an ObjectSpec
    """
    try:
        args = _parser().parse_args(shlex.split(line))
    except SystemExit:
        raise BpfUsageError(f"usage: %%bpf NAME [--load] [-D MACRO[=VALUE]]... [-I DIR]... (got {line!r})") from None
    name = args.name
    if not _NAME.match(name):
        raise BpfUsageError(f"%%bpf {name}: the name must be a Python identifier (it becomes a variable)")
    if not cell.strip():
        raise BpfUsageError(f"%%bpf {name}: the cell is empty; write the program's C below the %%bpf line")
    cflags = [f"-D{d}" for d in args.defines]
    try:
        path = compile_source(cell_source(name, cell), cflags=cflags, include_dirs=args.include_dirs)
    except CompileError as e:
        raise CellCompileError(name, _clang_message(str(e))) from None
    spec = open_object(path, name=name)
    result: Any = spec
    if args.load:
        old = namespace.get(name)
        if isinstance(old, Object):
            old.close()  # the cell ran before: its programs would stay attached otherwise
        result = spec.load()
    namespace[name] = result
    return result


def _clang_message(message: str) -> str:
    """clang's own output from a CompileError (the first line names our cache file, not the cell)."""
    first, _, rest = message.partition("\n")
    return rest if first.startswith("clang failed to compile") and rest else message


def _records_html(arr: np.ndarray) -> Optional[str]:
    if arr.dtype.names is None or arr.ndim != 1:
        return None  # numpy's own view for everything but 1-D record arrays
    return batch_html(arr, "records")


def _records_pretty(arr: np.ndarray, p: Any, cycle: bool) -> None:
    if arr.dtype.names is None or arr.ndim != 1 or cycle:
        p.text(repr(arr))
    else:
        p.text(batch_text(arr, "records"))


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext bpfkit`` (through :func:`bpfkit.load_ipython_extension`).

    Example::

        %load_ext bpfkit
    """
    def bpf(line: str, cell: str) -> None:
        bpf_cell(line, cell, ipython.user_ns)

    bpf.__doc__ = ("%%bpf NAME [--load] [-D MACRO[=VALUE]]... [-I DIR]...: compile the cell's BPF C "
                   "into an ObjectSpec bound to NAME (with --load: the loaded Object).")
    ipython.register_magic_function(bpf, magic_kind="cell", magic_name="bpf")
    formatters = ipython.display_formatter.formatters
    formatters["text/html"].for_type(np.ndarray, _records_html)
    formatters["text/plain"].for_type(np.ndarray, _records_pretty)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext bpfkit``: record arrays show as numpy shows them again.

    Example::

        %unload_ext bpfkit
    """
    for mime in ("text/html", "text/plain"):
        try:
            ipython.display_formatter.formatters[mime].pop(np.ndarray)
        except KeyError:
            pass
    ipython.magics_manager.magics["cell"].pop("bpf", None)
