/**
 * Our EventHeader decoder (for tests and readers): the tracepoint name's
 * attributes, the 8-byte header, the extensions (ActivityId, Metadata) and
 * the payload decoded by the metadata. Written from the specification, not
 * from our encoder, and strict: anything short or malformed throws an
 * EventHeaderDecodeError that says what and where, never an engine error.
 */
import {
  ExtensionKind,
  FieldEncoding as E,
  FieldFormat as F,
  HeaderFlags,
} from "./eventheader_types.ts";
import { UmmuArgumentError } from "../errors.ts";
import { decodeLatin1 } from "./charsets.ts";
import { describeValue } from "./values.ts";

/**
 * An EventHeader event (or tracepoint name) that cannot be decoded: short,
 * malformed, or using what the spec reserves. An UmmuArgumentError (the bytes
 * are the bad argument) with the byte offset where decoding stopped.
 */
export class EventHeaderDecodeError extends UmmuArgumentError {
  /** Always "EventHeaderDecodeError". */
  override name = "EventHeaderDecodeError";
  /** `offset`: the byte of the event where decoding stopped (-1 for a tracepoint name). */
  constructor(message: string, readonly offset: number) {
    super(offset >= 0 ? `EventHeader: ${message} (at byte ${offset})` : message);
  }
}

/** Structs nest at most this deep (Microsoft's decoders have the same limit). */
const MAX_DEPTH = 8;

/** The parts of an EventHeader tracepoint name, as {@linkcode parseTracepointName} splits it. */
export interface TracepointNameInfo {
  /** The provider name (everything before the last `_L<level>K<keyword>`). */
  provider: string;
  /** The level, from its hex digits. */
  level: number;
  /** The keyword bits, from their hex digits (keywords are 64-bit). */
  keyword: bigint;
  /** Options after the keyword, e.g. "Gmygroup". */
  options: string;
  /** The G option's value (the provider group), when there is one. */
  group?: string;
}

/**
 * Parses `ProviderName_L<level>K<keyword>[options]`: tells which provider,
 * level and keyword a tracepoint in available_events or user_events_status
 * carries. Throws EventHeaderDecodeError for any other name.
 *
 * @example
 * ```ts
 * import { parseTracepointName } from "@ummu/ummu/user_events";
 *
 * parseTracepointName("myapp_L4K1Gbilling");
 * // { provider: "myapp", level: 4, keyword: 1n, options: "Gbilling", group: "billing" }
 * ```
 */
export function parseTracepointName(name: string): TracepointNameInfo {
  const mm = typeof name === "string"
    ? /^(.+)_L([0-9a-f]+)K([0-9a-f]+)((?:[A-Z][0-9a-z]*)*)$/.exec(name)
    : null;
  if (!mm) {
    throw new EventHeaderDecodeError(
      `${
        describeValue(name)
      } is not an EventHeader tracepoint name (Provider_L<level hex>K<keyword hex>[options])`,
      -1,
    );
  }
  const options = mm[4];
  const g = /G([0-9a-z]*)/.exec(options);
  return {
    provider: mm[1],
    level: parseInt(mm[2], 16),
    keyword: BigInt(`0x${mm[3]}`),
    options,
    ...(g ? { group: g[1] } : {}),
  };
}

/** One field of a decoded EventHeader event: its metadata and its value. */
export interface DecodedField {
  /** The field name (attributes stripped). */
  name: string;
  /** The ";name=value" attributes written after the field name (";;" unescaped to ';'). */
  attributes: Record<string, string>;
  /** The base {@linkcode FieldEncoding} (array flags stripped: see `array`). */
  encoding: number;
  /** The {@linkcode FieldFormat} (0: the encoding's default); for a struct, its member count. */
  format: number;
  /** The field tag (0: none). */
  tag: number;
  /** Constant array length, "variable", or undefined. */
  array?: number | "variable";
  /** number | bigint | string | boolean | Uint8Array | DecodedField[] (struct) | arrays of these. */
  value: unknown;
}

