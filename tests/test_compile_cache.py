"""The compile cache is trusted only as far as it can be (issue 11): a shared, world-writable
BPFKIT_CACHE_DIR, an entry owned by another user, or a symlink pointing out of the cache never
makes compile() return someone else's object; writes are atomic; the cache is bounded; `bpfkit cache
prune` shrinks it and the guest kernel images."""
from __future__ import annotations

import os
import shutil
import time
import uuid
import warnings
from pathlib import Path

import pytest

from bpfkit import compile as bpf_compile
from bpfkit.cli import main as cli_main
from bpfkit.compiler.cache import CacheWarning, prune

pytestmark = pytest.mark.skipif(shutil.which("clang-14") is None and shutil.which("clang") is None,
                                reason="needs clang to compile BPF C")

NOBODY = 65534
PLANTED = b"\x7fELF planted by another user"


def _source() -> str:
    # a unique program each time: a fresh cache key, so nothing from another test is reused
    tag = uuid.uuid4().hex[:10]
    return ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
            f'SEC("tracepoint/syscalls/sys_enter_getpid")\nint p_{tag}(void *ctx) {{ return 0; }}\n'
            'char LICENSE[] SEC("license") = "GPL";\n')


def _relative_entry(src: str, tmp: Path) -> Path:
    """Where `src`'s object lands inside a cache root (learned from a private cache)."""
    private = tmp / "learn"
    out = bpf_compile(src, cache_dir=private)
    return out.relative_to(private)


def _plant(root: Path, rel: Path, owner: int) -> Path:
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(PLANTED)
    os.chown(target, owner, owner)
    for p in rel.parents:
        if p != Path("."):
            os.chown(root / p, owner, owner)  # obj/ and obj/<key>/: another user's, not the root
    return target


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make files of another user")
def test_world_writable_shared_cache_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _source()
    rel = _relative_entry(src, tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    os.chown(shared, NOBODY, NOBODY)
    planted = _plant(shared, rel, NOBODY)
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(shared))
    with pytest.warns(CacheWarning, match="writable by other users|belongs to uid"):
        out = bpf_compile(src)
    assert out != planted and out.read_bytes() != PLANTED and out.read_bytes()[:4] == b"\x7fELF"
    assert planted.read_bytes() == PLANTED  # another user's files are left alone


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make files of another user")
def test_entry_of_another_user_in_own_cache_is_not_used(tmp_path: Path) -> None:
    src = _source()
    rel = _relative_entry(src, tmp_path)
    root = tmp_path / "mine"
    root.mkdir(mode=0o700)
    _plant(root, rel, NOBODY)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # the root itself is fine: no warning
        out = bpf_compile(src, cache_dir=root)
    assert out == root / rel and out.read_bytes() != PLANTED
    assert os.stat(out).st_uid == os.geteuid()


def test_symlink_out_of_the_cache_is_not_followed(tmp_path: Path) -> None:
    src = _source()
    rel = _relative_entry(src, tmp_path)
    root = tmp_path / "mine"
    root.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / rel.name).parent.mkdir(parents=True)
    (elsewhere / rel.name).write_bytes(PLANTED)
    (root / rel).parent.parent.mkdir(parents=True)
    (root / rel).parent.symlink_to(elsewhere)  # obj/<key> -> outside
    out = bpf_compile(src, cache_dir=root)
    assert out.read_bytes() != PLANTED and not (root / rel).parent.is_symlink()
    assert (elsewhere / rel.name).read_bytes() == PLANTED
    assert os.path.realpath(out).startswith(os.path.realpath(root))


def test_writes_are_atomic_and_leave_no_temporaries(tmp_path: Path) -> None:
    root = tmp_path / "c"
    out = bpf_compile(_source(), cache_dir=root)
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert out.is_file() and leftovers == []
    assert os.stat(root).st_mode & 0o077 == 0  # made private


def test_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "c"
    first = bpf_compile(_source(), cache_dir=root)
    size = sum(p.stat().st_size for p in first.parent.iterdir())
    monkeypatch.setenv("BPFKIT_CACHE_MAX_BYTES", str(int(size * 2.5)))
    outs = [first]
    for _ in range(3):
        time.sleep(0.05)  # distinct use times
        outs.append(bpf_compile(_source(), cache_dir=root))
    entries = list((root / "obj").iterdir())
    total = sum(p.stat().st_size for e in entries for p in e.iterdir())
    assert total <= size * 2.5 and not first.exists() and outs[-1].exists()


def _kernel(kdir: Path, name: str, age_days: float, initrds: int = 1) -> Path:
    d = kdir / name
    (d / "pkg").mkdir(parents=True)
    (d / "vmlinux").write_bytes(b"k" * 4096)
    (d / "kernel.json").write_text("{}\n")
    (kdir / f"{name}.lock").touch()
    when = time.time() - age_days * 86400
    for i in range(initrds):
        (d / f"initrd-{i:012x}.cpio.gz").write_bytes(b"i" * 1024)
    for p in [*d.rglob("*"), d]:
        os.utime(p, (when, when))
    for i in range(initrds):  # built one after the other: the last is the newest
        os.utime(d / f"initrd-{i:012x}.cpio.gz", (when + i, when + i))
    return d


def test_prune_objects_and_kernel_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "c"
    kdir = tmp_path / "k"
    kdir.mkdir(mode=0o700)
    old_obj = bpf_compile(_source(), cache_dir=root)
    old_when = time.time() - 20 * 86400
    for p in [*old_obj.parent.iterdir(), old_obj.parent]:
        os.utime(p, (old_when, old_when))
    new_obj = bpf_compile(_source(), cache_dir=root)
    old_kernel = _kernel(kdir, "linux-image-old", 60)
    new_kernel = _kernel(kdir, "linux-image-new", 1, initrds=3)
    (kdir / "linux-image-gone.lock").touch()
    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(root))
    monkeypatch.setenv("BPFKIT_KERNEL_CACHE", str(kdir))

    assert cli_main(["cache", "prune", "--older-than", "10", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and old_obj.exists() and old_kernel.exists()

    assert cli_main(["cache", "prune", "--older-than", "10", "--kernels-older-than", "30"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 compiled objects" in out
    assert not old_obj.exists() and new_obj.exists()
    assert not old_kernel.exists() and new_kernel.exists() and (new_kernel / "vmlinux").exists()
    assert sorted(p.name for p in new_kernel.glob("initrd-*")) == ["initrd-000000000002.cpio.gz"]  # newest only
    assert not (kdir / "linux-image-gone.lock").exists() and (kdir / "linux-image-new.lock").exists()

    report = prune(root, max_bytes=0, kernels=kdir, kernels_older_than_days=None)
    assert report.objects == 1 and not new_obj.exists() and new_kernel.exists()
