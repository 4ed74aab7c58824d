/**
 * Field declarations of a user_events tracepoint, exactly as the kernel parses
 * them (kernel/trace/trace_events_user.c), laid out as the kernel lays them
 * out, and the types of their values (for emit()'s signature).
 *
 * A declaration is `type name`, or `struct type name size`; declarations are
 * joined with "; " (the kernel also accepts ";" alone and inserts the space
 * itself before it compares formats). Fields are packed in order with no
 * padding. Accepted types:
 *
 * | type | value | bytes |
 * |---|---|---|
 * | `u8 u16 u32 s8 s16 s32`, `char`, `unsigned char`, `short`, `unsigned short`, `int`, `unsigned int` | integer number in the type's range | 1..4 |
 * | `u64 s64` | integer number or bigint in the type's range | 8 |
 * | `char[N]` (N ≤ 1024) | string, at most N bytes of UTF-8, NUL-padded | N |
 * | `unsigned char[N]` | Uint8Array of at most N bytes, zero-padded | N |
 * | `__data_loc char[]`, `__rel_loc char[]` | string without NUL (one is appended) | 4 + data |
 * | `__data_loc u8[]`, `__rel_loc u8[]` (any element type without "char") | Uint8Array | 4 + data |
 * | `struct T name SIZE` | Uint8Array of exactly SIZE bytes | SIZE |
 *
 * The payload encoder and decoder are in payload.ts.
 */
import { MAX_FIELD_ARRAY_SIZE } from "../../ffi/user_events.ts";
import { UmmuArgumentError } from "../errors.ts";
import { describeValue } from "./values.ts";

/** One field: its kernel type string and its name (and the size of a struct). */
export interface FieldSpec {
  /** The field name: a C identifier, unique within the event. */
  name: string;
  /** The kernel type: "u32", "char[16]", "__data_loc char[]", "struct my_point"... */
  type: string;
  /** Only for `struct ...` types: the struct's size in bytes. */
  size?: number;
}

/**
 * How a field is stored, which decides the value emit() takes and
 * decodePayload() returns: `int` a number (or bigint for 64-bit), `fixed_string`
 * a string in `char[N]`, `fixed_bytes` a Uint8Array in `unsigned char[N]`,
 * `string` / `bytes` a string / Uint8Array after the fixed part (__data_loc or
 * __rel_loc), `struct` a Uint8Array of exactly the struct's size.
 */
export type FieldKind = "int" | "fixed_string" | "fixed_bytes" | "string" | "bytes" | "struct";

/** A parsed field with its place in the payload (offsets exclude the 4-byte write index). */
export interface FieldLayout {
  /** The field name. */
  name: string;
  /** The kernel type as parsed ("u32", "__data_loc char[]", "struct my_point"). */
  type: string;
  /** How the value is stored, derived from `type`. */
  kind: FieldKind;
  /** Offset in the payload (after the write index). The kernel's offset is 8 more (struct trace_entry). */
  offset: number;
  /** Bytes in the fixed part: the value, or 4 for a __data_loc/__rel_loc word. */
  size: number;
  /** For `int` fields: read back as signed (every type not spelled "u...", so char is signed). */
  signed: boolean;
  /** `__rel_loc` (offset relative to the end of the loc word) rather than `__data_loc` (relative to the record). */
  rel: boolean;
  /** Dynamic string types: the kernel checks that the data ends with a NUL. */
  nul: boolean;
  /** The declaration as registered ("u32 a", "struct s x 16"). */
  decl: string;
}

/**
 * Thrown by parseFields for a declaration the kernel would reject (EINVAL),
 * or a field spec that is not one: an UmmuArgumentError that also carries
 * the declaration.
 */
export class FieldError extends UmmuArgumentError {
  /** "FieldError": a stack trace then says the field string was wrong, not a value. */
  override name = "FieldError";
  /** The message reads `field "<field>": <reason>`. */
  constructor(
    /** The rejected declaration, as written ("u32 2bad"). */
    readonly field: string,
    reason: string,
  ) {
    super(`field "${field}": ${reason}`);
  }
}

