/* C baseline for bench/bench_maps.py: read a whole BPF map (by id) into arrays with
 * bpf_map_lookup_batch, and with get_next_key + lookup per key (bcc's items() way).
 * usage: bench_maps_baseline MAP_ID REPEATS [batch]   -> prints "batch <ms> <n>" per repeat, "lookup <ms> <n>" (one
 * bpf_map_lookup_elem per key) and up to 3 lines "perkey <ms> <n>" (get_next_key + lookup per key);
 * with "batch", only the batch lines
 * Build: cc -O2 bench_maps_baseline.c -lbpf */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s MAP_ID REPEATS\n", argv[0]);
		return 2;
	}
	int fd = bpf_map_get_fd_by_id(atoi(argv[1]));
	int repeats = atoi(argv[2]);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		perror("open map");
		return 1;
	}
	__u32 cap = info.max_entries;
	char *keys = malloc((size_t)cap * info.key_size);
	char *vals = malloc((size_t)cap * info.value_size);
	__u64 in_batch = 0, out_batch = 0;
	__u32 total = 0;

	memset(keys, 0, (size_t)cap * info.key_size);  /* fault the pages in once, outside the timing */
	memset(vals, 0, (size_t)cap * info.value_size);
	for (int r = 0; r < repeats; r++) {
		double t0 = now_ms();
		void *in = NULL;

		total = 0;
		for (;;) {
			__u32 count = cap - total;
			int err = bpf_map_lookup_batch(fd, in, &out_batch, keys + (size_t)total * info.key_size,
						       vals + (size_t)total * info.value_size, &count, NULL);
			total += count;
			if (err < 0 && errno != ENOENT) {
				perror("bpf_map_lookup_batch");
				return 1;
			}
			if (err < 0)
				break;
			in_batch = out_batch;
			in = &in_batch;
		}
		printf("batch %.3f %u\n", now_ms() - t0, total);
	}

	if (argc > 3 && !strcmp(argv[3], "batch"))
		return 0;

	/* every key once with bpf_map_lookup_elem, the keys taken from the batch read: the cost of
	 * one lookup syscall, what m[k] does */
	double t1 = now_ms();
	char val[64];
	__u32 found = 0;
	for (__u32 i = 0; i < total; i++)
		if (bpf_map_lookup_elem(fd, keys + (size_t)i * info.key_size, val) == 0)
			found++;
	printf("lookup %.3f %u\n", now_ms() - t1, found);

	for (int r = 0; r < (repeats < 3 ? repeats : 3); r++) {
		double t0 = now_ms();
		char cur[64], next[64];
		void *prev = NULL;
		__u32 n = 0;

		while (bpf_map_get_next_key(fd, prev, next) == 0) {
			if (bpf_map_lookup_elem(fd, next, val) == 0)
				n++;
			memcpy(cur, next, info.key_size);
			prev = cur;
		}
		printf("perkey %.3f %u\n", now_ms() - t0, n);
	}
	return 0;
}
