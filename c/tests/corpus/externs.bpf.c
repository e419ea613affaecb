// Loader corpus: __kconfig externs of every supported type (CONFIG_* from the kernel's config,
// LINUX_KERNEL_VERSION, LINUX_HAS_*, weak unknown ones) and __ksym externs (a typeless address from
// kallsyms, a weak missing typed one). Typed data ksyms are in ksyms_typed.bpf.c.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig __weak;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[32] __kconfig __weak;
extern u64 CONFIG_BPFKIT_NOT_A_REAL_OPTION __kconfig __weak;
extern unsigned char CONFIG_NR_CPUS_CHAR_NOT_HERE __kconfig __weak;

extern const void schedule __ksym;                  /* typeless: an address from kallsyms */
extern const int bpfkit_no_such_symbol __ksym __weak;

__u64 out[8];

SEC("raw_tp/sys_enter")
int use_externs(void *ctx)
{
	out[0] = LINUX_KERNEL_VERSION;
	out[1] = LINUX_HAS_BPF_COOKIE + 2 * LINUX_HAS_SYSCALL_WRAPPER + 4 * CONFIG_BPF_SYSCALL;
	out[2] = CONFIG_BPF_JIT == TRI_YES ? 1 : CONFIG_BPF_JIT == TRI_MODULE ? 2 : 3;
	out[3] = CONFIG_HZ + CONFIG_DEFAULT_HOSTNAME[0] + CONFIG_BPFKIT_NOT_A_REAL_OPTION + CONFIG_NR_CPUS_CHAR_NOT_HERE;
	out[4] = (__u64)&schedule;
	if (&bpfkit_no_such_symbol)
		out[7] = 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
