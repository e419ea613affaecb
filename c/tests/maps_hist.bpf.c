// Histogram/stats test program: the n-th getpid() of target_pid (n = 0, 1, ...) records the
// value n into every kind of bpfkit_hist.h map, so Python knows the exact expected contents.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit_hist.h"

BPFKIT_LOG2_HIST(lat);
BPFKIT_LOG2_HIST(slat);                         /* signed: records n - 3 */
BPFKIT_LINEAR_HIST(lin, 0, 100, 10);
BPFKIT_KEYED_LOG2_HIST(klat, __u32, 8);         /* key n % 3 */
BPFKIT_KEYED_LINEAR_HIST(klin, __u64, 8, 0, 100, 10);
BPFKIT_STATS(st);                               /* records n - 10 */
BPFKIT_KEYED_STATS(kst, __u32, 8);

const volatile __u32 target_pid = 0;
__u64 seq = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__u64 n = __sync_fetch_and_add(&seq, 1);
	__u32 k = n % 3;

	bpfkit_log2_record(&lat, n);
	bpfkit_log2_record_signed(&slat, (__s64)n - 3);
	bpfkit_linear_record(&lin, n, 0, 100, 10);
	bpfkit_keyed_log2_record(klat, k, n);
	bpfkit_keyed_linear_record(klin, (__u64)k, n, 0, 100, 10);
	bpfkit_stats_record(&st, (__s64)n - 10);
	bpfkit_keyed_stats_record(&kst, &k, n);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
