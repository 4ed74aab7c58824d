#!/usr/bin/env bash
# Build the ummu test kernel from Debian's kernel source package, into a cache
# folder laid out like ../shared/vm (so every tool that takes that folder takes
# this one too):
#
#   tests/vm/kernel/build.sh [--out DIR] [--force] [--keep-tree] [release|debug|all]
#
#   release (default)  bzImage, config, kdev.tar.xz, uapi-6.12.tar.xz
#   debug              bzImage-debug, config-debug, kdev-debug.tar.xz
#                      (config.fragment + config-debug.fragment: KASAN, lockdep)
#   all                both
#
# DIR defaults to <repo>/.cache/vm-kernel (gitignored). A variant is rebuilt
# only when its inputs changed (or with --force): the config fragments and the
# recipe version below (DIR/<image>.inputs records them; DIR/<image>.source the
# Debian package it was built from). About 12 minutes for release and 15 for
# debug on 2 cores, niced; a few GB of disk in DIR/build while it runs
# (removed afterwards unless --keep-tree). A failed build leaves its tree, and
# the next run continues it where make stopped (same source and fragments). tests/vm/run.sh calls this when no
# prebuilt kernel is given; kmod/ummunotify/test.sh takes DIR as UMMU_VM_DIR.
#
# Needs Debian bookworm (linux-source-6.12 is in bookworm-security) and root to
# apt-get the source and the build tools, unless they are already installed
# (/usr/src/linux-source-6.12.tar.xz). The host tools inside kdev (modpost,
# objtool) link against this machine's glibc, so build on the oldest Debian the
# module builds must run on (bookworm: glibc 2.36).
#
# Concurrent runs (several VM suites starting at once) take a lock on DIR: one
# builds, the others wait and then use its result.
#
# Exit status: 0 built or already up to date; 1 the build failed (its log is
# DIR/build-<variant>.log); 2 usage; 77 cannot build here (not Debian, no root
# for apt-get, no package): one line on stderr says why.

set -euo pipefail
shopt -s inherit_errexit

me=ummu-kernel
here=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -P -- "$here/../../.." && pwd)
series=6.12
src_pkg=linux-source-$series
src_tar=/usr/src/$src_pkg.tar.xz
# Bump when a change to this script changes what it builds: cached kernels of
# an older recipe are then rebuilt.
recipe=1
# What the build needs beside gcc and make; the names are Debian's.
build_deps=(bc bison flex libelf-dev libssl-dev cpio xz-utils kmod gcc make libc6-dev rsync)

say() { printf '%s: %s\n' "$me" "$*" >&2; }
cannot() { printf '%s: cannot build: %s\n' "$me" "$*" >&2; exit 77; }
usage() {
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit "${1:-2}"
}

out=$repo/.cache/vm-kernel
force=0
keep_tree=0
which=release
while [ $# -gt 0 ]; do
	case $1 in
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--force) force=1; shift ;;
	--keep-tree) keep_tree=1; shift ;;
	-h | --help) usage 0 ;;
	release | debug | all) which=$1; shift ;;
	*) say "unknown argument: $1"; usage ;;
	esac
done

mkdir -p -- "$out"
out=$(cd -P -- "$out" && pwd)

# One build at a time per output folder; the others wait for it (and then
# find their variant up to date).
lock_fd=
take_lock() {
	[ -z "$lock_fd" ] || return 0
	exec {lock_fd}>"$out/.lock"
	if ! flock -n "$lock_fd"; then
		say "another build is running in $out; waiting for it"
		flock "$lock_fd"
	fi
}

# --- the source package and the tools ------------------------------------------

missing_deps() {
	local p
	for p in "${build_deps[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || printf '%s ' "$p"
	done
}

installed_source_version() {
	dpkg-query -W -f='${Status} ${Version}\n' "$src_pkg" 2>/dev/null |
		sed -n 's/^install ok installed //p'
}

ensure_source() {
	command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
		cannot "this is not a Debian system (no dpkg/apt-get); pass a prebuilt kernel with --kernel or UMMU_VM_KERNEL"
	local need
	need=$(missing_deps)
	[ -r "$src_tar" ] && [ -n "$(installed_source_version)" ] || need+="$src_pkg"
	[ -n "$need" ] || return 0
	[ "$(id -u)" = 0 ] ||
		cannot "these Debian packages are missing and installing them needs root: $need (as root: apt-get install $need)"
	local log=$out/apt.log
	say "installing $need (apt-get; log: $log)"
	# shellcheck disable=SC2086 # $need is a list of package names
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >"$log" 2>&1; then
		say "apt-get install failed; updating the package lists and retrying"
		apt-get update -q >>"$log" 2>&1 || true
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >>"$log" 2>&1 || {
			tail -n 15 -- "$log" | sed 's/^/  | /' >&2
			cannot "apt-get install $need failed ($src_pkg is in Debian bookworm-security and newer; log: $log)"
		}
	fi
	[ -r "$src_tar" ] || cannot "$src_pkg is installed but $src_tar is missing"
}

# --- one variant ----------------------------------------------------------------

sha() { sha256sum -- "$@" | cut -d' ' -f1 | tr '\n' ' '; }

