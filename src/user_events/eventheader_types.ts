/**
 * EventHeader's vocabulary (Microsoft LinuxTracepoints, eventheader.h): the
 * header flags, extension kinds, field encodings and formats, opcodes and
 * levels as the spec numbers them; the short field type names; the shapes of
 * an event definition; and the types of the values each field takes, from
 * which defineEvent() types emit().
 */
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

/**
 * One EventHeader field: a short `type`, or an explicit `encoding` (+ `format`).
 * Every property is checked when the event is defined: an unknown property, a
 * type, encoding or format the spec does not define (or does not allow
 * together), a tag outside 0..65535, an array length outside 1..65535, or
 * `fields` on anything but a struct is an UmmuArgumentError.
 */
export interface EventField {
  /** The field name as decoders show it; no ';' (attributes go in `attributes`). */
  name: string;
  /** A short type name: sets the encoding and format together. */
  type?: FieldTypeName;
  /**
   * A FieldEncoding value (1..13), when no `type` is given. Arrays are asked
   * for with `array`, not with the flag bits, which are refused here.
   */
  encoding?: number;
  /**
   * A FieldFormat value: replaces the format of `type`, or completes `encoding`
   * (default 0: the encoding's own). It must be one the spec lists as usable
   * with the encoding (e.g. Float with Value32 or Value64, Uuid with Value128).
   */
  format?: number;
  /** Provider-defined 16-bit field tag (0: none). */
  tag?: number;
  /**
   * A number: constant-length array of that many elements (1..65535);
   * "variable": up to 65535 elements, their count in the payload. A
   * constant-length array of structs is written as a variable-length one (its
   * count in the payload), the layout Microsoft's encoders produce: their
   * decoders cannot read a constant-length array of two or more structs.
   * Their formatter (perf-decode) also stops at 4096 items per event (each
   * element and struct member is one), so keep arrays below that.
   */
  array?: number | "variable";
  /** Struct members (type "struct"): 1..127 fields; structs nest at most 8 deep. */
  fields?: readonly EventField[];
  /** Field attributes, written as ";name=value" after the field name. */
  attributes?: Record<string, string>;
}

/**
 * One EventHeader event: its name, severity, category and fields. The
 * metadata built from it travels in every event, so a decoder needs no
 * manifest to read the fields.
 */
export interface EventDefinition {
  /** The event name decoders show (the tracepoint is named by provider, level and keyword); no ';' or NUL. */
  name: string;
  /** 1 critical .. 5 verbose (default 5); 1..255. */
  level?: number;
  /** Category bits, 64 of them (default 1): a bigint, or a number up to 2^53. */
  keyword?: bigint | number;
  /** An {@linkcode Opcode} (default Info), 0..255; ActivityStart and ActivityStop bound an activity. */
  opcode?: number;
  /** Stable event id, 0..65535 (0: none). */
  id?: number;
  /** The version of `id`'s definition, 0..255: bump it when the fields of that id change (default 0). */
  version?: number;
  /** Provider-defined 16-bit event tag, 0..65535. */
  tag?: number;
  /** The payload fields, in the order emit() takes their values (at most 255 at the top level). */
  fields?: readonly EventField[];
  /** Event attributes, written as ";name=value" after the event name. */
  attributes?: Record<string, string>;
  /** Reserve an ActivityId extension: "id" (16 bytes) or "related" (activity id + parent id, 32 bytes). */
  activity?: "id" | "related";
}

// ---- the values' types, for emit()'s signature ------------------------------------------------

/**
 * The value each short type takes in emit(). Integers up to 32 bits take a
 * number in range, 64-bit ones a number or a bigint; char types take a
 * one-character string their charset holds; Latin-1 (`string8`, `char8`),
 * UTF-16 and UTF-32 types are encoded as such, the others as UTF-8.
 */
