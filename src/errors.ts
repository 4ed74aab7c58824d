/**
 * UmmuError: every failure of a kernel call, with the errno, the call, and
 * what to do about it. Hints are keyed by (call, errno name); an `open(PATH)`
 * that names no kernel interface gets a hint about the path (a user's file),
 * and everything else falls back to (*, errno name).
 */
import { ERRNO_NAMES } from "../ffi/errno.ts";

/**
 * The project's home: the documentation, the ummunotify driver and the test VM
 * live there (the published package holds only the library).
 */
export const PROJECT_URL = "https://github.com/ummu-dev/ummu";

/** A failed system call: `errno` and its `code` name, the `call`, and a `hint`. */
export class UmmuError extends Error {
  /** Always "UmmuError". */
  override name = "UmmuError";
  /** The errno number, e.g. 1. */
  readonly errno: number;
  /** The errno name, e.g. "EPERM". */
  readonly code: string;
  /** The call that failed, e.g. "ioctl(UFFDIO_REGISTER)". */
  readonly call: string;
  /** What to do about it (may be empty). */
  readonly hint: string;

  /** Builds the error of `call` failing with `errno`; an empty `hint` takes the library's hint for that call and errno. */
  constructor(call: string, errno: number, hint = "", detail = "") {
    const code = ERRNO_NAMES[errno] ?? `E${errno}`;
    const h = hint || defaultHint(call, code);
    super(`${call}: ${code} (errno ${errno})${detail ? `: ${detail}` : ""}${h ? `. ${h}` : ""}`);
    this.errno = errno;
    this.code = code;
    this.call = call;
    this.hint = h;
  }
}

/** A handle was used after close(). */
export class ClosedError extends Error {
  /** Always "ClosedError". */
  override name = "ClosedError";
  /** `what` names the handle, e.g. "UserfaultFd". */
  constructor(what: string) {
    super(`${what} is closed`);
  }
}

const FULL_USERFAULTFD =
  "a userfaultfd that also serves faults of system calls needs root or CAP_SYS_PTRACE, `sysctl -w vm.unprivileged_userfaultfd=1`, or read-write access to /dev/userfaultfd (Linux 6.1+)";

const HINTS: Record<string, string> = {
  "userfaultfd:EPERM":
    `${FULL_USERFAULTFD}; a user-mode-only one (userModeOnly: true of UserfaultFd.open and LazyMapping.create) needs none of these on Linux 5.11+ (a system call that touches its memory then gets EFAULT); in a container, a seccomp profile may refuse userfaultfd itself`,
  // The kernel allows UFFD_USER_MODE_ONLY to everyone since 5.11 (fs/userfaultfd.c,
  // userfaultfd_syscall_allowed), so EPERM here comes from a filter, not a privilege.
  "userfaultfd(UFFD_USER_MODE_ONLY):EPERM":
    "the kernel allows a user-mode-only userfaultfd to every user (Linux 5.11+): a seccomp filter or a security module refuses it (in a container, allow userfaultfd in its seccomp profile)",
  "userfaultfd(UFFD_USER_MODE_ONLY):EINVAL":
    "this kernel does not know UFFD_USER_MODE_ONLY (it needs Linux 5.11+)",
  "userfaultfd:ENOSYS":
    "this kernel has no userfaultfd (it is built without CONFIG_USERFAULTFD), or a seccomp filter hides the system call",
  "ioctl(USERFAULTFD_IOC_NEW):EPERM": FULL_USERFAULTFD,
  "ioctl(UFFDIO_API):EINVAL":
    "the kernel does not support a requested feature: ask UserfaultFd.probe() what it offers",
  "ioctl(UFFDIO_REGISTER):EINVAL":
    "the range must be page-aligned, non-empty, fully mapped by memory of one kind, and the mode supported for it (MINOR needs shmem or hugetlb)",
  "ioctl(UFFDIO_REGISTER):EBUSY": "the range is already registered with another userfaultfd",
  "ioctl(UFFDIO_REGISTER):ENOMEM": "the range is not fully mapped",
  "ioctl(UFFDIO_COPY):ENOENT": "the destination is no longer registered or mapped",
  "ioctl(UFFDIO_COPY):ESRCH": "the process that owns the memory has exited",
  "*:EBADF": "the file descriptor is closed or invalid",
  "*:EFAULT": "an address the kernel had to access is not mapped",
  "*:ENOMEM": "out of memory, or the address range is not mapped",
  "*:EACCES": "permission denied: run as root or grant access to the file",
  "*:EPERM": "operation not permitted: run as root or grant the needed capability",
  "*:ENOENT": "the kernel found no such object",
  "*:EINVAL": "an argument is invalid (alignment, length, flags)",
};

