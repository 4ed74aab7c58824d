/**
 * EventHeader (Microsoft LinuxTracepoints): self-describing events on shared
 * user_events tracepoints, decodable by perf-decode, decode-perf and the
 * OpenTelemetry user_events exporters' tools.
 *
 * Tracepoint: `ProviderName_L<level hex>K<keyword hex>[options]` with the
 * command types EVENTHEADER_COMMAND_TYPES. Event:
 *
 *     struct eventheader { u8 flags; u8 version; u16 id; u16 tag; u8 opcode; u8 level; }  // 8 bytes
 *     [eventheader_extension { u16 size; u16 kind; } + size bytes]...  // chain flag 0x8000 = another follows
 *     payload
 *
 * Extensions written here: ActivityId (16 bytes, or 32 with a related id) and
 * Metadata (event name + attributes, NUL, then per field: name NUL, encoding
 * byte [| 0x80 format follows | 0x20 constant-length array | 0x40 variable
 * array], format byte [| 0x80 tag follows], tag u16, array length u16).
 * Little-endian, 64-bit pointers (flags 0x03 | 0x04 extension).
 */
import { Emitter, Tracepoint, type TracepointHandle, UserEvents } from "./tracepoint.ts";
import { ClosedError, UmmuArgumentError } from "../errors.ts";
import { writeUtf8 } from "./fields.ts";
import { GrowableBuffer } from "./buffer.ts";

/** The DIAG_IOCSREG field types of every EventHeader tracepoint (from eventheader.h). */
export const EVENTHEADER_COMMAND_TYPES =
  "u8 eventheader_flags;u8 version;u16 id;u16 tag;u8 opcode;u8 level";
/** Tracepoint names must be shorter than this (with the NUL). */
export const EVENTHEADER_NAME_MAX = 256;

/** eventheader_flags */
export const HeaderFlags = {
  None: 0x00,
  Pointer64: 0x01,
  LittleEndian: 0x02,
  Extension: 0x04,
} as const;

/** eventheader_extension_kind */
export const ExtensionKind = {
  ValueMask: 0x7fff,
  ChainFlag: 0x8000,
  Invalid: 0,
  Metadata: 1,
  ActivityId: 2,
} as const;

/** event_field_encoding (low 5 bits) and its flags. */
export const FieldEncoding = {
  ValueMask: 0x1f,
  FlagMask: 0xe0,
  CArrayFlag: 0x20,
  VArrayFlag: 0x40,
  ChainFlag: 0x80,
  Invalid: 0,
  Struct: 1,
  Value8: 2,
  Value16: 3,
  Value32: 4,
  Value64: 5,
  Value128: 6,
  ZStringChar8: 7,
  ZStringChar16: 8,
  ZStringChar32: 9,
  StringLength16Char8: 10,
  StringLength16Char16: 11,
  StringLength16Char32: 12,
  BinaryLength16Char8: 13,
} as const;

/** event_field_format (low 7 bits); ChainFlag: a u16 tag follows. */
export const FieldFormat = {
  ValueMask: 0x7f,
  ChainFlag: 0x80,
  Default: 0,
  UnsignedInt: 1,
  SignedInt: 2,
  HexInt: 3,
  Errno: 4,
  Pid: 5,
  Time: 6,
  Boolean: 7,
  Float: 8,
  HexBytes: 9,
  String8: 10,
  StringUtf: 11,
  StringUtfBom: 12,
  StringXml: 13,
  StringJson: 14,
  Uuid: 15,
  Port: 16,
  IPAddress: 17,
  IPAddressObsolete: 18,
  /** Deprecated aliases. */
  IPv4: 17,
  IPv6: 18,
} as const;

/** event_opcode */
export const Opcode = {
  Info: 0,
  ActivityStart: 1,
  ActivityStop: 2,
  CollectionStart: 3,
  CollectionStop: 4,
  Extension: 5,
  Reply: 6,
  Resume: 7,
  Suspend: 8,
  Send: 9,
  Receive: 0xf0,
} as const;

/** event_level */
export const Level = {
  Invalid: 0,
  CriticalError: 1,
  Error: 2,
  Warning: 3,
  Informational: 4,
  Verbose: 5,
} as const;