const INT_SIZES: Record<string, number> = {
  s64: 8,
  u64: 8,
  s32: 4,
  u32: 4,
  int: 4,
  "unsigned int": 4,
  s16: 2,
  u16: 2,
  short: 2,
  "unsigned short": 2,
  s8: 1,
  u8: 1,
  char: 1,
  "unsigned char": 1,
};

function arraySize(type: string, decl: string): number {
  const mm = /^(?:unsigned )?char\[([^\]]*)\]$/.exec(type);
  if (!mm) throw new FieldError(decl, `"${type}" is not char[N] or unsigned char[N]`);
  const s = mm[1];
  // kstrtouint(val, 0): decimal, 0x hex or 0 octal; at most 7 characters.
  if (s.length > 6 || !/^(0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.test(s)) {
    throw new FieldError(decl, `array size "${s}" is not a number`);
  }
  const n = s.startsWith("0x")
    ? parseInt(s, 16)
    : s.startsWith("0") && s.length > 1
    ? parseInt(s, 8)
    : Number(s);
  if (n > MAX_FIELD_ARRAY_SIZE) {
    throw new FieldError(decl, `array size ${n} exceeds the kernel's ${MAX_FIELD_ARRAY_SIZE}`);
  }
  if (n === 0) throw new FieldError(decl, "array size 0");
  return n;
}

const LOC_TYPE = /^__(data|rel)_loc (unsigned )?[A-Za-z_][A-Za-z0-9_]*\[\]$/;
const STRUCT_TYPE = /^struct [A-Za-z_][A-Za-z0-9_]*$/;

/** The kernel's user_field_size(): bytes of a type in the fixed part, or throws. */
function fieldSize(type: string, decl: string): number {
  if (type in INT_SIZES) return INT_SIZES[type];
  if (type.startsWith("char[") || type.startsWith("unsigned char[")) return arraySize(type, decl);
  if (type.startsWith("__data_loc ") || type.startsWith("__rel_loc ")) {
    if (!LOC_TYPE.test(type)) {
      throw new FieldError(decl, `"${type}" is not __data_loc T[] or __rel_loc T[]`);
    }
    return 4;
  }
  throw new FieldError(
    decl,
    `unknown type "${type}" (use u8..u64, s8..s64, char[N], unsigned char[N], __data_loc/__rel_loc T[], or struct T name SIZE)`,
  );
}

const TWO_WORD = [
  "unsigned ",
  "struct ",
  "__data_loc unsigned ",
  "__data_loc ",
  "__rel_loc unsigned ",
  "__rel_loc ",
];

/** Parses one declaration the way user_event_parse_field() does. */
function parseDecl(raw: string): { type: string; name: string; size?: number } {
  const decl = raw.replace(/^\s+/, "");
  let type: string | undefined;
  let rest = decl;
  let isStruct = false;
  let depth = 0;
  for (const p of TWO_WORD) {
    if (decl.startsWith(p)) {
      const sp = decl.indexOf(" ", p.length);
      if (sp < 0) throw new FieldError(decl, "no field name");
      type = decl.slice(0, sp);
      rest = decl.slice(sp + 1);
      isStruct = p === "struct ";
      depth = 1;
      break;
    }
  }
  let name: string | undefined;
  let size: number | undefined;
  for (const part of rest.split(" ")) {
    switch (depth++) {
      case 0:
        type = part;
        break;
      case 1:
        name = part;
        break;
      case 2:
        if (!isStruct) {
          throw new FieldError(
            decl,
            `unexpected "${part}" after the name (only struct fields take a size)`,
          );
        }
        if (!/^\d+$/.test(part)) {
          throw new FieldError(decl, `struct size "${part}" is not a decimal number`);
        }
        size = Number(part);
        break;
      default:
        throw new FieldError(decl, `unexpected "${part}" (one space between type, name and size)`);
    }
  }
  if (depth < 2 || !name) {
    throw new FieldError(decl, "no field name (a declaration is `type name`)");
  }
  if (type === undefined || type === "") throw new FieldError(decl, "no type");
  if (isStruct && !STRUCT_TYPE.test(type)) {
    throw new FieldError(decl, `"${type}" is not "struct <identifier>"`);
  }
  if (isStruct && size === undefined) {
    throw new FieldError(decl, "a struct field needs its size: `struct T name SIZE`");
  }
  if (size === 0) throw new FieldError(decl, "struct size 0");
  if (size !== undefined && size > 0xffff) {
    throw new FieldError(decl, `struct size ${size} exceeds what a record can hold (65535)`);
  }
  return { type, name, size };
}

