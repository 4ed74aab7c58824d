/**
 * EventHeader fields: each EventField definition checked and compiled once
 * into a writer that checks its value and encodes it, and into its block of
 * the Metadata extension.
 *
 * What a field takes follows from its (encoding, format) pair, as the spec
 * defines them (eventheader.h): integers in the range of their width and
 * signedness, booleans, floats, one-character strings in the charset of the
 * char type, addresses and UUIDs as text or bytes, strings in the charset of
 * the string encoding (Latin-1 for String8, UTF-16 and UTF-32 for the 16- and
 * 32-bit encodings, UTF-8 otherwise). A value outside that is an
 * UmmuArgumentError naming the field; nothing is truncated or wrapped.
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
import {
  type EventField,
  FIELD_TYPES,
  FieldEncoding as E,
  FieldFormat as F,
} from "./eventheader_types.ts";
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

/** A field compiled from its definition. */
export interface CompiledField {
  /** The name with its attributes, as the metadata carries it ("name;attr=value"). */
  name: string;
  /** The base encoding (FieldEncoding, no flags). */
  base: number;
  /** The format (for a struct: its member count). */
  format: number;
  /** The field tag (0: none). */
  tag: number;
  /** How the metadata declares it: 0 scalar, 1 constant-length array, 2 variable-length array. */
  arrayKind: 0 | 1 | 2;
  /** The constant length (arrayKind 1) or the length required of the value (a struct array). */
  count: number;
  /** Struct members. */
  children: CompiledField[];
  /** Checks and writes the field's value (the whole array for an array field). */
  write: ValueWriter;
}

/** Where a field sits, for error messages: `field "who.name" (#7.1) of event Request`. */
export interface FieldPlace {
  /** The dotted path of names from the top-level field. */
  path: string;
  /** The dotted path of indexes. */
  index: string;
  /** The event's name. */
  event: string;
  /** Struct nesting depth of the field (1 at the top level). */
  depth: number;
}

/** Microsoft's decoders keep a stack of 8 nested structs. */
export const MAX_STRUCT_DEPTH = 8;
/** Microsoft's decoders read at most 255 top-level fields. */
export const MAX_TOP_LEVEL_FIELDS = 255;

const ALL_FORMATS: readonly number[] = [
  F.UnsignedInt,
  F.SignedInt,
  F.HexInt,
  F.Errno,
  F.Pid,
  F.Time,
  F.Boolean,
  F.Float,
  F.HexBytes,
  F.String8,
  F.StringUtf,
  F.StringUtfBom,
  F.StringXml,
  F.StringJson,
  F.Uuid,
  F.Port,
  F.IPAddress,
];
const TEXT_FORMATS: readonly number[] = [
  F.HexBytes,
  F.StringUtf,
  F.StringUtfBom,
  F.StringXml,
  F.StringJson,
];

/**
 * The formats eventheader.h lists as usable with each encoding (0, the
 * encoding's default, always is). IPAddressObsolete is never produced ("Do
 * not produce this format"), so it is in none.
 */
const USABLE_FORMATS: Record<number, readonly number[]> = {
  [E.Value8]: [F.UnsignedInt, F.SignedInt, F.HexInt, F.Boolean, F.HexBytes, F.String8],
  [E.Value16]: [F.UnsignedInt, F.SignedInt, F.HexInt, F.Boolean, F.HexBytes, F.StringUtf, F.Port],
  [E.Value32]: [
    F.UnsignedInt,
    F.SignedInt,
    F.HexInt,
    F.Errno,
    F.Pid,
    F.Time,
    F.Boolean,
    F.Float,
    F.HexBytes,
    F.StringUtf,
    F.IPAddress,
  ],
  [E.Value64]: [F.UnsignedInt, F.SignedInt, F.HexInt, F.Time, F.Float, F.HexBytes],
  [E.Value128]: [F.HexBytes, F.Uuid, F.IPAddress],
  [E.ZStringChar8]: [F.String8, ...TEXT_FORMATS],
  [E.ZStringChar16]: TEXT_FORMATS,
  [E.ZStringChar32]: TEXT_FORMATS,
  [E.StringLength16Char8]: ALL_FORMATS,
  [E.StringLength16Char16]: TEXT_FORMATS,
  [E.StringLength16Char32]: TEXT_FORMATS,
  [E.BinaryLength16Char8]: ALL_FORMATS,
};

