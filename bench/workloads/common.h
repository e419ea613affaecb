/* Shared by the bench workloads: argument parsing and the pacing sleep. Every workload takes COUNT first
 * (0 = run until killed, for use as a trigger) and does exactly COUNT operations, then exits 0; any failed
 * operation is a non-zero exit with a message, so a benchmark never times a workload that did less than asked. */
#ifndef BENCH_WORKLOAD_COMMON_H
#define BENCH_WORKLOAD_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline unsigned long long arg_count(int argc, char **argv, int i, unsigned long long dflt)
{
	if (argc <= i)
		return dflt;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(argv[i], &end, 0);
	if (errno || *end || argv[i][0] == '-') {
		fprintf(stderr, "%s: bad number '%s'\n", argv[0], argv[i]);
		exit(2);
	}
	return v;
}

/* Sleep between operations when paced (trigger mode); 0 = back to back. */
static inline void pace(unsigned long long interval_us)
{
	if (!interval_us)
		return;
	struct timespec ts = { interval_us / 1000000, (interval_us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

#define die(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)
#endif
