// Benchmark floor for bench_events.py: a program that does nothing, on the same tracepoint as the
// event producers. The getpid loop's time with it attached is what the kernel charges for running
// any BPF program there, before a record is reserved or a reader woken.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_getpid")
int empty_getpid(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
