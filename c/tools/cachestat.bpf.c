// cachestat: page cache hits and misses, as bcc's cachestat, from kprobes on the page cache's
// functions (no tracepoints count accesses). Each kernel function has had several names; the
// Python side attaches the program of the name this kernel has (one per counter).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"

/* accesses: folio_mark_accessed / mark_page_accessed; added: filemap_add_folio /
 * add_to_page_cache_lru (a miss); dirtied: folio_account_dirtied / account_page_dirtied /
 * __folio_mark_dirty; buffers: mark_buffer_dirty */
__u64 accessed = 0;
__u64 added = 0;
__u64 dirtied = 0;
__u64 buffers_dirtied = 0;

#define COUNTER(prog, fn, var)                          \
	SEC("kprobe/" #fn)                              \
	int BPF_KPROBE(prog)                            \
	{                                               \
		if (bpfkit_filter_pass())               \
			__sync_fetch_and_add(&var, 1);  \
		return 0;                               \
	}

COUNTER(on_folio_mark_accessed, folio_mark_accessed, accessed)
COUNTER(on_mark_page_accessed, mark_page_accessed, accessed)
COUNTER(on_filemap_add_folio, filemap_add_folio, added)
COUNTER(on_add_to_page_cache_lru, add_to_page_cache_lru, added)
COUNTER(on_folio_account_dirtied, folio_account_dirtied, dirtied)
COUNTER(on_account_page_dirtied, account_page_dirtied, dirtied)
COUNTER(on___folio_mark_dirty, __folio_mark_dirty, dirtied)
COUNTER(on_mark_buffer_dirty, mark_buffer_dirty, buffers_dirtied)

char LICENSE[] SEC("license") = "GPL";
