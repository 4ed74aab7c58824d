/**
 * What user_events errors mean, in words: which file to mount or grant, which
 * limit was hit, which registration clashes.
 */
import { UmmuError } from "../errors.ts";
import { exists, findTracefs, readText } from "./tracefs.ts";
import { MAX_EVENT_DESC } from "../../ffi/user_events.ts";

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

/** Why user_events_data cannot be opened: tracefs missing, or user_events missing, or permission. */
export function openError(path: string, e: number): UmmuError {
  const call = `open(${path})`;
  if (e === ENOENT) {
    const root = findTracefs();
    if (root === null) {
      return new UmmuError(
        call,
        e,
        "tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing (as root)",
      );
    }
    return new UmmuError(
      call,
      e,
      `this kernel has no user_events: tracefs is mounted at ${root} but has no user_events_data (user_events needs Linux 6.4+ built with CONFIG_USER_EVENTS=y; run the kernel tests inside the test VM, tests/vm/run.sh)`,
    );
  }
  if (e === EACCES || e === EPERM) {
    return new UmmuError(
      call,
      e,
      `no write permission on ${path}: run as root, or let this user in (e.g. chgrp tracing ${path} && chmod g+rw ${path}, and make tracefs traversable: mount -o remount,mode=755 or gid=tracing)`,
    );
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
