#!/bin/bash
# Stage 2 of a bpfkit guest: PID 1 inside the host's tree (see initramfs.sh). Sets up the mounts a
# BPF test expects, runs the share's run.sh with its output and exit status written back to the share,
# then powers the guest off so qemu exits.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
share=
modules=
for arg in $(</proc/cmdline); do
	case "$arg" in
	bpfkit.share=*) share=${arg#*=} ;;
	bpfkit.modules=*) modules=${arg#*=} ;;
	esac
done

mnt() { mount "$@" 2>/dev/null || echo "bpfkit-vm: mount $* failed"; }
mnt -t tmpfs -o mode=755 run /run
mkdir -p /dev/pts /dev/shm
mnt -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
mnt -t tmpfs -o mode=1777 shm /dev/shm
mnt -t tracefs tracefs /sys/kernel/tracing
mnt -t debugfs debugfs /sys/kernel/debug
mnt -t bpf bpf /sys/fs/bpf
mnt -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up 2>/dev/null

# modprobe looks in /lib/modules/$(uname -r); the host has no such dir, so the unpacked package's is
# bound there. If the root is read-only (no overlay), a tmpfs makes room for the mount point.
kver=$(uname -r)
if [ -n "$modules" ] && [ -d "$modules" ]; then
	mkdir -p "/lib/modules/$kver" 2>/dev/null || { mount -t tmpfs tmp /lib/modules && mkdir -p "/lib/modules/$kver"; }
	mnt --bind "$modules" "/lib/modules/$kver"
fi

# Loaders read CONFIG_* values (for __kconfig externs) from /boot/config-$(uname -r), as on a real
# install: the unpacked package has it.
pkgboot="$modules/../../../boot/config-$kver"
if [ -n "$modules" ] && [ -f "$pkgboot" ] && [ ! -e "/boot/config-$kver" ]; then
	mkdir -p /boot 2>/dev/null && cp "$pkgboot" "/boot/config-$kver" 2>/dev/null
fi

echo "bpfkit-vm: start $(cut -d' ' -f1 /proc/uptime)"
/bin/bash "$share/run.sh" >"$share/output" 2>&1 </dev/null
echo $? >"$share/rc.tmp" && mv "$share/rc.tmp" "$share/rc"
echo "bpfkit-vm: end $(cut -d' ' -f1 /proc/uptime)"
sync
echo o >/proc/sysrq-trigger
# If the power-off request is ignored, PID 1 exiting panics the kernel; panic=-1 with qemu's
# -no-reboot turns that into a qemu exit as well.
sleep 10
