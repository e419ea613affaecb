"""Run commands and pytest inside other Linux kernels under qemu.

The host kernel lacks kprobes and fentry, so tests that need them boot a
Debian kernel in qemu. The guest sees the host's ``/`` read-only over 9p (with
a tmpfs overlay, so it may write anywhere), so the host's Python, virtualenv
and built objects run unchanged; results come back through a read-write 9p
share. Kernels are downloaded with ``apt-get`` and cached, unpacked, under
``$BPFKIT_KERNEL_CACHE`` (default ``~/.cache/bpfkit/kernels``).

Example::

    from bpfkit.testing import vm
    kernel = vm.prepare_kernel("6.1")
    result = vm.run_in_guest(kernel, ["uname", "-r"], timeout=120)
    print(result.output, result.boot_seconds)

From the shell, run the ``guest``-marked tests on every known kernel::

    python -m bpfkit.testing.vm [--kernel 6.1 --kernel 6.12] [-- pytest args]
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from bpfkit.errors import BpfError, BpfUsageError
from bpfkit.testing import _vmimage

__all__ = [
    "KERNELS",
    "KernelSpec",
    "GuestKernel",
    "GuestResult",
    "PytestResult",
    "GuestError",
    "GuestUnavailable",
    "GuestBootError",
    "GuestTimeout",
    "prepare_kernel",
    "run_in_guest",
    "run_pytest",
    "in_guest",
    "main",
]

log = logging.getLogger(__name__)

#: Set to the guest kernel's release in every guest command's environment.
GUEST_ENV_VAR = "BPFKIT_IN_GUEST"
_HERE = Path(__file__).resolve().parent
_STAGE1 = _HERE / "vm_initramfs.sh"
_STAGE2 = _HERE / "vm_init.sh"
# Everything the initramfs must load before it can mount the host's / over 9p.
_INITRD_MODULES = ["9p", "9pnet_virtio", "virtio_pci", "overlay"]
_START_MARK = "bpfkit-vm: start"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class GuestError(BpfError):
    """A guest kernel could not be prepared or run."""


class GuestUnavailable(GuestError):
    """qemu, apt, busybox-static or the kernel package is not available here."""


class GuestBootError(GuestError):
    """qemu exited without the guest reporting a result. ``console`` is the serial log."""

    def __init__(self, message: str, console: str = "") -> None:
        super().__init__(message)
        self.console = console


class GuestTimeout(GuestError):
    """The guest ran past its timeout; qemu (``pid``) was killed and reaped.
    ``output`` is what the command wrote so far, ``console`` the serial log."""

    def __init__(self, message: str, pid: int, output: str = "", console: str = "") -> None:
        super().__init__(message)
        self.pid = pid
        self.output = output
        self.console = console


@dataclass(frozen=True)
class KernelSpec:
    """How a short kernel name maps to Debian packages: the first pattern that
    matches an available package wins, and among its matches the highest
    number in the pattern's group."""

    name: str
    patterns: tuple[str, ...]


KERNELS: dict[str, KernelSpec] = {
    "6.1": KernelSpec("6.1", (r"linux-image-6\.1\.0-(\d+)-amd64",)),
    "6.12": KernelSpec(
        "6.12",
        (r"linux-image-6\.12\.(\d+)\+deb\d+-amd64-unsigned", r"linux-image-6\.12\.(\d+)\+deb\d+-amd64"),
    ),
}


@dataclass(frozen=True)
class GuestKernel:
    """A kernel ready to boot: the ELF ``vmlinux`` (booted via PVH), the
    ``initrd`` that mounts the host's / and ``modules_dir`` for modprobe."""

    name: str
    package: str
    version: str
    vmlinux: Path
    initrd: Path
    modules_dir: Path


@dataclass(frozen=True)
class GuestResult:
    """What a guest run produced. ``boot_seconds`` is qemu start to the guest
    starting the command, ``total_seconds`` qemu start to qemu exit."""

    returncode: int
    output: str
    boot_seconds: float
    total_seconds: float
    console: str = ""


