/**
 * EventHeader field definitions: each EventField checked (its name and
 * attributes, type or encoding, a format the spec allows with the encoding,
 * tag, array, struct members and nesting) and compiled once into a writer
 * (scalars from eventheader_values.ts, arrays and structs here) and into its
 * block of the Metadata extension.
 */
import { UmmuArgumentError } from "../errors.ts";
import type { GrowableBuffer } from "./buffer.ts";
import {
  type EventField,
  FIELD_TYPES,
  FieldEncoding as E,
  FieldFormat as F,
} from "./eventheader_types.ts";
import { elementWriter, TEXT_FORMATS, type ValueWriter } from "./eventheader_values.ts";
import { describeValue, isIntIn, valueError } from "./values.ts";

export type { ValueWriter };

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
