#!/usr/bin/env bash
# One-time machine set-up for the side-by-side benchmarks (root, Debian bookworm). Idempotent.
# Installs the peers bpfkit is compared against: bcc's tools (bpfcc-tools, python3-bpfcc 0.26), libbpf-tools 0.26
# (bcc's CO-RE C versions of the same tools, /usr/sbin/NAME), bpftrace, the Prometheus server (installed only; not
# left running), perf, hyperfine, strace; then points bcc at Debian's 6.1 kernel headers (none exist for the running
# kernel) and, with --peer-bench, copies the reference peer kit to a writable place and runs its own setup.sh there.
#   bench/setup_peers.sh [--peer-bench [DEST]]      (DEST defaults to /work/peer-bench)
set -euo pipefail

PKGS=(bpfcc-tools python3-bpfcc libbpf-tools bpftrace prometheus linux-perf hyperfine strace gcc make linux-headers-amd64)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Other engineers share this machine: wait for their apt (bounded) instead of failing on the lock.
APT=($SUDO apt-get -o DPkg::Lock::Timeout=600 -y -q)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup_peers: installing ${missing[*]}"
    # Refresh package lists only when they are older than a day (or absent).
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
        "${APT[@]}" update
    fi
    "${APT[@]}" install --no-install-recommends "${missing[@]}"
fi

# The prometheus package starts its daemon where an init system allows it; benchmarks start their own.
if pgrep -x prometheus >/dev/null 2>&1; then
    echo "setup_peers: stopping the packaged prometheus service"
    $SUDO systemctl stop prometheus 2>/dev/null || $SUDO service prometheus stop 2>/dev/null || true
fi

# bcc compiles its C at run time against /lib/modules/$(uname -r)/build. None exist for this kernel: point it at
# Debian's 6.1 headers (-amd64 holds the generated headers, -common the tree; BCC_KERNEL_SOURCE takes only one dir).
# Right for tracepoint programs (layout read from tracefs); struct layouts read through these headers are 6.1's.
K=/lib/modules/$(uname -r)
if [ ! -e "$K/build" ]; then
    hdr=$(ls -d /usr/src/linux-headers-6.1.*-amd64 | sort -V | tail -1)
    echo "setup_peers: linking $K/{build,source} -> $hdr"
    $SUDO mkdir -p "$K"
    $SUDO ln -sfn "$hdr" "$K/build"
    $SUDO ln -sfn "${hdr%-amd64}-common" "$K/source"
fi

if [ "${1:-}" = "--peer-bench" ]; then
    src=/work/shared/reference/peer-bench
    dest=${2:-/work/peer-bench}
    if [ ! -d "$dest" ]; then
        echo "setup_peers: copying $src to $dest"
        cp -r "$src" "$dest"
        chmod -R u+w "$dest"
    fi
    (cd "$dest" && ./setup.sh)
fi
echo "setup_peers: done"