@dataclass(frozen=True)
class PytestResult(GuestResult):
    """A :class:`GuestResult` plus the counts from pytest's junit xml, and each test's outcome
    (``"passed"``, ``"failed"``, ``"skipped"`` or ``"error"``) by node id in ``tests``."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    tests: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """pytest exited 0 and at least one test passed: a run where nothing was collected
        (exit 5) or everything skipped tested nothing, so it is not a success."""
        return self.returncode == 0 and self.failed == 0 and self.errors == 0 and self.passed > 0

    def ids(self, outcome: str) -> set[str]:
        """Node ids of the tests with ``outcome`` (``"passed"``, ``"skipped"``...)."""
        return {t for t, o in self.tests.items() if o == outcome}

    def summary(self) -> str:
        """e.g. ``7 passed, 0 failed, 1 skipped``."""
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        return text + (f", {self.errors} errors" if self.errors else "")


def in_guest() -> bool:
    """True inside a guest started by this module (e.g. to skip host-only tests)."""
    return bool(os.environ.get(GUEST_ENV_VAR))


# ---------------------------------------------------------------------------
# Kernel preparation


def cache_dir() -> Path:
    """Where unpacked kernels live: ``$BPFKIT_KERNEL_CACHE`` or ``~/.cache/bpfkit/kernels``."""
    env = os.environ.get("BPFKIT_KERNEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bpfkit" / "kernels"


def _pick(spec: KernelSpec, names: Sequence[str]) -> str | None:
    for pattern in spec.patterns:
        found = [(int(m.group(1)), n) for n in names if (m := re.fullmatch(pattern, n))]
        if found:
            return max(found)[1]
    return None


def _apt_candidates(spec: KernelSpec) -> list[str]:
    if shutil.which("apt-cache") is None:
        return []
    # apt-cache wants a POSIX regex; one loose prefix query, filtered precisely in Python.
    prefix = "^linux-image-" + spec.name.replace(".", r"\.") + r"\."
    out = subprocess.run(
        ["apt-cache", "search", "--names-only", prefix], capture_output=True, text=True
    )
    if out.returncode != 0:
        log.warning("apt-cache search failed: %s", out.stderr.strip())
        return []
    return [line.split(" - ", 1)[0] for line in out.stdout.splitlines()]


def _cached(spec: KernelSpec) -> list[str]:
    """Fully prepared packages of ``spec``'s series in the cache (those with a kernel.json)."""
    root = cache_dir()
    names = [p.parent.name for p in root.glob("*/kernel.json")] if root.is_dir() else []
    return [n for n in names if any(re.fullmatch(pat, n) for pat in spec.patterns)]


_apt_updated = False


def _apt_update() -> bool:
    """``apt-get update``, at most once per process; False (with a warning) if it failed."""
    global _apt_updated
    if _apt_updated:
        return False
    _apt_updated = True
    if shutil.which("apt-get") is None:
        return False
    log.info("apt-get update (the package lists may be older than the mirror)")
    out = subprocess.run(["apt-get", "-q", "update"], capture_output=True, text=True)
    if out.returncode != 0:
        log.warning("apt-get update failed: %s", out.stderr.strip()[-500:])
        return False
    return True


def _candidates(name: str) -> list[str]:
    """Packages to try for kernel ``name``, best first: the newest apt knows, then the newest
    cached one (used when the download fails, e.g. stale lists or no network)."""
    if name.startswith("linux-image-"):
        return [name]
    spec = KERNELS.get(name)
    if spec is None:
        raise GuestUnavailable(f"unknown kernel {name!r}: use one of {', '.join(KERNELS)} or a linux-image-* package")
    cached = _pick(spec, _cached(spec))
    if cached is None:
        # A fresh machine's lists may name packages the mirror no longer has.
        _apt_update()
    found: list[str] = []
    for picked in (_pick(spec, _apt_candidates(spec)), cached):
        if picked is not None and picked not in found:
            found.append(picked)
    if not found:
        raise GuestUnavailable(
            f"no Debian package for kernel {name} is known to apt (patterns {list(spec.patterns)}) "
            "and none is cached: run 'apt-get update' on a Debian bookworm host with network access"
        )
    return found


