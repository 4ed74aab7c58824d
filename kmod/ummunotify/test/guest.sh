#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (tests/vm/run.sh), as root, cwd = repo root:
#   guest.sh MODULE.ko UMN-TEST
# Sets up a small swap device if it can (so MADV_PAGEOUT of anonymous memory
# really swaps), loads the module, runs the C test, checks that exiting with
# open files leaves nothing behind, unloads, and does load/unload cycles.
# The kernel log itself is checked by run.sh --check-dmesg.

set -u
ko=$1
umn_test=$2
rc=0
step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; rc=1; }

step "kernel $(uname -r)"
# a regular file on the 9p root for MADV_PAGEOUT of clean file pages
export UMN_PAGEOUT_FILE=${UMN_PAGEOUT_FILE:-$(cd "$(dirname "$0")" && pwd)/umn-test.c}

# Swap on a loop device over a tmpfs file: memory-backed, but the kernel
# swaps to it like to a disk, which is all MADV_PAGEOUT needs.
swapdev=
if [ -e /dev/loop-control ] && command -v mkswap >/dev/null && command -v losetup >/dev/null; then
	if dd if=/dev/zero of=/tmp/umn-swap bs=1M count=64 status=none &&
		swapdev=$(losetup -f --show /tmp/umn-swap) &&
		mkswap -q "$swapdev" && swapon "$swapdev"; then
		step "swap on $swapdev (64 MB)"
	else
		step "no swap (could not set it up): anonymous MADV_PAGEOUT is skipped"
		swapdev=
	fi
fi

# A small ext4 file system on a loop device, for shared file mappings that
# are written back (page_mkclean): 9p and tmpfs do not write back pages.
if command -v mkfs.ext4 >/dev/null && [ -e /dev/loop-control ]; then
	if dd if=/dev/zero of=/tmp/umn-ext4.img bs=1M count=32 status=none &&
		fsdev=$(losetup -f --show /tmp/umn-ext4.img) &&
		mkfs.ext4 -q "$fsdev" && mkdir -p /mnt/umn-ext4 && mount "$fsdev" /mnt/umn-ext4; then
		export UMN_SCRATCH_DIR=/mnt/umn-ext4
		step "ext4 on $fsdev at $UMN_SCRATCH_DIR"
	else
		step "no scratch ext4: writeback is skipped"
		fsdev=
	fi
fi

step "insmod $ko"
insmod "$ko" || { fail "insmod"; exit 1; }
[ -c /dev/ummunotify ] || fail "/dev/ummunotify did not appear"

step "umn-test"
"$umn_test"
st=$?
[ "$st" = 0 ] || fail "umn-test exit status $st"

step "a process exits with open files, registrations, queued reports and mappings"
"$umn_test" --exit-with-open-files || fail "exit-with-open-files"
p=/sys/module/ummunotify/parameters
for _ in $(seq 1 50); do
	[ "$(cat $p/nr_files)" = 0 ] && break
	sleep 0.1
done
[ "$(cat $p/nr_files)" = 0 ] || fail "nr_files $(cat $p/nr_files) after exit"
[ "$(cat $p/nr_regions)" = 0 ] || fail "nr_regions $(cat $p/nr_regions) after exit"

step "rmmod"
rmmod ummunotify || fail "rmmod after the test"
[ -e /dev/ummunotify ] && fail "/dev/ummunotify still there after rmmod"

step "load/unload cycles with files left open at exit"
for i in 1 2 3; do
	insmod "$ko" || { fail "insmod cycle $i"; break; }
	"$umn_test" --exit-with-open-files || fail "exit-with-open-files cycle $i"
	sleep 0.2
	rmmod ummunotify || { fail "rmmod cycle $i"; break; }
done

if [ -n "${UMN_SCRATCH_DIR:-}" ]; then
	umount /mnt/umn-ext4 && losetup -d "$fsdev"
	rm -f /tmp/umn-ext4.img
fi
if [ -n "$swapdev" ]; then
	swapoff "$swapdev" && losetup -d "$swapdev"
	rm -f /tmp/umn-swap
fi

step "kernel log lines about ummunotify"
dmesg | grep -i ummunotify || true
if [ "$rc" = 0 ]; then step "guest: all passed"; else step "guest: FAILED"; fi
exit $rc
