/* Workloads for the tool benchmarks: a fixed amount of the work each tool traces, timed inside.
 *
 * usage: workload exec N            N times: fork, exec /bin/true, wait
 *        workload open N PATH       N times: openat(PATH) + close
 *        workload pingpong N        two processes pass a byte back and forth N times over pipes
 *                                   (2N wakeups and context switches)
 *        workload every USEC MODE   the trigger: one exec of /bin/true (MODE exec) or one open of
 *                                   /etc/hostname (MODE open) every USEC microseconds, until killed
 *
 * Prints the seconds the work took ("secs=...").
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_true(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl("/bin/true", "true", "--bench-arg", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long n = argc > 2 ? atol(argv[2]) : 0;
	double t0 = now();

	if (!strcmp(mode, "exec")) {
		for (long i = 0; i < n; i++)
			run_true();
	} else if (!strcmp(mode, "open") && argc > 3) {
		for (long i = 0; i < n; i++) {
			int fd = openat(AT_FDCWD, argv[3], O_RDONLY);

			if (fd >= 0)
				close(fd);
		}
	} else if (!strcmp(mode, "pingpong")) {
		int ab[2], ba[2];
		char c = 'x';

		if (pipe(ab) || pipe(ba))
			return 2;
		if (fork() == 0) {
			for (long i = 0; i < n; i++)
				if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
					_exit(2);
			_exit(0);
		}
		for (long i = 0; i < n; i++)
			if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
				return 2;
		wait(NULL);
	} else if (!strcmp(mode, "every") && argc > 3) {
		struct timespec gap = { .tv_sec = 0, .tv_nsec = n * 1000 };

		for (;;) {
			if (!strcmp(argv[3], "exec"))
				run_true();
			else {
				int fd = open("/etc/hostname", O_RDONLY);

				if (fd >= 0)
					close(fd);
			}
			nanosleep(&gap, NULL);
		}
	} else {
		fprintf(stderr, "usage: see the comment at the top of workload.c\n");
		return 2;
	}
	printf("secs=%.6f\n", now() - t0);
	return 0;
}
