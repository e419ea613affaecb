// C baseline for bench_events.py: libbpf's ring_buffer__poll / perf_buffer__poll consumer.
//   events_consumer ring|plain|perf|perf-batched OBJ TARGET_PID N [PERF_PAGES [WATERMARK_BYTES [FLUSH_MS
//                   [WAKE_EVERY [IDLE_LIMIT_S]]]]]
// Loads OBJ with target_pid (and wake_every, if the object has it) set in .rodata, attaches the
// mode's program only, prints "ready", consumes until received + lost + dropped == N (or
// IDLE_LIMIT_S, default 2, without events), then prints one JSON line of results.
// ring: map `events`, program ring_getpid, drop counter __bpfkit_drops__events (events_bench.bpf.c);
// plain: map `plain`, program plain_getpid, drop counter plain_drops (events_plain.bpf.c).
// Ring modes: a wakeup drains the ring; no wakeup within FLUSH_MS: ring_buffer__consume() anyway
// (records submitted with BPF_RB_NO_WAKEUP, or by bpfkit.h's adaptive submit, wait for a look).
// perf: libbpf's perf_buffer__new, a kernel wakeup per sample. perf-batched: the configuration
// bpfkit's PerfBuffer uses by default -- the kernel wakes the reader every WATERMARK_BYTES, and
// the reader also drains every ring after FLUSH_MS without a wakeup -- so that the bench can tell
// the consumer's cost from the wakeup configuration's.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <linux/perf_event.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

struct event {
	unsigned int pid, cpu;
	unsigned long long ts, counter, spare;
};

static unsigned long long received, lost, counter_sum;
static double t_last; /* CLOCK_MONOTONIC when the latest events were consumed */

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void on_event(const struct event *e)
{
	received++;
	counter_sum += e->counter;
}

static int on_ring(void *ctx, void *data, size_t size)
{
	on_event(data);
	return 0;
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	on_event(data);
}

static void on_lost(void *ctx, int cpu, __u64 n)
{
	lost += n;
}

/* perf_buffer__new_raw hands over whole perf records: decode SAMPLE and LOST ourselves */
static enum bpf_perf_event_ret on_record(void *ctx, int cpu, struct perf_event_header *hdr)
{
	if (hdr->type == PERF_RECORD_SAMPLE) {
		struct { struct perf_event_header h; __u32 size; char data[]; } *s = (void *)hdr;
		on_event((const struct event *)s->data);
	} else if (hdr->type == PERF_RECORD_LOST) {
		struct { struct perf_event_header h; __u64 id; __u64 lost; } *l = (void *)hdr;
		lost += l->lost;
	}
	return LIBBPF_PERF_EVENT_CONT;
}

