// bitesize: the size of block I/O requests as a log2 histogram of KiB per command name, taken when
// each request is issued to the driver (the issuing task's name), as bcc's bitesize.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"
#include "bpfkit_hist.h"

#define MKDEV(ma, mi) (((__u32)(ma) << 20) | (__u32)(mi))

const volatile __u32 filter_dev = 0;   /* -d DISK, 0: any */

struct comm_key {
	char comm[16];
};

BPFKIT_KEYED_LOG2_HIST(dist, struct comm_key, 1024);

SEC("tp_btf/block_rq_issue")
int BPF_PROG(on_issue, struct request *rq)
{
	struct comm_key key = {};
	struct gendisk *disk;

	if (filter_dev) {
		disk = rq->q->disk;
		if (!disk || MKDEV(disk->major, disk->first_minor) != filter_dev)
			return 0;
	}
	if (!bpfkit_filter_pass())
		return 0;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	bpfkit_keyed_log2_record(dist, key, rq->__data_len / 1024);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
