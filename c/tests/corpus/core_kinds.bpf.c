// Loader corpus: every CO-RE relocation kind clang 14 emits — field byte offset (nested, array
// elements), byte size, existence, signedness, bitfield shifts, local and target type ids, type
// existence and size, enum value existence and value — plus ___flavor types and guarded reads of
// fields a kernel lacks (their instructions are poisoned, in dead code).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* the pre-5.14 name of task_struct::__state, as a flavor: absent on every kernel we run */
struct task_struct___pre514 { long state; } __attribute__((preserve_access_index));
/* a flavor with a field only some kernels have */
struct task_struct___flav { int pid; int tgid; } __attribute__((preserve_access_index));
/* inode::i_ctime until 6.5 (then __i_ctime, then split in 6.11): resolves on 6.1, not on 6.12 */
struct inode___until65 { struct timespec64 i_ctime; } __attribute__((preserve_access_index));
/* a local-only type name: never found in the kernel */
struct bpfkit_nowhere { int x; } __attribute__((preserve_access_index));
enum bpfkit_local_enum { BPFKIT_A = 1 };

__u64 out[32];

SEC("raw_tp/sys_enter")
int core_fields(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	int i = 0;

	out[i++] = BPF_CORE_READ(t, pid);                              /* byte_off */
	out[i++] = BPF_CORE_READ(t, real_parent, tgid);                /* nested pointers */
	out[i++] = BPF_CORE_READ(t, mm, total_vm);
	out[i++] = BPF_CORE_READ(t, comm[3]);                          /* array element */
	out[i++] = BPF_CORE_READ(t, se.vruntime);                      /* embedded struct member */
	out[i++] = bpf_core_field_size(t->comm);                       /* byte_sz */
	out[i++] = bpf_core_field_size(t->se);
	out[i++] = bpf_core_field_exists(t->__state);                  /* field_exists */
	out[i++] = __builtin_preserve_field_info(t->pid, BPF_FIELD_SIGNED);           /* signed */
	out[i++] = __builtin_preserve_field_info(t->utime, BPF_FIELD_SIGNED);
	out[i++] = BPF_CORE_READ_BITFIELD_PROBED(t, sched_reset_on_fork); /* lshift/rshift */
	out[i++] = bpf_core_field_offset(t->tgid);
	out[i++] = bpf_core_type_id_local(struct task_struct);         /* local_type_id */
	out[i++] = bpf_core_type_id_kernel(struct task_struct);        /* target_type_id */
	out[i++] = bpf_core_type_exists(struct task_struct);           /* type_exists */
	out[i++] = bpf_core_type_exists(struct bpfkit_nowhere);
	out[i++] = bpf_core_type_size(struct task_struct);             /* type_size */
	out[i++] = bpf_core_type_size(struct bpfkit_nowhere);
	out[i++] = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_TGID);       /* enumval_exists */
	out[i++] = bpf_core_enum_value(enum pid_type, PIDTYPE_PGID);              /* enumval_value */
	out[i++] = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	out[i++] = bpf_core_enum_value_exists(enum bpfkit_local_enum, BPFKIT_A);
	out[i++] = bpf_core_type_id_kernel(struct bpfkit_nowhere);
	return 0;
}

SEC("raw_tp/sys_enter")
int core_flavors(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	int i = 24;

	if (bpf_core_field_exists(((struct task_struct___pre514 *)t)->state))
		out[i++] = BPF_CORE_READ((struct task_struct___pre514 *)t, state);  /* poisoned, dead */
	else
		out[i++] = BPF_CORE_READ(t, __state);
	out[i++] = BPF_CORE_READ((struct task_struct___flav *)t, tgid);
	if (bpf_core_type_exists(struct bpfkit_nowhere))
		out[i++] = BPF_CORE_READ((struct bpfkit_nowhere *)t, x);          /* poisoned, dead */
	out[i++] = bpf_core_field_exists(((struct task_struct___flav *)t)->pid);
	struct inode___until65 *ino = (void *)BPF_CORE_READ(t, mm, exe_file, f_inode);
	if (bpf_core_field_exists(ino->i_ctime))
		out[i++] = BPF_CORE_READ(ino, i_ctime.tv_sec);                  /* poisoned after 6.5 */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
