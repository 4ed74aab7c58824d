/**
 * tracefs access through libc (no runtime file APIs, so the same code runs in
 * Deno, Bun and Workers): finding the mount, reading and writing its control
 * files, and ftrace's side of a tracepoint (enable, the `trace` buffer, `id`).
 */
import { check, cstring, errno, libc, readWholeFile } from "../libc.ts";
import { UmmuError } from "../errors.ts";
import * as m from "../../ffi/mman.ts";

const CANDIDATES = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const ENOENT = 2;

let cachedRoot: string | null = null;

/**
 * Where tracefs is mounted, or null (it has a `trace` file when it is). A mount
 * point found is cached (per thread); null is not, so a later mount is seen.
 *
 * @example
 * ```ts
 * import { findTracefs } from "@ummu/ummu/user_events";
 *
 * const root = findTracefs(); // "/sys/kernel/tracing" on current systems
 * if (root === null) console.log("no tracefs: mount -t tracefs nodev /sys/kernel/tracing");
 * ```
 */
export function findTracefs(): string | null {
  if (cachedRoot !== null) return cachedRoot;
  for (const dir of CANDIDATES) {
    if (exists(`${dir}/trace`)) return (cachedRoot = dir);
  }
  return null;
}

/**
 * The tracefs root; throws UmmuError(ENOENT) saying how to mount it when it is
 * not mounted (or that the kernel has none, when it has no mount point for it).
 *
 * @example
 * ```ts
 * import { tracefsRoot } from "@ummu/ummu/user_events";
 *
 * // Throws, with the mount command in its hint, if tracefs is not mounted.
 * const pipe = `${tracefsRoot()}/trace_pipe`;
 * ```
 */
export function tracefsRoot(): string {
  const root = findTracefs();
  if (root === null) {
    // The kernel creates the mount point when it has tracefs: without it, mounting cannot help.
    const noTracefs = !exists(CANDIDATES[0]) && exists("/sys/kernel");
    throw new UmmuError(
      `open(${CANDIDATES[0]})`,
      ENOENT,
      noTracefs
        ? `this kernel has no tracefs: there is no ${
          CANDIDATES[0]
        } (use a kernel built with CONFIG_TRACING)`
        : `tracefs is not mounted: mount -t tracefs nodev ${
          CANDIDATES[0]
        } (as root), or add it to /etc/fstab`,
    );
  }
  return root;
}

