/* openloop COUNT [INTERVAL_US [PATH]]: COUNT openat(AT_FDCWD, PATH, O_RDONLY) calls, each followed by close()
 * when it succeeded. PATH defaults to /dev/null; a missing PATH makes COUNT failed opens (ENOENT), which
 * opensnoop also reports. The opensnoop workload, and (COUNT 0, 1000 us) its 1 ms trigger. */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long long n = arg_count(argc, argv, 1, 100000), us = arg_count(argc, argv, 2, 0);
	const char *path = argc > 3 ? argv[3] : "/dev/null";
	for (unsigned long long i = 0; !n || i < n; i++) {
		int fd = openat(AT_FDCWD, path, O_RDONLY);
		if (fd >= 0)
			close(fd);
		pace(us);
	}
	return 0;
}
