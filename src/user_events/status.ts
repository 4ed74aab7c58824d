/**
 * tracefs' `user_events_status`: one line per registered event (its tracepoint
 * name, then " # Used by ftrace perf other" while tracers listen), a blank
 * line, then "Active: N" and "Busy: N".
 */
import { readText, tracefsRoot } from "./tracefs.ts";
import { UmmuArgumentError } from "../errors.ts";
import { describeValue } from "./values.ts";

/** One registered event in user_events_status, and who is tracing it. */
export interface UserEventStatus {
  /** Tracepoint name (multi-format events: "name.<hex id>"). */
  name: string;
  /** Tracers attached now: "ftrace", "perf", "other". Empty when disabled. */
  usedBy: string[];
}

/** The whole of user_events_status: every registered event, and the kernel's counts. */
export interface UserEventsStatus {
  /** Every user_events event registered on this system (any process), in the kernel's order. */
  events: UserEventStatus[];
  /** Events registered now ("Active: N"; counted from the lines if the kernel prints no total). */
  active: number;
  /** Events with at least one tracer attached ("Busy: N"; likewise counted if absent). */
  busy: number;
}

/**
 * Parses the text of user_events_status (separate from readStatus so that
 * text captured elsewhere, such as in a VM or a bug report, parses too).
 *
 * @example
 * ```ts
 * import { parseStatus } from "@ummu/ummu/user_events";
 *
 * const s = parseStatus("myapp_request # Used by ftrace\nmyapp_idle\n\nActive: 2\nBusy: 1\n");
 * // s.events: [{ name: "myapp_request", usedBy: ["ftrace"] }, { name: "myapp_idle", usedBy: [] }]
 * console.log(s.active, s.busy); // 2 1
 * ```
 */
export function parseStatus(text: string): UserEventsStatus {
  if (typeof text !== "string") {
    throw new UmmuArgumentError(
      `parseStatus takes the text of user_events_status, got ${describeValue(text)}`,
    );
  }
  const events: UserEventStatus[] = [];
  let active = -1;
  let busy = -1;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (line === "") continue;
    const a = /^Active:\s*(\d+)$/.exec(line);
    if (a) {
      active = Number(a[1]);
      continue;
    }
    const b = /^Busy:\s*(\d+)$/.exec(line);
    if (b) {
      busy = Number(b[1]);
      continue;
    }
    const hash = line.indexOf(" #");
    if (hash < 0) {
      events.push({ name: line.trim(), usedBy: [] });
      continue;
    }
    const rest = line.slice(hash + 2).trim();
    const usedBy = rest.startsWith("Used by")
      ? rest.slice(7).trim().split(/\s+/).filter(Boolean)
      : [];
    events.push({ name: line.slice(0, hash).trim(), usedBy });
  }
  if (active < 0) active = events.length;
  if (busy < 0) busy = events.filter((e) => e.usedBy.length > 0).length;
  return { events, active, busy };
}

/**
 * Reads and parses the live user_events_status: which events exist and which
 * tracers (ftrace, perf, other) listen to each, across every process.
 *
 * @example
 * ```ts
 * import { readStatus } from "@ummu/ummu/user_events";
 *
 * const { events, active, busy } = readStatus();
 * console.log(`${active} events, ${busy} traced`);
 * for (const e of events) {
 *   if (e.usedBy.length > 0) console.log(e.name, "traced by", e.usedBy.join(", "));
 * }
 * ```
 */
export function readStatus(): UserEventsStatus {
  return parseStatus(readText(`${tracefsRoot()}/user_events_status`));
}