def resolve_package(name: str) -> str:
    """The Debian package for kernel ``name`` ("6.1", "6.12" or a full
    ``linux-image-...`` package name): newest known to apt, else newest cached.
    (:func:`prepare_kernel` falls back to the cached one if the download fails.)"""
    return _candidates(name)[0]


def _run_tool(argv: list[str], what: str, cwd: Path | None = None) -> None:
    # depmod lives in /usr/sbin, often missing from a non-root PATH.
    tool = shutil.which(argv[0], path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if tool is None:
        raise GuestUnavailable(f"{argv[0]} not found, needed to {what}")
    out = subprocess.run([tool, *argv[1:]], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise GuestUnavailable(f"{what} failed ({shlex.join(argv)}): {out.stderr.strip()[-2000:]}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        # Two processes preparing the same kernel would otherwise unpack over each other.
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _unpack(package: str, root: Path) -> Path:
    """Download and unpack ``package`` into ``root/pkg``; returns that dir."""
    pkg = root / "pkg"
    if pkg.is_dir():
        return pkg
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="download-", dir=root))
    try:
        log.info("downloading %s", package)
        # The download runs as root: tell apt not to drop to _apt, which cannot write here.
        _run_tool(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", package],
                  f"download {package}", cwd=work)
        debs = list(work.glob("*.deb"))
        if len(debs) != 1:
            raise GuestUnavailable(f"apt-get download {package} produced {len(debs)} .deb files")
        _run_tool(["dpkg-deb", "-x", str(debs[0]), str(work / "pkg")], f"unpack {debs[0].name}")
        (work / "pkg").rename(pkg)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return pkg


def _modules_dir(pkg: Path) -> tuple[str, Path]:
    for base in (pkg / "lib" / "modules", pkg / "usr" / "lib" / "modules"):
        versions = [p for p in base.glob("*") if p.is_dir()] if base.is_dir() else []
        if len(versions) == 1:
            return versions[0].name, versions[0]
    raise GuestError(f"{pkg}: expected exactly one lib/modules/<version> directory")


def _initrd_key(modules: list[Path], busybox: Path) -> str:
    h = hashlib.sha256(_STAGE1.read_bytes())
    for m in modules:
        h.update(str(m).encode())
    h.update(str(busybox.stat().st_size).encode())
    return h.hexdigest()[:12]


def _build_initrd(root: Path, moddir: Path) -> Path:
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.exists() or not _vmimage.is_static_elf(busybox):
        raise GuestUnavailable("the guest initramfs needs a static busybox: apt-get install busybox-static")
    modules = _vmimage.module_load_order(moddir, _INITRD_MODULES)
    out = root / f"initrd-{_initrd_key(modules, busybox)}.cpio.gz"
    if out.exists():
        return out
    cpio = _vmimage.CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "lower", "rw", "newroot", "mods"):
        cpio.add_dir(d)
    cpio.add_file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in ("sh", "mount", "insmod", "mkdir", "cat", "echo", "sleep", "switch_root", "poweroff"):
        cpio.add_symlink(f"bin/{applet}", "busybox")
    for i, mod in enumerate(modules):
        name = mod.name.split(".ko", 1)[0]
        cpio.add_file(f"mods/{i:02d}_{name}.ko", _vmimage.read_module(mod))
    cpio.add_file("init", _STAGE1.read_bytes(), 0o755)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(cpio.finish())
    tmp.replace(out)
    for old in root.glob("initrd-*.cpio.gz"):
        if old != out:
            old.unlink()
    return out


def prepare_kernel(name: str) -> GuestKernel:
    """Download (once), unpack, depmod and build a bootable kernel + initramfs.

    ``name`` is a key of :data:`KERNELS` ("6.1", "6.12") or a full
    ``linux-image-*`` package name. A second call reuses the cache. The newest
    package apt knows is tried first; if its download fails, the newest cached
    kernel of the series is used; with nothing cached, ``apt-get update`` runs
    first (and once more before giving up), since a fresh machine's package
    lists may name packages the mirror has dropped.

    Example::

        k = prepare_kernel("6.12")
        print(k.version)   # 6.12.117+deb12-amd64
    """
    failures: list[str] = []
    for attempt in range(2):
        for package in _candidates(name):
            try:
                return _prepare(name, package)
            except GuestUnavailable as e:  # download/unpack failed: try the next candidate
                log.warning("cannot prepare %s: %s", package, e)
                failures.append(f"{package}: {e}")
        # Nothing worked and nothing was cached: stale lists name packages the mirror dropped.
        if attempt or name.startswith("linux-image-") or not _apt_update():
            break
    raise GuestUnavailable(f"no package for kernel {name} could be prepared: " + "; ".join(failures))


