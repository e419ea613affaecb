"""Global variables as attributes: see :mod:`bpfkit.loader.globals` (the class lives with the
loader, which builds the editable pre-load view; the live Object reuses it over an mmap)."""
from ..loader.globals import GlobalVars

__all__ = ["GlobalVars"]
