// Loader corpus: kfunc calls (vmlinux BTF ids in call instructions), a weak kfunc no kernel has,
// and the same rcu kfuncs from a sleepable-free tracing program. kfuncs for tracing programs came
// in 6.2: older kernels refuse this object (with either loader).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern int bpfkit_no_such_kfunc(int x) __ksym __weak;

__u64 seen = 0;

SEC("tp_btf/sched_switch")
int BPF_PROG(kf_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *t;

	bpf_rcu_read_lock();
	seen += next->pid;
	bpf_rcu_read_unlock();
	t = bpf_task_acquire(next);
	if (t) {
		seen += t->tgid;
		bpf_task_release(t);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
