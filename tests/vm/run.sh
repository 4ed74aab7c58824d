#!/usr/bin/env bash
# Run a command inside the ummu test VM: Linux 6.12 with user_events, under
# qemu (TCG), with the host's root file system read-only over 9p.
#
#   tests/vm/run.sh [--kernel PATH | --debug] [--timeout SECS] [--check-dmesg]
#                   [--mem MB] -- CMD [ARGS...]
#
# Kernel: --kernel, $UMMU_VM_KERNEL, ../shared/vm/bzImage, else the one
# tests/vm/kernel/build.sh builds (and this script, on first use) into
# .cache/vm-kernel/.
#
# Exit status: CMD's; 77 = not run (no qemu or no kernel); 124 = timed out;
# 1 = the guest died without an exit status, or --check-dmesg found a kernel
# splat; 2 = usage error. See tests/vm/README.md.

set -u

me=ummu-vm
here=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -P -- "$here/../.." && pwd)
default_kernel="$repo/../shared/vm/bzImage"

msg() { printf '%s: %s\n' "$me" "$*" >&2; }
not_run() { printf '%s: not run: %s\n' "$me" "$*" >&2; exit 77; }
usage() {
	if [ "${1:-2}" != 0 ]; then
		echo "usage: tests/vm/run.sh [--kernel PATH | --debug] [--timeout SECS] [--check-dmesg] [--mem MB] -- CMD [ARGS...] (--help: more)" >&2
		exit 2
	fi
	cat <<'EOF'
usage: tests/vm/run.sh [--kernel PATH | --debug] [--timeout SECS] [--check-dmesg] [--mem MB] -- CMD [ARGS...]

Boots the ummu test kernel under qemu (TCG) with the host's root over 9p
(read-only), runs CMD in the guest with cwd = the repo root, streams its
stdout+stderr, and exits with its status (77: not run, 124: timed out,
1: the guest died or --check-dmesg failed). See tests/vm/README.md.

  --kernel PATH   kernel image (default: $UMMU_VM_KERNEL, else <repo>/../shared/vm/bzImage,
                  else the kernel tests/vm/kernel/build.sh builds into <repo>/.cache/vm-kernel/,
                  built on first use unless UMMU_VM_BUILD=0)
  --debug         bzImage-debug beside the default kernel (KASAN, lockdep)
  --timeout SECS  kill the guest after SECS seconds, exit 124 (default 600)
  --check-dmesg   exit 1 if the guest's kernel log shows a BUG, KASAN report,
                  WARNING, lockdep splat, Oops or Call Trace
  --mem MB        guest memory (default 2048)
EOF
	exit "${1:-2}"
}

kernel=
debug=0
timeout_s=600
check_dmesg=0
mem=2048
smp=${UMMU_VM_SMP:-2}
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) [ $# -ge 2 ] || usage; kernel=$2; shift 2 ;;
	--kernel=*) kernel=${1#*=}; shift ;;
	--debug) debug=1; shift ;;
	--timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
	--timeout=*) timeout_s=${1#*=}; shift ;;
	--check-dmesg) check_dmesg=1; shift ;;
	--mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
	--mem=*) mem=${1#*=}; shift ;;
	-h | --help) usage 0 ;;
	--) shift; break ;;
	*) msg "unknown option: $1 (the command goes after --)"; usage ;;
	esac
done
[ $# -gt 0 ] || { msg "no command given"; usage; }
case $timeout_s in '' | *[!0-9]* | 0) msg "--timeout needs a positive whole number of seconds"; usage ;; esac
case $mem in '' | *[!0-9]*) msg "--mem needs a number of MB"; usage ;; esac
[ "$mem" -ge 256 ] || { msg "--mem $mem is too small (256 MB at least)"; usage; }
case $smp in '' | *[!0-9]* | 0) msg "UMMU_VM_SMP needs a positive number"; usage ;; esac

# --- what to boot -------------------------------------------------------------

qemu=${UMMU_VM_QEMU:-qemu-system-x86_64}
command -v -- "$qemu" >/dev/null 2>&1 ||
	not_run "$qemu is not installed (apt-get install qemu-system-x86, or set UMMU_VM_QEMU to its path)"

# A prebuilt kernel (--kernel, $UMMU_VM_KERNEL, ../shared/vm/bzImage), else
# the one tests/vm/kernel/build.sh builds from Debian's kernel source package
# into .cache/vm-kernel/ (built here on first use: about 12 minutes, once).
variant=release
[ "$debug" = 1 ] && variant=debug
if [ "$debug" = 1 ] && [ -n "$kernel" ]; then
	msg "--debug and --kernel exclude each other"
	usage
