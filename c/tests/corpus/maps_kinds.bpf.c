// Loader corpus: every map kind a BTF-defined .maps section can declare, with key/value types or
// sizes, flags, numa node, map_extra, and map-in-map / program-array initial values. Loaded by
// both backends in tests/test_loader_differential.py; the program only references them.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct lpm_key { __u32 prefixlen; __u32 addr; };
struct pair { __u64 a; __u32 b; __u16 c; __u8 d[2]; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __u32); __type(value, struct pair); } m_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } m_array SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 16); __type(key, __u64); __type(value, __u64); } m_pcpu_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, struct pair); } m_pcpu_array SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 32); __uint(map_flags, BPF_F_NO_COMMON_LRU); __type(key, __u32); __type(value, __u32); } m_lru SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH); __uint(max_entries, 32); __type(key, __u32); __type(value, __u64); } m_lru_pcpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, struct lpm_key); __type(value, __u32); } m_lpm SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 128); __uint(key_size, sizeof(__u32)); __uint(value_size, 127 * sizeof(__u64)); } m_stacks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(__u32)); __uint(value_size, sizeof(__u32)); } m_perf SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 5000); } m_ring SEC(".maps");  /* rounded up to a page power of two */
struct { __uint(type, BPF_MAP_TYPE_USER_RINGBUF); __uint(max_entries, 4096); } m_user_ring SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 8); __type(value, __u64); } m_queue SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK); __uint(max_entries, 8); __uint(value_size, 4); } m_stack SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 64); __uint(map_extra, 3); __type(value, __u32); } m_bloom SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __uint(map_flags, BPF_F_NUMA_NODE); __uint(numa_node, 0); __type(key, __u32); __type(value, __u32); } m_numa SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __uint(key_size, 6); __uint(value_size, 10); } m_sized SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, __u64); } m_task_storage SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, struct pair); } m_sk_storage SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u32); } m_cgroups SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); } m_devmap SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); } m_devhash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_CPUMAP); __uint(max_entries, 1); __type(key, __u32); __type(value, struct bpf_cpumap_val); } m_cpumap SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SOCKMAP); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } m_sockmap SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SOCKHASH); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } m_sockhash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_XSKMAP); __uint(max_entries, 2); __type(key, __u32); __type(value, __u32); } m_xsk SEC(".maps");

/* map-in-map: inner maps declared first, then outer maps whose slots point at them */
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u32); };
struct inner m_inner_a SEC(".maps"), m_inner_b SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} m_outer_array SEC(".maps") = { .values = { [0] = &m_inner_a, [2] = &m_inner_b } };
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 3); __type(key, __u32); __type(value, __u64); });
} m_outer_hash SEC(".maps");

int tail_a(void *ctx);
int tail_b(void *ctx);
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} m_progs SEC(".maps") = { .values = { [1] = (void *)&tail_a, [3] = (void *)&tail_b } };

__u64 hits = 0;

SEC("raw_tp/sys_enter")
int tail_a(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("raw_tp/sys_enter")
int tail_b(void *ctx) { __sync_fetch_and_add(&hits, 2); return 0; }

SEC("raw_tp/sys_enter")
int use_maps(void *ctx)
{
	__u32 k = 0, v32 = 1;
	__u64 v = 1;
	struct pair *p = bpf_map_lookup_elem(&m_hash, &k);
	if (p)
		p->a++;
	bpf_map_update_elem(&m_array, &k, &v, BPF_ANY);
	bpf_map_lookup_elem(&m_pcpu_hash, &v);
	bpf_map_lookup_elem(&m_pcpu_array, &k);
	bpf_map_update_elem(&m_lru, &k, &v32, BPF_ANY);
	bpf_map_lookup_elem(&m_lru_pcpu, &k);
	struct lpm_key lk = { 32, 0x0100007f };
	bpf_map_lookup_elem(&m_lpm, &lk);
	bpf_get_stackid(ctx, &m_stacks, 0);
	bpf_perf_event_output(ctx, &m_perf, BPF_F_CURRENT_CPU, &v, sizeof(v));
	bpf_ringbuf_output(&m_ring, &v, sizeof(v), 0);
	bpf_map_push_elem(&m_queue, &v, 0);
	bpf_map_push_elem(&m_stack, &v32, 0);
	bpf_map_peek_elem(&m_bloom, &v32);
	bpf_map_lookup_elem(&m_numa, &k);
	char k6[6] = {};
	bpf_map_lookup_elem(&m_sized, k6);
	bpf_task_storage_get(&m_task_storage, bpf_get_current_task_btf(), 0, 0);
	void *inner = bpf_map_lookup_elem(&m_outer_array, &k);
	if (inner)
		bpf_map_lookup_elem(inner, &k);
	inner = bpf_map_lookup_elem(&m_outer_hash, &k);
	if (inner)
		bpf_map_lookup_elem(inner, &k);
	bpf_tail_call(ctx, &m_progs, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
