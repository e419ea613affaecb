#!/bin/bash
# The full peer-kit comparison for bpfkit (W1-W4 against libbpf C, pylibbpf, bcc, bpftrace, strace), plus the
# bpfkit variants the kit does not have (ring buffer read without a dtype; perf buffer with per-sample and with
# batched wake-ups; per-key map access, w3_perkey.py), in one run. RESULT lines go to stdout and to $OUT.
#   bench/peer_kit/run_baseline.sh [OUT]     (needs bench/setup_peers.sh --peer-bench done; root)
# Env: PEER_BENCH (the writable kit copy, default /work/peer-bench), PYK (bpfkit's interpreter, default this tree's
# .venv), W1_RUNS/W2_RUNS/W3_RUNS/W4_RUNS, STRACE_RUNS, ONLY (space-separated subset of: w1 w2 w2wake w3 w3perkey w4).
set -euo pipefail
# A background job of a non-interactive shell (nohup, `cmd &`) starts with SIGINT ignored, and an ignored signal
# stays ignored across exec: the kit stops its peers with SIGINT, and Python peers that do not install their own
# handler (pylibbpf's W4) would never stop. Re-exec with SIGINT/SIGQUIT at their defaults; bash itself cannot.
if [ -z "${RUN_BASELINE_SIGFIXED:-}" ]; then
	export RUN_BASELINE_SIGFIXED=1
	exec python3 -c 'import os, signal, sys; [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGQUIT)]; os.execv(sys.argv[1], sys.argv[1:])' "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
export PEER_BENCH=${PEER_BENCH:-/work/peer-bench}
export PYK=${PYK:-$(cd "$here/../.." && pwd)/.venv/bin/python}
OUT=${1:-/work/bench-results/peer-$(date -u +%Y%m%dT%H%M%SZ).log}
mkdir -p "$(dirname "$OUT")"
cd "$PEER_BENCH"
make -s
NODTYPE="bpfkit-nodtype=$PYK $here/w2_nodtype.py"
PERF1="bpfkit-perf=$PYK $here/w2_perf.py"
PERF0="bpfkit-perf-batched=env BPFKIT_PERF_WAKEUP=0 $PYK $here/w2_perf.py"
{
	echo "# $(uname -r), $(nproc) CPUs, $(date -u); PYK=$PYK; bpfkit $(git -C "$here" rev-parse --short HEAD)"
	echo "# load: $(cat /proc/loadavg)"
	step() {  # step NAME CMD...: run CMD unless $ONLY leaves NAME out; echo it first, for the log
		local name=$1; shift
		if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]]; then
			printf '+'; printf ' %q' "$@"; echo
			"$@"
		fi
	}
	step w1 python3 w1_cold_start.py --runs "${W1_RUNS:-11}"
	step w2 python3 w2_stream.py --runs "${W2_RUNS:-3}" --peer "$NODTYPE" --peer "$PERF1" --peer "$PERF0"
	step w2wake python3 w2_stream.py --runs "${W2_RUNS:-3}" --wakeup 64 --only none,libbpf,bcc,bpfkit \
		--peer "$NODTYPE"
	step w3 python3 w3_map_dump.py --runs "${W3_RUNS:-3}"
	step w3perkey "$PYK" "$here/w3_perkey.py" --runs "${W3_RUNS:-3}"
	step w4 python3 w4_overhead.py --runs "${W4_RUNS:-11}" --strace-runs "${STRACE_RUNS:-3}"
	echo "# load: $(cat /proc/loadavg)"
} 2>&1 | tee "$OUT"
echo "log: $OUT"
