/**
 * What each EventHeader (encoding, format) pair takes, and the writer that
 * checks a value and encodes it: integers in the range of their width and
 * signedness, booleans, floats, one-character strings in the charset of the
 * char type, addresses and UUIDs as text or bytes, strings in the charset of
 * the string encoding (Latin-1 for String8, UTF-16 and UTF-32 for the 16- and
 * 32-bit encodings, UTF-8 otherwise), bytes for hex and nullable fixed-size
 * formats. A value outside that is an UmmuArgumentError naming the field;
 * nothing is truncated or wrapped.
 */
import { UmmuArgumentError } from "../errors.ts";
import type { GrowableBuffer } from "./buffer.ts";
import {
  charsetProblem,
  ENC_TOO_LONG,
  writeLatin1,
  writeUtf16,
  writeUtf32,
  writeUtf8,
} from "./charsets.ts";
import { FieldEncoding as E, FieldFormat as F } from "./eventheader_types.ts";
import { writeIPv4, writeIPv6, writeUuid } from "./addresses.ts";
import {
  describeValue,
  fitsInt64,
  intExpectation,
  intFits,
  isIntIn,
  setInt64,
  valueError,
} from "./values.ts";

/** Writes one value at `pos`, returns the position after it; `element`: the array index, or -1. */
export type ValueWriter = (v: unknown, pos: number, element: number) => number;

/** The string formats (and hex bytes) of the char encodings. */
export const TEXT_FORMATS: readonly number[] = [
  F.HexBytes,
  F.StringUtf,
  F.StringUtfBom,
  F.StringXml,
  F.StringJson,
];

/**
 * Compiles the writer of one element of (base encoding, format); `where` names
 * the field and `type` its type in errors.
 */
