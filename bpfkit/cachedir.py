"""Where bpfkit keeps its caches (compiled objects, vmlinux.h, the kernel BTF index, guest kernels).

Standard library only: the loader asks for it on every first CO-RE load, and importing the compiler
(and through it the build tools) for a path cost a first load ~15 ms.

Example::

    >>> cache_root()
    PosixPath('/root/.cache/bpfkit')
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

__all__ = ["cache_root"]


def cache_root(cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None) -> Path:
    """Root of bpfkit's cache: ``cache_dir``, else $BPFKIT_CACHE_DIR, else $XDG_CACHE_HOME/bpfkit,
    else ~/.cache/bpfkit. Objects go to ``<root>/obj/``, vmlinux.h to ``<root>/include/``.

    Example::

        >>> cache_root()
        PosixPath('/root/.cache/bpfkit')
    """
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("BPFKIT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "bpfkit"