/** True if `path` can be opened for reading (or exists but is write-only). */
export function exists(path: string): boolean {
  const fd = libc.open(cstring(path), m.O_RDONLY | m.O_CLOEXEC, 0);
  if (fd >= 0) {
    libc.close(fd);
    return true;
  }
  return errno() !== ENOENT;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The whole content of a (pseudo) file, read with read(2) until EOF. */
export function readBytes(path: string): Uint8Array {
  return readWholeFile(path);
}

/** The whole content of a (pseudo) file as UTF-8 text. */
export function readText(path: string): string {
  return decoder.decode(readBytes(path));
}

/** Writes `text` to a control file in one write(2); `truncate` opens with O_TRUNC (clears `trace`). */
export function writeText(path: string, text: string, truncate = false): void {
  const flags = m.O_WRONLY | m.O_CLOEXEC | (truncate ? m.O_TRUNC : 0);
  const fd = check(libc.open(cstring(path), flags, 0), `open(${path})`);
  try {
    const b = encoder.encode(text);
    if (b.length > 0) check(libc.write(fd, b, b.length), `write(${path})`);
  } finally {
    libc.close(fd);
  }
}

/** The tracefs folder of an event: `<root>/events/<system>/<event>`. */
export function eventDir(system: string, event: string): string {
  return `${tracefsRoot()}/events/${system}/${event}`;
}

/**
 * The tracepoint id (what perf_event_open takes as `config`), from `events/<system>/<event>/id`.
 *
 * @example
 * ```ts
 * import { PerfTracepoint, tracepointId } from "@ummu/ummu/user_events";
 *
 * const perf = PerfTracepoint.open(tracepointId("user_events", "myapp_request"));
 * ```
 */
export function tracepointId(system: string, event: string): number {
  return Number(readText(`${eventDir(system, event)}/id`).trim());
}

/**
 * Enables (or disables) an event for ftrace: writes 1 (0) to `events/<system>/<event>/enable`.
 * For a user_events tracepoint, the kernel sets (clears) its enable bit before this returns.
 *
 * @example
 * ```ts
 * import { setFtraceEnabled, UserEvents } from "@ummu/ummu/user_events";
 *
 * const events = UserEvents.open();
 * const tp = events.register("myapp_tick", "u32 n");
 * setFtraceEnabled("user_events", "myapp_tick", true);
 * console.log(tp.enabled); // true
 * setFtraceEnabled("user_events", "myapp_tick", false);
 * events.close();
 * ```
 */
export function setFtraceEnabled(system: string, event: string, on: boolean): void {
  writeText(`${eventDir(system, event)}/enable`, on ? "1" : "0");
}

/**
 * Empties the ftrace ring buffer (opens `trace` with O_TRUNC), so that a later
 * readTrace() shows only what came after. The buffer is system-wide: this
 * clears other users' records too.
 *
 * @example
 * ```ts
 * import { clearTrace, parseTrace, readTrace } from "@ummu/ummu/user_events";
 *
 * clearTrace();
 * // ... emit ...
 * console.log(parseTrace(readTrace(), "myapp_tick").length);
 * ```
 */
export function clearTrace(): void {
  writeText(`${tracefsRoot()}/trace`, "", true);
}

/**
 * The text of the ftrace `trace` file (a non-consuming read of the ring buffer,
 * unlike `trace_pipe`: reading twice shows the same lines).
 *
 * @example
 * ```ts
 * import { readTrace } from "@ummu/ummu/user_events";
 *
 * console.log(readTrace().split("\n").filter((l) => l.includes("myapp_tick:")).join("\n"));
 * ```
 */
export function readTrace(): string {
  return readText(`${tracefsRoot()}/trace`);
}

/** One line of the ftrace `trace` output. */
export interface TraceLine {
  /** The emitting thread's name, or "<...>" when ftrace no longer has it cached. */
  task: string;
  /** The emitting thread's id (ftrace prints the task's pid, which is the tid). */
  pid: number;
  /** The CPU the event was recorded on. */
  cpu: number;
  /** Seconds, from ftrace's clock (trace_clock; "local" by default). */
  timestamp: number;
  /** The event name, without its system. */
  event: string;
  /** What follows `event: `, as printed by the kernel. */
  body: string;
}

// "  deno-1234  [001] ..... 12.345678: name: body"; the task may contain spaces and dashes.
const LINE = /^\s*(.+)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+([^:\s]+):\s?(.*)$/;

/**
 * Parses the `trace` text into lines, optionally only those of one event.
 * Comment and unparsable lines are skipped.
 *
 * @example
 * ```ts
 * import { parseTrace, readTrace } from "@ummu/ummu/user_events";
 *
 * for (const l of parseTrace(readTrace(), "myapp_request")) {
 *   // body: "status=0xc8 (200) path=/index.html"
 *   console.log(`${l.task}-${l.pid} at ${l.timestamp}s: ${l.body}`);
 * }
 * ```
 */
export function parseTrace(text: string, event?: string): TraceLine[] {
  const out: TraceLine[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const mm = LINE.exec(line);
    if (!mm) continue;
    if (event !== undefined && mm[5] !== event) continue;
    out.push({
      task: mm[1].trim(),
      pid: Number(mm[2]),
      cpu: Number(mm[3]),
      timestamp: Number(mm[4]),
      event: mm[5],
      body: mm[6],
    });
  }
  return out;
}

/**
 * `available_events` as [system, event] pairs: every tracepoint ftrace and perf can attach to.
 *
 * @example
 * ```ts
 * import { availableEvents } from "@ummu/ummu/user_events";
 *
 * const mine = availableEvents()
 *   .filter(([sys, ev]) => sys === "user_events" && ev.startsWith("myapp_"));
 * ```
 */
export function availableEvents(): [string, string][] {
  return readText(`${tracefsRoot()}/available_events`).split("\n").filter((l) => l.includes(":"))
    .map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i), l.slice(i + 1)];
    });
}

/** The field lines of `events/<system>/<event>/format` after the common fields: "type name" strings. */
export function eventFormatFields(
  system: string,
  event: string,
): { decl: string; offset: number; size: number }[] {
  const text = readText(`${eventDir(system, event)}/format`);
  const out: { decl: string; offset: number; size: number }[] = [];
  for (const line of text.split("\n")) {
    const mm = /^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);/.exec(line);
    if (!mm || mm[1].includes("common_")) continue;
    out.push({ decl: mm[1].trim(), offset: Number(mm[2]), size: Number(mm[3]) });
  }
  return out;
}
