#!/usr/bin/python3
"""bcc's opensnoop on tracepoints: Debian's opensnoop-bpfcc attaches fentry/fexit or kprobes, which
this kernel refuses (fentry EPERM, no CONFIG_KPROBES). This is the same tool in bcc's dialect — the
arguments kept per thread in a hash from entry to exit, one perf event per call — on
syscalls:sys_{enter,exit}_openat, so the benchmark can compare bcc's way of working on this
kernel. Prints bcc's header and lines."""
from bcc import BPF
from bcc.utils import printb

PROG = r"""
#include <uapi/linux/limits.h>
#include <linux/sched.h>

struct val_t {
    u64 id;
    char comm[TASK_COMM_LEN];
    const char *fname;
};

struct data_t {
    u64 id;
    u64 ts;
    u32 uid;
    int ret;
    char comm[TASK_COMM_LEN];
    char name[NAME_MAX];
};

BPF_HASH(infotmp, u64, struct val_t);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    struct val_t val = {};
    u64 id = bpf_get_current_pid_tgid();

    if (bpf_get_current_comm(&val.comm, sizeof(val.comm)) == 0) {
        val.id = id;
        val.fname = args->filename;
        infotmp.update(&id, &val);
    }
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_openat)
{
    u64 id = bpf_get_current_pid_tgid();
    struct val_t *valp = infotmp.lookup(&id);
    struct data_t data = {};

    if (valp == 0)
        return 0;
    bpf_probe_read_kernel(&data.comm, sizeof(data.comm), valp->comm);
    bpf_probe_read_user_str(&data.name, sizeof(data.name), (void *)valp->fname);
    data.id = valp->id;
    data.ts = bpf_ktime_get_ns() / 1000;
    data.uid = bpf_get_current_uid_gid();
    data.ret = args->ret;
    events.perf_submit(args, &data, sizeof(data));
    infotmp.delete(&id);
    return 0;
}
"""

b = BPF(text=PROG)
print("%-6s %-16s %4s %3s %s" % ("PID", "COMM", "FD", "ERR", "PATH"), flush=True)


def on_event(cpu, data, size):
    e = b["events"].event(data)
    fd, err = (e.ret, 0) if e.ret >= 0 else (-1, -e.ret)
    printb(b"%-6d %-16s %4d %3d %s" % (e.id >> 32, e.comm, fd, err, e.name))


b["events"].open_perf_buffer(on_event, page_cnt=64)
while True:
    try:
        b.perf_buffer_poll()
    except KeyboardInterrupt:
        break
