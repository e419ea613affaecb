/* odirect PATH COUNT [BS [w]]: COUNT O_DIRECT reads (or writes with "w") of BS bytes (default 4096, a multiple of
 * 512) from PATH, at consecutive BS-aligned offsets wrapping at the end of the device/file. Each must transfer
 * exactly BS bytes. On a block device each is one block request, so biolatency/biosnoop count exactly COUNT. */
#include "common.h"
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: odirect PATH COUNT [BS [w]]");
	const char *path = argv[1];
	unsigned long long n = arg_count(argc, argv, 2, 0), bs = arg_count(argc, argv, 3, 4096);
	int wr = argc > 4 && argv[4][0] == 'w';
	if (!bs || bs % 512)
		die("odirect: BS=%llu must be a positive multiple of 512", bs);
	int fd = open(path, (wr ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		die("odirect: open %s: %s", path, strerror(errno));
	unsigned long long size = 0;
	struct stat st;
	if (fstat(fd, &st))
		die("odirect: stat %s: %s", path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size))
			die("odirect: BLKGETSIZE64 %s: %s", path, strerror(errno));
	} else {
		size = st.st_size;
	}
	unsigned long long slots = size / bs;
	if (!slots)
		die("odirect: %s (%llu bytes) is smaller than one block of %llu", path, size, bs);
	void *buf;
	if (posix_memalign(&buf, 4096, bs))
		die("odirect: out of memory");
	memset(buf, 0xa5, bs);
	for (unsigned long long i = 0; !n || i < n; i++) {
		off_t off = (off_t)((i % slots) * bs);
		ssize_t r = wr ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
		if (r != (ssize_t)bs)
			die("odirect: %s %llu at %lld: %s", wr ? "write" : "read", bs, (long long)off,
			    r < 0 ? strerror(errno) : "short transfer");
	}
	close(fd);
	return 0;
}
