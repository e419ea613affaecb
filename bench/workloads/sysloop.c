/* sysloop COUNT [INTERVAL_US]: COUNT getppid() system calls (raw syscall: libc caches nothing, but be sure).
 * The syscall-counting workload (syscount): a tracer must count exactly COUNT getppid calls from "sysloop". */
#include "common.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long long n = arg_count(argc, argv, 1, 1000000), us = arg_count(argc, argv, 2, 0);
	for (unsigned long long i = 0; !n || i < n; i++) {
		syscall(SYS_getppid);
		pace(us);
	}
	return 0;
}