export function elementWriter(
  b: GrowableBuffer,
  where: string,
  type: string,
  base: number,
  format: number,
): ValueWriter {
  const bad = (v: unknown, element: number, expected: string) =>
    valueError(where, element, v, expected);
  const exactBytes = (n: number): ValueWriter => {
    const want = `a Uint8Array of exactly ${n} bytes (${type})`;
    return (v, pos, element) => {
      if (!(v instanceof Uint8Array) || v.length !== n) throw bad(v, element, want);
      b.ensure(pos + n);
      b.buf.set(v, pos);
      return pos + n;
    };
  };
  const int = (bits: number, signed: boolean): ValueWriter => {
    const want = intExpectation(bits, signed, type);
    if (bits === 64) {
      return (v, pos, element) => {
        if (!fitsInt64(v, signed)) throw bad(v, element, want);
        b.ensure(pos + 8);
        setInt64(b.dv, pos, v as number | bigint, signed);
        return pos + 8;
      };
    }
    const fits = intFits(bits as 8 | 16 | 32, signed);
    if (bits === 8) {
      return (v, pos, element) => {
        if (!fits(v)) throw bad(v, element, want);
        b.ensure(pos + 1);
        b.buf[pos] = v;
        return pos + 1;
      };
    }
    if (bits === 16) {
      return (v, pos, element) => {
        if (!fits(v)) throw bad(v, element, want);
        b.ensure(pos + 2);
        b.dv.setUint16(pos, v, true);
        return pos + 2;
      };
    }
    return (v, pos, element) => {
      if (!fits(v)) throw bad(v, element, want);
      b.ensure(pos + 4);
      b.dv.setUint32(pos, v >>> 0, true);
      return pos + 4;
    };
  };
  const bool = (size: number): ValueWriter => {
    const want = `a boolean (${type})`;
    return (v, pos, element) => {
      if (typeof v !== "boolean") throw bad(v, element, want);
      b.ensure(pos + size);
      b.buf.fill(0, pos, pos + size);
      b.buf[pos] = v ? 1 : 0;
      return pos + size;
    };
  };
  switch (base) {
    case E.Value8:
      if (format === F.Boolean) return bool(1);
      if (format === F.HexBytes) return exactBytes(1);
      if (format === F.String8) {
        const want = `one Latin-1 character, U+0000..U+00FF (${type})`;
        return (v, pos, element) => {
          if (typeof v !== "string" || v.length !== 1 || v.charCodeAt(0) > 0xff) {
            throw bad(v, element, want);
          }
          b.ensure(pos + 1);
          b.buf[pos] = v.charCodeAt(0);
          return pos + 1;
        };
      }
      return int(8, format === F.SignedInt);
    case E.Value16:
      if (format === F.Boolean) return bool(2);
      if (format === F.HexBytes) return exactBytes(2);
      if (format === F.StringUtf) {
        const want = `one UTF-16 code unit, U+0000..U+FFFF and not a surrogate (${type})`;
        return (v, pos, element) => {
          const c = typeof v === "string" && v.length === 1 ? v.charCodeAt(0) : 0xd800;
          if (c >= 0xd800 && c <= 0xdfff) throw bad(v, element, want);
          b.ensure(pos + 2);
          b.dv.setUint16(pos, c, true);
          return pos + 2;
        };
      }
      if (format === F.Port) {
        const want = intExpectation(16, false, `${type}, written in network byte order`);
        return (v, pos, element) => {
          if (!isIntIn(v, 0, 0xffff)) throw bad(v, element, want);
          b.ensure(pos + 2);
          b.dv.setUint16(pos, v, false);
          return pos + 2;
        };
      }
      return int(16, format === F.SignedInt);
    case E.Value32:
      if (format === F.Boolean) return bool(4);
      if (format === F.HexBytes) return exactBytes(4);
      if (format === F.Float) {
        const want = `a number (${type}, stored as a 32-bit float)`;
        return (v, pos, element) => {
          if (typeof v !== "number") throw bad(v, element, want);
          b.ensure(pos + 4);
          b.dv.setFloat32(pos, v, true);
          return pos + 4;
        };
      }
      if (format === F.StringUtf) {
        const want = `one character (one code point; ${type})`;
        return (v, pos, element) => {
          const cp = typeof v === "string" ? singleCodePoint(v) : -1;
          if (cp < 0) throw bad(v, element, want);
          b.ensure(pos + 4);
          b.dv.setUint32(pos, cp, true);
          return pos + 4;
        };
      }
      if (format === F.IPAddress) {
        const want =
          `an IPv4 address: "a.b.c.d", 4 bytes in network order, or an integer 0..4294967295 (${type})`;
        return (v, pos, element) => {
          b.ensure(pos + 4);
          if (typeof v === "string") {
            if (!writeIPv4(b.buf, pos, v)) throw bad(v, element, want);
          } else if (v instanceof Uint8Array && v.length === 4) b.buf.set(v, pos);
          else if (isIntIn(v, 0, 0xffffffff)) b.dv.setUint32(pos, v, false);
          else throw bad(v, element, want);
          return pos + 4;
        };
      }
      return int(
        32,
        format === F.SignedInt || format === F.Errno || format === F.Pid || format === F.Time,
      );
    case E.Value64:
      if (format === F.HexBytes) return exactBytes(8);
      if (format === F.Float) {
        const want = `a number (${type})`;
        return (v, pos, element) => {
          if (typeof v !== "number") throw bad(v, element, want);
          b.ensure(pos + 8);
          b.dv.setFloat64(pos, v, true);
          return pos + 8;
        };
      }
      return int(64, format === F.SignedInt || format === F.Time);
    case E.Value128:
      if (format === F.Uuid) {
        const want =
          `a UUID: "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (braces allowed) or 16 bytes (${type})`;
        return (v, pos, element) => {
          b.ensure(pos + 16);
          if (typeof v === "string") {
            if (!writeUuid(b.buf, pos, v)) throw bad(v, element, want);
          } else if (v instanceof Uint8Array && v.length === 16) b.buf.set(v, pos);
          else throw bad(v, element, want);
          return pos + 16;
        };
      }
      if (format === F.IPAddress) {
        const want = `an IPv6 address ("fe80::1", "::ffff:10.0.0.1") or its 16 bytes (${type})`;
        return (v, pos, element) => {
          b.ensure(pos + 16);
          if (typeof v === "string") {
            if (!writeIPv6(b.buf, pos, v)) throw bad(v, element, want);
          } else if (v instanceof Uint8Array && v.length === 16) b.buf.set(v, pos);
          else throw bad(v, element, want);
          return pos + 16;
        };
      }
      return exactBytes(16);
    case E.ZStringChar8:
      if (format === F.HexBytes) {
        const want = `a Uint8Array without zero bytes (${type}: NUL-terminated)`;
        return (v, pos, element) => {
          if (!(v instanceof Uint8Array) || v.includes(0)) throw bad(v, element, want);
          b.ensure(pos + v.length + 1);
          b.buf.set(v, pos);
          b.buf[pos + v.length] = 0;
          return pos + v.length + 1;
        };
      }
      return zstring8(b, where, type, format === F.String8);
    case E.ZStringChar16:
      return zstringWide(b, where, type, 2);
    case E.ZStringChar32:
      return zstringWide(b, where, type, 4);
    case E.StringLength16Char8:
    case E.BinaryLength16Char8: {
      const text = format === F.String8 ||
        TEXT_FORMATS.includes(format) && format !== F.HexBytes ||
        (format === 0 && base === E.StringLength16Char8);
      return counted8(b, where, type, text ? (format === F.String8 ? "latin1" : "utf8") : null);
    }
    case E.StringLength16Char16:
      return countedWide(b, where, type, 2);
    case E.StringLength16Char32:
      return countedWide(b, where, type, 4);
  }
  throw new UmmuArgumentError(`${where}: unknown encoding ${base}`);
}

