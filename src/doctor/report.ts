/**
 * The doctor's report: its shape (what `--json` prints, versioned by
 * {@link DOCTOR_SCHEMA}) and its exit status.
 * @module
 */
import type { Fact } from "./system.ts";

/**
 * How usable a feature is for this process: "ok" fully; "limited" partly (see
 * the summary); "unavailable" not; "unknown" when the doctor was not allowed to
 * find out (the summary says what to run it with).
 */
export type DoctorStatus = "ok" | "limited" | "unavailable" | "unknown";

/** One feature's verdict, the facts behind it, and what would make it (fully) usable. */
export interface DoctorCheck {
  /** The feature. */
  name: "userfaultfd" | "ummunotify" | "user_events" | "perf";
  /** See {@link DoctorStatus}. */
  status: DoctorStatus;
  /** One line for the table. */
  summary: string;
  /** The facts, one line each. */
  details: string[];
  /** How to get what is missing (empty when nothing is). */
  fixes: string[];
  /**
   * The same facts, for machines (`--json`). A value the doctor could not read
   * is `{ "unknown": "why, and what to run with" }`, never a guess.
   */
  facts: Record<string, unknown>;
}

/**
 * The version of the report's JSON shape (`schema` in `ummu doctor --json`):
 * raised when a field is removed or changes meaning, not when one is added.
 */
export const DOCTOR_SCHEMA = 1;

/** Everything `ummu doctor` found. */
export interface DoctorReport {
  /** {@link DOCTOR_SCHEMA}: the version of this shape. */
  schema: number;
  /** The version of ummu that made the report. */
  version: string;
  /** The runtime, and whether its FFI could be loaded (`ffiError` says why not). */
  runtime: { name: string; version: string; arch: string; ffiError: string | null };
  /** `uname -r`. */
  kernel: Fact<string>;
  /** The process's user and the capabilities that matter here. */
  user: { uid: Fact<number>; capabilities: Fact<string[]> };
  /** One check per feature, in the order userfaultfd, ummunotify, user_events, perf. */
  checks: DoctorCheck[];
  /** The exit status `ummu doctor` ends with (see {@link DOCTOR_EXIT}). */
  exitCode: number;
}

/**
 * The exit status of `ummu doctor`: 0, or the sum of the bits of the core
 * features this process cannot fully use (perf is informational and never
 * sets a bit), plus UNKNOWN when a core feature could not be checked. 1 and 2
 * stand alone.
 * @example
 * ```ts
 * import { doctor, DOCTOR_EXIT } from "@ummu/ummu/doctor";
 *
 * const { exitCode } = await doctor();
 * if (exitCode & DOCTOR_EXIT.USER_EVENTS) console.log("no user_events here");
 * ```
 */
export const DOCTOR_EXIT = {
  /** userfaultfd, ummunotify and user_events are all usable. */
  OK: 0,
  /** The doctor could not load the runtime's FFI (Deno without --allow-ffi, Node without koffi). */
  NO_FFI: 1,
  /** Unknown command-line arguments. */
  USAGE: 2,
  /** userfaultfd is unavailable, or only user-mode-only. */
  USERFAULTFD: 4,
  /** ummunotify has neither /dev/ummunotify nor a usable userfaultfd backend. */
  UMMUNOTIFY: 8,
  /** user_events is unavailable (no kernel support, no tracefs, or no permission). */
  USER_EVENTS: 16,
  /** A core feature could not be checked: the runtime did not allow it (Deno: run with -A). */
  UNKNOWN: 32,
} as const;

const BITS: Record<string, number> = {
  userfaultfd: DOCTOR_EXIT.USERFAULTFD,
  ummunotify: DOCTOR_EXIT.UMMUNOTIFY,
  user_events: DOCTOR_EXIT.USER_EVENTS,
};

/** The exit status for these checks: NO_FFI alone when the FFI did not load. */
export function exitCodeOf(checks: DoctorCheck[], ffiError: string | null): number {
  if (ffiError !== null) return DOCTOR_EXIT.NO_FFI;
  let code: number = DOCTOR_EXIT.OK;
  for (const c of checks) {
    const bit = BITS[c.name];
    if (bit === undefined || c.status === "ok") continue;
    code |= c.status === "unknown" ? DOCTOR_EXIT.UNKNOWN : bit;
  }
  return code;
}

/** The exit status in words. */
export function describeExit(code: number): string {
  if (code === DOCTOR_EXIT.OK) return "userfaultfd, ummunotify and user_events are all usable";
  if (code === DOCTOR_EXIT.NO_FFI) return "the FFI could not be loaded";
  if (code === DOCTOR_EXIT.USAGE) return "usage error";
  const parts = [];
  if (code & DOCTOR_EXIT.USERFAULTFD) parts.push(`${DOCTOR_EXIT.USERFAULTFD} userfaultfd`);
  if (code & DOCTOR_EXIT.UMMUNOTIFY) parts.push(`${DOCTOR_EXIT.UMMUNOTIFY} ummunotify`);
  if (code & DOCTOR_EXIT.USER_EVENTS) parts.push(`${DOCTOR_EXIT.USER_EVENTS} user_events`);
  const unusable = parts.length ? `not fully usable: ${parts.join(" + ")}` : "";
  const unknown = code & DOCTOR_EXIT.UNKNOWN
    ? `${DOCTOR_EXIT.UNKNOWN}: some could not be checked (the runtime did not allow it)`
    : "";
  return [unusable, unknown].filter(Boolean).join("; ");
}