fi
if [ -z "$kernel" ] && [ -z "${UMMU_VM_KERNEL:-}" ] && [ ! -e "$default_kernel" ]; then
	built_dir=$repo/.cache/vm-kernel
	kernel=$built_dir/bzImage
	[ "$debug" = 1 ] && kernel=$built_dir/bzImage-debug
	if [ "${UMMU_VM_BUILD:-1}" = 0 ]; then
		[ -e "$kernel" ] || not_run "no prebuilt kernel ($default_kernel) and UMMU_VM_BUILD=0: pass --kernel PATH, set UMMU_VM_KERNEL, or build one with tests/vm/kernel/build.sh $variant"
	else
		# Up to date: returns at once. Otherwise builds (one build at a time:
		# concurrent runs wait for it); its progress goes to stderr.
		"$here/kernel/build.sh" --out "$built_dir" "$variant" >&2
		case $? in
		0) ;;
		77) not_run "no prebuilt kernel ($default_kernel), and tests/vm/kernel/build.sh cannot build one here (above); pass --kernel PATH or set UMMU_VM_KERNEL" ;;
		*) msg "tests/vm/kernel/build.sh $variant failed (above)"; exit 1 ;;
		esac
	fi
elif [ "$debug" = 1 ]; then
	kernel="$(dirname -- "${UMMU_VM_KERNEL:-$default_kernel}")/bzImage-debug"
elif [ -z "$kernel" ]; then
	kernel=${UMMU_VM_KERNEL:-$default_kernel}
fi

[ -e "$kernel" ] ||
	not_run "no kernel image at $kernel (pass --kernel PATH or set UMMU_VM_KERNEL; tests/vm/kernel/build.sh builds one)"
[ -f "$kernel" ] || not_run "the kernel image $kernel is not a regular file (pass --kernel PATH or set UMMU_VM_KERNEL)"
{ [ -r "$kernel" ] && head -c 1 -- "$kernel" >/dev/null 2>&1; } ||
	not_run "the kernel image $kernel is not readable (fix its permissions, or pass --kernel PATH)"
[ "$(od -An -tx1 -j 514 -N 4 -- "$kernel" 2>/dev/null | tr -d ' \n')" = 48647253 ] ||
	not_run "$kernel is not an x86 bzImage (no HdrS header; pass --kernel PATH to a bzImage)"