/** Splits a field string ("u32 a; char[8] b") into declarations, as the kernel does (on ';'). */
export function splitFields(args: string): string[] {
  return args.split(";").filter((f) => f.replace(/^\s+/, "") !== "");
}

const SPEC_KEYS = new Set(["name", "type", "size"]);

/** Checks one FieldSpec object and turns it into its declaration. */
function specDecl(f: unknown, i: number): string {
  const at = `field spec #${i}`;
  if (f === null || typeof f !== "object" || Array.isArray(f)) {
    throw new UmmuArgumentError(
      `${at} must be an object { name, type, size? }, got ${describeValue(f)}`,
    );
  }
  const o = f as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!SPEC_KEYS.has(k)) {
      throw new UmmuArgumentError(
        `${at}: unknown property "${k}" (a FieldSpec has name, type, size)`,
      );
    }
  }
  if (typeof o.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.name)) {
    throw new UmmuArgumentError(
      `${at}: name must be a C identifier (letters, digits, '_'), got ${describeValue(o.name)}`,
    );
  }
  if (typeof o.type !== "string" || o.type === "" || /[;\s]$|^\s|;/.test(o.type)) {
    throw new UmmuArgumentError(
      `${at} (${o.name}): type must be a kernel type such as "u32" or "__data_loc char[]", got ${
        describeValue(o.type)
      }`,
    );
  }
  const isStruct = o.type.startsWith("struct ");
  if (isStruct) {
    if (
      !(typeof o.size === "number" && Number.isInteger(o.size) && o.size >= 1 && o.size <= 0xffff)
    ) {
      throw new UmmuArgumentError(
        `${at} (${o.name}): a struct field needs size, an integer 1..65535 (bytes), got ${
          describeValue(o.size)
        }`,
      );
    }
    return `${o.type} ${o.name} ${o.size}`;
  }
  if (o.size !== undefined) {
    throw new UmmuArgumentError(
      `${at} (${o.name}): size is only for struct types (the size of "${o.type}" is the kernel's)`,
    );
  }
  return `${o.type} ${o.name}`;
}

/**
 * Parses and lays out fields. Accepts a field string ("u32 a; __data_loc char[] msg")
 * or FieldSpec objects. Throws FieldError (an UmmuArgumentError) naming the
 * declaration the kernel would reject, so a bad field string fails here with a
 * reason rather than as a bare EINVAL.
 *
 * @example
 * ```ts
 * import { parseFields } from "@ummu/ummu/user_events";
 *
 * const layout = parseFields("u32 status; __data_loc char[] path; char[8] method");
 * for (const f of layout) console.log(f.name, f.kind, f.offset, f.size);
 * // status int 0 4
 * // path string 4 4 (a loc word; the text goes after the fixed part)
 * // method fixed_string 8 8
 * parseFields("u32 a; u8[4] b"); // throws FieldError: field "u8[4] b": unknown type "u8[4]" ...
 * ```
 */
export function parseFields(fields: string | readonly FieldSpec[]): FieldLayout[] {
  let decls: string[];
  if (typeof fields === "string") decls = splitFields(fields);
  else if (Array.isArray(fields)) decls = fields.map(specDecl);
  else {
    throw new UmmuArgumentError(
      `fields must be a field string ("u32 a; __data_loc char[] b") or an array of FieldSpec, got ${
        describeValue(fields)
      }`,
    );
  }
  const out: FieldLayout[] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const raw of decls) {
    const { type, name, size: structSize } = parseDecl(raw);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new FieldError(raw.trim(), `field name "${name}" is not an identifier`);
    }
    if (names.has(name)) throw new FieldError(raw.trim(), `duplicate field name "${name}"`);
    names.add(name);
    const isStruct = type.startsWith("struct ");
    const size = isStruct ? structSize! : fieldSize(type, raw.trim());
    let kind: FieldKind;
    let rel = false;
    let nul = false;
    if (isStruct) kind = "struct";
    else if (type.startsWith("__data_loc ") || type.startsWith("__rel_loc ")) {
      rel = type.startsWith("__rel_loc ");
      nul = type.includes("char");
      kind = nul ? "string" : "bytes";
    } else if (type.startsWith("char[")) kind = "fixed_string";
    else if (type.startsWith("unsigned char[")) kind = "fixed_bytes";
    else kind = "int";
    const decl = isStruct ? `${type} ${name} ${size}` : `${type} ${name}`;
    out.push({ name, type, kind, offset, size, signed: type[0] !== "u", rel, nul, decl });
    offset += size;
  }
  return out;
}

