/* Baseline for bench/coldstart.py: the same work as the Python side with a bpftool skeleton —
 * open and load count.bpf.o, attach its tracepoint program, exit. */
#include <stdio.h>
#include <bpf/libbpf.h>
#include "count.skel.h"

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap) { return 0; }

int main(void)
{
	libbpf_set_print(quiet);
	struct count *skel = count__open_and_load();
	if (!skel) {
		fprintf(stderr, "load failed\n");
		return 1;
	}
	struct bpf_link *link = bpf_program__attach(skel->progs.on_getpid);
	if (!link) {
		fprintf(stderr, "attach failed\n");
		return 1;
	}
	bpf_link__destroy(link);
	count__destroy(skel);
	return 0;
}
