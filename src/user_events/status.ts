/**
 * tracefs' `user_events_status`: one line per registered event (its tracepoint
 * name, then " # Used by ftrace perf other" while tracers listen), a blank
 * line, then "Active: N" and "Busy: N".
 */
import { readText, tracefsRoot } from "./tracefs.ts";

export interface UserEventStatus {
  /** Tracepoint name (multi-format events: "name.<hex id>"). */
  name: string;
  /** Tracers attached now: "ftrace", "perf", "other". Empty when disabled. */
  usedBy: string[];
}

export interface UserEventsStatus {
  events: UserEventStatus[];
  active: number;
  busy: number;
}

/** Parses the text of user_events_status. */
export function parseStatus(text: string): UserEventsStatus {
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

/** Reads and parses the live user_events_status. */
export function readStatus(): UserEventsStatus {
  return parseStatus(readText(`${tracefsRoot()}/user_events_status`));
}