const E = FieldEncoding;
const F = FieldFormat;

/**
 * Short names for common (encoding, format) pairs, for EventField.type: a
 * decoder shows a `hex32` as hex and an `errno` as an error name, though both
 * are 4 bytes on the wire.
 *
 * @example
 * ```ts
 * import { FIELD_TYPES, FieldEncoding, FieldFormat } from "@ummu/ummu/user_events";
 *
 * const [encoding, format] = FIELD_TYPES.hex32;
 * console.log(encoding === FieldEncoding.Value32, format === FieldFormat.HexInt); // true true
 * ```
 */
export const FIELD_TYPES = {
  u8: [E.Value8, 0],
  i8: [E.Value8, F.SignedInt],
  u16: [E.Value16, 0],
  i16: [E.Value16, F.SignedInt],
  u32: [E.Value32, 0],
  i32: [E.Value32, F.SignedInt],
  u64: [E.Value64, 0],
  i64: [E.Value64, F.SignedInt],
  hex8: [E.Value8, F.HexInt],
  hex16: [E.Value16, F.HexInt],
  hex32: [E.Value32, F.HexInt],
  hex64: [E.Value64, F.HexInt],
  bool8: [E.Value8, F.Boolean],
  bool32: [E.Value32, F.Boolean],
  f32: [E.Value32, F.Float],
  f64: [E.Value64, F.Float],
  errno: [E.Value32, F.Errno],
  pid: [E.Value32, F.Pid],
  time32: [E.Value32, F.Time],
  time64: [E.Value64, F.Time],
  char8: [E.Value8, F.String8],
  char16: [E.Value16, F.StringUtf],
  char32: [E.Value32, F.StringUtf],
  port: [E.Value16, F.Port],
  ipv4: [E.Value32, F.IPAddress],
  ipv6: [E.Value128, F.IPAddress],
  uuid: [E.Value128, F.Uuid],
  hex128: [E.Value128, 0],
  zstring: [E.ZStringChar8, 0],
  zstring16: [E.ZStringChar16, 0],
  zstring32: [E.ZStringChar32, 0],
  string: [E.StringLength16Char8, 0],
  string8: [E.StringLength16Char8, F.String8],
  string16: [E.StringLength16Char16, 0],
  string32: [E.StringLength16Char32, 0],
  json: [E.StringLength16Char8, F.StringJson],
  xml: [E.StringLength16Char8, F.StringXml],
  binary: [E.BinaryLength16Char8, 0],
  struct: [E.Struct, 0],
} as const satisfies Record<string, readonly [number, number]>;
/** A key of {@linkcode FIELD_TYPES}: what EventField.type accepts. */
export type FieldTypeName = keyof typeof FIELD_TYPES;

/** One EventHeader field: a short `type`, or an explicit `encoding` (+ `format`). */
export interface EventField {
  /** The field name as decoders show it; no ';' (attributes go in `attributes`). */
  name: string;
  /** A short type name: sets the encoding and format together. */
  type?: FieldTypeName;
  /**
   * A FieldEncoding value, when no `type` is given (only the low 5 bits count:
   * arrays are asked for with `array`, not with the flag bits).
   */
  encoding?: number;
  /**
   * A FieldFormat value: replaces the format of `type`, or completes `encoding`
   * (default 0: the encoding's own).
   */
  format?: number;
  /** Provider-defined 16-bit field tag (0: none). */
  tag?: number;
  /** A number: constant-length array of that many elements; "variable": u16 count in the payload. */
  array?: number | "variable";
  /** Struct members (type "struct"). */
  fields?: EventField[];
  /** Field attributes, written as ";name=value" after the field name. */
  attributes?: Record<string, string>;
}

/**
 * One EventHeader event: its name, severity, category and fields. The
 * metadata built from it travels in every event, so a decoder needs no
 * manifest to read the fields.
 */
