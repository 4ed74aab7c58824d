/**
 * What user_events errors mean, in words: which file to mount or grant, which
 * limit was hit, which registration clashes. {@link diagnoseUserEvents} finds
 * why user_events is unusable, the most fundamental cause first (a kernel
 * without the feature before a mount that would not help); UserEvents.open()'s
 * error and `ummu doctor` both say what it finds.
 * @module
 */
import { ERRNO_NAMES } from "../../ffi/errno.ts";
import { PROJECT_URL, UmmuError } from "../errors.ts";
import { cstring, errno, libc } from "../libc.ts";
import { exists, findTracefs, readText } from "./tracefs.ts";
import { MAX_EVENT_DESC } from "../../ffi/user_events.ts";
import * as m from "../../ffi/mman.ts";

export const EPERM = 1;
export const ENOENT = 2;
export const E2BIG = 7;
export const EBADF = 9;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EINVAL = 22;
export const EMFILE = 24;
export const EADDRINUSE = 98;

/** Where a tracefs mount belongs, and where the kernel creates its mount point. */
const TRACEFS_MOUNT_POINT = "/sys/kernel/tracing";
/** A sysctl that exists exactly when the running kernel has user_events (Linux 6.4+, CONFIG_USER_EVENTS). */
export const USER_EVENTS_SYSCTL = "/proc/sys/kernel/user_events_max";

/** The first thing that stands between this process and user_events_data. */
export type UserEventsCause =
  | "usable"
  | "no-kernel-support"
  | "no-tracefs-in-kernel"
  | "tracefs-not-mounted"
  | "no-user-events-data"
  | "no-permission"
  | "refused";

/** What {@link diagnoseUserEvents} found: the facts, and the cause they point at. */
export interface UserEventsDiagnosis {
  /** "usable", or the most fundamental cause that stands in the way. */
  cause: UserEventsCause;
  /**
   * Whether the running kernel has user_events: {@link USER_EVENTS_SYSCTL}
   * exists (it does from Linux 6.4 when built with CONFIG_USER_EVENTS=y; before
   * 6.4 user_events could not be built). null when /proc/sys cannot be read.
   */
  kernelSupport: boolean | null;
  /** Where tracefs is mounted (see findTracefs), or null. */
  tracefs: string | null;
  /** The user_events_data path opened, or where it would be. */
  dataPath: string;
  /** The errno of opening user_events_data read-write (0: it opened, and was closed at once). */
  errno: number;
  /** The cause, in one clause ("" when usable). */
  reason: string;
  /** What to do about it ("" when usable). */
  fix: string;
}

/** errno of open(path) for reading (0 when it opens; the fd is closed at once). */
function openErrno(path: string, flags: number): number {
  const fd = libc.open(cstring(path), flags | m.O_CLOEXEC, 0);
  if (fd >= 0) {
    libc.close(fd);
    return 0;
  }
  return errno();
}

/** Whether the running kernel has user_events, from its sysctl; null if /proc/sys is not there. */
export function kernelHasUserEvents(): boolean | null {
  const e = openErrno(USER_EVENTS_SYSCTL, m.O_RDONLY);
  if (e === 0) return true;
  if (e !== ENOENT) return null;
  return openErrno("/proc/sys/kernel/osrelease", m.O_RDONLY) === 0 ? false : null;
}

function permissionFix(path: string): string {
  return `run as root, or let this user in (e.g. chgrp tracing ${path} && chmod g+rw ${path}, and make tracefs traversable: mount -o remount,mode=755 or gid=tracing)`;
}

const NO_KERNEL_FIX =
  `use a kernel built with CONFIG_USER_EVENTS=y (Linux 6.4+); mounting tracefs would not help. ummu's own user_events tests run such a kernel in a VM: ${PROJECT_URL}/blob/main/tests/vm/README.md`;

/**
 * Why user_events is (not) usable by this process, the most fundamental cause
 * first: the kernel (its user_events sysctl), then tracefs, then the
 * user_events_data file and its permission. Opens user_events_data read-write
 * and closes it at once; registers nothing.
 */