/* offset of global `name` in datasec `sec`, from the object's BTF */
static long var_offset(struct bpf_object *obj, const char *sec, const char *name)
{
	struct btf *btf = bpf_object__btf(obj);
	int id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
	if (id < 0)
		return -1;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *v = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, v++) {
		const struct btf_type *var = btf__type_by_id(btf, v->type);
		if (!strcmp(btf__name_by_offset(btf, var->name_off), name))
			return v->offset;
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s ring|perf|perf-batched OBJ TARGET_PID N [PERF_PAGES [WATERMARK FLUSH_MS]]\n",
			argv[0]);
		return 2;
	}
	int plain = !strcmp(argv[1], "plain");
	int ring = plain || !strcmp(argv[1], "ring");
	int batched = !strcmp(argv[1], "perf-batched");
	const char *map_name = plain ? "plain" : ring ? "events" : "pevents";
	const char *prog_name = plain ? "plain_getpid" : ring ? "ring_getpid" : "perf_getpid";
	const char *drops_name = plain ? "plain_drops" : ring ? "__bpfkit_drops__events" : "__bpfkit_drops__pevents";
	unsigned int pid = atoi(argv[3]);
	unsigned long long n = atoll(argv[4]);
	size_t pages = argc > 5 ? atol(argv[5]) : 64;
	unsigned int watermark = argc > 6 ? atol(argv[6]) : pages * 4096 / 4;
	int flush_ms = argc > 7 ? atoi(argv[7]) : 50;
	unsigned int wake_every = argc > 8 ? atoi(argv[8]) : 0;
	double idle_limit = argc > 9 ? atof(argv[9]) : 2.0;

	struct bpf_object *obj = bpf_object__open_file(argv[2], NULL);
	if (!obj) {
		perror("open");
		return 1;
	}
	struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
	size_t sz;
	char *ro = bpf_map__initial_value(rodata, &sz);
	long off = var_offset(obj, ".rodata", "target_pid");
	if (!ro || off < 0) {
		fprintf(stderr, "no target_pid in .rodata\n");
		return 1;
	}
	memcpy(ro + off, &pid, sizeof(pid));
	long wake_off = var_offset(obj, ".rodata", "wake_every");
	if (wake_off >= 0)
		memcpy(ro + wake_off, &wake_every, sizeof(wake_every));
	struct bpf_program *want = bpf_object__find_program_by_name(obj, prog_name), *p;
	bpf_object__for_each_program(p, obj)
		bpf_program__set_autoload(p, p == want);
	if (bpf_object__load(obj)) {
		perror("load");
		return 1;
	}
	struct bpf_link *link = bpf_program__attach(want);
	if (!link) {
		perror("attach");
		return 1;
	}
	struct bpf_map *bss = bpf_object__find_map_by_name(obj, ".bss");
	long drops_off = var_offset(obj, ".bss", drops_name);
	char *bss_val = calloc(1, bpf_map__value_size(bss));
	int zero = 0;

	struct ring_buffer *rb = NULL;
	struct perf_buffer *pb = NULL;
	if (ring) {
		rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, map_name), on_ring, NULL, NULL);
	} else if (batched) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.config = PERF_COUNT_SW_BPF_OUTPUT,
			.sample_type = PERF_SAMPLE_RAW,
			.sample_period = 1,
			.watermark = 1,
			.wakeup_watermark = watermark,
		};
		pb = perf_buffer__new_raw(bpf_object__find_map_fd_by_name(obj, "pevents"), pages, &attr, on_record,
					  NULL, NULL);
	} else {
		pb = perf_buffer__new(bpf_object__find_map_fd_by_name(obj, "pevents"), pages, on_sample, on_lost,
				      NULL, NULL);
	}
	if (!rb && !pb) {
		perror("buffer");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	double cpu0 = cpu_seconds(), idle_since = now();
	unsigned long long dropped = 0;
	while (received + lost + dropped < n) {
		int got;
		if (ring) {
			got = ring_buffer__poll(rb, flush_ms);
			if (got == 0)
				got = ring_buffer__consume(rb);
		} else if (batched) {
			/* a wakeup drains the ring that signalled; no wakeup within FLUSH_MS: look at all */
			unsigned long long before = received;
			got = perf_buffer__poll(pb, flush_ms);
			if (got == 0)
				perf_buffer__consume(pb);
			got = got < 0 ? got : (int)(received - before);
		} else {
			got = perf_buffer__poll(pb, 100);
		}
		if (got < 0 && got != -EINTR) {
			fprintf(stderr, "poll: %d\n", got);
			break;
		}
		if (got > 0) {
			t_last = now();
			idle_since = t_last;
		} else {
			bpf_map_lookup_elem(bpf_map__fd(bss), &zero, bss_val);
			memcpy(&dropped, bss_val + drops_off, sizeof(dropped));
			if (now() - idle_since > idle_limit)
				break;
		}
	}
	double cpu = cpu_seconds() - cpu0;
	bpf_map_lookup_elem(bpf_map__fd(bss), &zero, bss_val);
	memcpy(&dropped, bss_val + drops_off, sizeof(dropped));
	printf("{\"received\": %llu, \"lost\": %llu, \"dropped\": %llu, \"cpu_s\": %.6f, \"t_last\": %.6f, "
	       "\"counter_sum\": %llu}\n", received, lost, dropped, cpu, t_last, counter_sum);
	ring_buffer__free(rb);
	perf_buffer__free(pb);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
