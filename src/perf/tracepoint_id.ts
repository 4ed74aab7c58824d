/**
 * A tracepoint's id (the perf_event_attr.config of a PERF_TYPE_TRACEPOINT
 * event) from tracefs: `events/<system>/<event>/id`. An unknown name is an
 * UmmuArgumentError listing close names; tracefs not mounted is an UmmuError
 * whose hint gives the mount command (tracefs.ts's tracefsRoot()).
 * @module
 */
import { tracefsRoot } from "../user_events/tracefs.ts";
import { readdirSync } from "node:fs";
import { UmmuArgumentError } from "../errors.ts";
import { cstring, errno, libc, readWholeFile } from "../libc.ts";
import { closeMatches } from "./pmu.ts";
import * as m from "../../ffi/mman.ts";

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
  const root = tracefsRoot();
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
