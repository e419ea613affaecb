// Loader corpus: global data in every section libbpf makes a map of: .data, .rodata, .bss and
// custom .data.*/.rodata.*/.bss.* sections, with arrays, structs, hidden and static variables.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define __hidden __attribute__((visibility("hidden")))

struct cfg { __u32 pid; __u16 port; char tag[6]; __u64 limits[3]; };

const volatile struct cfg cfgv = { .pid = 7, .port = 8080, .tag = "corp", .limits = { 1, 2, 3 } };
const volatile __u32 ro_scale = 3;
const volatile char ro_name[12] = "bpfkit";
__u64 data_counter = 42;
__s32 data_signed = -5;
__u8 data_bytes[5] = { 1, 2, 3, 4, 5 };
__u64 bss_total;
__u32 bss_hist[16];
struct cfg bss_last;
__hidden __u64 hidden_total = 9;                /* global but hidden: the BTF var turns static */
static __u64 static_total = 11;                 /* static, next to globals: .data stays mmapable */

__u64 custom_data SEC(".data.custom") = 0x1122334455667788;
__u32 custom_data2[2] SEC(".data.custom") = { 5, 6 };
const volatile __u64 custom_ro SEC(".rodata.custom") = 77;
__u64 custom_bss SEC(".bss.custom");
__u32 long_named_section_value SEC(".data.a_rather_long_section_name") = 99;

SEC("raw_tp/sys_enter")
int use_globals(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (cfgv.pid && pid == cfgv.pid)
		return 0;
	bss_total += ro_scale + cfgv.limits[2] + custom_ro;
	bss_hist[pid & 15]++;
	data_counter += data_signed;
	data_bytes[pid & 3] ^= ro_name[1];
	hidden_total++;
	static_total += 2;
	custom_data++;
	custom_data2[pid & 1] += 1;
	custom_bss += long_named_section_value;
	bss_last.port = cfgv.port;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