export interface EventDefinition {
  /** The event name decoders show (the tracepoint is named by provider, level and keyword). */
  name: string;
  /** 1 critical .. 5 verbose (default 5). */
  level?: number;
  /** Category bits (default 1). */
  keyword?: bigint | number;
  /** An {@linkcode Opcode} (default Info); ActivityStart and ActivityStop bound an activity. */
  opcode?: number;
  /** Stable event id (0: none) and its version. */
  id?: number;
  /** The version of `id`'s definition: bump it when the fields of that id change (default 0). */
  version?: number;
  /** Provider-defined 16-bit event tag. */
  tag?: number;
  /** The payload fields, in the order emit() takes their values. */
  fields?: EventField[];
  /** Event attributes, written as ";name=value" after the event name. */
  attributes?: Record<string, string>;
  /** Reserve an ActivityId extension: "id" (16 bytes) or "related" (activity id + parent id, 32 bytes). */
  activity?: "id" | "related";
}

/**
 * `ProviderName_L<level>K<keyword>[G<group>]`: the spec's tracepoint name. Tracers
 * select EventHeader events by this name, so every event of a provider with the
 * same level and keyword shares one tracepoint (and one enable bit).
 *
 * @example
 * ```ts
 * import { Level, tracepointName } from "@ummu/ummu/user_events";
 *
 * tracepointName("myapp", Level.Informational, 0x10n); // "myapp_L4K10"
 * tracepointName("myapp", Level.Error, 1, "Gbilling"); // "myapp_L2K1Gbilling"
 * ```
 */
export function tracepointName(
  provider: string,
  level: number,
  keyword: bigint | number,
  options = "",
): string {
  const name = `${provider}_L${level.toString(16)}K${BigInt(keyword).toString(16)}${options}`;
  if (name.length + 1 > EVENTHEADER_NAME_MAX) {
    throw new UmmuArgumentError(
      `tracepoint name "${name}" is ${name.length} characters; EventHeader allows ${
        EVENTHEADER_NAME_MAX - 1
      }`,
    );
  }
  return name;
}

/** Escapes an attribute value (';' doubled) and formats "name;k=v;k2=v2". */
function withAttributes(name: string, attrs?: Record<string, string>): string {
  if (name.includes(";")) {
    throw new UmmuArgumentError(`EventHeader names may not contain ';': "${name}"`);
  }
  let s = name;
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k.includes(";") || k.includes("=")) {
      throw new UmmuArgumentError(`attribute name "${k}" may not contain ';' or '='`);
    }
    s += `;${k}=${v.replaceAll(";", ";;")}`;
  }
  return s;
}

interface Node {
  name: string;
  base: number;
  format: number;
  tag: number;
  arrayKind: 0 | 1 | 2; // none, constant, variable
  count: number;
  children: Node[];
  write: (v: unknown, pos: number) => number;
}

const te = new TextEncoder();

function parseUuid(s: string): Uint8Array {
  const hex = s.replace(/[{}-]/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`not a UUID: "${s}"`);
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return b;
}