# $1 = release | debug
build_variant() {
	local variant=$1 suffix='' fragments=("$here/config.fragment")
	if [ "$variant" = debug ]; then
		suffix=-debug
		fragments+=("$here/config-debug.fragment")
	fi
	local image=$out/bzImage$suffix stamp=$out/bzImage$suffix.inputs
	local inputs
	inputs="recipe $recipe, fragments $(sha "${fragments[@]}")"
	# The stamp is written last and removed first, so an image with a matching
	# stamp is complete, lock or not.
	up_to_date() { [ -f "$image" ] && [ -f "$stamp" ] && [ "$(cat -- "$stamp")" = "$inputs" ]; }
	[ "$force" = 0 ] && up_to_date && return 0
	take_lock
	[ "$force" = 0 ] && up_to_date && return 0
	ensure_source

	local tree=$out/build/$variant log=$out/build-$variant.log
	local start=$SECONDS
	# A tree configured from the same source and fragments (a failed build's):
	# continue it; make redoes only what is missing.
	local configured="$inputs, $src_pkg $(installed_source_version)"
	rm -f -- "$stamp"
	if [ "$(cat -- "$tree/configured" 2>/dev/null)" = "$configured" ]; then
		say "continuing the $variant build in $tree (log: $log)"
		echo "--- continued" >>"$log"
	else
		say "building the $variant kernel from $src_pkg $(installed_source_version) into $out (log: $log)"
		: >"$log"
		rm -rf -- "$tree"
		mkdir -p -- "$tree"
	fi
	if ! (
		set -euo pipefail
		cd -- "$tree"
		if [ ! -f configured ]; then
			tar -xf "$src_tar"
			cd "$src_pkg"
			make -s x86_64_defconfig
			make -s kvm_guest.config
			./scripts/kconfig/merge_config.sh -m .config "${fragments[@]}"
			make -s olddefconfig
			# merge_config.sh warns, and olddefconfig silently drops, what a fragment
			# asks for but Kconfig cannot give (a missing dependency): check every line.
			local line name
			while IFS= read -r line; do
				case $line in
				CONFIG_*=*) grep -qxF -- "$line" .config || { echo "the fragment asks for $line but .config has: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo nothing)"; exit 1; } ;;
				"# CONFIG_"*" is not set")
					name=${line#\# }
					name=${name%% *}
					! grep -q "^$name=" .config || { echo "the fragment disables $name but .config has it set"; exit 1; } ;;
				esac
			done < <(cat -- "${fragments[@]}")
			printf '%s\n' "$configured" >"$tree/configured"
		fi
		cd -- "$tree/$src_pkg"
		nice -n 19 make -j"$(nproc)" bzImage modules
		nice -n 19 make -s INSTALL_HDR_PATH="$tree/uapi-$series" headers_install
	) >>"$log" 2>&1; then
		say "the $variant build failed after $((SECONDS - start)) s; the last lines of $log:"
		tail -n 30 -- "$log" | sed 's/^/  | /' >&2
		exit 1
	fi

	local ksrc=$tree/$src_pkg kdev=kdev$suffix
	# The tree an out-of-tree module is built against: make -C kdev M=$PWD modules
	rm -rf -- "${tree:?}/$kdev"
	mkdir -p -- "$tree/$kdev"
	(
		cd -- "$ksrc"
		{
			find . -path ./Documentation -prune -o \( -name 'Makefile*' -o -name 'Kbuild*' -o -name 'Kconfig*' \) -print
			find include scripts arch/x86/include arch/x86/entry/syscalls tools/include tools/arch/x86/include -type f
			find arch/x86 -maxdepth 1 -type f
			printf '%s\n' .config Module.symvers System.map tools/objtool/objtool
		} | sed 's|^\./||' | grep -v -e '\.o$' -e '\.cmd$' | sort -u | cpio -pdm --quiet "$tree/$kdev"
	) >>"$log" 2>&1
	nice -n 19 tar -cJf "$out/$kdev.tar.xz.new" -C "$tree" "$kdev"
	mv -f -- "$out/$kdev.tar.xz.new" "$out/$kdev.tar.xz"
	if [ "$variant" = release ]; then
		nice -n 19 tar -cJf "$out/uapi-$series.tar.xz.new" -C "$tree" "uapi-$series/include"
		mv -f -- "$out/uapi-$series.tar.xz.new" "$out/uapi-$series.tar.xz"
	fi
	cp -f -- "$ksrc/.config" "$out/config$suffix"
	cp -f -- "$ksrc/arch/x86/boot/bzImage" "$image.new"
	mv -f -- "$image.new" "$image"
	# An extracted kdev left from an earlier build would not match this kernel.
	rm -rf -- "${out:?}/$kdev"
	printf '%s\n' "$inputs" >"$stamp"
	printf '%s %s\n' "$src_pkg" "$(installed_source_version)" >"$out/bzImage$suffix.source"
	(
		cd -- "$out"
		for f in bzImage bzImage-debug kdev.tar.xz kdev-debug.tar.xz "uapi-$series.tar.xz"; do
			[ ! -f "$f" ] || sha256sum -- "$f"
		done >SHA256SUMS
	)
	[ "$keep_tree" = 1 ] || rm -rf -- "$tree"
	say "built $image (Linux $(sed -n 's/^# Linux\/x86 \(.*\) Kernel Configuration$/\1/p' "$out/config$suffix")) in $((SECONDS - start)) s"
}

case $which in
release) build_variant release ;;
debug) build_variant debug ;;
all) build_variant release; build_variant debug ;;
esac
rmdir -- "$out/build" 2>/dev/null || true