/** One decoded EventHeader event: the header, the extensions, and the fields with their values. */
export interface DecodedEvent {
  /** The header's {@linkcode HeaderFlags} (pointer size, byte order, extensions present). */
  flags: number;
  /** The version of the event id's definition. */
  version: number;
  /** The stable event id (0: none). */
  id: number;
  /** The provider-defined event tag (0: none). */
  tag: number;
  /** The {@linkcode Opcode}. */
  opcode: number;
  /** The {@linkcode Level}. */
  level: number;
  /** The ActivityId extension's activity id (16 bytes), when present. */
  activityId?: Uint8Array;
  /** The related (parent) activity id, when the ActivityId extension has 32 bytes. */
  relatedId?: Uint8Array;
  /** The event name from the Metadata extension (attributes stripped). */
  name: string;
  /** The event's ";name=value" attributes. */
  attributes: Record<string, string>;
  /** The fields in payload order. */
  fields: DecodedField[];
  /** Bytes after the last field (perf pads raw records to 8 bytes). */
  trailing: number;
}

/** A field's metadata as the event's Metadata extension gives it: a DecodedField before its value. */
interface MetaField extends Omit<DecodedField, "value"> {
  children: MetaField[];
}

function splitAttributes(s: string): { name: string; attributes: Record<string, string> } {
  // ';' separates attributes; ";;" inside a value is a literal ';'.
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === ";") {
      if (s[i + 1] === ";") {
        cur += ";";
        i++;
        continue;
      }
      parts.push(cur);
      cur = "";
    } else cur += s[i];
  }
  parts.push(cur);
  const attributes: Record<string, string> = {};
  for (const p of parts.slice(1)) {
    const eq = p.indexOf("=");
    if (eq < 0) attributes[p] = "";
    else attributes[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return { name: parts[0], attributes };
}

const ENCODING_NAMES = Object.fromEntries(
  Object.entries(E).filter(([k]) => !/Mask|Flag/.test(k)).map(([k, v]) => [v, k]),
) as Record<number, string>;

class Reader {
  pos = 0;
  readonly dv: DataView;
  constructor(readonly b: Uint8Array, readonly end: number, readonly what: string) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new EventHeaderDecodeError(
        `${this.what} is short: ${what} needs ${n} bytes, ${this.end - this.pos} are left`,
        this.pos,
      );
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.pos++];
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  zstring(what: string): string {
    const z = this.b.subarray(0, this.end).indexOf(0, this.pos);
    if (z < 0) {
      throw new EventHeaderDecodeError(`${this.what}: ${what} has no terminating NUL`, this.pos);
    }
    const s = td.decode(this.b.subarray(this.pos, z));
    this.pos = z + 1;
    return s;
  }
}

function readMetaField(r: Reader, depth: number): MetaField {
  const at = r.pos;
  const { name, attributes } = splitAttributes(r.zstring("a field name"));
  const enc = r.u8(`the encoding of field ${name}`);
  let format = 0;
  let tag = 0;
  if (enc & E.ChainFlag) {
    const f = r.u8(`the format of field ${name}`);
    format = f & F.ValueMask;
    if (f & F.ChainFlag) tag = r.u16(`the tag of field ${name}`);
  }
  let array: number | "variable" | undefined;
  if ((enc & (E.CArrayFlag | E.VArrayFlag)) === (E.CArrayFlag | E.VArrayFlag)) {
    throw new EventHeaderDecodeError(`field ${name}: both array flags set (reserved)`, at);
  }
  if (enc & E.CArrayFlag) {
    array = r.u16(`the array length of field ${name}`);
    if (array === 0) {
      throw new EventHeaderDecodeError(`field ${name}: constant-length array of length 0`, at);
    }
  } else if (enc & E.VArrayFlag) array = "variable";
  const base = enc & E.ValueMask;
  if (base === E.Invalid || base > E.BinaryLength16Char8) {
    throw new EventHeaderDecodeError(`field ${name}: unknown encoding ${base}`, at);
  }
  const children: MetaField[] = [];
  if (base === E.Struct) {
    if (format === 0) throw new EventHeaderDecodeError(`struct ${name} with 0 fields`, at);
    if (depth >= MAX_DEPTH) {
      throw new EventHeaderDecodeError(`struct ${name} nests deeper than ${MAX_DEPTH}`, at);
    }
    for (let i = 0; i < format; i++) children.push(readMetaField(r, depth + 1));
  }
  return { name, attributes, encoding: base, format, tag, array, children };
}