def _prepare(name: str, package: str) -> GuestKernel:
    root = cache_dir() / package
    with _locked(cache_dir() / f"{package}.lock"):
        try:
            pkg = _unpack(package, root)
        except GuestUnavailable:
            with contextlib.suppress(OSError):
                root.rmdir()  # only if empty: a failed download leaves nothing behind
            raise
        version, moddir = _modules_dir(pkg)
        if not (moddir / "modules.dep").exists():
            log.info("depmod %s", version)
            _run_tool(["depmod", "-b", str(pkg), version], f"index the modules of {version}")
        vmlinux = root / "vmlinux"
        if not vmlinux.exists():
            log.info("extracting vmlinux from vmlinuz-%s", version)
            try:
                _vmimage.extract_vmlinux(pkg / "boot" / f"vmlinuz-{version}", vmlinux)
            except (OSError, _vmimage.ImageError) as e:
                raise GuestError(f"cannot extract vmlinux of {package}: {e}") from e
            if not _vmimage.has_pvh_entry(vmlinux):
                vmlinux.unlink()
                raise GuestError(f"{package}: vmlinux has no PVH entry note, qemu cannot boot it directly")
        try:
            initrd = _build_initrd(root, moddir)
        except _vmimage.ImageError as e:
            raise GuestError(f"cannot build the initramfs for {package}: {e}") from e
        # Also marks the package as fully prepared for the offline fallback in resolve_package.
        meta = json.dumps({"package": package, "version": version}) + "\n"
        if _read(root / "kernel.json") != meta:
            (root / "kernel.json").write_text(meta)
    return GuestKernel(name, package, version, vmlinux, initrd, moddir)


# ---------------------------------------------------------------------------
# Running a guest


def _qemu_binary() -> str:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise GuestUnavailable("qemu-system-x86_64 not found: apt-get install qemu-system-x86")
    return qemu


def _check_path(path: str, what: str) -> str:
    # Paths travel on the kernel command line (space-separated) and in qemu's
    # comma-separated -virtfs option.
    if re.search(r"[\s,\"']", path):
        raise GuestError(f"{what} path {path!r} contains whitespace, a comma or a quote; set TMPDIR/"
                         "BPFKIT_KERNEL_CACHE to a plain path")
    return path


def _accel_args() -> list[str]:
    # /dev/kvm on the project's machines fails to run guests, so TCG is the
    # default; BPFKIT_VM_ACCEL=kvm opts in where KVM works.
    if os.environ.get("BPFKIT_VM_ACCEL", "tcg") == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def _qemu_argv(kernel: GuestKernel, share: Path, memory: str, cpus: int) -> list[str]:
    append = " ".join([
        "console=ttyS0", "quiet", "panic=-1",
        f"bpfkit.share={_check_path(str(share), 'share')}",
        f"bpfkit.init={_check_path(str(_STAGE2), 'guest init')}",
        f"bpfkit.modules={_check_path(str(kernel.modules_dir), 'modules')}",
    ])
    return [
        _qemu_binary(), *_accel_args(), "-smp", str(cpus), "-m", memory,
        "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
        "-kernel", str(kernel.vmlinux), "-initrd", str(kernel.initrd), "-append", append,
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={share},mount_tag=bpfkit,security_model=none",
    ]


