#!/bin/sh
# Stage 1 of a bpfkit guest: /init of the tiny busybox initramfs built by bpfkit.testing.vm.
# Distribution kernels have 9p/virtio/overlay as modules, so they are loaded here before the host's
# / can be mounted (read-only 9p, with a tmpfs overlay so the guest may write anywhere without touching
# the host). The read-write 9p share carrying the command and its results is mounted at the same path
# as on the host, then PID 1 passes to stage 2 (init.sh), read from the host tree.
export PATH=/bin
fail() { echo "bpfkit-vm: $*"; sleep 1; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /mods/*.ko; do
	insmod "$m" || echo "bpfkit-vm: insmod $m failed"
done
share=
stage2=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	bpfkit.share=*) share=${arg#*=} ;;
	bpfkit.init=*) stage2=${arg#*=} ;;
	esac
done
[ -n "$share" ] && [ -n "$stage2" ] || fail "bpfkit.share= or bpfkit.init= missing on the kernel command line"
# cache=loose: the host tree is only read, and caching makes module/Python imports much faster.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower ||
	fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 rw /rw && mkdir -p /rw/upper /rw/work
if ! mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot; then
	echo "bpfkit-vm: overlay mount failed, the guest root stays read-only"
	mount --move /lower /newroot
fi
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 bpfkit "/newroot$share" ||
	fail "cannot mount the result share at $share"
for d in proc sys dev; do
	mount --move "/$d" "/newroot/$d"
done
exec switch_root /newroot /bin/bash "$stage2"
