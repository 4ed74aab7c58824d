/**
 * What an event field accepts, and the error when a value is not that: the
 * raw tracepoint encoder and the EventHeader encoder share these, so both
 * answer a wrong type or an out-of-range value the same way, with an
 * UmmuArgumentError naming the field (name and index), the value and the
 * type expected. Nothing here runs on the success path except the integer
 * predicates, which allocate nothing.
 */
import { UmmuArgumentError } from "../errors.ts";

/** A short, safe rendering of any value for an error message. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "undefined":
      return "undefined";
    case "string": {
      if (v.length > 40) return `${JSON.stringify(`${v.slice(0, 40)}…`)} (a string of ${v.length})`;
      // A character or two: say which code points, as a char field's error needs.
      const cps = v.length > 0 && v.length <= 2 && /[^\x20-\x7e]/.test(v)
        ? ` (${
          [...v].map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`)
            .join(" ")
        })`
        : "";
      return JSON.stringify(v) + cps;
    }
    case "bigint":
      return `${v}n (a bigint)`;
    case "number":
      return String(v);
    case "boolean":
      return `${v} (a boolean)`;
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) {
    const name = (v as object).constructor?.name ?? "typed array";
    return `a ${name} of ${(v as { length?: number }).length ?? (v as DataView).byteLength}`;
  }
  const name = (v as object).constructor?.name;
  return name && name !== "Object" ? `a ${name}` : "an object";
}

/**
 * The error for a value a field cannot take. `label` names the field
 * (`field "status" (#0) of event Request`); `element` is the array index, or
 * -1 for a field that is not an array.
 */
export function valueError(
  label: string,
  element: number,
  v: unknown,
  expected: string,
): UmmuArgumentError {
  const where = element >= 0 ? `${label}, element [${element}]` : label;
  return new UmmuArgumentError(`${where}: expected ${expected}, got ${describeValue(v)}`);
}

/** Smallest and largest value of an integer of `bits` bits (as numbers; 2^64-1 is not exact, see fitsInt64). */
export function intRange(bits: number, signed: boolean): [number, number] {
  if (bits === 64) return signed ? [-(2 ** 63), 2 ** 63 - 1] : [0, 2 ** 64 - 1];
  return signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

/** "an integer in 0..255 (a number)": what an integer field of `bits` bits takes. */
export function intExpectation(bits: number, signed: boolean, what = ""): string {
  const range = bits === 64
    ? (signed ? "-9223372036854775808..9223372036854775807" : "0..18446744073709551615")
    : intRange(bits, signed).join("..");
  const kind = bits === 64 ? "a number or bigint" : "a number";
  return `an integer in ${range} (${kind}${what ? `; ${what}` : ""})`;
}

/** True for a number that is an integer in [min, max]. */
export function isIntIn(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && v >= min && v <= max && v % 1 === 0;
}

/**
 * The test of an integer field of 8, 16 or 32 bits, specialized per width:
 * the value survives the conversion to the width unchanged (which refuses
 * fractions, NaN, infinities and anything out of range in one comparison).
 */
export function intFits(bits: 8 | 16 | 32, signed: boolean): (v: unknown) => v is number {
  switch (bits) {
    case 8:
      return signed
        ? (v): v is number => typeof v === "number" && ((v << 24) >> 24) === v
        : (v): v is number => typeof v === "number" && (v & 0xff) === v;
    case 16:
      return signed
        ? (v): v is number => typeof v === "number" && ((v << 16) >> 16) === v
        : (v): v is number => typeof v === "number" && (v & 0xffff) === v;
    default:
      return signed
        ? (v): v is number => typeof v === "number" && (v | 0) === v
        : (v): v is number => typeof v === "number" && v >>> 0 === v;
  }
}

const U64_MAX = 0xffffffffffffffffn;
const I64_MIN = -0x8000000000000000n;
const I64_MAX = 0x7fffffffffffffffn;

/**
 * True for a 64-bit integer value: a bigint in range, or an integer number
 * in range (numbers above 2^53 are integers too, and exact as written).
 */
export function fitsInt64(v: unknown, signed: boolean): boolean {
  if (typeof v === "number") {
    return v % 1 === 0 && (signed ? v >= -(2 ** 63) && v < 2 ** 63 : v >= 0 && v < 2 ** 64);
  }
  if (typeof v === "bigint") return signed ? v >= I64_MIN && v <= I64_MAX : v >= 0n && v <= U64_MAX;
  return false;
}

/**
 * Writes a 64-bit integer (checked by fitsInt64) little-endian at `pos`. A
 * number is split in two 32-bit halves, which is exact for every integer
 * double and allocates no BigInt.
 */
export function setInt64(dv: DataView, pos: number, v: number | bigint, signed: boolean): void {
  if (typeof v === "bigint") {
    if (signed) dv.setBigInt64(pos, v, true);
    else dv.setBigUint64(pos, v, true);
    return;
  }
  dv.setUint32(pos, v >>> 0, true);
  dv.setUint32(pos + 4, Math.floor(v / 4294967296) >>> 0, true);
}