export interface FieldTypeValues {
  /** 0..255. */
  u8: number;
  /** -128..127. */
  i8: number;
  /** 0..65535. */
  u16: number;
  /** -32768..32767. */
  i16: number;
  /** 0..2^32-1. */
  u32: number;
  /** -2^31..2^31-1. */
  i32: number;
  /** 0..2^64-1. */
  u64: number | bigint;
  /** -2^63..2^63-1. */
  i64: number | bigint;
  /** 0..255, shown in hex. */
  hex8: number;
  /** 0..65535, shown in hex. */
  hex16: number;
  /** 0..2^32-1, shown in hex. */
  hex32: number;
  /** 0..2^64-1, shown in hex. */
  hex64: number | bigint;
  /** A boolean, one byte. */
  bool8: boolean;
  /** A boolean, four bytes. */
  bool32: boolean;
  /** A number, stored as a 32-bit float. */
  f32: number;
  /** A number. */
  f64: number;
  /** An errno value, -2^31..2^31-1. */
  errno: number;
  /** A process id, -2^31..2^31-1. */
  pid: number;
  /** Seconds since 1970, -2^31..2^31-1. */
  time32: number;
  /** Seconds since 1970, 64-bit signed. */
  time64: number | bigint;
  /** One Latin-1 character (U+0000..U+00FF). */
  char8: string;
  /** One UTF-16 code unit (U+0000..U+FFFF, not a surrogate). */
  char16: string;
  /** One code point. */
  char32: string;
  /** 0..65535, written in network byte order. */
  port: number;
  /** "a.b.c.d", 4 bytes in network order, or an integer 0..2^32-1 (a.b.c.d = a*2^24+...). */
  ipv4: string | number | Uint8Array;
  /** An IPv6 address ("fe80::1", "::ffff:1.2.3.4"), or its 16 bytes. */
  ipv6: string | Uint8Array;
  /** "00112233-4455-6677-8899-aabbccddeeff" (braces allowed), or 16 bytes in RFC 4122 order. */
  uuid: string | Uint8Array;
  /** 16 bytes, shown in hex. */
  hex128: Uint8Array;
  /** UTF-8, NUL-terminated: no NUL inside. */
  zstring: string;
  /** UTF-16, NUL-terminated: no NUL inside. */
  zstring16: string;
  /** UTF-32, NUL-terminated: no NUL inside. */
  zstring32: string;
  /** UTF-8 (or its bytes), at most 65535 bytes. */
  string: string | Uint8Array;
  /** Latin-1 (or its bytes), at most 65535 characters. */
  string8: string | Uint8Array;
  /** UTF-16, at most 65535 code units. */
  string16: string;
  /** UTF-32, at most 65535 code points. */
  string32: string;
  /** JSON text in UTF-8 (or its bytes). */
  json: string | Uint8Array;
  /** XML text in UTF-8 (or its bytes). */
  xml: string | Uint8Array;
  /** Bytes, at most 65535. */
  binary: Uint8Array;
  /** The members' values, in order (an array) or by name (an object). */
  struct: unknown;
}

/**
 * The value of one element of a field definition: FieldTypeValues[type], or
 * the members of a struct; `unknown` when `format` or `encoding` is given
 * (they may change what the field takes).
 */
export type EventElementValue<F> = F extends { type: "struct"; fields: readonly EventField[] }
  ? EventStructValue<F["fields"]>
  : F extends { format: number } ? unknown
  : F extends { type: FieldTypeName } ? FieldTypeValues[F["type"]]
  : unknown;

/** The value of a field definition: its element's, or an array of them. */
export type EventFieldValue<F> = F extends { array: number | "variable" }
  ? ArrayLike<EventElementValue<F>>
  : EventElementValue<F>;

/** A struct's value: its members' values in order, or an object by member name. */
export type EventStructValue<M extends readonly EventField[]> = number extends M["length"] ? unknown
  :
    | { readonly [I in keyof M]: EventFieldValue<M[I]> }
    | { [K in M[number] as K["name"]]: EventFieldValue<K> };

/** The values of a list of field definitions, in order (`unknown[]` if it is not a literal). */
export type EventFieldsValues<F> = F extends readonly EventField[]
  ? (number extends F["length"] ? unknown[] : { -readonly [I in keyof F]: EventFieldValue<F[I]> })
  : unknown[];

/**
 * The values emit() takes for the fields of a literal definition, in order:
 * `[number, string]` for `fields: [{ name: "n", type: "u32" }, { name: "s",
 * type: "string" }]`. For a definition known only at run time, `unknown[]`
 * (the values are still checked when emitted).
 */
export type EmitValues<D> = "fields" extends keyof D ? EventFieldsValues<D["fields" & keyof D]>
  : [];