function singleCodePoint(s: string): number {
  const c = s.charCodeAt(0);
  if (s.length === 1) return c >= 0xd800 && c <= 0xdfff ? -1 : c;
  if (s.length !== 2) return -1;
  const d = s.charCodeAt(1);
  if (c < 0xd800 || c > 0xdbff || d < 0xdc00 || d > 0xdfff) return -1;
  return 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
}

function zstring8(b: GrowableBuffer, where: string, type: string, latin1: boolean): ValueWriter {
  const charset = latin1 ? "Latin-1" : "UTF-8";
  const want = `a string (${type}: ${charset}, NUL-terminated)`;
  return (v, pos, element) => {
    if (typeof v !== "string") throw valueError(where, element, v, want);
    const room = latin1 ? v.length : v.length * 3;
    b.ensure(pos + room + 1);
    const n = latin1
      ? writeLatin1(b.buf, pos, v, room, true)
      : writeUtf8(b.buf, pos, v, room, true);
    if (n < 0) throw charsetError(where, element, v, n, charset, type);
    b.buf[pos + n] = 0;
    return pos + n + 1;
  };
}

function zstringWide(b: GrowableBuffer, where: string, type: string, unit: 2 | 4): ValueWriter {
  const charset = unit === 2 ? "UTF-16" : "UTF-32";
  const want = `a string (${type}: ${charset}, NUL-terminated)`;
  return (v, pos, element) => {
    if (typeof v !== "string") throw valueError(where, element, v, want);
    b.ensure(pos + unit * (v.length + 1));
    const n = unit === 2 ? writeUtf16(b.buf, pos, v, true) : writeUtf32(b.buf, pos, v, true);
    if (n < 0) throw charsetError(where, element, v, n, charset, type);
    const end = pos + unit * n;
    b.buf.fill(0, end, end + unit);
    return end + unit;
  };
}

/** Length16 + bytes: text in `charset` (or its bytes), or only bytes when `charset` is null. */
function counted8(
  b: GrowableBuffer,
  where: string,
  type: string,
  charset: "utf8" | "latin1" | null,
): ValueWriter {
  const name = charset === "latin1" ? "Latin-1" : "UTF-8";
  const want = charset === null
    ? `a Uint8Array of at most 65535 bytes (${type})`
    : `a string (${type}: ${name}, at most 65535 bytes) or its bytes as a Uint8Array`;
  const latin1 = charset === "latin1";
  return (v, pos, element) => {
    if (typeof v === "string" && charset !== null) {
      let room = latin1 ? v.length : v.length * 3;
      if (room > 0xffff) room = 0xffff;
      b.ensure(pos + 2 + room);
      const n = latin1
        ? writeLatin1(b.buf, pos + 2, v, 0xffff, false)
        : writeUtf8(b.buf, pos + 2, v, 0xffff, false);
      if (n < 0) throw charsetError(where, element, v, n, name, type, 0xffff);
      b.dv.setUint16(pos, n, true);
      return pos + 2 + n;
    }
    if (!(v instanceof Uint8Array) || v.length > 0xffff) throw valueError(where, element, v, want);
    b.ensure(pos + 2 + v.length);
    b.dv.setUint16(pos, v.length, true);
    b.buf.set(v, pos + 2);
    return pos + 2 + v.length;
  };
}

function countedWide(b: GrowableBuffer, where: string, type: string, unit: 2 | 4): ValueWriter {
  const charset = unit === 2 ? "UTF-16" : "UTF-32";
  const want = `a string (${type}: ${charset}, at most 65535 ${
    unit === 2 ? "code units" : "code points"
  })`;
  return (v, pos, element) => {
    if (typeof v !== "string") throw valueError(where, element, v, want);
    if (v.length > (unit === 2 ? 0xffff : 0x1fffe)) throw valueError(where, element, v, want);
    b.ensure(pos + 2 + unit * v.length);
    const n = unit === 2
      ? writeUtf16(b.buf, pos + 2, v, false)
      : writeUtf32(b.buf, pos + 2, v, false);
    if (n < 0) throw charsetError(where, element, v, n, charset, type);
    if (n > 0xffff) throw valueError(where, element, v, want);
    b.dv.setUint16(pos, n, true);
    return pos + 2 + unit * n;
  };
}

function charsetError(
  where: string,
  element: number,
  v: string,
  code: number,
  charset: string,
  type: string,
  limit = 0,
): UmmuArgumentError {
  const at = element >= 0 ? `${where}, element [${element}]` : where;
  return new UmmuArgumentError(
    `${at}: ${describeValue(v)} cannot be stored as ${type} (${charset}): ${
      charsetProblem(code, v, charset, code === ENC_TOO_LONG ? limit : 0)
    }`,
  );
}
