"""The compile cache, trusted only as far as it can be: a cached object runs in the kernel as root,
so whoever can write the cache chooses what root loads.

- The cache directory must be this user's and writable by nobody else, and each directory above it
  owned by this user or root and not writable by others unless sticky (as ssh's StrictModes and pip
  check). Otherwise it is not used: a :class:`CacheWarning` says why, and objects go to a private
  directory made for this process.
- An entry is used only if every path from the cache root down to it is a real directory or file
  (no symlink, so nothing points out of the cache) owned by this user and not writable by others,
  and the object is of a sane size.
- Writes are atomic (a temporary file renamed into place), so a reader never sees half an object.
- The cache is bounded (``BPFKIT_CACHE_MAX_BYTES``, default 256 MiB of objects): after a compile
  the least recently used entries go. :func:`prune` (``bpfkit cache prune``) also removes guest
  kernel images not used for a while (``~/.cache/bpfkit/kernels``).

Example::

    root = usable_root(Path("/srv/shared-cache"))   # CacheWarning and a private dir if others can write it
    prune(root, max_bytes=64 << 20, kernels_older_than_days=30)
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

__all__ = ["CacheWarning", "DEFAULT_MAX_BYTES", "MAX_OBJECT_BYTES", "kernel_cache_dir", "untrusted", "usable_root",
           "entry_ok", "prepare_entry", "touch", "bound", "prune", "PruneReport"]

DEFAULT_MAX_BYTES = 256 << 20
MAX_OBJECT_BYTES = 64 << 20  # far above any BPF object; a bigger "object" is not one
_private: dict[str, Path] = {}  # untrusted root -> the private directory used instead, per process


class CacheWarning(UserWarning):
    """The cache directory (or an entry in it) is not safe to use; bpfkit compiled without it.

    Example::

        warnings.simplefilter("error", CacheWarning)   # refuse to run with an unsafe cache instead
    """


def kernel_cache_dir() -> Path:
    """Where guest kernel images are unpacked: ``$BPFKIT_KERNEL_CACHE`` or ``~/.cache/bpfkit/kernels``.

    Example::

        kernel_cache_dir()   # PosixPath('/root/.cache/bpfkit/kernels')
    """
    env = os.environ.get("BPFKIT_KERNEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bpfkit" / "kernels"


def _max_bytes() -> int:
    text = os.environ.get("BPFKIT_CACHE_MAX_BYTES", "")
    return int(text) if text.isascii() and text.isdigit() else DEFAULT_MAX_BYTES


def untrusted(path: Path, *, mine: bool) -> Optional[str]:
    """Why ``path`` cannot be trusted (None: it can). ``mine``: it must be this user's and writable
    by nobody else; otherwise root's is fine too, and a sticky directory (like /tmp) may be
    world-writable (others cannot replace what is in it).

    Example::

        untrusted(Path("/tmp"), mine=False)     # None: root's, sticky
        untrusted(Path("/tmp/shared"), mine=True)   # 'it is writable by other users (mode 0777)'
    """
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"it cannot be examined ({e.strerror})"
    uid = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        return "it is a symlink (the cache follows none)"
    if st.st_uid != uid and (mine or st.st_uid != 0):
        return f"it belongs to uid {st.st_uid}, not to this user (uid {uid})"
    others_write = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if others_write and (mine or not (st.st_mode & stat.S_ISVTX and st.st_uid == 0)):
        return f"it is writable by other users (mode {st.st_mode & 0o7777:04o})"
    return None


def _root_problem(root: Path) -> Optional[str]:
    why = untrusted(root, mine=True)
    if why:
        return f"{root}: {why}"
    for parent in root.resolve().parents:
        why = untrusted(parent, mine=False)
        if why:
            return f"{parent} (above it): {why}"
    return None


def usable_root(root: Path) -> Path:
    """``root`` made if missing (mode 0700) and checked; when others could write it, a
    :class:`CacheWarning` and this process's private directory instead.

    Example::

        root = usable_root(cache_root())
    """
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        pass  # examined below: a root that cannot be made cannot be trusted either
    why = _root_problem(root)
    if why is None:
        return root
    key = str(root)
    if key not in _private:
        _private[key] = Path(tempfile.mkdtemp(prefix="bpfkit-cache-"))
        warnings.warn(CacheWarning(f"not using the BPF object cache {root}: {why}. Whoever can write there chooses "
                                   f"what this process loads into the kernel. Compiling into {_private[key]} for "
                                   "this process instead; fix the ownership/mode or set BPFKIT_CACHE_DIR to a "
                                   "directory only this user can write"), stacklevel=3)
    return _private[key]


def _chain(root: Path, path: Path) -> list[Path]:
    rel = path.relative_to(root)
    return [root.joinpath(*rel.parts[: i + 1]) for i in range(len(rel.parts))]


def entry_ok(root: Path, path: Path) -> bool:
    """Whether the cached object at ``path`` (inside the trusted ``root``) may be used: it and every
    directory between exist, are real (no symlinks), this user's and writable by nobody else, and
    the object is a regular file of a sane size.

    Example::

        if entry_ok(root, out): return out
    """
    try:
        chain = _chain(root, path)
    except ValueError:
        return False
    for p in chain:
        if untrusted(p, mine=True):
            return False
    st = os.lstat(path)
    return stat.S_ISREG(st.st_mode) and 0 < st.st_size <= MAX_OBJECT_BYTES


def prepare_entry(root: Path, entry_dir: Path) -> None:
    """Make ``entry_dir`` (inside ``root``) a real directory of this user's, replacing whatever
    untrustworthy thing is there (a symlink pointing out, another user's directory).

    Example::

        prepare_entry(root, root / "obj" / key)
    """
    for p in _chain(root, entry_dir):
        if os.path.lexists(p) and untrusted(p, mine=True):
            _discard(p)
        try:
            p.mkdir(mode=0o755)
        except FileExistsError:
            pass


def _discard(p: Path) -> None:
    if p.is_symlink() or not p.is_dir():
        p.unlink()
    else:
        shutil.rmtree(p)


def touch(path: Path) -> None:
    """Mark a cache entry as just used (eviction takes the least recently used first): its access
    time, so the object's mtime still says when it was built.

    Example::

        touch(out)
    """
    try:
        os.utime(path, ns=(time.time_ns(), os.lstat(path).st_mtime_ns))
    except OSError:
        pass


@dataclass
class PruneReport:
    """What :func:`prune` removed (or would remove, in a dry run)."""

    objects: int = 0
    object_bytes: int = 0
    kernels: int = 0
    kernel_bytes: int = 0
    kept_bytes: int = 0
    removed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        mib = 1 << 20
        return (f"removed {self.objects} compiled objects ({self.object_bytes / mib:.1f} MiB) and {self.kernels} "
                f"kernel images or leftovers ({self.kernel_bytes / mib:.1f} MiB); {self.kept_bytes / mib:.1f} MiB "
                "of objects kept")


def _size(p: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(p):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _last_use(p: Path) -> float:
    newest = os.lstat(p).st_mtime
    for dirpath, _dirs, files in os.walk(p):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
                newest = max(newest, st.st_mtime, st.st_atime)
            except OSError:
                pass
    return newest


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    obj = root / "obj"
    if not obj.is_dir() or untrusted(obj, mine=True):
        return []
    out = []
    for d in obj.iterdir():
        if not d.is_symlink() and d.is_dir():
            out.append((_last_use(d), _size(d), d))
    return sorted(out)


def bound(root: Path, max_bytes: Optional[int] = None) -> int:
    """Keep the compiled objects under ``root`` within ``max_bytes`` (``BPFKIT_CACHE_MAX_BYTES``,
    default 256 MiB): when over, the least recently used go until 80% is left. Returns the
    number removed.

    Example::

        bound(root)   # after a compile added an entry
    """
    limit = _max_bytes() if max_bytes is None else max_bytes
    entries = _entries(root)
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return 0
    removed = 0
    for _used, size, d in entries:
        if total <= limit * 0.8:
            break
        shutil.rmtree(d, ignore_errors=True)
        total -= size
        removed += 1
    return removed


def prune(root: Path, *, max_bytes: Optional[int] = None, older_than_days: Optional[float] = None,
          kernels: Optional[Path] = None, kernels_older_than_days: Optional[float] = 30.0,
          dry_run: bool = False) -> PruneReport:
    """Shrink the caches: compiled objects unused for ``older_than_days`` or beyond ``max_bytes``
    (least recently used first), and in ``kernels`` (default :func:`kernel_cache_dir`) guest kernel
    images unused for ``kernels_older_than_days`` (None: keep them), initramfs images other than
    each kernel's newest, and lock files of kernels that are gone. A kernel being prepared (its
    lock held) is left alone.

    Example::

        print(prune(cache_root(), max_bytes=64 << 20))
    """
    report = PruneReport()
    now = time.time()
    limit = _max_bytes() if max_bytes is None else max_bytes
    entries = _entries(root) if root.is_dir() and not untrusted(root, mine=True) else []
    total = sum(size for _, size, _ in entries)
    for used, size, d in entries:
        old = older_than_days is not None and now - used > older_than_days * 86400
        if old or total > limit:
            report.objects += 1
            report.object_bytes += size
            report.removed.append(str(d))
            total -= size
            if not dry_run:
                shutil.rmtree(d, ignore_errors=True)
    report.kept_bytes = total
    _prune_kernels(kernels if kernels is not None else kernel_cache_dir(), now, kernels_older_than_days, dry_run,
                   report)
    return report


def _prune_kernels(kdir: Path, now: float, older_than_days: Optional[float], dry_run: bool,
                   report: PruneReport) -> None:
    if not kdir.is_dir() or untrusted(kdir, mine=True):
        return

    def drop(p: Path) -> None:
        report.kernels += 1
        report.kernel_bytes += _size(p) if p.is_dir() else os.lstat(p).st_size
        report.removed.append(str(p))
        if not dry_run:
            _discard(p)

    for d in sorted(kdir.iterdir()):
        if d.is_symlink() or not d.is_dir():
            continue
        lock = kdir / f"{d.name}.lock"
        with _try_lock(lock) as got:
            if not got:
                continue  # being prepared right now
            if older_than_days is not None and now - _last_use(d) > older_than_days * 86400:
                drop(d)
                continue
            initrds = sorted(d.glob("initrd-*.cpio.gz"), key=lambda p: os.lstat(p).st_mtime)
            for stale in initrds[:-1]:
                drop(stale)
    for lock in kdir.glob("*.lock"):
        if not (kdir / lock.name[: -len(".lock")]).exists():
            with _try_lock(lock) as got:
                if got:
                    drop(lock)


@contextlib.contextmanager
def _try_lock(lock: Path) -> Iterator[bool]:
    """Hold ``lock`` (the flock testing.vm takes while preparing a kernel) if nobody else does."""
    if not lock.exists():
        yield True
        return
    try:
        f = open(lock, "r")
    except OSError:
        yield False
        return
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