const nameOf = (table: Record<string, number>, v: number): string =>
  Object.entries(table).find(([k, x]) => x === v && !k.endsWith("Mask") && !k.endsWith("Flag"))
    ?.[0] ?? String(v);

/** "Value32/Float" or the short type name: how a field's type is shown in errors. */
function typeLabel(f: EventField, base: number, format: number): string {
  if (f.type !== undefined && f.format === undefined) return f.type;
  return `${nameOf(E, base)}${format ? `/${nameOf(F, format)}` : ""}`;
}

const FIELD_KEYS = new Set([
  "name",
  "type",
  "encoding",
  "format",
  "tag",
  "array",
  "fields",
  "attributes",
]);

/** Checks a name (event or field) and its attributes; returns "name;k=v;k2=v2" (';' doubled in values). */
export function withAttributes(what: string, name: unknown, attrs: unknown): string {
  if (typeof name !== "string" || name === "" || name.includes(";") || name.includes("\0")) {
    throw new UmmuArgumentError(
      `${what}: the name must be a non-empty string without ';' or NUL (attributes go in \`attributes\`), got ${
        describeValue(name)
      }`,
    );
  }
  let s = name;
  if (attrs === undefined) return s;
  if (attrs === null || typeof attrs !== "object" || Array.isArray(attrs)) {
    throw new UmmuArgumentError(
      `${what} ${name}: attributes must be an object of strings, got ${describeValue(attrs)}`,
    );
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "" || /[;=\0]/.test(k)) {
      throw new UmmuArgumentError(
        `${what} ${name}: attribute name "${k}" must be non-empty, without ';', '=' or NUL`,
      );
    }
    if (typeof v !== "string" || v.includes("\0")) {
      throw new UmmuArgumentError(
        `${what} ${name}: attribute ${k} must be a string without NUL, got ${describeValue(v)}`,
      );
    }
    s += `;${k}=${v.replaceAll(";", ";;")}`;
  }
  return s;
}

function uint(what: string, v: unknown, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!isIntIn(v, 0, max)) {
    throw new UmmuArgumentError(`${what} must be an integer in 0..${max}, got ${describeValue(v)}`);
  }
  return v;
}

