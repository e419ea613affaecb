"""User-space programs as files and processes: ELF symbols and segments (``elf``), finding a library
by its short name (``libraries``), USDT notes (``usdt_notes``), and what a process has mapped
(``procfs``). Probes and symbolizers build on these.

Example::

    from bpfkit.binaries import resolve_library, symbol_offset
    symbol_offset(resolve_library("c"), "malloc")
"""
from .elf import (IfuncWarning, Segment, Symbol, address_to_offset, elf_file_key, find_symbol, function_at,
                  list_symbols, load_segments, symbol_offset)
from .libraries import resolve_library
from .procfs import load_address, mapped_files, no_process
from .usdt_notes import UsdtArg, UsdtArgKind, UsdtNote, parse_usdt_args, read_usdt_notes

__all__ = ["IfuncWarning", "Segment", "Symbol", "address_to_offset", "elf_file_key", "find_symbol", "function_at",
           "list_symbols", "load_segments", "symbol_offset", "resolve_library", "load_address", "mapped_files",
           "no_process", "UsdtArg", "UsdtArgKind", "UsdtNote", "parse_usdt_args", "read_usdt_notes"]