init=$here/guest-init.sh
[ -x "$init" ] && [ -r "$here/guest.fstab" ] || { msg "$init or $here/guest.fstab is missing"; exit 1; }
case $init in *[[:space:]\"]*)
	not_run "the repo path $repo contains whitespace or quotes, which the kernel command line cannot carry (clone it elsewhere)" ;;
esac

# --- per-run files: $work (host only) and $out (the guest's /mnt/out) ----------

work=$(mktemp -d "${TMPDIR:-/tmp}/ummu-vm.XXXXXXXX") || { msg "mktemp failed"; exit 1; }
out=$work/out
if [ -n "${UMMU_VM_OUT_DIR:-}" ]; then
	{ mkdir -p -- "$UMMU_VM_OUT_DIR" && out=$(cd -P -- "$UMMU_VM_OUT_DIR" && pwd); } ||
		{ msg "cannot use UMMU_VM_OUT_DIR=$UMMU_VM_OUT_DIR"; rm -rf -- "$work"; exit 1; }
	rm -f -- "$out/vm-exit-status" "$out/vm-dmesg.txt" "$out/vm-console.log"
else
	mkdir -- "$out"
fi
console=$work/console.log # the guest's serial console: kernel messages, init's
output=$work/output.log   # what CMD writes, streamed to our stdout
: >"$console"
: >"$output"

qemu_pid=
tail_pid=
keep=${UMMU_VM_KEEP:-0}
cleanup() {
	[ -n "$qemu_pid" ] && kill -TERM "$qemu_pid" 2>/dev/null
	[ -n "$tail_pid" ] && kill -TERM "$tail_pid" 2>/dev/null
	if [ "$keep" = 1 ]; then
		msg "kept this run's files in $work"
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT
trap 'msg "interrupted"; exit 130' INT
trap 'msg "terminated"; exit 143' TERM HUP

# The command for the guest init, as POSIX sh (the init sources it in a
# subshell), every word single-quoted so that any argument survives.
shq() { REPLY="'${1//\'/\'\\\'\'}'"; }
{
	echo "# written by tests/vm/run.sh"
	# The caller's UMMU_* settings (test knobs) go through; the harness's own do not.
	while IFS= read -r name; do
		case $name in UMMU_VM_* | UMMU_IN_VM) continue ;; esac
		shq "${!name}"
		printf 'export %s=%s\n' "$name" "$REPLY"
	done < <(compgen -e | grep '^UMMU_')
	shq "$repo"
	printf 'cd -- %s || exit 125\n' "$REPLY"
	printf 'exec'
	for a in "$@"; do
		shq "$a"
		printf ' %s' "$REPLY"
	done
	printf '\n'
} >"$out/vm-cmd.sh"
printf '%s\n' "$repo" >"$out/vm-repo"

# --- boot ---------------------------------------------------------------------

qv() { REPLY=${1//,/,,}; } # qemu option values write ',' as ',,'
qv "$out"; out_q=$REPLY
qv "$output"; output_q=$REPLY
qv "$console"; console_q=$REPLY

# quiet: only warnings and worse reach the console log. The stall and lockup
# detectors get longer limits: vCPUs of a TCG guest on a busy host stall for
# seconds without anything being wrong.
append="console=ttyS0 root=root rootfstype=9p ro"
append+=" rootflags=trans=virtio,version=9p2000.L,cache=loose,msize=262144"
append+=" init=$init panic=-1 quiet watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=120"
append+="${UMMU_VM_APPEND:+ $UMMU_VM_APPEND}"

# Single-threaded TCG: with one host thread per vCPU (MTTCG), a vCPU can run a
# stale translation of code the kernel live-patches (text_poke_bp: every
# static-key flip, i.e. every tracepoint enable), hit the transient int3 after
# the patch completed, and Oops ("int3" in ttwu_do_activate, seen here about
# one boot in four). thread=single interleaves the vCPUs on one host thread,
# so the patch and its sync IPIs are seen in order. Still 2 vCPUs in the guest.
start=$(date +%s%N)
timeout --kill-after=10 "$timeout_s" \
	"$qemu" -nodefaults -no-user-config -display none -no-reboot \
	-accel tcg,thread=single -machine pc -cpu max -smp "$smp" -m "$mem" \
	-kernel "$kernel" -append "$append" \
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=root,mount_tag=root \
	-fsdev "local,id=out,path=$out_q,security_model=none,multidevs=remap" \
	-device virtio-9p-pci,fsdev=out,mount_tag=out \
	-device virtio-serial-pci \
	-chardev "file,id=cmdout,path=$output_q,append=on" \
	-device virtserialport,chardev=cmdout,name=ummu.out \
	-chardev "file,id=console,path=$console_q,append=on" \
	-serial chardev:console -monitor none \
	</dev/null &
qemu_pid=$!

# Stream CMD's output as qemu writes it; tail ends once qemu has exited and
# everything has been read.
tail -c +1 -f -s 0.2 --pid="$qemu_pid" -- "$output" &
tail_pid=$!

wait "$qemu_pid"
qemu_rc=$?
qemu_pid=
wait "$tail_pid"
tail_pid=
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
elapsed="$((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100))s"
[ "$out" = "$work/out" ] || cp -- "$console" "$out/vm-console.log" 2>/dev/null

# --- verdict ------------------------------------------------------------------

console_tail() {
	msg "the last lines of the guest's console log:"
	tail -n "$1" -- "$console" | sed 's/^/  | /' >&2
}

status=
[ -f "$out/vm-exit-status" ] && status=$(tr -dc 0-9 <"$out/vm-exit-status")

if [ "$qemu_rc" = 124 ]; then
	if [ -z "$status" ]; then
		keep=1
		msg "timed out: the guest did not finish within ${timeout_s}s (--timeout SECS); qemu killed"
		console_tail 20
		exit 124
	fi
	msg "the command finished (status $status) but the guest did not power off within ${timeout_s}s"
fi
if [ -z "$status" ]; then
	keep=1
	if [ "$qemu_rc" != 0 ]; then
		msg "qemu failed (exit status $qemu_rc) before the command finished"
	else
		msg "the guest died before the command finished (kernel panic, init failure or qemu crash)"
	fi
	console_tail 40
	exit 1
fi

if [ "$check_dmesg" = 1 ]; then
	if [ ! -s "$out/vm-dmesg.txt" ]; then
		keep=1
		msg "--check-dmesg: the guest saved no kernel log (command status $status)"
		exit 1
	fi
	splat='BUG:|KASAN|WARNING:|possible circular locking|lockdep|Call Trace|general protection|Oops'
	splat+='|UBSAN:|kernel BUG at|Kernel panic|possible recursive locking|inconsistent lock state'
	splat+='|suspicious RCU usage|sleeping function called from invalid context|Bad page state'
	splat+='|list_(add|del) corruption|refcount_t:|soft lockup|hard LOCKUP|detected stalls?'
	splat+='|blocked for more than'
	benign='RCU lockdep checking is enabled' # the debug kernel's boot banner
	if bad=$(grep -E -- "$splat" "$out/vm-dmesg.txt" | grep -Ev -- "$benign"); then
		keep=1
		msg "--check-dmesg: the guest's kernel log shows problems (command status $status):"
		printf '%s\n' "$bad" | head -n 60 | sed 's/^/  | /' >&2
		msg "the whole kernel log: $out/vm-dmesg.txt"
		exit 1
	fi
fi

[ "${UMMU_VM_VERBOSE:-0}" = 1 ] && msg "boot + command + power-off: $elapsed, command status $status"
exit "$status"
