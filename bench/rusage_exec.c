/* Runs a command once and prints "WALL_NS MAXRSS_KIB EXIT_STATUS CPU_NS" for that process alone
 * (CPU = user + system time: on a busy machine a steadier measure of the work than wall time).
 *
 * bench/coldstart.py measures through this small launcher rather than from Python: a child's
 * ru_maxrss starts from the high-water mark of the process it was forked from (the kernel keeps
 * it across exec), so a Python harness forking the measured command would count its own ~30 MiB.
 * This launcher's own mark (well under 1 MiB of it is touched) is the floor instead.
 *
 *     rusage_exec PROGRAM [ARGS...]     (the command's stdout and stderr go to /dev/null)
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	int status;

	if (argc < 2) {
		fprintf(stderr, "usage: rusage_exec PROGRAM [ARGS...]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("wait4");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	long long cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
			(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
	printf("%lld %ld %d %lld\n", ns, ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	       cpu);
	return 0;
}
