/* tcpconn COUNT [BYTES [INTERVAL_US]]: COUNT TCP connections over loopback inside a private network namespace
 * (unshare; it vanishes with the process, so nothing global is created). Each connection: connect, send BYTES
 * (default 1000), half-close, receive BYTES back from the server, close; the server (a child process) reads to EOF,
 * answers with BYTES, closes. tcplife sees each connection from both ends: exactly 2*COUNT sessions with BYTES each
 * way. Ports are reused from TIME_WAIT (loopback), so any COUNT works. Needs CAP_SYS_ADMIN. */
#include "common.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr = { 0 };
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr))
		die("tcpconn: lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		die("tcpconn: bring lo up: %s", strerror(errno));
	close(s);
}

static void send_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w <= 0)
			die("tcpconn: write: %s", strerror(errno));
		buf += w, n -= w;
	}
}

static unsigned long long recv_all(int fd, char *buf, size_t cap)
{
	unsigned long long got = 0;
	for (;;) {
		ssize_t r = read(fd, buf, cap);
		if (r < 0)
			die("tcpconn: read: %s", strerror(errno));
		if (!r)
			return got;
		got += r;
	}
}

int main(int argc, char **argv)
{
	unsigned long long n = arg_count(argc, argv, 1, 1000), bytes = arg_count(argc, argv, 2, 1000);
	unsigned long long us = arg_count(argc, argv, 3, 0);
	char *buf = calloc(1, bytes > 65536 ? bytes : 65536);
	if (!buf)
		die("tcpconn: out of memory");
	if (unshare(CLONE_NEWNET))
		die("tcpconn: unshare(CLONE_NEWNET): %s (needs root)", strerror(errno));
	loopback_up();
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (void *)&sa, sizeof(sa)) || listen(ls, 128) || getsockname(ls, (void *)&sa, &sl))
		die("tcpconn: listen: %s", strerror(errno));
	pid_t srv = fork();
	if (srv < 0)
		die("tcpconn: fork: %s", strerror(errno));
	if (srv == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the client (a trigger is killed mid-loop) */
		if (getppid() == 1)
			_exit(1);
		for (unsigned long long i = 0; !n || i < n; i++) {
			int c = accept(ls, NULL, NULL);
			if (c < 0)
				die("tcpconn: accept: %s", strerror(errno));
			unsigned long long got = recv_all(c, buf, 65536);
			if (got != bytes)
				die("tcpconn: server got %llu bytes, expected %llu", got, bytes);
			send_all(c, buf, bytes);
			close(c);
		}
		_exit(0);
	}
	close(ls);
	for (unsigned long long i = 0; !n || i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (void *)&sa, sizeof(sa)))
			die("tcpconn: connect: %s", strerror(errno));
		send_all(c, buf, bytes);
		shutdown(c, SHUT_WR);
		unsigned long long got = recv_all(c, buf, 65536);
		if (got != bytes)
			die("tcpconn: client got %llu bytes, expected %llu", got, bytes);
		close(c);
		pace(us);
	}
	int st;
	if (waitpid(srv, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		die("tcpconn: server failed (status 0x%x)", st);
	return 0;
}
