#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build ummunotify.ko against the test kernel trees and run its C test in the
# test VM, under the release kernel and the debug kernel (KASAN, lockdep,
# DEBUG_VM), failing on any splat in the kernel log.
#
#   kmod/ummunotify/test.sh [release|debug|all]    (default: all)
#   kmod/ummunotify/test.sh build     only build both modules and umn-test into
#                                     <repo>/.cache/ummunotify/ (for with-module.sh)
#
# Needs: gcc, make, the kernel trees {kdev,kdev-debug}.tar.xz (extracted into
# <repo>/.cache/, again whenever the tarball changes) and the VM harness
# tests/vm/run.sh.  The trees come from $UMMU_VM_DIR, else ../shared/vm, else
# <repo>/.cache/vm-kernel, which tests/vm/kernel/build.sh builds from Debian's
# kernel source on first use (UMMU_VM_BUILD=0: say "not run" instead).  Exit
# 0 = passed, 77 = could not run (no harness, qemu or kernel), anything else
# = failed.

set -euo pipefail
shopt -s inherit_errexit

here=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -P -- "$here/../.." && pwd)
if [ -n "${UMMU_VM_DIR:-}" ]; then
	vm=$UMMU_VM_DIR
elif [ -r "$repo/../shared/vm/kdev.tar.xz" ]; then
	vm=$repo/../shared/vm
else
	vm=$repo/.cache/vm-kernel # the project's own recipe (tests/vm/kernel/)
fi
cache=$repo/.cache
build=$cache/ummunotify
which=${1:-all}

say() { printf 'ummunotify-test: %s\n' "$*" >&2; }
not_run() { say "not run: $*"; exit 77; }

case $which in release | debug | all | build) ;; *) say "usage: $0 [release|debug|all|build]"; exit 2 ;; esac

command -v make >/dev/null && command -v gcc >/dev/null || not_run "gcc and make are needed"
[ "$which" = build ] || [ -x "$repo/tests/vm/run.sh" ] || not_run "the VM harness tests/vm/run.sh is missing"

# kdev trees: extracted into .cache/ (gitignored), again when the tarball is
# another one (a tree of one kernel must not build a module for another).
tree() { # $1 = kdev | kdev-debug
	local dir=$cache/$1 tar=$vm/$1.tar.xz stamp
	if [ ! -r "$tar" ] && [ "$vm" = "$repo/.cache/vm-kernel" ] && [ "${UMMU_VM_BUILD:-1}" != 0 ]; then
		local variant=release
		[ "$1" = kdev-debug ] && variant=debug
		say "no prebuilt kernel trees: building the test kernel ($variant) with tests/vm/kernel/build.sh"
		"$repo/tests/vm/kernel/build.sh" "$variant" >&2 || not_run "tests/vm/kernel/build.sh $variant failed"
	fi
	[ -r "$tar" ] || not_run "$tar is missing"
	stamp="$tar $(stat -c '%s %Y' -- "$tar")"
	if [ ! -f "$dir/Makefile" ] || [ "$(cat "$dir.from" 2>/dev/null)" != "$stamp" ]; then
		say "extracting $tar into $cache/"
		mkdir -p "$cache"
		rm -rf -- "$dir"
		tar -xf "$tar" -C "$cache"
		printf '%s\n' "$stamp" >"$dir.from"
	fi
	printf '%s\n' "$dir"
}

# One build directory per kernel: kbuild writes its objects beside the sources.
build_module() { # $1 = release | debug
	local kdir out=$build/$1
	if [ "$1" = debug ]; then kdir=$(tree kdev-debug); else kdir=$(tree kdev); fi
	mkdir -p "$out"
	cp -- "$here/ummunotify.c" "$here/ummunotify.h" "$here/Kbuild" "$out/"
	say "building $1 module against $kdir"
	make -s -C "$kdir" M="$out" W=1 modules >&2
	printf '%s\n' "$out/ummunotify.ko"
}

mkdir -p "$build"
say "building umn-test"
gcc -O2 -g -Wall -Wextra -Werror -pthread -o "$build/umn-test" "$here/test/umn-test.c"

# Splats in a kernel log.  Deliberately not a bare "lockdep": the debug
# kernel's boot log says "RCU lockdep checking is enabled".
splat='BUG:|KASAN:|WARNING:|Oops|general protection|Call Trace:|UBSAN:|'
splat+='possible circular locking|possible recursive locking|inconsistent lock state|'
splat+='suspicious RCU usage|INFO: lockdep|sleeping function called from invalid context|'
splat+='Bad page state|list_(add|del) corruption|BUG kmalloc|refcount_t:'

rc=0
run() { # $1 = release | debug
	local ko out=$build/vm-$1 st cmd_st flags=(--check-dmesg --timeout "${UMN_TIMEOUT:-1200}")
	ko=$(build_module "$1")
	[ "$1" = debug ] && flags+=(--debug)
	rm -rf -- "$out"
	say "running in the VM ($1 kernel)"
	set +e
	UMMU_VM_OUT_DIR=$out "$repo/tests/vm/run.sh" "${flags[@]}" -- \
		bash "$here/test/guest.sh" "$ko" "$build/umn-test"
	st=$?
	set -e
	[ "$st" = 77 ] && exit 77
	# Our own verdict: the command's status and our reading of the log.
	cmd_st=$(tr -dc 0-9 <"$out/vm-exit-status" 2>/dev/null || true)
	if [ -z "$cmd_st" ]; then
		say "$1 kernel: the guest reported no status (harness status $st)"
		rc=1
		return
	fi
	if [ ! -s "$out/vm-dmesg.txt" ]; then
		say "$1 kernel: no kernel log saved"
		rc=1
	elif grep -En -- "$splat" "$out/vm-dmesg.txt" >&2; then
		say "$1 kernel: the kernel log shows the problems above ($out/vm-dmesg.txt)"
		rc=1
	else
		say "$1 kernel: kernel log clean ($(wc -l <"$out/vm-dmesg.txt") lines, $out/vm-dmesg.txt)"
		[ "$st" = 0 ] || [ "$st" != 1 ] || [ "$cmd_st" != 0 ] ||
			say "(run.sh --check-dmesg flagged a line that is not a splat; see above)"
	fi
	say "$1 kernel: test status $cmd_st"
	[ "$cmd_st" = 0 ] || rc=1
}

case $which in
build) build_module release >/dev/null; build_module debug >/dev/null ;;
release) run release ;;
debug) run debug ;;
all) run release; run debug ;;
esac
exit $rc
