"""C++ (and Rust legacy) names made readable: ``_ZN6bpfkit6Widget4spinEi`` → ``bpfkit::Widget::spin(int)``.

Python has no demangler, so this asks binutils' ``c++filt`` once per batch of names (only names
starting with ``_Z`` are sent). Without ``c++filt`` names stay mangled, which is still correct.

Example::

    demangle(["_ZN3foo3barEi", "main"])     # ['foo::bar(int)', 'main']
"""
from __future__ import annotations

import shutil
import subprocess
import threading

_cache: dict[str, str] = {}
_lock = threading.Lock()
_MAX_CACHE = 1 << 16


def demangle(names: list[str]) -> list[str]:
    """``names`` with every mangled C++ name demangled (others unchanged).

    Example::

        demangle(["_ZN3foo3barEi"])    # ['foo::bar(int)']
    """
    todo = sorted({n for n in names if n.startswith("_Z") and n not in _cache and "\n" not in n})
    tool = shutil.which("c++filt") if todo else None
    if todo and tool:
        try:
            out = subprocess.run([tool], input="\n".join(todo) + "\n", capture_output=True, text=True,
                                 timeout=30).stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            out = []
        with _lock:
            if len(_cache) > _MAX_CACHE:
                _cache.clear()
            if len(out) == len(todo):
                _cache.update(zip(todo, out))
    return [_cache.get(n, n) for n in names]
