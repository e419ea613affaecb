#!/usr/bin/env bash
# Idempotent developer/CI setup: system packages, .venv, editable install, BPF objects, tracefs mounts.
# Repeat runs are fast: apt is skipped when everything is installed, pip when setup.py is unchanged.
# Another apt running (unattended-upgrades on a fresh machine) is waited for, up to BPFKIT_APT_WAIT s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# package -> why bpfkit needs it (printed before installing, so nobody wonders what this does as root)
PKG_WHY=(
    "clang-14:compiles BPF C into .bpf.o objects"
    "llvm-14:llvm-strip/objdump for BPF objects"
    "libbpf-dev:libbpf headers (bpf_helpers.h, usdt.bpf.h) and libbpf1, the loader"
    "bpftool:generates vmlinux.h from this kernel's BTF; skeletons for the C benchmarks"
    "systemtap-sdt-dev:<sys/sdt.h> for the USDT test programs"
    "gcc:builds the C test fixtures and benchmark baselines"
    "linux-libc-dev:kernel UAPI headers"
    "make:these make targets"
    "qemu-system-x86:boots Debian 6.1/6.12 kernels for the kprobe/fentry tests"
    "kmod:depmod/modprobe for those guest kernels"
    "busybox-static:the guest kernels' initramfs"
    "zstd:unpacks the guest kernel packages"
    "xz-utils:unpacks the guest kernel packages"
    "iproute2:network namespaces and veth pairs for the XDP/tc tests"
    "prometheus:a real Prometheus server scraping bpfkit exporter in its tests"
)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_WAIT=${BPFKIT_APT_WAIT:-600}          # seconds to wait for another apt/dpkg to finish
APT_LISTS_MAX_AGE=${BPFKIT_APT_LISTS_MAX_AGE:-86400}   # refresh package lists older than this
APT_LISTS_DIR=${BPFKIT_APT_LISTS_DIR:-/var/lib/apt/lists}
APT_LOCKS=${BPFKIT_APT_LOCKS:-"/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock"}

# The pid holding one of apt's locks, printed; false when none is held. Asks with F_GETLK, never takes
# a lock itself: even a moment's hold could make someone else's apt-get fail with "Could not get lock".
apt_lock_holder() {
    python3 - $APT_LOCKS <<'PY'
import fcntl, os, struct, sys
FLOCK = "hhqqi"  # struct flock: l_type, l_whence, l_start, l_len, l_pid (native alignment)
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        continue  # no such lock file: nobody holds it
    try:
        got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    finally:
        os.close(fd)
    l_type, _, _, _, pid = struct.unpack(FLOCK, got)
    if l_type != fcntl.F_UNLCK:
        print(pid)
        sys.exit(0)
sys.exit(1)
PY
}

# Wait (at most APT_WAIT seconds) for another apt or dpkg, e.g. unattended-upgrades on a fresh machine.
wait_for_apt() {
    local waited=0 holder
    while holder=$(apt_lock_holder); do
        if [ "$waited" -ge "$APT_WAIT" ]; then
            echo "setup: another apt/dpkg still holds its lock after ${APT_WAIT}s; let it finish (or stop it) and" \
                 "run this again (BPFKIT_APT_WAIT=SECONDS waits longer)" >&2
            return 1
        fi
        if [ $((waited % 10)) -eq 0 ]; then
            what=$(ps -o args= -p "$holder" 2>/dev/null | cut -c1-80 || true)
            echo "setup: waiting for another apt/dpkg to finish: pid $holder${what:+ ($what)}, ${waited}s of ${APT_WAIT}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# Lists older than APT_LISTS_MAX_AGE (or none at all) name package versions the mirror may have dropped.
apt_lists_stale() {
    local newest
    newest=$(find "$APT_LISTS_DIR" -maxdepth 1 -name '*Packages*' -printf '%T@\n' 2>/dev/null | sort -n | tail -1)
    [ -z "$newest" ] && return 0
    [ $(( $(date +%s) - ${newest%.*} )) -gt "$APT_LISTS_MAX_AGE" ]
}

apt_get() {
    wait_for_apt
    # the lock can be taken again between our check and apt's: apt then waits too
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout="$APT_WAIT" "$@"
}

install_packages() {
    local missing=() entry
    for entry in "${PKG_WHY[@]}"; do
        if ! dpkg-query -W -f='${Status}' "${entry%%:*}" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$entry")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "setup: installing ${#missing[@]} Debian package(s) with apt-get:"
    for entry in "${missing[@]}"; do printf 'setup:   %-18s %s\n' "${entry%%:*}" "${entry#*:}"; done
    local names=("${missing[@]%%:*}")
    if apt_lists_stale; then
        echo "setup: package lists are missing or older than ${APT_LISTS_MAX_AGE}s: apt-get update"
        apt_get -q update
    fi
    if ! apt_get install -y -q "${names[@]}"; then
        echo "setup: install failed; refreshing the package lists (apt-get update) and trying once more"
        apt_get -q update
        apt_get install -y -q "${names[@]}"
    fi
}

# `BPFKIT_SETUP_FUNCTIONS_ONLY=1 source scripts/setup.sh` defines the functions above and stops (tests).
if [ -n "${BPFKIT_SETUP_FUNCTIONS_ONLY:-}" ]; then return 0 2>/dev/null || exit 0; fi

install_packages

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv || {
        echo "setup: python3 -m venv failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
        exit 1
    }
fi

# The stamp records a successful editable install; redo it when packaging metadata changes.
stamp=.venv/.bpfkit-editable-installed
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
   || ! .venv/bin/python -c 'import importlib.metadata as m; m.version("bpfkit")' 2>/dev/null; then
    echo "setup: pip install -e '.[test]'"
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi

# Incremental: recompiles only objects whose sources/headers/flags changed, and regenerates the cffi
# bindings module when its declarations changed.
.venv/bin/python bpfkit/_build.py
# Bytecode now, not at the first start of each tool (pip does this for wheels; an editable tree needs it).
.venv/bin/python -m compileall -q bpfkit

mount_if_missing() {  # type, mountpoint
    if [ -d "$2" ] && ! mountpoint -q "$2"; then
        echo "setup: mounting $1 on $2"
        $SUDO mount -t "$1" "$1" "$2" || echo "setup: warning: could not mount $1 on $2" >&2
    fi
}
mount_if_missing debugfs /sys/kernel/debug
mount_if_missing tracefs /sys/kernel/tracing
mount_if_missing bpf /sys/fs/bpf