/**
 * Files that are kernel interfaces, not a user's data: what their absence or
 * refusal means. Matched against the path of an `open(PATH)`-like call.
 */
const INTERFACE_FILES: { path: RegExp; hints: Record<string, string> }[] = [
  {
    path: /^\/dev\/userfaultfd$/,
    hints: {
      ENOENT:
        "no /dev/userfaultfd: the device needs Linux 6.1+ built with CONFIG_USERFAULTFD (and devtmpfs or udev to create the node); the userfaultfd system call is the other way in",
      EACCES:
        "no read-write permission on /dev/userfaultfd: give this user access (e.g. `chgrp uffd /dev/userfaultfd && chmod 660 /dev/userfaultfd`), or run as root",
    },
  },
  {
    path: /^\/dev\/ummunotify$/,
    hints: {
      ENOENT:
        `the ummunotify driver is not loaded (it is not part of Linux: build and load it from ${PROJECT_URL}/tree/main/kmod/ummunotify); without it, Ummunotify.open() uses the userfaultfd backend`,
      ENODEV:
        `the ummunotify driver is not loaded (${PROJECT_URL}/tree/main/kmod/ummunotify); without it, Ummunotify.open() uses the userfaultfd backend`,
      ENXIO:
        `the ummunotify driver is not loaded (${PROJECT_URL}/tree/main/kmod/ummunotify); without it, Ummunotify.open() uses the userfaultfd backend`,
      EACCES: "no read permission on /dev/ummunotify: grant it to this user, or run as root",
    },
  },
  {
    path: /^\/sys\/kernel\/(debug\/)?tracing(\/|$)/,
    hints: {
      ENOENT:
        "no such tracefs file: tracefs is not mounted there (`mount -t tracefs nodev /sys/kernel/tracing`, as root), or the kernel has no such file (user_events needs CONFIG_USER_EVENTS; an event's folder exists only while the event does)",
      EACCES:
        "tracefs files are root's: run as root, or mount tracefs with a mode or gid that lets this user in (`mount -o remount,mode=755,gid=tracing /sys/kernel/tracing`) and grant the file",
    },
  },
  {
    path: /^\/proc\/self\/pagemap$/,
    hints: {
      ENOENT: "no /proc/self/pagemap: this kernel is built without CONFIG_PROC_PAGE_MONITOR",
    },
  },
];

/** A user's file: what the errno says about the path itself. */
function userFileHint(path: string, code: string): string {
  switch (code) {
    case "ENOENT":
      return `no such file: ${path} does not exist${
        path.startsWith("/") ? "" : " (a relative path is resolved against the working directory)"
      }`;
    case "EACCES":
      return `no permission to open ${path}: check its mode and that every folder on the way is searchable by this user`;
    case "EISDIR":
      return `${path} is a folder, not a file`;
    case "ENOTDIR":
      return `a part of ${path} that should be a folder is not one`;
    case "ELOOP":
      return `${path} has too many symbolic links (a loop?)`;
    case "ENAMETOOLONG":
      return `the path is too long: ${path.length} characters`;
  }
  return "";
}

// "open(big.bin)", "read(/sys/kernel/tracing/trace)", "mmap(/dev/ummunotify)".
const CALL_WITH_ARGUMENT = /^([a-z_]+)\((.+)\)$/;

function defaultHint(call: string, code: string): string {
  const exact = HINTS[`${call}:${code}`];
  if (exact !== undefined) return exact;
  const m = CALL_WITH_ARGUMENT.exec(call);
  if (m) {
    const [, fn, arg] = m;
    const iface = arg.startsWith("/") ? INTERFACE_FILES.find((f) => f.path.test(arg)) : undefined;
    // Only open() names a user's file (sources.file(), a path the caller gave).
    const hint = iface ? iface.hints[code] : fn === "open" ? userFileHint(arg, code) : undefined;
    if (hint) return hint;
  }
  const base = call.replace(/\(.*$/, "");
  return HINTS[`${base}:${code}`] ?? HINTS[`*:${code}`] ?? "";
}

/** A misuse caught before any kernel call: wrong alignment, empty range, bad option. */
export class UmmuArgumentError extends RangeError {
  /** Always "UmmuArgumentError". */
  override name = "UmmuArgumentError";
}