function parseIPv4(s: string): number {
  const p = s.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) {
    throw new TypeError(`not an IPv4 address: "${s}"`);
  }
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** Compiles one element writer for (base encoding, format). */
function elementWriter(
  b: GrowableBuffer,
  name: string,
  base: number,
  format: number,
): (v: unknown, pos: number) => number {
  const bad = (what: string, v: unknown) =>
    new TypeError(`field ${name}: expected ${what}, got ${typeof v}`);
  const num = (v: unknown): number => {
    if (typeof v === "number") return v;
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "bigint") return Number(BigInt.asUintN(32, v));
    throw bad("a number", v);
  };
  switch (base) {
    case E.Value8:
      if (format === F.String8) {
        return (v, pos) => {
          b.ensure(pos + 1);
          b.buf[pos] = typeof v === "string" ? v.charCodeAt(0) : num(v);
          return pos + 1;
        };
      }
      return (v, pos) => {
        b.ensure(pos + 1);
        b.buf[pos] = num(v);
        return pos + 1;
      };
    case E.Value16:
      if (format === F.Port) {
        return (v, pos) => {
          b.ensure(pos + 2);
          b.dv.setUint16(pos, num(v), false); // network byte order
          return pos + 2;
        };
      }
      return (v, pos) => {
        b.ensure(pos + 2);
        b.dv.setUint16(pos, typeof v === "string" ? v.charCodeAt(0) : num(v), true);
        return pos + 2;
      };
    case E.Value32:
      if (format === F.Float) {
        return (v, pos) => {
          b.ensure(pos + 4);
          b.dv.setFloat32(pos, num(v), true);
          return pos + 4;
        };
      }
      if (format === F.IPAddress || format === F.IPAddressObsolete) {
        return (v, pos) => {
          b.ensure(pos + 4);
          if (v instanceof Uint8Array) b.buf.set(v.subarray(0, 4), pos);
          else b.dv.setUint32(pos, typeof v === "string" ? parseIPv4(v) : num(v), false); // in_addr: network order
          return pos + 4;
        };
      }
      return (v, pos) => {
        b.ensure(pos + 4);
        b.dv.setUint32(pos, (typeof v === "string" ? v.codePointAt(0)! : num(v)) >>> 0, true);
        return pos + 4;
      };
    case E.Value64:
      if (format === F.Float) {
        return (v, pos) => {
          b.ensure(pos + 8);
          b.dv.setFloat64(pos, typeof v === "bigint" ? Number(v) : num(v), true);
          return pos + 8;
        };
      }
      return (v, pos) => {
        b.ensure(pos + 8);
        if (typeof v === "bigint") b.dv.setBigUint64(pos, BigInt.asUintN(64, v), true);
        else {
          const n = num(v);
          b.dv.setUint32(pos, n >>> 0, true);
          b.dv.setUint32(pos + 4, Math.floor(n / 4294967296) >>> 0, true);
        }
        return pos + 8;
      };
    case E.Value128:
      return (v, pos) => {
        b.ensure(pos + 16);
        const bytes = typeof v === "string" ? parseUuid(v) : v;
        if (!(bytes instanceof Uint8Array) || bytes.length !== 16) {
          throw bad("16 bytes (Uint8Array) or a UUID string", v);
        }
        b.buf.set(bytes, pos);
        return pos + 16;
      };
    case E.ZStringChar8:
      return (v, pos) => {
        if (typeof v !== "string") throw bad("a string", v);
        b.ensure(pos + v.length * 3 + 1);
        const n = writeUtf8(b.buf, pos, v);
        b.buf[pos + n] = 0;
        return pos + n + 1;
      };
    case E.ZStringChar16:
      return (v, pos) => {
        if (typeof v !== "string") throw bad("a string", v);
        b.ensure(pos + v.length * 2 + 2);
        for (let i = 0; i < v.length; i++) b.dv.setUint16(pos + 2 * i, v.charCodeAt(i), true);
        b.dv.setUint16(pos + 2 * v.length, 0, true);
        return pos + 2 * v.length + 2;
      };
    case E.ZStringChar32:
      return (v, pos) => {
        if (typeof v !== "string") throw bad("a string", v);
        b.ensure(pos + v.length * 4 + 4);
        let p = pos;
        for (const ch of v) {
          b.dv.setUint32(p, ch.codePointAt(0)!, true);
          p += 4;
        }
        b.dv.setUint32(p, 0, true);
        return p + 4;
      };
    case E.StringLength16Char8:
    case E.BinaryLength16Char8:
      return (v, pos) => {
        if (typeof v === "string") {
          b.ensure(pos + 2 + v.length * 3);
          const n = writeUtf8(b.buf, pos + 2, v);
          if (n > 0xffff) throw new RangeError(`field ${name}: ${n} bytes exceed 65535`);
          b.dv.setUint16(pos, n, true);
          return pos + 2 + n;
        }
        if (!(v instanceof Uint8Array)) throw bad("a string or Uint8Array", v);
        if (v.length > 0xffff) {
          throw new RangeError(`field ${name}: ${v.length} bytes exceed 65535`);
        }
        b.ensure(pos + 2 + v.length);
        b.dv.setUint16(pos, v.length, true);
        b.buf.set(v, pos + 2);
        return pos + 2 + v.length;
      };
    case E.StringLength16Char16:
      return (v, pos) => {
        if (typeof v !== "string") throw bad("a string", v);
        if (v.length > 0xffff) throw new RangeError(`field ${name}: too long`);
        b.ensure(pos + 2 + v.length * 2);
        b.dv.setUint16(pos, v.length, true);
        for (let i = 0; i < v.length; i++) b.dv.setUint16(pos + 2 + 2 * i, v.charCodeAt(i), true);
        return pos + 2 + 2 * v.length;
      };
    case E.StringLength16Char32:
      return (v, pos) => {
        if (typeof v !== "string") throw bad("a string", v);
        b.ensure(pos + 2 + v.length * 4);
        let p = pos + 2;
        let n = 0;
        for (const ch of v) {
          b.dv.setUint32(p, ch.codePointAt(0)!, true);
          p += 4;
          n++;
        }
        b.dv.setUint16(pos, n, true);
        return p;
      };
  }
  throw new UmmuArgumentError(`field ${name}: unknown encoding ${base}`);
}

