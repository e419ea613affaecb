// Loader corpus: BTF kinds older kernels lack and libbpf sanitizes — DECL_TAG (on a global variable,
// a struct, a struct member, a subprogram and its parameter) and TYPE_TAG (on pointers, as the kernel's
// __user/__rcu annotations are written), plus a FLOAT. clang 14 cannot emit ENUM64; the sanitizing of
// that kind is tested on synthetic BTF in tests/test_native_loader.py.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ptag(x) __attribute__((btf_type_tag(x)))

struct tagged {
	__u64 count __tag("bpfkit:counter");
	int __ptag("bpfkit_user") *where;
	float ratio;
} __tag("bpfkit:record");

struct tagged tagged_state __tag("bpfkit:state") = { .count = 3 };
int __ptag("bpfkit_user") *last_where = 0;

static __noinline __u64 bump(__u64 by __tag("bpfkit:amount")) __tag("bpfkit:helper")
{
	tagged_state.count += by;
	return tagged_state.count;
}

SEC("raw_tp/sys_enter")
int tags_enter(void *ctx)
{
	last_where = tagged_state.where;
	bump(1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
