/**
 * The ummunotify API's argument checks, on top of src/validate.ts: 64-bit
 * values (addresses, cookies, generations) given as a bigint or a safe
 * integer number, and the options of the waits. Each bad value is an
 * UmmuArgumentError naming the argument, the value and what was expected.
 */
import { UmmuArgumentError } from "../errors.ts";
import { describe, invalid, milliseconds, options } from "../validate.ts";

const U64_MAX = (1n << 64n) - 1n;

/** A 64-bit value: a bigint, or a number when it is a safe integer. */
export type U64Like = bigint | number;

/**
 * A u64 (an address, a cookie, a generation): a bigint in 0..2^64-1 or a
 * safe integer number ≥ 0. Never wrapped: -1n is refused, not 2^64-1.
 */
export function u64(what: string, v: unknown): bigint {
  if (typeof v === "bigint") {
    if (v >= 0n && v <= U64_MAX) return v;
    return invalid(what, v, "a u64: a bigint in 0..2^64-1 (negative values are not wrapped)");
  }
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    const why = !Number.isInteger(v)
      ? "an integer"
      : v < 0
      ? "≥ 0 (negative values are not wrapped)"
      : "a safe integer (past 2^53 a number is not exact: pass a bigint)";
    return invalid(what, v, `a u64, ${why}`);
  }
  return invalid(what, v, "a u64: a bigint, or a safe integer number");
}

/** Checked wait options: the timeout (Infinity when absent) and the signal. */
export interface CheckedWait {
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

const WAIT_KEYS = new Set(["timeoutMs", "signal"]);

/** `{ timeoutMs?, signal? }` of read(), waitForChange() and events(). */
export function waitOptions(what: string, v: unknown, keys = WAIT_KEYS): CheckedWait {
  const o = options<{ timeoutMs: unknown; signal: unknown }>(what, v);
  knownKeys(what, o, keys);
  return {
    timeoutMs: keys.has("timeoutMs")
      ? milliseconds(`${what}.timeoutMs`, o.timeoutMs, Infinity)
      : Infinity,
    signal: abortSignal(`${what}.signal`, o.signal),
  };
}

/** An AbortSignal, or undefined. */
export function abortSignal(what: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (typeof AbortSignal === "function" && v instanceof AbortSignal) return v;
  return invalid(what, v, "an AbortSignal");
}

/** Refuses option names the API does not have (a typo would otherwise be ignored). */
export function knownKeys(what: string, o: object, keys: ReadonlySet<string>): void {
  for (const k of Object.keys(o)) {
    if (!keys.has(k)) {
      throw new UmmuArgumentError(
        `${what} has no option ${JSON.stringify(k)} (${
          describe((o as Record<string, unknown>)[k])
        }); the options are ${[...keys].join(", ")}`,
      );
    }
  }
}