/** Checks one field definition and compiles its writer and metadata. */
export function compileField(
  b: GrowableBuffer,
  f: EventField,
  place: FieldPlace,
): CompiledField {
  const at = `field #${place.index} of event ${place.event}`;
  if (f === null || typeof f !== "object" || Array.isArray(f)) {
    throw new UmmuArgumentError(
      `${at} must be an object { name, type | encoding, ... }, got ${describeValue(f)}`,
    );
  }
  for (const k of Object.keys(f)) {
    if (!FIELD_KEYS.has(k)) {
      throw new UmmuArgumentError(
        `${at} (${f.name}): unknown property "${k}" (an EventField has ${
          [...FIELD_KEYS].join(", ")
        })`,
      );
    }
  }
  const metaName = withAttributes(
    `field #${place.index} of event ${place.event}`,
    f.name,
    f.attributes,
  );
  const where = `field "${place.path}" (#${place.index}) of event ${place.event}`;
  let base: number;
  let format: number;
  if (f.type !== undefined) {
    if (f.encoding !== undefined) {
      throw new UmmuArgumentError(`${where}: give a type or an encoding, not both`);
    }
    if (typeof f.type !== "string" || !Object.prototype.hasOwnProperty.call(FIELD_TYPES, f.type)) {
      throw new UmmuArgumentError(
        `${where}: unknown type ${describeValue(f.type)} (one of ${
          Object.keys(FIELD_TYPES).join(", ")
        })`,
      );
    }
    [base, format] = FIELD_TYPES[f.type];
  } else if (f.encoding !== undefined) {
    if (!isIntIn(f.encoding, E.Struct, E.BinaryLength16Char8)) {
      throw new UmmuArgumentError(
        `${where}: encoding must be a FieldEncoding value in ${E.Struct}..${E.BinaryLength16Char8} (arrays are asked for with \`array\`), got ${
          describeValue(f.encoding)
        }`,
      );
    }
    base = f.encoding;
    format = 0;
  } else throw new UmmuArgumentError(`${where}: give a type or an encoding`);
  if (base === E.Struct) {
    if (f.format !== undefined) {
      throw new UmmuArgumentError(
        `${where}: a struct takes no format (its format byte is its member count)`,
      );
    }
  } else {
    if (f.format !== undefined) {
      if (!isIntIn(f.format, 0, F.ValueMask)) {
        throw new UmmuArgumentError(
          `${where}: format must be a FieldFormat value in 0..127, got ${describeValue(f.format)}`,
        );
      }
      format = f.format;
    }
    if (format !== 0 && !USABLE_FORMATS[base].includes(format)) {
      throw new UmmuArgumentError(
        `${where}: format ${nameOf(F, format)} (${format}) is not usable with encoding ${
          nameOf(E, base)
        } (usable: ${USABLE_FORMATS[base].map((x) => nameOf(F, x)).join(", ")})`,
      );
    }
    if (f.fields !== undefined) {
      throw new UmmuArgumentError(`${where}: only a struct has fields`);
    }
  }
  const tag = uint(`${where}: tag`, f.tag, 0xffff, 0);
  let arrayKind: 0 | 1 | 2 = 0;
  let count = 0;
  if (f.array === "variable") arrayKind = 2;
  else if (f.array !== undefined) {
    if (!isIntIn(f.array, 1, 0xffff)) {
      throw new UmmuArgumentError(
        `${where}: array must be "variable" or a constant length 1..65535, got ${
          describeValue(f.array)
        }`,
      );
    }
    count = f.array;
    arrayKind = 1;
  }
  let children: CompiledField[] = [];
  let elem: ValueWriter;
  if (base === E.Struct) {
    if (place.depth > MAX_STRUCT_DEPTH) {
      throw new UmmuArgumentError(
        `${where}: structs nest at most ${MAX_STRUCT_DEPTH} deep (Microsoft's decoders refuse more)`,
      );
    }
    const members = f.fields;
    if (!Array.isArray(members) || members.length < 1 || members.length > 127) {
      throw new UmmuArgumentError(
        `${where}: a struct has 1..127 fields, got ${describeValue(members)}`,
      );
    }
    children = members.map((c, i) =>
      compileField(b, c, {
        path: `${place.path}.${(c as EventField)?.name}`,
        index: `${place.index}.${i}`,
        event: place.event,
        depth: place.depth + 1,
      })
    );
    format = children.length;
    elem = structWriter(where, children, members);
    // Microsoft's decoders misread a constant-length array of 2+ structs, and their
    // encoders never write one: a struct array always carries its count in the payload.
    if (arrayKind === 1) arrayKind = 2;
  } else elem = elementWriter(b, where, typeLabel(f, base, format), base, format);
  const write = arrayKind === 0 ? elem : arrayWriter(b, where, elem, arrayKind, count, f.array);
  return { name: metaName, base, format, tag, arrayKind, count, children, write };
}

function structWriter(
  where: string,
  kids: CompiledField[],
  members: readonly EventField[],
): ValueWriter {
  const names = members.map((m) => m.name);
  const want = `the struct's ${kids.length} member values, as an array or an object by name (${
    names.join(", ")
  })`;
  return (v, pos, element) => {
    if (Array.isArray(v)) {
      if (v.length !== kids.length) {
        throw valueError(where, element, v, `${want}: ${kids.length} values`);
      }
      for (let i = 0; i < kids.length; i++) pos = kids[i].write(v[i], pos, -1);
    } else if (v !== null && typeof v === "object" && !ArrayBuffer.isView(v)) {
      const o = v as Record<string, unknown>;
      for (let i = 0; i < kids.length; i++) pos = kids[i].write(o[names[i]], pos, -1);
    } else throw valueError(where, element, v, want);
    return pos;
  };
}

