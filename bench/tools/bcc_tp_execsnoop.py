#!/usr/bin/python3
"""bcc's execsnoop on tracepoints: Debian's execsnoop-bpfcc attaches kprobes to the execve syscall,
which a kernel without CONFIG_KPROBES refuses. This is the same tool in bcc's dialect — one perf
event per argument, joined in Python, as bcc's does — on syscalls:sys_{enter,exit}_execve, so the
benchmark can compare bcc's way of working on this kernel. Prints bcc's header and lines."""
from collections import defaultdict

from bcc import BPF
from bcc.utils import printb

PROG = r"""
#include <linux/sched.h>
#define ARGSIZE 128
#define MAXARG 20

enum kind { ARG, RET };

struct data_t {
    u32 pid;
    u32 ppid;
    u32 uid;
    char comm[TASK_COMM_LEN];
    enum kind kind;
    char argv[ARGSIZE];
    int retval;
};

BPF_PERF_OUTPUT(events);

static int send_string(void *ctx, const void *user_ptr, struct data_t *d)
{
    bpf_probe_read_user(d->argv, sizeof(d->argv), user_ptr);
    events.perf_submit(ctx, d, sizeof(*d));
    return 1;
}

static int send_arg(void *ctx, const void *slot, struct data_t *d)
{
    const char *p = NULL;
    bpf_probe_read_user(&p, sizeof(p), slot);
    return p ? send_string(ctx, p, d) : 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_execve)
{
    struct data_t d = {};
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();

    d.pid = bpf_get_current_pid_tgid() >> 32;
    d.ppid = task->real_parent->tgid;
    bpf_get_current_comm(&d.comm, sizeof(d.comm));
    d.kind = ARG;
    send_string(args, args->filename, &d);
    #pragma unroll
    for (int i = 1; i < MAXARG; i++)
        if (!send_arg(args, &args->argv[i], &d))
            return 0;
    char more[] = "...";
    __builtin_memcpy(d.argv, more, sizeof(more));
    events.perf_submit(args, &d, sizeof(d));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_execve)
{
    struct data_t d = {};
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();

    d.pid = bpf_get_current_pid_tgid() >> 32;
    d.uid = bpf_get_current_uid_gid();
    d.ppid = task->real_parent->tgid;
    bpf_get_current_comm(&d.comm, sizeof(d.comm));
    d.kind = RET;
    d.retval = args->ret;
    events.perf_submit(args, &d, sizeof(d));
    return 0;
}
"""

b = BPF(text=PROG)
print("%-16s %-7s %-7s %3s %s" % ("PCOMM", "PID", "PPID", "RET", "ARGS"), flush=True)
argv = defaultdict(list)


def on_event(cpu, data, size):
    e = b["events"].event(data)
    if e.kind == 0:
        argv[e.pid].append(e.argv)
        return
    if e.retval == 0:
        printb(b"%-16s %-7d %-7d %3d %s" % (e.comm, e.pid, e.ppid, e.retval, b" ".join(argv[e.pid])))
    argv.pop(e.pid, None)


b["events"].open_perf_buffer(on_event)
while True:
    try:
        b.perf_buffer_poll()
    except KeyboardInterrupt:
        break