def _run_script(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> str:
    lines = [
        "# generated by bpfkit.testing.vm",
        # Start from an empty environment so only what the caller asked for reaches the command.
        'for v in $(compgen -e); do unset "$v"; done',
    ]
    for key, value in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise BpfUsageError(f"invalid environment variable name {key!r}")
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append(f"cd -- {shlex.quote(cwd)} || exit 125")
    lines.append("exec " + shlex.join(argv))
    return "\n".join(lines) + "\n"


def _guest_env(kernel: GuestKernel, env: Mapping[str, str] | None) -> dict[str, str]:
    base = {"PATH": _DEFAULT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
            GUEST_ENV_VAR: kernel.version}
    base.update(env or {})
    return base


_PR_SET_PDEATHSIG = 1


def _pdeathsig_setter() -> Callable[[], None]:
    # Resolved before fork: dlopen in the child of a threaded process can deadlock.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_pdeathsig() -> None:
        # If this Python process dies without cleanup (SIGKILL), the kernel kills qemu too.
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))

    return set_pdeathsig


@contextlib.contextmanager
def _share_dir() -> Iterator[Path]:
    share = Path(tempfile.mkdtemp(prefix="bpfkit-vm-"))
    try:
        yield share
    finally:
        shutil.rmtree(share, ignore_errors=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _boot(kernel: GuestKernel, share: Path, argv: Sequence[str], *, timeout: float,
          env: Mapping[str, str] | None, cwd: str | None, memory: str, cpus: int) -> GuestResult:
    if not argv:
        raise BpfUsageError("argv must name a command to run in the guest")
    (share / "run.sh").write_text(_run_script(argv, _guest_env(kernel, env), cwd or os.getcwd()))
    cmd = _qemu_argv(kernel, share, memory, cpus)
    log.debug("starting %s", shlex.join(cmd))
    console: list[str] = []
    started: list[float] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_pdeathsig_setter())

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            if not started and _START_MARK in line:
                started.append(time.monotonic())
            console.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # Timeout, KeyboardInterrupt or any other error: never leave qemu running.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        assert proc.stdout is not None
        proc.stdout.close()
    total = time.monotonic() - t0
    text = "".join(console)
    if timed_out:
        raise GuestTimeout(
            f"guest {kernel.version} did not finish within {timeout:.0f}s; qemu (pid {proc.pid}) was killed",
            proc.pid, _read(share / "output"), text)
    rc_text = _read(share / "rc").strip()
    if not rc_text.isdigit():
        tail = "\n".join(text.splitlines()[-30:])
        raise GuestBootError(
            f"guest {kernel.version} exited (qemu status {proc.returncode}) without reporting a result; "
            f"serial console tail:\n{tail}", text)
    boot = (started[0] - t0) if started else total
    return GuestResult(int(rc_text), _read(share / "output"), boot, total, text)


def run_in_guest(kernel: GuestKernel, argv: Sequence[str], *, timeout: float,
                 env: Mapping[str, str] | None = None, cwd: str | None = None,
                 memory: str = "2G", cpus: int = 2) -> GuestResult:
    """Boot ``kernel``, run ``argv`` in ``cwd`` (default: the current dir) and power off.

    The command sees the host's files, a fresh /proc, /sys, tracefs, debugfs,
    bpffs and cgroup2, working ``modprobe``, and an environment of PATH, HOME,
    LANG, TERM and ``BPFKIT_IN_GUEST`` updated with ``env``. stdout and stderr
    are combined in ``output``. Raises :class:`GuestTimeout` after ``timeout``
    seconds (qemu killed) and :class:`GuestBootError` if the guest never
    reported back.

    Example::

        r = run_in_guest(prepare_kernel("6.1"), ["uname", "-r"], timeout=120)
        assert r.returncode == 0
    """
    with _share_dir() as share:
        return _boot(kernel, share, argv, timeout=timeout, env=env, cwd=cwd, memory=memory, cpus=cpus)


def _node_id(case: ET.Element) -> str:
    # xunit1 junit (asked for in run_pytest) names the file; the classname is its dotted module
    # path, plus ".Class" for a test in a class.
    name = case.get("name", "")
    classname = case.get("classname", "")
    file = case.get("file")
    if not file:
        return f"{classname}::{name}" if classname else name
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    cls = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
    return "::".join(p for p in (file, cls, name) if p)


