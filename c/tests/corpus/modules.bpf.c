// Loader corpus: kernel-module BTF. A CO-RE relocation against struct veth_priv (in the veth
// module's BTF where veth is a module) and kfunc calls into nf_conntrack (module BTF ids, passed
// through fd_array). Built-in on this CI host; in Debian's kernels the modules must be loaded first
// (tests/test_native_loader.py does), so other tests may find this object unloadable.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple, __u32 tuple__sz,
					 struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

__u64 out = 0;

SEC("xdp")
int ct_lookup(struct xdp_md *ctx)
{
	struct bpf_sock_tuple tup;
	struct bpf_ct_opts opts;
	struct nf_conn *ct;

	/* field by field: an initialiser would become a .rodata.cst16 constant pool */
	__builtin_memset(&tup, 0, sizeof(tup));
	__builtin_memset(&opts, 0, sizeof(opts));
	opts.netns_id = -1;
	opts.l4proto = 6;
	ct = bpf_xdp_ct_lookup(ctx, &tup, sizeof(tup.ipv4), &opts, 12);

	if (ct) {
		out++;
		bpf_ct_release(ct);
	}
	return XDP_PASS;
}

SEC("raw_tp/sys_enter")
int veth_field(void *ctx)
{
	struct veth_priv *p = (void *)bpf_get_current_task();

	if (bpf_core_type_exists(struct veth_priv))
		out = BPF_CORE_READ(p, requested_headroom);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
