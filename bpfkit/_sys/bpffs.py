"""Pin paths: every pin, unpin and open-by-path happens in a directory that is, once resolved, on
a bpf filesystem. The directory is opened first and the kernel is given that open directory, so
``/sys/fs/bpf/../../tmp/x`` or a symlink swapped in meanwhile cannot point the call elsewhere (an
unpin is an unlink: outside bpffs it would delete an ordinary file).

Example::

    from bpfkit import _sys as sc
    sc.obj_pin(fd, "/sys/fs/bpf/counts")
    sc.unpin("/sys/fs/bpf/counts")
    sc.unpin("/sys/fs/bpf/../../tmp/file")   # BpfUsageError: /tmp is not a bpf filesystem
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from typing import Iterator, Union

from ..errors import BpfNotFoundError, BpfUsageError
from .args import check_cstr
from .libc import libc

__all__ = ["BPF_FS_MAGIC", "fs_type", "pin_dir", "unpin"]

BPF_FS_MAGIC = 0xCAFE4A11
_FS_NAMES = {0x01021994: "tmpfs", 0xEF53: "ext4", 0x62656572: "sysfs", 0x9FA0: "proc", 0x794C7630: "overlayfs",
             0x9123683E: "btrfs", 0x58465342: "xfs", 0x74726163: "tracefs", 0x64626720: "debugfs",
             0x27E0EB: "cgroup", 0x63677270: "cgroup2"}
_fstatfs = libc.fstatfs
_fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]
_fstatfs.restype = ctypes.c_int


def fs_type(fd: int) -> int:
    """``f_type`` of the filesystem holding open file ``fd`` (fstatfs(2)).

    Example::

        fs_type(dfd) == BPF_FS_MAGIC
    """
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes; f_type is its first long
    if _fstatfs(fd, buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


@contextlib.contextmanager
def pin_dir(path: Union[str, os.PathLike], what: str = "pin path") -> Iterator[tuple[int, str]]:
    """Open the directory of pin path ``path`` once it is checked to be on a bpf filesystem; yields
    ``(dir fd, base name)`` and closes the fd after.

    Example::

        with pin_dir("/sys/fs/bpf/counts") as (dfd, name):
            os.unlink(name, dir_fd=dfd)
    """
    p = check_cstr(what, os.fspath(path))
    parent, name = os.path.split(os.path.abspath(p))
    if not name or name in (".", ".."):
        raise BpfUsageError(f"{what} {p!r} names no file: give a path like /sys/fs/bpf/counts", errno.EINVAL)
    real = os.path.realpath(parent)
    try:
        dfd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise BpfNotFoundError(f"{what} {p!r}: directory {real} does not exist (create it under /sys/fs/bpf "
                               "with os.makedirs)", errno.ENOENT) from None
    except NotADirectoryError:
        raise BpfUsageError(f"{what} {p!r}: {real} is not a directory", errno.ENOTDIR) from None
    try:
        kind = fs_type(dfd)
        if kind != BPF_FS_MAGIC:
            fs = _FS_NAMES.get(kind, f"filesystem type {kind:#x}")
            resolved = f" ({parent} resolves to {real})" if os.path.normpath(parent) != real else ""
            raise BpfUsageError(f"{what} {p!r} is not on a bpf filesystem: {real} is {fs}{resolved}. Pins live "
                                "on bpffs: use a path under /sys/fs/bpf (mounted with "
                                "`mount -t bpf bpf /sys/fs/bpf`)", errno.EINVAL)
        yield dfd, name
    finally:
        os.close(dfd)


def unpin(path: Union[str, os.PathLike]) -> None:
    """Remove a pin: unlink ``path`` only if it is an object on a bpf filesystem.

    Example::

        unpin("/sys/fs/bpf/counts")   # the object lives on while fds or programs hold it
    """
    with pin_dir(path) as (dfd, name):
        try:
            os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            raise BpfNotFoundError(f"nothing pinned at {os.fspath(path)!r}", errno.ENOENT) from None
        except IsADirectoryError:
            raise BpfUsageError(f"{os.fspath(path)!r} is a directory, not a pinned object; remove it with "
                                "os.rmdir once empty", errno.EISDIR) from None