function compileField(b: GrowableBuffer, f: EventField): Node {
  let base: number;
  let format: number;
  if (f.type !== undefined) {
    const t = FIELD_TYPES[f.type];
    if (!t) {
      throw new UmmuArgumentError(
        `field ${f.name}: unknown type "${f.type}" (one of ${Object.keys(FIELD_TYPES).join(", ")})`,
      );
    }
    [base, format] = t;
    if (f.format !== undefined) format = f.format;
  } else if (f.encoding !== undefined) {
    base = f.encoding & E.ValueMask;
    format = f.format ?? 0;
  } else throw new UmmuArgumentError(`field ${f.name}: give a type or an encoding`);
  if (base <= 0 || base > E.BinaryLength16Char8) {
    throw new UmmuArgumentError(`field ${f.name}: invalid encoding ${base}`);
  }
  if (format < 0 || format > 0x7f) {
    throw new UmmuArgumentError(`field ${f.name}: invalid format ${format}`);
  }
  const tag = f.tag ?? 0;
  const arrayKind: 0 | 1 | 2 = f.array === undefined ? 0 : f.array === "variable" ? 2 : 1;
  const count = typeof f.array === "number" ? f.array : 0;
  if (arrayKind === 1 && !(count >= 1 && count <= 0xffff && Number.isInteger(count))) {
    throw new UmmuArgumentError(`field ${f.name}: constant array length must be 1..65535`);
  }
  let children: Node[] = [];
  let elem: (v: unknown, pos: number) => number;
  if (base === E.Struct) {
    children = (f.fields ?? []).map((c) => compileField(b, c));
    if (children.length < 1 || children.length > 127) {
      throw new UmmuArgumentError(`field ${f.name}: a struct has 1..127 fields`);
    }
    format = children.length;
    const kids = children;
    elem = (v, pos) => {
      if (Array.isArray(v)) {
        if (v.length !== kids.length) {
          throw new RangeError(`struct ${f.name}: expected ${kids.length} values`);
        }
        for (let i = 0; i < kids.length; i++) pos = kids[i].write(v[i], pos);
      } else if (v !== null && typeof v === "object") {
        const o = v as Record<string, unknown>;
        for (const k of kids) pos = k.write(o[k.name], pos);
      } else throw new TypeError(`struct ${f.name}: expected an array or object`);
      return pos;
    };
  } else elem = elementWriter(b, f.name, base, format);
  let write = elem;
  if (arrayKind !== 0) {
    write = (v, pos) => {
      const arr = v as ArrayLike<unknown>;
      if (arr === null || typeof arr !== "object" || typeof arr.length !== "number") {
        throw new TypeError(`field ${f.name}: expected an array`);
      }
      if (arrayKind === 1) {
        if (arr.length !== count) {
          throw new RangeError(`field ${f.name}: expected ${count} elements, got ${arr.length}`);
        }
      } else {
        if (arr.length > 0xffff) throw new RangeError(`field ${f.name}: more than 65535 elements`);
        b.ensure(pos + 2);
        b.dv.setUint16(pos, arr.length, true);
        pos += 2;
      }
      for (let i = 0; i < arr.length; i++) pos = elem(arr[i], pos);
      return pos;
    };
  }
  return {
    name: withAttributes(f.name, f.attributes),
    base,
    format,
    tag,
    arrayKind,
    count,
    children,
    write,
  };
}

