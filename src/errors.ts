/**
 * UmmuError: every failure of a kernel call, with the errno, the call, and
 * what to do about it. Hints are keyed by (call, errno name) and fall back to
 * (*, errno name).
 */
import { ERRNO_NAMES } from "../ffi/errno.ts";

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

const HINTS: Record<string, string> = {
  "userfaultfd:EPERM":
    "unprivileged userfaultfd is off: run as root or with CAP_SYS_PTRACE, set sysctl vm.unprivileged_userfaultfd=1, give this user access to /dev/userfaultfd, or pass userModeOnly: true",
  "open(/dev/userfaultfd):EACCES":
    "no permission on /dev/userfaultfd: chmod/chgrp it for this user, or run as root",
  "userfaultfd:ENOSYS": "the kernel has no userfaultfd (CONFIG_USERFAULTFD)",
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
  "*:ENOENT": "no such file, or the kernel lacks this feature",
  "*:EINVAL": "an argument is invalid (alignment, length, flags)",
};

function defaultHint(call: string, code: string): string {
  const base = call.replace(/\(.*$/, "");
  return HINTS[`${call}:${code}`] ?? HINTS[`${base}:${code}`] ?? HINTS[`*:${code}`] ?? "";
}

/** A misuse caught before any kernel call: wrong alignment, empty range, bad option. */
export class UmmuArgumentError extends RangeError {
  /** Always "UmmuArgumentError". */
  override name = "UmmuArgumentError";
}
