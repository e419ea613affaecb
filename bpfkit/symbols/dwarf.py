"""Source file and line of code addresses, from DWARF ``.debug_line`` (through pyelftools).

Decoding a line program is slow in pure Python (seconds for a libc-sized debug file), so it is
opt-in (``Symbolizer.user(pid, addrs, lines=True)``), done once per file, and turned into sorted
arrays so the lookups themselves are vectorised like the symbol lookups.

Example::

    lt = LineTable.from_file("/usr/lib/debug/.build-id/ab/cdef.debug")
    lt.lookup(np.array([0x1139], np.uint64))      # ['/src/prog.c:12']
"""
from __future__ import annotations

import os

import numpy as np

from ..binaries.elf import check_sections
from ..errors import BpfError, BpfNotFoundError, ObjectFormatError


class LineTable:
    """Rows of a DWARF line table as arrays, sorted by address.

    Example::

        LineTable.from_file(path).lookup(vaddrs)
    """

    def __init__(self, addrs: np.ndarray, files: np.ndarray, lines: np.ndarray, names: list[str]) -> None:
        self.addrs, self.files, self.lines, self.names = addrs, files, lines, names

    @classmethod
    def from_file(cls, path: str) -> "LineTable | None":
        """The line table of the ELF file at ``path``; None if it has no ``.debug_line``.

        Raises BpfNotFoundError (no such file) or ObjectFormatError (malformed DWARF)."""
        from elftools.elf.elffile import ELFFile

        try:
            f = open(path, "rb")
        except OSError as e:
            raise BpfNotFoundError(f"{path}: cannot open for line information ({e.strerror})") from None
        with f:
            try:
                elf = ELFFile(f)
                check_sections(elf)
                if elf.get_section_by_name(".debug_line") is None:
                    return None
                return cls._decode(elf)
            except BpfError:
                raise
            except Exception as e:  # noqa: BLE001 - pyelftools raises whatever malformed DWARF makes it hit
                raise ObjectFormatError(f"{path}: malformed DWARF line information ({type(e).__name__}: {e})") from None

    @classmethod
    def _decode(cls, elf: "object") -> "LineTable":
        dwarf = elf.get_dwarf_info()  # type: ignore[attr-defined]
        addrs: list[int] = []
        files: list[int] = []
        lines: list[int] = []
        names: list[str] = []
        index: dict[str, int] = {}
        for cu in dwarf.iter_CUs():
            prog = dwarf.line_program_for_CU(cu)
            if prog is None:
                continue
            v5 = prog["version"] >= 5
            dirs = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d)
                    for d in prog["include_directory"]]
            comp_dir = cu.get_top_DIE().attributes.get("DW_AT_comp_dir")
            base_dir = comp_dir.value.decode("utf-8", "replace") if comp_dir is not None else ""
            local: dict[int, int] = {}
            entries = prog["file_entry"]
            for entry in prog.get_entries():
                st = entry.state
                if st is None:
                    continue
                if st.end_sequence:
                    addrs.append(st.address)
                    files.append(-1)
                    lines.append(0)
                    continue
                fid = local.get(st.file)
                if fid is None:
                    k = st.file if v5 else st.file - 1
                    fname = ""
                    if 0 <= k < len(entries):
                        fe = entries[k]
                        fname = fe.name.decode("utf-8", "replace") if isinstance(fe.name, bytes) else str(fe.name)
                        d = fe.dir_index if v5 else fe.dir_index - 1
                        if not os.path.isabs(fname):
                            folder = dirs[d] if 0 <= d < len(dirs) else base_dir
                            if not os.path.isabs(folder):
                                folder = os.path.join(base_dir, folder)
                            fname = os.path.normpath(os.path.join(folder, fname))
                    fid = local[st.file] = index.setdefault(fname or "??", len(index))
                addrs.append(st.address)
                files.append(fid)
                lines.append(st.line)
        names = list(index)
        a = np.array(addrs, np.uint64)
        fl = np.array(files, np.int32)
        order = np.lexsort(((fl >= 0).astype(np.int8), a))  # at one address, an end row sorts first
        return cls(a[order], fl[order], np.array(lines, np.int32)[order], names)

    def lookup(self, vaddrs: np.ndarray) -> list[str]:
        """``"file:line"`` per link-time address (``""`` where there is no line information)."""
        v = np.asarray(vaddrs, np.uint64)
        if not len(self.addrs) or not len(v):
            return [""] * len(v)
        i = np.searchsorted(self.addrs, v, side="right").astype(np.int64) - 1
        ok = i >= 0
        ic = np.maximum(i, 0)
        ok &= self.files[ic] >= 0
        out = [""] * len(v)
        for k in np.flatnonzero(ok).tolist():
            j = int(ic[k])
            out[k] = f"{self.names[int(self.files[j])]}:{int(self.lines[j])}"
        return out
