/* Baseline for bench/coldstart.py: the same work as the Python side with a bpftool skeleton —
 * open count.bpf.o, set target_pid to this process, load, attach, make one getpid() and wait for
 * its record in the `events` ring buffer, exit. */
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include "count.skel.h"

static int got;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap) { return 0; }

static int on_event(void *ctx, void *data, size_t size)
{
	got++;
	return 0;
}

int main(void)
{
	libbpf_set_print(quiet);
	struct count *skel = count__open();
	if (!skel) {
		fprintf(stderr, "open failed\n");
		return 1;
	}
	skel->rodata->target_pid = getpid();
	if (count__load(skel) || count__attach(skel)) {
		fprintf(stderr, "load/attach failed\n");
		return 1;
	}
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new failed\n");
		return 1;
	}
	syscall(SYS_getpid);
	while (!got) {
		if (ring_buffer__poll(rb, 1000) < 0) {
			fprintf(stderr, "poll failed\n");
			return 1;
		}
	}
	printf("first event\n");
	ring_buffer__free(rb);
	count__destroy(skel);
	return 0;
}
