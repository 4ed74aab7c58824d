/**
 * Argument checks for the public API: each throws UmmuArgumentError naming
 * the argument, the value it got and what it expected, before any kernel
 * call or Worker depends on the value. Numbers come back as numbers (the
 * library's internal form); the public API accepts a bigint wherever a
 * 64-bit value is meant.
 */
import { UmmuArgumentError } from "./errors.ts";

/** A short, safe rendering of any value for an error message. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "undefined":
      return "undefined";
    case "string":
      return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
    case "bigint":
      return `${v}n`;
    case "number":
      return Number.isInteger(v) && Math.abs(v) >= 4096 ? `${v} (0x${v.toString(16)})` : String(v);
    case "boolean":
      return String(v);
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  const name = (v as object).constructor?.name;
  return name && name !== "Object" ? `a ${name}` : "an object";
}

/** Throws the library's argument error: "`what` must be `expected`, got `value`". */
export function invalid(what: string, value: unknown, expected: string): never {
  throw new UmmuArgumentError(`${what} must be ${expected}, got ${describe(value)}`);
}

/** An integer in [min, max], given as a number or a bigint; returned as a number. */
export function integer(
  what: string,
  v: unknown,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  let n: number;
  if (typeof v === "bigint") {
    if (v < BigInt(min) || v > BigInt(max)) invalid(what, v, `an integer in ${min}..${max}`);
    n = Number(v);
  } else if (typeof v === "number" && Number.isSafeInteger(v)) {
    n = v;
  } else {
    return invalid(what, v, `an integer (number or bigint) in ${min}..${max}`);
  }
  if (n < min || n > max) invalid(what, v, `an integer in ${min}..${max}`);
  return n;
}

/** An integer in `min..max` (as integer()) that is a power of two. */
export function powerOfTwo(what: string, v: unknown, min: number, max: number): number {
  const n = integer(what, v, min, max);
  if (n & (n - 1)) invalid(what, v, "a power of two");
  return n;
}

/** User addresses are below 2^56 on every supported architecture (5-level paging included). */
const ADDRESS_LIMIT = 2 ** 56;

/** A user-space address (number or bigint), aligned to `align` if given. */
export function address(what: string, v: unknown, align = 1): number {
  const a = integer(what, v, 0, ADDRESS_LIMIT - 1);
  if (a % align !== 0) invalid(what, v, `aligned to ${align} bytes (0x${align.toString(16)})`);
  return a;
}

/** A positive byte length, a multiple of `multiple` if given. */
export function byteLength(what: string, v: unknown, multiple = 1, max = 2 ** 53): number {
  const expected = multiple > 1
    ? `a positive multiple of the page size (${multiple}) up to ${max}`
    : `a positive integer up to ${max}`;
  const n = typeof v === "bigint" && v >= 1n && v <= BigInt(max)
    ? Number(v)
    : typeof v === "number" && Number.isSafeInteger(v) && v >= 1 && v <= max
    ? v
    : invalid(what, v, expected);
  if (n % multiple !== 0) invalid(what, v, expected);
  return n;
}

/** One of the listed strings. */
export function oneOf<T extends string>(what: string, v: unknown, values: readonly T[]): T {
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
    invalid(what, v, `one of ${values.map((x) => JSON.stringify(x)).join(", ")}`);
  }
  return v as T;
}

/** An options object: undefined becomes {}; null, arrays and primitives are refused. */
export function options<T extends object>(what: string, v: unknown): Partial<T> {
  if (v === undefined) return {};
  if (v === null || typeof v !== "object" || Array.isArray(v)) invalid(what, v, "an object");
  return v as Partial<T>;
}

/** A boolean, or `fallback` when undefined. */
export function boolean(what: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") invalid(what, v, "true or false");
  return v;
}

/** A function, or undefined. */
export function optionalFunction<F>(what: string, v: unknown): F | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "function") invalid(what, v, "a function");
  return v as F;
}

/** A non-empty string. */
export function string(what: string, v: unknown): string {
  if (typeof v !== "string" || v.length === 0) invalid(what, v, "a non-empty string");
  return v;
}

/** A duration in milliseconds: finite and ≥ 0, or Infinity where allowed; `fallback` when undefined. */
export function milliseconds(
  what: string,
  v: unknown,
  fallback: number,
  allowInfinity = true,
): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || Number.isNaN(v) || v < 0 || (!allowInfinity && v === Infinity)) {
    invalid(what, v, `a number of milliseconds ≥ 0${allowInfinity ? " (or Infinity)" : ""}`);
  }
  return v;
}

/** An iterable (array, Set...) of values, each checked by `each`. */
export function list<T>(what: string, v: unknown, each: (x: unknown, i: number) => T): T[] {
  if (
    v === null || v === undefined || typeof v === "string" ||
    typeof (v as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    invalid(what, v, "an array (or other iterable)");
  }
  return Array.from(v as Iterable<unknown>, (x, i) => each(x, i));
}
