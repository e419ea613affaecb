/* What the file tools (vfsstat, filetop, fileslower, filelife) share: a file's name and type
 * from its struct file / dentry (CO-RE reads). These tools sit on kprobes (the VFS has no
 * tracepoints), so their objects load anywhere and attach only where kprobes exist. */
#ifndef __BPFKIT_FILE_COMMON_H
#define __BPFKIT_FILE_COMMON_H

#include <bpf/bpf_core_read.h>

#define S_IFMT_ 0170000
#define S_IFREG_ 0100000
#define S_IFSOCK_ 0140000
#define NAME_LEN 64

const volatile bool regular_only = 1;   /* bcc's default: regular files only (-a: all) */

static __always_inline __u32 file_mode(struct file *file)
{
	return BPF_CORE_READ(file, f_inode, i_mode);
}

static __always_inline bool file_wanted(struct file *file)
{
	__u32 mode = file_mode(file);

	if (regular_only)
		return (mode & S_IFMT_) == S_IFREG_;
	return true;
}

static __always_inline void dentry_name(struct dentry *d, char *buf, __u32 size)
{
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);

	bpf_probe_read_kernel_str(buf, size, name);
}

static __always_inline void file_name(struct file *file, char *buf, __u32 size)
{
	dentry_name(BPF_CORE_READ(file, f_path.dentry), buf, size);
}

static __always_inline char file_type(struct file *file)
{
	__u32 fmt = file_mode(file) & S_IFMT_;

	return fmt == S_IFREG_ ? 'R' : fmt == S_IFSOCK_ ? 'S' : 'O';
}

#endif /* __BPFKIT_FILE_COMMON_H */
