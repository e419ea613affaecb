// fentry/fexit/fmod_ret tests on bpf_fentry_test1() and bpf_modify_return_test(), which the
// kernel calls once per BPF_PROG_TEST_RUN of a tracing program: an exact, private trigger.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_tid = 0;

__u64 entries = 0;
__s64 entry_arg_sum = 0;
__u64 exits = 0;
__s64 exit_ret_sum = 0;
__u64 modify_calls = 0;

static __always_inline int mine(void)
{
	return (__u32)bpf_get_current_pid_tgid() == target_tid;
}

SEC("fentry/bpf_fentry_test1")
int BPF_PROG(on_entry, int a)
{
	if (mine()) {
		__sync_fetch_and_add(&entries, 1);
		__sync_fetch_and_add(&entry_arg_sum, a);
	}
	return 0;
}

SEC("fexit/bpf_fentry_test1")
int BPF_PROG(on_exit, int a, int ret)
{
	if (mine()) {
		__sync_fetch_and_add(&exits, 1);
		__sync_fetch_and_add(&exit_ret_sum, ret);
	}
	return 0;
}

SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(on_modify, int a, int *b, int ret)
{
	if (mine())
		__sync_fetch_and_add(&modify_calls, 1);
	return 0; /* 0: let the original function run */
}

char LICENSE[] SEC("license") = "GPL";
