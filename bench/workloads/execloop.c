/* execloop COUNT [INTERVAL_US [PROG [ARGS...]]]: COUNT times fork+exec PROG ARGS (default /bin/true) and wait for
 * it; every exec must succeed and exit 0. The execsnoop workload, and (COUNT 0, 1000 us, /bin/true MARKER) its
 * trigger: execsnoop prints the marker argument on the line the trigger caused. */
#include "common.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
	unsigned long long n = arg_count(argc, argv, 1, 1000), us = arg_count(argc, argv, 2, 0);
	char *dflt[] = { "/bin/true", NULL };
	char **cmd = argc > 3 ? argv + 3 : dflt;
	for (unsigned long long i = 0; !n || i < n; i++) {
		pid_t pid;
		int st, err = posix_spawn(&pid, cmd[0], NULL, NULL, cmd, environ);
		if (err)
			die("execloop: exec %s: %s", cmd[0], strerror(err));
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			die("execloop: %s did not exit 0 (status 0x%x)", cmd[0], st);
		pace(us);
	}
	return 0;
}
