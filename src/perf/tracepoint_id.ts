/**
 * A tracepoint's id (the perf_event_attr.config of a PERF_TYPE_TRACEPOINT
 * event) from tracefs: `events/<system>/<event>/id`. An unknown name is an
 * UmmuArgumentError listing close names. When tracefs is not mounted (a fresh
 * machine) it is mounted on /sys/kernel/tracing, as `mount -t tracefs nodev
 * /sys/kernel/tracing` would (root or CAP_SYS_ADMIN); without the privilege
 * it is an UmmuError whose hint gives that command.
 * @module
 */
import { exists, findTracefs, tracefsRoot } from "../user_events/tracefs.ts";
import { readdirSync } from "node:fs";
import { UmmuArgumentError, UmmuError } from "../errors.ts";
import { cstring, errno, libc, readWholeFile } from "../libc.ts";
import { closeMatches } from "./pmu.ts";
import { runtime } from "../../ffi/platform.ts";
import * as m from "../../ffi/mman.ts";
import * as fs from "../../ffi/fs.ts";

/** Where the kernel has tracefs mounted when anything mounts it (it makes this folder). */
const TRACEFS_MOUNT_POINT = "/sys/kernel/tracing";
const EBUSY = 16;

/**
 * The tracefs root, mounting tracefs on /sys/kernel/tracing first when it is
 * not mounted anywhere and the kernel has it. Throws UmmuError when it cannot
 * be mounted (EPERM: not root; the hint gives the command).
 */
export function ensureTracefsMounted(): string {
  const found = findTracefs();
  if (found !== null) return found;
  // No mount point: the kernel has no tracefs, and tracefsRoot() says so.
  if (!exists(TRACEFS_MOUNT_POINT)) return tracefsRoot();
  const nr = runtime.arch === "x64"
    ? fs.__NR_mount_x86_64
    : runtime.arch === "arm64"
    ? fs.__NR_mount_arm64
    : null;
  if (nr === null) return tracefsRoot();
  const source = cstring("nodev"), target = cstring(TRACEFS_MOUNT_POINT);
  const fstype = cstring("tracefs");
  const r = Number(libc.syscall(
    nr,
    runtime.addressOf(source),
    runtime.addressOf(target),
    runtime.addressOf(fstype),
    0, // mountflags
    0, // data
  ));
  if (r < 0) {
    const e = errno();
    // EBUSY: another thread or process mounted it meanwhile; findTracefs() sees it below.
    if (e !== EBUSY) {
      throw new UmmuError(
        `mount(tracefs on ${TRACEFS_MOUNT_POINT})`,
        e,
        `tracepoint ids come from tracefs, which is not mounted; mounting it needs root ` +
          `(CAP_SYS_ADMIN): run mount -t tracefs nodev ${TRACEFS_MOUNT_POINT} as root, ` +
          `or add it to /etc/fstab`,
      );
    }
  }
  return tracefsRoot();
}

const NAME = /^[A-Za-z0-9_.-]+$/;
const ENOENT = 2;

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/**
 * The id of tracepoint `system:event` (e.g. "sched", "sched_switch"). Throws
 * UmmuArgumentError for a name tracefs does not have (with close names), and
 * UmmuError when tracefs is not mounted or not readable (saying what to do).
 */
export function tracepointId(system: string, event: string): number {
  const spec = `${system}:${event}`;
  for (const [what, v] of [["system", system], ["event", event]] as const) {
    if (typeof v !== "string" || !NAME.test(v)) {
      throw new UmmuArgumentError(
        `tracepoint ${
          JSON.stringify(spec)
        }: the ${what} must be a name of letters, digits, _ . - ` +
          `(one tracepoint: globs are not expanded), got ${JSON.stringify(v)}`,
      );
    }
  }
  const root = ensureTracefsMounted();
  const path = `${root}/events/${system}/${event}/id`;
  const fd = libc.open(cstring(path), m.O_RDONLY | m.O_CLOEXEC, 0);
  if (fd < 0 && errno() === ENOENT) {
    const systems = entries(`${root}/events`).filter((s) => !s.includes("."));
    if (!systems.includes(system)) {
      const close = closeMatches(system, systems);
      throw new UmmuArgumentError(
        `tracepoint ${JSON.stringify(spec)}: no tracepoint system ${JSON.stringify(system)} in ` +
          `${root}/events` + (close.length ? ` (did you mean ${close.join(", ")}?)` : "") +
          ` (${systems.length} systems here)`,
      );
    }
    const events = entries(`${root}/events/${system}`).filter((e) =>
      e !== "enable" && e !== "filter"
    );
    const close = closeMatches(event, events);
    throw new UmmuArgumentError(
      `tracepoint ${JSON.stringify(spec)}: ${system} has no event ${JSON.stringify(event)}` +
        (close.length ? ` (did you mean ${close.map((e) => `${system}:${e}`).join(", ")}?)` : "") +
        ` (${events.length} events in ${root}/events/${system})`,
    );
  }
  if (fd >= 0) libc.close(fd);
  // readWholeFile throws UmmuError (EACCES for a user who may not read tracefs, with the hint).
  const text = new TextDecoder().decode(readWholeFile(path)).trim();
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 0) {
    throw new UmmuArgumentError(`${path} must hold a tracepoint id, got ${JSON.stringify(text)}`);
  }
  return id;
}
