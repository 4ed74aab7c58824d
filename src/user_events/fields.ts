/**
 * Field declarations of a user_events tracepoint, exactly as the kernel parses
 * them (kernel/trace/trace_events_user.c), and the TypeScript encoders that
 * write their values into an event payload.
 *
 * A declaration is `type name`, or `struct type name size`; declarations are
 * joined with "; " (the kernel also accepts ";" alone and inserts the space
 * itself before it compares formats). Fields are packed in order with no
 * padding. Accepted types:
 *
 * | type | value | bytes |
 * |---|---|---|
 * | `u8 u16 u32 u64 s8 s16 s32 s64`, `char`, `unsigned char`, `short`, `unsigned short`, `int`, `unsigned int` | number (bigint for 64-bit too) | 1..8 |
 * | `char[N]` (N ≤ 1024) | string, NUL-padded, cut at N bytes | N |
 * | `unsigned char[N]` | Uint8Array, zero-padded | N |
 * | `__data_loc char[]`, `__rel_loc char[]` | string (a NUL is appended) | 4 + data |
 * | `__data_loc u8[]`, `__rel_loc u8[]` (any element type without "char") | Uint8Array | 4 + data |
 * | `struct T name SIZE` | Uint8Array of SIZE bytes | SIZE |
 */
import { MAX_FIELD_ARRAY_SIZE, SIZEOF_TRACE_ENTRY } from "../../ffi/user_events.ts";
import { GrowableBuffer } from "./buffer.ts";

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

/** Thrown by parseFields for a declaration the kernel would reject (EINVAL). */
export class FieldError extends RangeError {
  /** "FieldError": a stack trace then says the field string was wrong, not a value out of range. */
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
  const mm = /\[([^\]]*)\]/.exec(type);
  if (!mm) throw new FieldError(decl, `"${type}" has no [size]`);
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

/** The kernel's user_field_size(): bytes of a type in the fixed part, or throws. */
function fieldSize(type: string, decl: string): number {
  if (type in INT_SIZES) return INT_SIZES[type];
  if (type.startsWith("char[") || type.startsWith("unsigned char[")) return arraySize(type, decl);
  if (type.startsWith("__data_loc ") || type.startsWith("__rel_loc ")) return 4;
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
  if (isStruct && size === undefined) {
    throw new FieldError(decl, "a struct field needs its size: `struct T name SIZE`");
  }
  if (size === 0) throw new FieldError(decl, "struct size 0");
  return { type, name, size };
}

/** Splits a field string ("u32 a; char[8] b") into declarations, as the kernel does (on ';'). */
export function splitFields(args: string): string[] {
  return args.split(";").filter((f) => f.replace(/^\s+/, "") !== "");
}

function toDecl(f: FieldSpec): string {
  return f.type.startsWith("struct ") ? `${f.type} ${f.name} ${f.size}` : `${f.type} ${f.name}`;
}

/**
 * Parses and lays out fields. Accepts a field string ("u32 a; __data_loc char[] msg")
 * or FieldSpec objects. Throws FieldError naming the declaration the kernel would reject,
 * so a bad field string fails here with a reason rather than as a bare EINVAL.
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
  const decls = typeof fields === "string" ? splitFields(fields) : fields.map(toDecl);
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

const encoder = new TextEncoder();

/**
 * Writes a string as UTF-8 at `pos`; returns the byte count. The caller has
 * made room for 3 bytes per UTF-16 unit. ASCII is copied by a loop (no
 * allocation); anything else goes through TextEncoder.encodeInto.
 */
export function writeUtf8(buf: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      return i + encoder.encodeInto(s.slice(i), buf.subarray(pos + i)).written;
    }
    buf[pos + i] = c;
  }
  return n;
}

/**
 * A reusable payload buffer for one tracepoint: fixed fields at fixed offsets,
 * dynamic data appended after them. `buf` keeps its address until it has to
 * grow (then `generation` changes and the owner re-reads the address).
 */
export class PayloadEncoder extends GrowableBuffer {
  readonly layout: readonly FieldLayout[];
  readonly fixed: number;
  readonly #writers: ((v: unknown, end: number) => number)[];

  constructor(layout: readonly FieldLayout[], initial = 4096) {
    super(Math.max(initial, fixedSize(layout) + 256));
    this.layout = layout;
    this.fixed = fixedSize(layout);
    this.#writers = layout.map((f) => this.#writer(f));
  }

  /** Grows the buffer so that `need` bytes fit (keeps the content), up to what a dynamic field's offset can address. */
  override ensure(need: number): void {
    if (need <= this.buf.length) return;
    if (need > 0xffff + 1) {
      throw new RangeError(
        `event payload of ${need} bytes exceeds the 64 KiB a __data_loc/__rel_loc offset can address`,
      );
    }
    super.ensure(need);
  }

  /** Encodes one event's values (in field order); returns the payload length. */
  encode(values: ArrayLike<unknown>): number {
    const w = this.#writers;
    if (values.length !== w.length) {
      throw new RangeError(
        `expected ${w.length} values (${
          this.layout.map((f) => f.name).join(", ")
        }), got ${values.length}`,
      );
    }
    let end = this.fixed;
    for (let i = 0; i < w.length; i++) end = w[i](values[i], end);
    return end;
  }