/** Appends a field definition block (and its struct members) to `out`. */
function metadataOf(n: Node, out: number[]): void {
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

/**
 * An encoder for one event definition: the header and extensions are built
 * once; encode() writes only the field values after them. EventHeaderEvent
 * uses one; on its own it makes the bytes of an event without a kernel (for
 * tests, or to write events to another transport).
 *
 * @example
 * ```ts
 * import { decodeEventHeader, EventHeaderEncoder, fieldValues } from "@ummu/ummu/user_events";
 *
 * const enc = new EventHeaderEncoder({
 *   name: "Login",
 *   level: 4,
 *   fields: [{ name: "user", type: "string" }, { name: "ok", type: "bool8" }],
 * });
 * const bytes = enc.bytes(["ada", true]);
 * console.log(fieldValues(decodeEventHeader(bytes).fields)); // { user: "ada", ok: true }
 * ```
 */
export class EventHeaderEncoder {
  /** The definition it was built from (sent in handles: Workers rebuild the encoder from it). */
  readonly def: EventDefinition;
  /** The event's level (default Level.Verbose): with `keyword`, it picks the tracepoint. */
  readonly level: number;
  /** The event's keyword bits (default 1), as a bigint: keywords are 64-bit. */
  readonly keyword: bigint;
  /** Bytes of header and extensions before the first field value; fixed per definition. */
  readonly prefixLength: number;
  /** Offset of the activity id bytes in the buffer (-1: no ActivityId extension). */
  readonly activityOffset: number;
  readonly #b: GrowableBuffer;
  readonly #nodes: Node[];

  /**
   * Compiles `def`: field writers, metadata, header. Throws UmmuArgumentError
   * for a definition no decoder could read (bad level, type, encoding, array
   * length, ';' in a name, metadata over 64 KiB).
   */
  constructor(def: EventDefinition) {
    this.def = def;
    this.level = def.level ?? Level.Verbose;
    this.keyword = BigInt(def.keyword ?? 1);
    if (!(this.level >= 1 && this.level <= 255)) {
      throw new UmmuArgumentError(`level ${this.level}: 1..255`);
    }
    this.#b = new GrowableBuffer(1024) /* [prefix: header + extensions][payload] */;
    this.#nodes = (def.fields ?? []).map((f) => compileField(this.#b, f));
    const meta: number[] = [];
    for (const c of te.encode(withAttributes(def.name, def.attributes))) meta.push(c);
    meta.push(0);
    for (const n of this.#nodes) metadataOf(n, meta);
    if (meta.length > 0xffff) {
      throw new UmmuArgumentError(`event ${def.name}: metadata exceeds 65535 bytes`);
    }
    const actLen = def.activity === "related" ? 32 : def.activity === "id" ? 16 : 0;
    const prefix = 8 + (actLen ? 4 + actLen : 0) + 4 + meta.length;
    this.#b.ensure(prefix + 256);
    const b = this.#b.buf;
    const dv = this.#b.dv;
    b[0] = HeaderFlags.Pointer64 | HeaderFlags.LittleEndian | HeaderFlags.Extension;
    b[1] = def.version ?? 0;
    dv.setUint16(2, def.id ?? 0, true);
    dv.setUint16(4, def.tag ?? 0, true);
    b[6] = def.opcode ?? Opcode.Info;
    b[7] = this.level;
    let p = 8;
    this.activityOffset = -1;
    if (actLen) {
      dv.setUint16(p, actLen, true);
      dv.setUint16(p + 2, ExtensionKind.ActivityId | ExtensionKind.ChainFlag, true);
      this.activityOffset = p + 4;
      p += 4 + actLen;
    }
    dv.setUint16(p, meta.length, true);
    dv.setUint16(p + 2, ExtensionKind.Metadata, true);
    b.set(meta, p + 4);
    this.prefixLength = prefix;
  }

  /** The buffer (for the Emitter): prefix then the last encoded payload. */
  get buffer(): { buf: Uint8Array; generation: number } {
    return this.#b;
  }

  /** Writes the activity id (and related id) into the ActivityId extension. */
  setActivity(activityId: Uint8Array | string, relatedId?: Uint8Array | string): void {
    if (this.activityOffset < 0) {
      throw new UmmuArgumentError(
        `event ${this.def.name} has no activity extension (define it with activity: "id" | "related")`,
      );
    }
    const a = typeof activityId === "string" ? parseUuid(activityId) : activityId;
    if (a.length !== 16) throw new RangeError("an activity id is 16 bytes");
    this.#b.buf.set(a, this.activityOffset);
    if (this.def.activity === "related") {
      const r = relatedId === undefined
        ? new Uint8Array(16)
        : typeof relatedId === "string"
        ? parseUuid(relatedId)
        : relatedId;
      if (r.length !== 16) throw new RangeError("a related activity id is 16 bytes");
      this.#b.buf.set(r, this.activityOffset + 16);
    }
  }

  /** Encodes the values (in field order) after the prefix; returns the event's length. */
  encode(values: ArrayLike<unknown>): number {
    const nodes = this.#nodes;
    if (values.length !== nodes.length) {
      throw new RangeError(
        `${this.def.name}: expected ${nodes.length} values, got ${values.length}`,
      );
    }
    let pos = this.prefixLength;
    for (let i = 0; i < nodes.length; i++) pos = nodes[i].write(values[i], pos);
    return pos;
  }

  /** A copy of the last encoded event (for tests). */
  bytes(values: ArrayLike<unknown>): Uint8Array {
    const n = this.encode(values);
    return this.#b.buf.slice(0, n);
  }
}

/** What a Worker needs to emit an EventHeader event defined elsewhere (structured-cloneable). */
export interface EventHeaderHandle {
  /** The shared tracepoint's handle (fd, write index, enable bit). */
  tracepoint: TracepointHandle;
  /** The definition; the Worker compiles its own encoder from it. */
  def: EventDefinition;
}

/**
 * One EventHeader event definition bound to its (shared) tracepoint. Made by
 * {@linkcode EventHeaderProvider.prototype.defineEvent | EventHeaderProvider.defineEvent};
 * to emit from a Worker, post handle() and call EventHeaderEvent.fromHandle
 * there.
 *
 * @example
 * ```ts
 * import { EventHeaderProvider, Level, Opcode } from "@ummu/ummu/user_events";
 *
 * const provider = new EventHeaderProvider("myapp");
 * const job = provider.defineEvent({
 *   name: "Job",
 *   level: Level.Informational,
 *   opcode: Opcode.ActivityStart,
 *   activity: "id",
 *   fields: [{ name: "queue", type: "string" }],
 * });
 * if (job.enabled) job.emitActivity(crypto.randomUUID(), undefined, "emails");
 * provider.close();
 * ```
 */
export class EventHeaderEvent {
  /** The compiled header, extensions and field writers of this event. */
  readonly encoder: EventHeaderEncoder;
  /** The provider's tracepoint of this level and keyword, shared by all events with that pair. */
  readonly tracepoint: Tracepoint;
  readonly #words: Int32Array;
  readonly #word: number;
  readonly #mask: number;
  readonly #emitter: Emitter;
  readonly #closed: () => boolean;

  /** @internal */
  constructor(tp: Tracepoint, encoder: EventHeaderEncoder, closed: () => boolean) {
    this.tracepoint = tp;
    this.encoder = encoder;
    this.#closed = closed;
    this.#words = tp.slab.words;
    this.#word = tp.word;
    this.#mask = 1 << tp.bit;
    this.#emitter = new Emitter(tp.fd, tp.writeIndex, encoder.buffer, tp.name);
  }

  /** Re-creates an event from a handle (in a Worker): it can test `enabled` and emit. */
  static fromHandle(h: EventHeaderHandle): EventHeaderEvent {
    const tp = Tracepoint.fromHandle(h.tracepoint);
    return new EventHeaderEvent(tp, new EventHeaderEncoder(h.def), () => false);
  }

  /** What a Worker needs: pass it with postMessage and call EventHeaderEvent.fromHandle there. */
  handle(): EventHeaderHandle {
    return { tracepoint: this.tracepoint.handle(), def: this.encoder.def };
  }

  /** The event name (in the metadata; tracers list the tracepoint's name instead). */
  get name(): string {
    return this.encoder.def.name;
  }

  /** True while a tracer listens on the tracepoint (shared by every event of the same level and keyword). */
  get enabled(): boolean {
    return (Atomics.load(this.#words, this.#word) & this.#mask) !== 0;
  }

  /** Emits one event. true: written; false: nobody listens (EBADF). */
  emit(...values: unknown[]): boolean {
    if (this.#closed()) throw new ClosedError(`EventHeader event ${this.name}`);
    return this.#emitter.write(this.encoder.encode(values));
  }

  /** Emits with an activity id (and a related id for activity: "related"). */
  emitActivity(
    activityId: Uint8Array | string,
    relatedId: Uint8Array | string | undefined,
    ...values: unknown[]
  ): boolean {
    this.encoder.setActivity(activityId, relatedId);
    return this.emit(...values);
  }
}

/**
 * An EventHeader provider: a name, an optional group, and the tracepoints of
 * its (level, keyword) pairs, registered on first use and shared by events.
 * Its events are self-describing, so perf-decode and other EventHeader tools
 * show named, typed fields with no schema shipped alongside.
 *
 * @example
 * ```ts
 * import { EventHeaderProvider, Level } from "@ummu/ummu/user_events";
 *
 * const provider = new EventHeaderProvider("myapp");
 * const request = provider.defineEvent({
 *   name: "Request",
 *   level: Level.Informational,
 *   keyword: 0x1n,
 *   fields: [
 *     { name: "status", type: "u32" },
 *     { name: "path", type: "string" },
 *     { name: "ms", type: "f64" },
 *   ],
 * });
 * // perf record -e user_events:myapp_L4K1 ...
 * if (request.enabled) request.emit(200, "/index.html", 1.5);
 * provider.close();
 * ```
 */
export class EventHeaderProvider {
  /** The provider name: the prefix of its tracepoint names. */
  readonly name: string;
  /** What follows the keyword in its tracepoint names: "G<group>", or "". */
  readonly options: string;
  readonly #ue: UserEvents;
  readonly #ownUe: boolean;
  readonly #tps = new Map<string, Tracepoint>();
  #closed = false;

  /** `group`: the G option (lowercase letters and digits). `userEvents`: share an open UserEvents. */
  constructor(name: string, opts: { group?: string; userEvents?: UserEvents } = {}) {
    if (!/^[^ :]+$/.test(name)) {
      throw new UmmuArgumentError(`provider name "${name}" may not be empty or contain ' ' or ':'`);
    }
    if (opts.group !== undefined && !/^[a-z0-9]+$/.test(opts.group)) {
      throw new UmmuArgumentError(
        `provider group "${opts.group}" must be lowercase letters and digits`,
      );
    }
    this.name = name;
    this.options = opts.group !== undefined ? `G${opts.group}` : "";
    this.#ownUe = opts.userEvents === undefined;
    this.#ue = opts.userEvents ?? UserEvents.open();
  }

  /** True after close(): defining events then throws ClosedError, and so does emitting them. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The tracepoint of (level, keyword), registered on first use. */
  tracepoint(level: number, keyword: bigint | number): Tracepoint {
    if (this.#closed) throw new ClosedError(`EventHeader provider ${this.name}`);
    const tpName = tracepointName(this.name, level, keyword, this.options);
    let tp = this.#tps.get(tpName);
    if (!tp) {
      tp = this.#ue.register(tpName, EVENTHEADER_COMMAND_TYPES);
      this.#tps.set(tpName, tp);
    }
    return tp;
  }

  /** Defines an event; its tracepoint is `Provider_L<level>K<keyword>[G<group>]`. */
  defineEvent(def: EventDefinition): EventHeaderEvent {
    const enc = new EventHeaderEncoder(def);
    return new EventHeaderEvent(this.tracepoint(enc.level, enc.keyword), enc, () => this.#closed);
  }

  /** Unregisters the provider's tracepoints (and closes its UserEvents if it opened it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const tp of this.#tps.values()) tp.unregister();
    this.#tps.clear();
    if (this.#ownUe) this.#ue.close();
  }
}