def _junit_results(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    tests: dict[str, str] = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts, tests
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        n, failures = int(s.get("tests", 0)), int(s.get("failures", 0))
        errors, skipped = int(s.get("errors", 0)), int(s.get("skipped", 0))
        counts["failed"] += failures
        counts["errors"] += errors
        counts["skipped"] += skipped
        counts["passed"] += n - failures - errors - skipped
        for case in s.iter("testcase"):
            # A teardown error is reported inside the test's own testcase: it outranks "passed".
            tags = {child.tag for child in case}
            outcome = ("error" if "error" in tags else "failed" if "failure" in tags
                       else "skipped" if "skipped" in tags else "passed")
            node = _node_id(case)
            if tests.get(node) not in ("error", "failed"):
                tests[node] = outcome
    return counts, tests


def run_pytest(kernel: GuestKernel, test_args: Sequence[str], *, timeout: float,
               env: Mapping[str, str] | None = None, cwd: str | None = None,
               memory: str = "2G", cpus: int = 2) -> PytestResult:
    """Run ``python -m pytest test_args`` in the guest from ``cwd`` (default:
    the current dir) with the host's interpreter and parse the counts.

    Example::

        r = run_pytest(prepare_kernel("6.1"), ["-m", "guest", "tests"], timeout=900)
        print(r.summary())
    """
    with _share_dir() as share:
        junit = share / "junit.xml"
        # xunit1 records each test's file, so node ids can be rebuilt from the xml.
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
                "-o", "junit_family=xunit1", *test_args]
        res = _boot(kernel, share, argv, timeout=timeout, env=env, cwd=cwd, memory=memory, cpus=cpus)
        counts, tests = _junit_results(junit)
        return PytestResult(res.returncode, res.output, res.boot_seconds, res.total_seconds,
                            res.console, tests=tests, **counts)


# ---------------------------------------------------------------------------
# CLI


def _parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(
        prog="python -m bpfkit.testing.vm",
        description="Run the guest-marked tests (or any pytest args after --) inside other kernels under qemu.",
    )
    p.add_argument("--kernel", action="append", metavar="NAME",
                   help=f"kernel to boot, repeatable: {', '.join(KERNELS)} or a linux-image-* package "
                        "(default: all)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per kernel (default 1800)")
    p.add_argument("--run", action="store_true", help="treat the words after -- as a command, not pytest args")
    p.add_argument("--prepare-only", action="store_true", help="download and build the kernels, boot nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="print each guest's output, not only on failure")
    return p.parse_args(argv), rest


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # _boot has already killed and reaped qemu on the way out.
        print("interrupted; qemu stopped", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args, rest = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.kernel or list(KERNELS)
    if args.run and not rest:
        print("--run needs a command after --", file=sys.stderr)
        return 2
    test_args = rest or ["-m", "guest", "tests"]
    if not args.run and not rest and not Path("tests").is_dir():
        print("no tests/ directory here: run from the repository root or pass pytest args after --",
              file=sys.stderr)
        return 2
    summaries: list[str] = []
    ok = True
    recap = False  # repeat the summary lines at the end when guest output came in between
    for name in names:
        try:
            kernel = prepare_kernel(name)
            if args.prepare_only:
                print(f"guest {kernel.version}: ready ({kernel.vmlinux.parent})")
                continue
            if args.run:
                res: GuestResult = run_in_guest(kernel, rest, timeout=args.timeout)
                good = res.returncode == 0
                what = f"exit status {res.returncode}"
            else:
                pres = run_pytest(kernel, test_args, timeout=args.timeout)
                res, good, what = pres, pres.ok, pres.summary()
                if pres.returncode == 5:
                    what += " (no tests collected)"
                elif pres.passed == 0 and pres.returncode == 0:
                    what += " (nothing passed: every test was skipped)"
                elif not good and pres.failed + pres.errors == 0:
                    what += f" (pytest exit status {pres.returncode})"
        except GuestError as e:
            ok = False
            summaries.append(f"guest {name}: FAILED to run: {e}")
            print(summaries[-1], file=sys.stderr)
            continue
        if args.verbose or not good:
            sys.stdout.write(res.output)
            recap = True
        ok = ok and good
        summaries.append(f"guest {kernel.version}: {what} (boot {res.boot_seconds:.1f}s, "
                         f"total {res.total_seconds:.1f}s)")
        print(summaries[-1], flush=True)
    if recap and len(summaries) > 1:
        print("\n".join(summaries))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