const td = new TextDecoder();

function codePoint(f: MetaField, c: number, at: number): string {
  if (c > 0x10ffff) {
    throw new EventHeaderDecodeError(
      `field ${f.name}: 0x${c.toString(16)} is not a Unicode code point`,
      at,
    );
  }
  return String.fromCodePoint(c);
}

function readValue(r: Reader, f: MetaField): unknown {
  const dv = r.dv;
  const fmt = f.format;
  const what = `field ${f.name} (${ENCODING_NAMES[f.encoding]})`;
  const fixed = (n: number): number => {
    r.need(n, what);
    const p = r.pos;
    r.pos += n;
    return p;
  };
  switch (f.encoding) {
    case E.Struct: {
      return f.children.map((c) => decodeField(r, c));
    }
    case E.Value8: {
      if (fmt === F.HexBytes) return r.bytes(1, what);
      const v = r.u8(what);
      if (fmt === F.SignedInt) return (v << 24) >> 24;
      if (fmt === F.Boolean) return v !== 0;
      if (fmt === F.String8) return String.fromCharCode(v);
      return v;
    }
    case E.Value16: {
      if (fmt === F.HexBytes) return r.bytes(2, what);
      const p = fixed(2);
      if (fmt === F.Port) return dv.getUint16(p, false);
      if (fmt === F.SignedInt) return dv.getInt16(p, true);
      if (fmt === F.Boolean) return dv.getUint16(p, true) !== 0;
      if (fmt === F.StringUtf) return String.fromCharCode(dv.getUint16(p, true));
      return dv.getUint16(p, true);
    }
    case E.Value32: {
      if (fmt === F.HexBytes) return r.bytes(4, what);
      const p = fixed(4);
      if (fmt === F.SignedInt || fmt === F.Errno || fmt === F.Time || fmt === F.Pid) {
        return dv.getInt32(p, true);
      }
      if (fmt === F.Float) return dv.getFloat32(p, true);
      if (fmt === F.Boolean) return dv.getUint32(p, true) !== 0;
      if (fmt === F.IPAddress || fmt === F.IPAddressObsolete) {
        return Array.from(r.b.subarray(p, p + 4)).join(".");
      }
      if (fmt === F.StringUtf) return codePoint(f, dv.getUint32(p, true), p);
      return dv.getUint32(p, true);
    }
    case E.Value64: {
      if (fmt === F.HexBytes) return r.bytes(8, what);
      const p = fixed(8);
      if (fmt === F.SignedInt || fmt === F.Time) return dv.getBigInt64(p, true);
      if (fmt === F.Float) return dv.getFloat64(p, true);
      return dv.getBigUint64(p, true);
    }
    case E.Value128: {
      const b = r.bytes(16, what);
      if (fmt === F.Uuid) {
        const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
          h.slice(20)
        }`;
      }
      return b;
    }
    case E.ZStringChar8: {
      const z = r.b.subarray(0, r.end).indexOf(0, r.pos);
      if (z < 0) {
        throw new EventHeaderDecodeError(`${what}: the string has no terminating NUL`, r.pos);
      }
      const s = r.b.subarray(r.pos, z);
      r.pos = z + 1;
      return fmt === F.HexBytes ? s.slice() : fmt === F.String8 ? decodeLatin1(s) : td.decode(s);
    }
    case E.ZStringChar16: {
      let s = "";
      for (;;) {
        const c = r.u16(`${what}: the string or its terminating NUL`);
        if (c === 0) break;
        s += String.fromCharCode(c);
      }
      return s;
    }
    case E.ZStringChar32: {
      let s = "";
      for (;;) {
        r.need(4, `${what}: the string or its terminating NUL`);
        const c = dv.getUint32(r.pos, true);
        if (c === 0) {
          r.pos += 4;
          break;
        }
        s += codePoint(f, c, r.pos);
        r.pos += 4;
      }
      return s;
    }
    case E.StringLength16Char8:
    case E.BinaryLength16Char8: {
      const n = r.u16(`${what}: the length`);
      const b = r.bytes(n, what);
      if (fmt === F.String8) return decodeLatin1(b);
      const text = fmt === F.StringUtf || fmt === F.StringUtfBom || fmt === F.StringXml ||
        fmt === F.StringJson || (fmt === 0 && f.encoding === E.StringLength16Char8);
      return text ? td.decode(b) : b;
    }
    case E.StringLength16Char16: {
      const n = r.u16(`${what}: the length`);
      r.need(2 * n, what);
      let s = "";
      for (let i = 0; i < n; i++) s += String.fromCharCode(dv.getUint16(r.pos + 2 * i, true));
      r.pos += 2 * n;
      return s;
    }
    case E.StringLength16Char32: {
      const n = r.u16(`${what}: the length`);
      r.need(4 * n, what);
      let s = "";
      for (let i = 0; i < n; i++) s += codePoint(f, dv.getUint32(r.pos + 4 * i, true), r.pos);
      r.pos += 4 * n;
      return s;
    }
  }
  throw new EventHeaderDecodeError(`field ${f.name}: unknown encoding ${f.encoding}`, r.pos);
}

function decodeField(r: Reader, f: MetaField): DecodedField {
  let value: unknown;
  if (f.array === undefined) value = readValue(r, f);
  else {
    const n = f.array === "variable" ? r.u16(`the element count of field ${f.name}`) : f.array;
    const arr: unknown[] = [];
    for (let i = 0; i < n; i++) arr.push(readValue(r, f));
    value = arr;
  }
  return {
    name: f.name,
    attributes: f.attributes,
    encoding: f.encoding,
    format: f.format,
    tag: f.tag,
    ...(f.array !== undefined ? { array: f.array } : {}),
    value,
  };
}

/**
 * Decodes one EventHeader event (what follows struct trace_entry in a raw record).
 * Strict: a truncated or malformed event throws EventHeaderDecodeError (an
 * UmmuArgumentError with the byte offset) rather than yielding partial values.
 *
 * @example
 * ```ts
 * import {
 *   decodeEventHeader,
 *   EventHeaderProvider,
 *   fieldValues,
 *   PerfTracepoint,
 *   tracepointId,
 * } from "@ummu/ummu/user_events";
 *
 * const provider = new EventHeaderProvider("myapp");
 * const ev = provider.defineEvent({ name: "Tick", fields: [{ name: "n", type: "u32" }] });
 * const perf = PerfTracepoint.open(tracepointId("user_events", ev.tracepoint.name));
 * ev.emit(1);
 * for (const s of perf.read()) {
 *   const d = decodeEventHeader(s.raw.subarray(8)); // after struct trace_entry
 *   console.log(d.name, d.level, fieldValues(d.fields)); // Tick 5 { n: 1 }
 * }
 * perf.close();
 * provider.close();
 * ```
 */
export function decodeEventHeader(data: Uint8Array): DecodedEvent {
  if (!(data instanceof Uint8Array)) {
    throw new EventHeaderDecodeError(
      `decodeEventHeader takes the event's bytes as a Uint8Array, got ${describeValue(data)}`,
      -1,
    );
  }
  const r = new Reader(data, data.length, `the ${data.length}-byte event`);
  r.need(8, "the header");
  const flags = r.u8("the header");
  if (!(flags & HeaderFlags.LittleEndian)) {
    throw new EventHeaderDecodeError(
      `flags 0x${flags.toString(16)}: big-endian EventHeader events are not supported`,
      0,
    );
  }
  const version = r.u8("the header");
  const id = r.u16("the header");
  const tag = r.u16("the header");
  const opcode = r.u8("the header");
  const level = r.u8("the header");
  let activityId: Uint8Array | undefined;
  let relatedId: Uint8Array | undefined;
  let meta: MetaField[] | null = null;
  let name = "";
  let attributes: Record<string, string> = {};
  if (flags & HeaderFlags.Extension) {
    for (;;) {
      const at = r.pos;
      const size = r.u16("an extension header (4 bytes)");
      const kind = r.u16("an extension header (4 bytes)");
      r.need(size, `an extension of kind ${kind & ExtensionKind.ValueMask}`);
      const extEnd = r.pos + size;
      switch (kind & ExtensionKind.ValueMask) {
        case ExtensionKind.ActivityId:
          if (size !== 16 && size !== 32) {
            throw new EventHeaderDecodeError(
              `ActivityId extension of ${size} bytes (16 or 32)`,
              at,
            );
          }
          activityId = data.slice(r.pos, r.pos + 16);
          if (size === 32) relatedId = data.slice(r.pos + 16, r.pos + 32);
          break;
        case ExtensionKind.Metadata: {
          const mr = new Reader(data, extEnd, `the ${size}-byte Metadata extension`);
          mr.pos = r.pos;
          ({ name, attributes } = splitAttributes(mr.zstring("the event name")));
          meta = [];
          while (mr.pos < extEnd) meta.push(readMetaField(mr, 0));
          break;
        }
      }
      r.pos = extEnd;
      if (!(kind & ExtensionKind.ChainFlag)) break;
    }
  }
  if (meta === null) {
    throw new EventHeaderDecodeError(
      "no Metadata extension: the event cannot be decoded without a manifest",
      r.pos,
    );
  }
  const fields = meta.map((f) => decodeField(r, f));
  return {
    flags,
    version,
    id,
    tag,
    opcode,
    level,
    ...(activityId ? { activityId } : {}),
    ...(relatedId ? { relatedId } : {}),
    name,
    attributes,
    fields,
    trailing: data.length - r.pos,
  };
}

/**
 * Field values by name (structs become objects), for assertions: drops the
 * per-field metadata that DecodedField carries.
 *
 * @example
 * ```ts
 * import { decodeEventHeader, EventHeaderEncoder, fieldValues } from "@ummu/ummu/user_events";
 *
 * const enc = new EventHeaderEncoder({
 *   name: "Move",
 *   fields: [{
 *     name: "to",
 *     type: "struct",
 *     fields: [{ name: "x", type: "i32" }, { name: "y", type: "i32" }],
 *   }],
 * });
 * fieldValues(decodeEventHeader(enc.bytes([{ x: 3, y: -4 }])).fields); // { to: { x: 3, y: -4 } }
 * ```
 */
export function fieldValues(fields: DecodedField[]): Record<string, unknown> {
  if (!Array.isArray(fields)) {
    throw new UmmuArgumentError(
      `fieldValues takes the fields of a decoded event (decodeEventHeader(...).fields), got ${
        describeValue(fields)
      }`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (f.encoding === E.Struct) {
      out[f.name] = Array.isArray(f.value) && f.array !== undefined
        ? (f.value as DecodedField[][]).map(fieldValues)
        : fieldValues(f.value as DecodedField[]);
    } else out[f.name] = f.value;
  }
  return out;
}
