#!/bin/sh
# PID 1 of the ummu test VM (run.sh boots the kernel with `init=` this file).
#
# The root file system is the host's root over 9p, read-only, so every path
# (the repo, node_modules, the runtimes) is the same as on the host. This
# script mounts what the guest needs (guest.fstab), runs the command that
# run.sh wrote into the `out` export (vm-cmd.sh), records the kernel log
# (vm-dmesg.txt) and the command's exit status (vm-exit-status) there, and
# powers off. Its own messages go to the kernel console (run.sh's console
# log); the command's stdout+stderr go to the virtio port `ummu.out`, which
# run.sh streams to the host's stdout.
#
# Every program started here is read over 9p under TCG (50-500 ms each), so
# this is POSIX sh (dash starts faster than bash) and uses builtins wherever
# it can.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8
export TERM=dumb
here=${0%/*}
OUT=/mnt/out

say() { printf 'ummu-vm(guest): %s\n' "$*" >/dev/console 2>&1; }

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger 2>/dev/null
	sleep 10
	# Power-off is asynchronous; if it did not happen, reboot (qemu runs with
	# -no-reboot, so that ends it too).
	echo b >/proc/sysrq-trigger 2>/dev/null
	sleep 10
	exit 1 # PID 1 exiting panics the kernel; with panic=-1 qemu exits
}

# Is something mounted on $1? (reads /proc/self/mounts, no subprocess)
mounted() {
	while read -r _src _dir _rest; do
		[ "$_dir" = "$1" ] && return 0
	done </proc/self/mounts
	return 1
}

# Until the guest mounts its own, /proc, /sys and /dev show the host's through
# the 9p root (read-only), so mount /proc first and unconditionally.
mount -t proc proc /proc || { say "cannot mount /proc"; poweroff_now; }
mount -a -T "$here/guest.fstab" || say "some mounts of $here/guest.fstab failed"
for d in /sys /dev /dev/shm /sys/kernel/tracing /run /mnt; do
	mounted "$d" || say "$d is not mounted"
done
mounted "$OUT" || { say "cannot mount the 'out' 9p export on $OUT"; poweroff_now; }

# Loopback up, in the background (it is rarely needed and costs an exec).
ip link set lo up 2>/dev/null &

REPO=
read -r REPO <"$OUT/vm-repo"

# A tmpfs on /tmp, as the root is read-only. It hides the host's /tmp; if the
# repo itself lives under /tmp, bind it back at the same path.
case $REPO in
/tmp/*)
	mkdir -p /mnt/host-tmp && mount --bind /tmp /mnt/host-tmp &&
		mount -t tmpfs -o mode=1777 tmpfs /tmp &&
		mkdir -p "$REPO" && mount --bind "/mnt/host-tmp/${REPO#/tmp/}" "$REPO" ||
		say "cannot bind $REPO back under the guest's /tmp"
	;;
*) mount -t tmpfs -o mode=1777 tmpfs /tmp || say "cannot mount a tmpfs on /tmp" ;;
esac

export HOME=/tmp/home
export TMPDIR=/tmp
export DENO_DIR=/tmp/deno
export DENO_NO_UPDATE_CHECK=1
export DENO_NO_PROMPT=1
export XDG_CACHE_HOME=/tmp/cache
export XDG_CONFIG_HOME=/tmp/config
export XDG_DATA_HOME=/tmp/data
export XDG_RUNTIME_DIR=/run/user/0
export BUN_INSTALL_CACHE_DIR=/tmp/bun-cache
export BUN_RUNTIME_TRANSPILER_CACHE_PATH=/tmp/bun-transpiler-cache
export UMMU_VM_OUT=$OUT
export UMMU_IN_VM=1
[ -n "$REPO" ] && PATH="$REPO/node_modules/.bin:$PATH"
{
	mkdir -p "$HOME" "$DENO_DIR" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" \
		"$BUN_INSTALL_CACHE_DIR" "$BUN_RUNTIME_TRANSPILER_CACHE_PATH" "${XDG_RUNTIME_DIR%/*}"
	mkdir -m 700 "$XDG_RUNTIME_DIR"
} &
# /dev/fd and /dev/std{in,out,err} (devtmpfs lacks them), in the background.
(
	[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
	for n in 0:stdin 1:stdout 2:stderr; do
		[ -e "/dev/${n#*:}" ] || ln -s "fd/${n%%:*}" "/dev/${n#*:}"
	done
) &
echo ummu-vm >/proc/sys/kernel/hostname

# The command's output channel: the virtio port named ummu.out (see run.sh).
port=
i=0
while [ $i -lt 100 ]; do
	for d in /sys/class/virtio-ports/*; do
		name=
		read -r name <"$d/name" 2>/dev/null
		[ "$name" = ummu.out ] && [ -c "/dev/${d##*/}" ] && port=/dev/${d##*/}
	done
	[ -n "$port" ] && break
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$port" ]; then
	say "no virtio port ummu.out; the command's output goes to the console"
	port=/dev/console
fi
wait # for the background jobs above

echo "ummu-vm: running the command" >/dev/kmsg
if [ -r "$OUT/vm-cmd.sh" ]; then
	# vm-cmd.sh is POSIX sh: cd to the repo, then exec the command.
	(. "$OUT/vm-cmd.sh") </dev/null >"$port" 2>&1
	status=$?
else
	say "$OUT/vm-cmd.sh is missing"
	status=125
fi
echo "ummu-vm: the command exited with status $status" >/dev/kmsg

dmesg >"$OUT/vm-dmesg.txt" 2>&1
echo "$status" >"$OUT/vm-exit-status"
poweroff_now