/**
 * The canonical field string: declarations joined with "; " (what the kernel shows in
 * dynamic_events). The kernel compares formats in this form, so registering the same
 * event again must use an equivalent string.
 *
 * @example
 * ```ts
 * import { formatFields, parseFields } from "@ummu/ummu/user_events";
 *
 * formatFields(parseFields("u32 a;struct point p 8")); // "u32 a; struct point p 8"
 * const spec = [{ name: "msg", type: "__data_loc char[]" }];
 * formatFields(parseFields(spec)); // "__data_loc char[] msg"
 * ```
 */
export function formatFields(layout: readonly FieldLayout[]): string {
  if (!Array.isArray(layout)) {
    throw new UmmuArgumentError(
      `formatFields takes the layout parseFields returns, got ${describeValue(layout)}`,
    );
  }
  return layout.map((f) => f.decl).join("; ");
}

/** The registration command: `name` or `name field; field`. */
export function commandString(name: string, layout: readonly FieldLayout[]): string {
  return layout.length === 0 ? name : `${name} ${formatFields(layout)}`;
}

/** Size of the fixed part of the payload. */
export function fixedSize(layout: readonly FieldLayout[]): number {
  let n = 0;
  for (const f of layout) n += f.size;
  return n;
}

// ---- the values' types, for emit()'s signature ------------------------------------------------

/**
 * The value one declaration takes in emit(): `FieldDeclarationValue<"u32 a">`
 * is `number`, `"__data_loc char[] s"` a string, `"u64 n"` a number or bigint,
 * `"unsigned char[4] b"`, `"__data_loc u8[] d"` and `"struct s p 8"` a
 * Uint8Array.
 */
export type FieldDeclarationValue<D extends string> = D extends
  `${string}__data_loc ${string}char${string}` ? string
  : D extends `${string}__rel_loc ${string}char${string}` ? string
  : D extends `${string}__data_loc ${string}` | `${string}__rel_loc ${string}` ? Uint8Array
  : D extends `${string}struct ${string}` ? Uint8Array
  : D extends `${string}unsigned char[${string}` ? Uint8Array
  : D extends `${string}char[${string}` ? string
  : D extends `${string}u64 ${string}` | `${string}s64 ${string}` ? number | bigint
  : number;

/** The values of a literal field string, in order: `"u32 a; __data_loc char[] b"` gives `[number, string]`. */
export type FieldStringValues<S extends string, Acc extends unknown[] = []> = S extends
  ` ${infer R}` ? FieldStringValues<R, Acc>
  : S extends `;${infer R}` ? FieldStringValues<R, Acc>
  : S extends "" ? Acc
  : S extends `${infer Head};${infer Rest}`
    ? FieldStringValues<Rest, [...Acc, FieldDeclarationValue<Head>]>
  : [...Acc, FieldDeclarationValue<S>];

/** The value a FieldSpec takes: `FieldSpecValue<{ name: "a"; type: "u32" }>` is `number`. */
export type FieldSpecValue<F> = F extends { type: string } ? FieldDeclarationValue<`${F["type"]} x`>
  : unknown;

/**
 * The values emit() takes for fields given as a literal field string or a
 * literal FieldSpec array, in order: `FieldValues<"u32 a; __data_loc char[] b">`
 * is `[number, string]`. For fields known only at run time, `unknown[]` (the
 * values are still checked when emitted).
 */
export type FieldValues<F> = F extends string
  ? (string extends F ? unknown[] : FieldStringValues<F>)
  : F extends readonly FieldSpec[] ? (number extends F["length"] ? unknown[]
      : { -readonly [I in keyof F]: FieldSpecValue<F[I]> })
  : unknown[];