function arrayWriter(
  b: GrowableBuffer,
  where: string,
  elem: ValueWriter,
  arrayKind: 1 | 2,
  count: number,
  declared: unknown,
): ValueWriter {
  const want = declared === "variable"
    ? "an array (or typed array) of at most 65535 elements"
    : `an array (or typed array) of exactly ${count} elements`;
  return (v, pos) => {
    if (!(Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView)))) {
      throw valueError(where, -1, v, want);
    }
    const arr = v as ArrayLike<unknown>;
    const n = arr.length;
    if (count !== 0 ? n !== count : n > 0xffff) throw valueError(where, -1, v, want);
    if (arrayKind === 2) {
      b.ensure(pos + 2);
      b.dv.setUint16(pos, n, true);
      pos += 2;
    }
    for (let i = 0; i < n; i++) pos = elem(arr[i], pos, i);
    return pos;
  };
}

/** Compiles the element writer of (base encoding, format). */
function elementWriter(
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

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Writes a UUID's 16 bytes (RFC 4122 order); false if `s` is not one. */
export function writeUuid(buf: Uint8Array, pos: number, s: string): boolean {
  let i = 0;
  let end = s.length;
  if (s.charCodeAt(0) === 0x7b && s.charCodeAt(end - 1) === 0x7d) {
    i = 1;
    end--;
  }
  const hyphens = end - i === 36;
  if (!hyphens && end - i !== 32) return false;
  let k = 0;
  for (let p = i; p < end; p++) {
    const off = p - i;
    if (hyphens && (off === 8 || off === 13 || off === 18 || off === 23)) {
      if (s.charCodeAt(p) !== 0x2d) return false;
      continue;
    }
    const hi = hexDigit(s.charCodeAt(p));
    const lo = hexDigit(s.charCodeAt(++p));
    if (hi < 0 || lo < 0) return false;
    buf[pos + k++] = (hi << 4) | lo;
  }
  return k === 16;
}

/** Writes "a.b.c.d" as 4 bytes; false if `s` is not a dotted-quad (no leading zeros). */
export function writeIPv4(buf: Uint8Array, pos: number, s: string): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return false;
      buf[pos + part++] = value;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // leading zero: octal to inet_aton
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    } else return false;
  }
  return part === 4;
}

/** Writes an IPv6 address (RFC 4291 text form, with "::" and a dotted IPv4 tail); false if invalid. */
export function writeIPv6(buf: Uint8Array, pos: number, s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groups = (text: string, last: boolean): number[] | null => {
    if (text === "") return [];
    const out: number[] = [];
    const parts = text.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (last && i === parts.length - 1 && p.includes(".")) {
        const v4 = new Uint8Array(4);
        if (!writeIPv4(v4, 0, p)) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (head === null || tail === null) return false;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return false;
  const words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    buf[pos + 2 * i] = words[i] >> 8;
    buf[pos + 2 * i + 1] = words[i] & 0xff;
  }
  return true;
}

const te = new TextEncoder();

/** Appends a field definition block (and its struct members) to `out`. */
export function metadataOf(n: CompiledField, out: number[]): void {
  for (const c of te.encode(n.name)) out.push(c);
  out.push(0);
  let enc = n.base;
  if (n.arrayKind === 1) enc |= E.CArrayFlag;
  if (n.arrayKind === 2) enc |= E.VArrayFlag;
  const hasFormat = n.format !== 0 || n.tag !== 0;
  if (hasFormat) enc |= E.ChainFlag;
  out.push(enc);
  if (hasFormat) {
    out.push(n.format | (n.tag !== 0 ? F.ChainFlag : 0));
    if (n.tag !== 0) out.push(n.tag & 0xff, n.tag >>> 8);
  }
  if (n.arrayKind === 1) out.push(n.count & 0xff, n.count >>> 8);
  for (const c of n.children) metadataOf(c, out);
}
