#!/usr/bin/env bash
# Idempotent developer/CI setup: system packages, .venv, editable install, BPF objects, tracefs mounts.
# Repeat runs are fast: apt is skipped when everything is installed, pip when setup.py is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(clang-14 llvm-14 libbpf-dev bpftool systemtap-sdt-dev gcc linux-libc-dev make qemu-system-x86 kmod
      busybox-static zstd xz-utils iproute2 prometheus)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

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

# Incremental: recompiles only objects whose sources/headers/flags changed.
.venv/bin/python bpfkit/_build.py

mount_if_missing() {  # type, mountpoint
    if [ -d "$2" ] && ! mountpoint -q "$2"; then
        echo "setup: mounting $1 on $2"
        $SUDO mount -t "$1" "$1" "$2" || echo "setup: warning: could not mount $1 on $2" >&2
    fi
}
mount_if_missing debugfs /sys/kernel/debug
mount_if_missing tracefs /sys/kernel/tracing
mount_if_missing bpf /sys/fs/bpf
