// Global data libbpf does not make mmapable: sections holding only `static` variables. libbpf
// 1.1 creates their maps without BPF_F_MMAPABLE (map_is_mmapable() wants a non-static variable),
// so user space reads and writes them with map lookup/update, as libbpf's own tools do.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

static const volatile __u32 step = 1;   /* .rodata, only statics: frozen, not mmapable */
static const volatile __u32 target_pid = 0;
/* volatile: clang would drop a static that only the program writes, or fold one it only reads */
static volatile __u64 hits;             /* .bss, only statics */
static volatile __u32 last_pid;
static volatile __u64 bias = 1000;      /* .data, only statics */
static volatile __u64 seen_bias;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (pid != target_pid)
		return 0;
	__sync_fetch_and_add(&hits, step);
	last_pid = pid;
	seen_bias = bias;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