  #writer(f: FieldLayout): (v: unknown, end: number) => number {
    const off = f.offset;
    const name = f.name;
    switch (f.kind) {
      case "int":
        return intWriter(this, f);
      case "fixed_string":
        return (v, end) => {
          if (typeof v !== "string") throw new TypeError(`field ${name}: expected a string`);
          const b = this.buf;
          b.fill(0, off, off + f.size);
          if (v.length * 3 <= f.size) writeUtf8(b, off, v);
          else b.set(encoder.encode(v).subarray(0, f.size), off);
          return end;
        };
      case "fixed_bytes":
      case "struct":
        return (v, end) => {
          if (!(v instanceof Uint8Array)) {
            throw new TypeError(`field ${name}: expected a Uint8Array`);
          }
          if (f.kind === "struct" && v.length !== f.size) {
            throw new RangeError(`field ${name}: struct is ${f.size} bytes, got ${v.length}`);
          }
          const b = this.buf;
          if (v.length < f.size) b.fill(0, off + v.length, off + f.size);
          b.set(v.length > f.size ? v.subarray(0, f.size) : v, off);
          return end;
        };
      case "string":
        return (v, end) => {
          if (typeof v !== "string") throw new TypeError(`field ${name}: expected a string`);
          this.ensure(end + v.length * 3 + 1);
          const n = writeUtf8(this.buf, end, v);
          this.buf[end + n] = 0;
          this.#loc(f, end, n + 1);
          return end + n + 1;
        };
      case "bytes":
        return (v, end) => {
          if (!(v instanceof Uint8Array)) {
            throw new TypeError(`field ${name}: expected a Uint8Array`);
          }
          this.ensure(end + v.length);
          this.buf.set(v, end);
          this.#loc(f, end, v.length);
          return end + v.length;
        };
    }
  }

  #loc(f: FieldLayout, dataPos: number, len: number): void {
    if (len > 0xffff) {
      throw new RangeError(`field ${f.name}: ${len} bytes exceed the 65535 a loc word can hold`);
    }
    // __data_loc: offset from the start of the record, which begins with struct trace_entry.
    // __rel_loc: offset from the end of the loc word itself.
    const o = f.rel ? dataPos - (f.offset + 4) : dataPos + SIZEOF_TRACE_ENTRY;
    this.dv.setUint32(f.offset, ((len << 16) | o) >>> 0, true);
  }
}

function intWriter(p: PayloadEncoder, f: FieldLayout): (v: unknown, end: number) => number {
  const off = f.offset;
  const name = f.name;
  const bad = (v: unknown) =>
    new TypeError(
      `field ${name}: expected a number${f.size === 8 ? " or bigint" : ""}, got ${typeof v}`,
    );
  switch (f.size) {
    case 1:
      return (v, end) => {
        if (typeof v !== "number") throw bad(v);
        p.buf[off] = v;
        return end;
      };
    case 2:
      return (v, end) => {
        if (typeof v !== "number") throw bad(v);
        p.dv.setUint16(off, v, true);
        return end;
      };
    case 4:
      return (v, end) => {
        if (typeof v !== "number") throw bad(v);
        p.dv.setUint32(off, v >>> 0, true);
        return end;
      };
    default:
      return (v, end) => {
        if (typeof v === "bigint") p.dv.setBigUint64(off, BigInt.asUintN(64, v), true);
        else if (typeof v === "number") {
          // Exact for |v| < 2^53; two 32-bit halves avoid a BigInt allocation.
          const lo = v >>> 0;
          const hi = Math.floor(v / 4294967296);
          p.dv.setUint32(off, lo, true);
          p.dv.setUint32(off + 4, hi >>> 0, true);
        } else throw bad(v);
        return end;
      };
  }
}

/**
 * Decodes a raw user_events payload (what follows struct trace_entry) by its layout: for tests
 * and readers. Dynamic fields are found through their loc words, as a tracer would.
 *
 * @example
 * ```ts
 * import { decodePayload, PerfTracepoint, tracepointId, UserEvents } from "@ummu/ummu/user_events";
 *
 * const events = UserEvents.open();
 * const tp = events.register("myapp_job", "u32 id; __data_loc char[] state");
 * const perf = PerfTracepoint.open(tracepointId("user_events", tp.name));
 * tp.emit(7, "done");
 * for (const s of perf.read()) {
 *   // s.raw starts with struct trace_entry (8 bytes).
 *   console.log(decodePayload(tp.layout, s.raw.subarray(8))); // { id: 7, state: "done" }
 * }
 * perf.close();
 * events.close();
 * ```
 */
export function decodePayload(
  layout: readonly FieldLayout[],
  data: Uint8Array,
): Record<string, unknown> {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const dec = new TextDecoder();
  const out: Record<string, unknown> = {};
  for (const f of layout) {
    const o = f.offset;
    switch (f.kind) {
      case "int": {
        const s = f.signed;
        out[f.name] = f.size === 1
          ? (s ? dv.getInt8(o) : dv.getUint8(o))
          : f.size === 2
          ? (s ? dv.getInt16(o, true) : dv.getUint16(o, true))
          : f.size === 4
          ? (s ? dv.getInt32(o, true) : dv.getUint32(o, true))
          : (s ? dv.getBigInt64(o, true) : dv.getBigUint64(o, true));
        break;
      }
      case "fixed_string": {
        const b = data.subarray(o, o + f.size);
        const z = b.indexOf(0);
        out[f.name] = dec.decode(z < 0 ? b : b.subarray(0, z));
        break;
      }
      case "fixed_bytes":
      case "struct":
        out[f.name] = data.slice(o, o + f.size);
        break;
      case "string":
      case "bytes": {
        const loc = dv.getUint32(o, true);
        const len = loc >>> 16;
        const start = f.rel ? o + 4 + (loc & 0xffff) : (loc & 0xffff) - SIZEOF_TRACE_ENTRY;
        const b = data.subarray(start, start + len);
        out[f.name] = f.kind === "string"
          ? dec.decode(b[len - 1] === 0 ? b.subarray(0, len - 1) : b)
          : b.slice();
        break;
      }
    }
  }
  return out;
}
