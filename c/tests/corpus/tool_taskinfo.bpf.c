// Loader corpus and bench object (bench/bench_loader.py), shaped like a `ps`-style task dumper:
// 63 task fields read through CO-RE (well over 50 relocations), one record per exec into a ring
// buffer, plus an existence check per optional field.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct info { __u64 v[63]; char comm[16]; __u32 has[4]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 18); } infos SEC(".maps");
const volatile __u32 only_tgid = 0;
__u64 emitted = 0;

SEC("tracepoint/sched/sched_process_exec")
int dump_task(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	if (only_tgid && BPF_CORE_READ(t, tgid) != only_tgid)
		return 0;
	struct info *o = bpf_ringbuf_reserve(&infos, sizeof(*o), 0);
	if (!o)
		return 0;
	o->v[0] = BPF_CORE_READ(t, pid);
	o->v[1] = BPF_CORE_READ(t, tgid);
	o->v[2] = BPF_CORE_READ(t, flags);
	o->v[3] = BPF_CORE_READ(t, prio);
	o->v[4] = BPF_CORE_READ(t, static_prio);
	o->v[5] = BPF_CORE_READ(t, normal_prio);
	o->v[6] = BPF_CORE_READ(t, rt_priority);
	o->v[7] = BPF_CORE_READ(t, policy);
	o->v[8] = BPF_CORE_READ(t, nr_cpus_allowed);
	o->v[9] = BPF_CORE_READ(t, utime);
	o->v[10] = BPF_CORE_READ(t, stime);
	o->v[11] = BPF_CORE_READ(t, gtime);
	o->v[12] = BPF_CORE_READ(t, nvcsw);
	o->v[13] = BPF_CORE_READ(t, nivcsw);
	o->v[14] = BPF_CORE_READ(t, start_time);
	o->v[15] = BPF_CORE_READ(t, start_boottime);
	o->v[16] = BPF_CORE_READ(t, min_flt);
	o->v[17] = BPF_CORE_READ(t, maj_flt);
	o->v[18] = BPF_CORE_READ(t, exit_state);
	o->v[19] = BPF_CORE_READ(t, exit_code);
	o->v[20] = BPF_CORE_READ(t, exit_signal);
	o->v[21] = BPF_CORE_READ(t, pdeath_signal);
	o->v[22] = BPF_CORE_READ(t, personality);
	o->v[23] = BPF_CORE_READ(t, real_parent, tgid);
	o->v[24] = BPF_CORE_READ(t, real_parent, pid);
	o->v[25] = BPF_CORE_READ(t, parent, pid);
	o->v[26] = BPF_CORE_READ(t, group_leader, pid);
	o->v[27] = BPF_CORE_READ(t, group_leader, tgid);
	o->v[28] = BPF_CORE_READ(t, mm, total_vm);
	o->v[29] = BPF_CORE_READ(t, mm, locked_vm);
	o->v[30] = BPF_CORE_READ(t, mm, data_vm);
	o->v[31] = BPF_CORE_READ(t, mm, exec_vm);
	o->v[32] = BPF_CORE_READ(t, mm, stack_vm);
	o->v[33] = BPF_CORE_READ(t, mm, start_code);
	o->v[34] = BPF_CORE_READ(t, mm, end_code);
	o->v[35] = BPF_CORE_READ(t, mm, start_data);
	o->v[36] = BPF_CORE_READ(t, mm, end_data);
	o->v[37] = BPF_CORE_READ(t, mm, start_brk);
	o->v[38] = BPF_CORE_READ(t, mm, brk);
	o->v[39] = BPF_CORE_READ(t, mm, start_stack);
	o->v[40] = BPF_CORE_READ(t, mm, arg_start);
	o->v[41] = BPF_CORE_READ(t, mm, arg_end);
	o->v[42] = BPF_CORE_READ(t, mm, env_start);
	o->v[43] = BPF_CORE_READ(t, mm, env_end);
	o->v[44] = BPF_CORE_READ(t, mm, map_count);
	o->v[45] = BPF_CORE_READ(t, mm, hiwater_rss);
	o->v[46] = BPF_CORE_READ(t, mm, hiwater_vm);
	o->v[47] = BPF_CORE_READ(t, signal, nr_threads);
	o->v[48] = BPF_CORE_READ(t, signal, oom_score_adj);
	o->v[49] = BPF_CORE_READ(t, cred, uid.val);
	o->v[50] = BPF_CORE_READ(t, cred, gid.val);
	o->v[51] = BPF_CORE_READ(t, cred, euid.val);
	o->v[52] = BPF_CORE_READ(t, cred, egid.val);
	o->v[53] = BPF_CORE_READ(t, cred, suid.val);
	o->v[54] = BPF_CORE_READ(t, cred, fsuid.val);
	o->v[55] = BPF_CORE_READ(t, fs, umask);
	o->v[56] = BPF_CORE_READ(t, nsproxy, pid_ns_for_children, level);
	o->v[57] = BPF_CORE_READ(t, se.vruntime);
	o->v[58] = BPF_CORE_READ(t, se.sum_exec_runtime);
	o->v[59] = BPF_CORE_READ(t, se.nr_migrations);
	o->v[60] = BPF_CORE_READ(t, se.exec_start);
	o->v[61] = BPF_CORE_READ(t, rt.timeout);
	o->v[62] = BPF_CORE_READ(t, real_parent, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&o->comm, t, comm);
	o->has[0] = bpf_core_field_exists(t->numa_scan_seq);
	o->has[1] = bpf_core_field_exists(t->sched_task_group);
	o->has[2] = bpf_core_field_exists(t->ioac);
	o->has[3] = bpf_core_field_exists(t->loginuid);
	emitted++;
	bpf_ringbuf_submit(o, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
