/* pingpong COUNT [CPU]: two processes pass one byte back and forth over two pipes, COUNT round trips; each round
 * trip is two wake-ups and two context switches, so a run-queue tracer (runqlat) has exactly that much to do.
 * CPU >= 0 pins both processes to that CPU, so every wake-up waits in the run queue behind the other side. */
#include "common.h"
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

static void xfer(int rfd, int wfd, unsigned long long n, int first)
{
	char c = 0;
	for (unsigned long long i = 0; !n || i < n; i++) {
		if (first && write(wfd, &c, 1) != 1)
			die("pingpong: write: %s", strerror(errno));
		if (read(rfd, &c, 1) != 1)
			die("pingpong: read: %s", strerror(errno));
		if (!first && write(wfd, &c, 1) != 1)
			die("pingpong: write: %s", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	unsigned long long n = arg_count(argc, argv, 1, 100000);
	long cpu = argc > 2 ? strtol(argv[2], NULL, 0) : -1;
	int a[2], b[2];
	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("pingpong: CPU %ld: %s", cpu, strerror(errno));
	}
	if (pipe(a) || pipe(b))
		die("pingpong: pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("pingpong: fork: %s", strerror(errno));
	if (pid == 0) {
		xfer(a[0], b[1], n, 0);
		_exit(0);
	}
	xfer(b[0], a[1], n, 1);
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		die("pingpong: the other side failed (status 0x%x)", st);
	return 0;
}
