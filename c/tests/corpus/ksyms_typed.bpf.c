// Loader corpus: typed __ksym variables (per-CPU and plain), resolved by kernel BTF id. The kernel
// also needs their address from kallsyms, which has data symbols only with CONFIG_KALLSYMS_ALL
// (Debian's kernels have it; a kernel without refuses the program, whichever loader is used).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern const struct rq runqueues __ksym;            /* typed per-CPU variable */
extern const int bpf_prog_active __ksym;            /* typed per-CPU int */

__u64 out[2];

SEC("raw_tp/sys_enter")
int use_typed_ksyms(void *ctx)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, 0);
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	if (rq)
		out[0] = rq->cpu;
	out[1] = *active;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