export function diagnoseUserEvents(): UserEventsDiagnosis {
  const kernelSupport = kernelHasUserEvents();
  const tracefs = findTracefs();
  const dataPath = `${tracefs ?? TRACEFS_MOUNT_POINT}/user_events_data`;
  const found = { kernelSupport, tracefs, dataPath };
  if (kernelSupport === false) {
    return {
      ...found,
      cause: "no-kernel-support",
      errno: ENOENT,
      reason:
        `this kernel has no user_events: it has no ${USER_EVENTS_SYSCTL}, so it is built without CONFIG_USER_EVENTS (or is older than Linux 6.4)`,
      fix: NO_KERNEL_FIX,
    };
  }
  if (tracefs === null) {
    const unknownKernel = kernelSupport === null
      ? ` (whether this kernel has user_events is unknown: ${USER_EVENTS_SYSCTL} cannot be read)`
      : "";
    if (openErrno(TRACEFS_MOUNT_POINT, m.O_RDONLY) === ENOENT && exists("/sys/kernel")) {
      return {
        ...found,
        cause: "no-tracefs-in-kernel",
        errno: ENOENT,
        reason: `this kernel has no tracefs: there is no ${TRACEFS_MOUNT_POINT}${unknownKernel}`,
        fix: "use a kernel built with CONFIG_TRACING and CONFIG_USER_EVENTS=y (Linux 6.4+)",
      };
    }
    return {
      ...found,
      cause: "tracefs-not-mounted",
      errno: ENOENT,
      reason: `tracefs is not mounted${unknownKernel}`,
      fix: `mount -t tracefs nodev ${TRACEFS_MOUNT_POINT} (as root), or add it to /etc/fstab`,
    };
  }
  const e = openErrno(dataPath, m.O_RDWR);
  if (e === 0) return { ...found, cause: "usable", errno: 0, reason: "", fix: "" };
  if (e === ENOENT) {
    return {
      ...found,
      cause: "no-user-events-data",
      errno: e,
      reason:
        `this kernel has no user_events: tracefs is mounted at ${tracefs} but has no user_events_data`,
      fix: NO_KERNEL_FIX,
    };
  }
  if (e === EACCES || e === EPERM) {
    return {
      ...found,
      cause: "no-permission",
      errno: e,
      reason: `this process may not write ${dataPath}`,
      fix: permissionFix(dataPath),
    };
  }
  return {
    ...found,
    cause: "refused",
    errno: e,
    reason: `opening ${dataPath} read-write failed with ${ERRNO_NAMES[e] ?? `errno ${e}`}`,
    fix: "",
  };
}

/**
 * Why user_events_data cannot be opened: for ENOENT, whatever
 * {@link diagnoseUserEvents} finds first (a kernel without user_events, then
 * tracefs not mounted); for EACCES/EPERM, the permission.
 */
export function openError(path: string, e: number): UmmuError {
  const call = `open(${path})`;
  if (e === ENOENT) {
    const d = diagnoseUserEvents();
    if (d.cause !== "usable" && d.cause !== "refused") {
      return new UmmuError(call, e, `${d.reason}: ${d.fix}`);
    }
    return new UmmuError(call, e);
  }
  if (e === EACCES || e === EPERM) {
    return new UmmuError(call, e, `no write permission on ${path}: ${permissionFix(path)}`);
  }
  return new UmmuError(call, e);
}

function readMaybe(path: string): string | null {
  try {
    return readText(path).trim();
  } catch {
    return null;
  }
}

/** The field declarations of an existing user_events tracepoint, from its `format` file. */
export function existingFormat(system: string, name: string): string | null {
  const root = findTracefs();
  if (root === null) return null;
  const text = readMaybe(`${root}/events/${system}/${name}/format`);
  if (text === null) return null;
  const decls: string[] = [];
  for (const line of text.split("\n")) {
    const mm = /^\s*field:(.*?);/.exec(line);
    if (mm && !mm[1].includes("common_")) decls.push(mm[1].trim());
  }
  return decls.join("; ");
}

/** DIAG_IOCSREG failures. */
export function registerError(e: number, name: string, command: string, flags: number): UmmuError {
  const call = `ioctl(DIAG_IOCSREG, "${command}")`;
  switch (e) {
    case EADDRINUSE: {
      const have = existingFormat("user_events", name);
      return new UmmuError(
        call,
        e,
        `a tracepoint named "${name}" already exists with a different format${
          have !== null ? ` ("${have}")` : ""
        }: delete it first (UserEvents.delete("${name}") once no process holds it), rename yours, or register with multiFormat: true`,
      );
    }
    case EMFILE: {
      const max = readMaybe("/proc/sys/kernel/user_events_max");
      return new UmmuError(
        call,
        e,
        `the kernel's limit on user_events is reached (kernel.user_events_max = ${
          max ?? "?"
        }): delete unused events or raise the sysctl`,
      );
    }
    case E2BIG:
      return new UmmuError(
        call,
        e,
        "struct user_reg is larger than a page (its size field is wrong)",
      );
    case EPERM:
      return new UmmuError(
        call,
        e,
        flags & 1
          ? "persistent events (USER_EVENT_REG_PERSIST) need CAP_PERFMON or CAP_SYS_ADMIN: run as root or register without persist"
          : "not permitted",
      );
    case EFAULT:
      return new UmmuError(
        call,
        e,
        "the kernel could not read the command or write the enable word (is the slab still alive?)",
      );
    case EINVAL: {
      let why = `the kernel rejected the command "${command}"`;
      if (command.length + 1 > MAX_EVENT_DESC) {
        why = `the command is ${
          command.length + 1
        } bytes with its NUL; the kernel takes at most ${MAX_EVENT_DESC}`;
      } else if (name.includes(":")) {
        why = `"${name}": ':' starts text flags, which the kernel does not accept`;
      } else if (flags) why += ` (or does not know the flags 0x${flags.toString(16)})`;
      return new UmmuError(call, e, why);
    }
  }
  return new UmmuError(call, e);
}

/** write/writev failures other than EBADF. */
export function writeError(e: number, name: string): UmmuError {
  const call = `writev(user_events_data, "${name}")`;
  const hints: Record<number, string> = {
    [ENOENT]:
      "the write index is unknown to this file descriptor (it was not registered through it)",
    [EINVAL]: "the payload is shorter than the tracepoint's fields",
    [EFAULT]:
      "a __data_loc/__rel_loc field points outside the event, or a char string lacks its NUL",
  };
  return new UmmuError(call, e, hints[e] ?? "");
}

export { exists };
