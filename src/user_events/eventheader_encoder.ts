/**
 * The EventHeader encoder: an event definition checked in full and compiled
 * once into the header, the extensions (ActivityId, Metadata) and the field
 * writers; encode() then writes only the values after them.
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
import { UmmuArgumentError } from "../errors.ts";
import { GrowableBuffer } from "./buffer.ts";
import {
  type EventDefinition,
  ExtensionKind,
  HeaderFlags,
  Level,
  Opcode,
} from "./eventheader_types.ts";
import {
  type CompiledField,
  compileField,
  MAX_TOP_LEVEL_FIELDS,
  metadataOf,
  withAttributes,
} from "./eventheader_fields.ts";
import { writeUuid } from "./addresses.ts";
import { describeValue, isIntIn } from "./values.ts";

const DEF_KEYS = new Set([
  "name",
  "level",
  "keyword",
  "opcode",
  "id",
  "version",
  "tag",
  "fields",
  "attributes",
  "activity",
]);

/** A keyword as a bigint: a bigint in 0..2^64-1, or a number up to 2^53 (larger ones are not exact). */
export function checkKeyword(what: string, v: unknown): bigint {
  if (typeof v === "bigint" && v >= 0n && v <= 0xffffffffffffffffn) return v;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw new UmmuArgumentError(
    `${what}: keyword must be a bigint in 0..0xffffffffffffffff (or a number up to 2^53; use a bigint beyond), got ${
      describeValue(v)
    }`,
  );
}

/** An integer level 1..255 (0 is the spec's "invalid"). */
export function checkLevel(what: string, v: unknown): number {
  if (!isIntIn(v, 1, 255)) {
    throw new UmmuArgumentError(
      `${what}: level must be an integer in 1..255 (1 critical .. 5 verbose), got ${
        describeValue(v)
      }`,
    );
  }
  return v;
}

function attribute(what: string, key: string, v: unknown, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!isIntIn(v, 0, max)) {
    throw new UmmuArgumentError(
      `${what}: ${key} must be an integer in 0..${max}, got ${describeValue(v)}`,
    );
  }
  return v;
}

/** 16 bytes from a Uint8Array of 16 or a UUID string, written at `pos`. */
function activityBytes(what: string, buf: Uint8Array, pos: number, v: unknown): void {
  if (v instanceof Uint8Array && v.length === 16) buf.set(v, pos);
  else if (typeof v !== "string" || !writeUuid(buf, pos, v)) {
    throw new UmmuArgumentError(
      `${what} must be 16 bytes (a Uint8Array) or a UUID string, got ${describeValue(v)}`,
    );
  }
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
  readonly #nodes: CompiledField[];
  readonly #names: string;

  /**
   * Compiles `def`, checking every attribute: an unknown property, a name
   * with ';' or NUL, level outside 1..255, keyword outside 64 bits, opcode or
   * version outside 0..255, id or tag outside 0..65535, an activity other
   * than "id" or "related", more than 255 fields, a field no decoder could
   * read, or metadata over 64 KiB throws UmmuArgumentError.
   */
  constructor(def: EventDefinition) {
    if (def === null || typeof def !== "object" || Array.isArray(def)) {
      throw new UmmuArgumentError(
        `an event definition must be an object { name, level?, keyword?, fields?, ... }, got ${
          describeValue(def)
        }`,
      );
    }
    const what = `event ${typeof def.name === "string" ? def.name : describeValue(def.name)}`;
    for (const k of Object.keys(def)) {
      if (!DEF_KEYS.has(k)) {
        throw new UmmuArgumentError(
          `${what}: unknown property "${k}" (an EventDefinition has ${[...DEF_KEYS].join(", ")})`,
        );
      }
    }
    const metaName = withAttributes("event", def.name, def.attributes);
    this.def = def;
    this.level = def.level === undefined ? Level.Verbose : checkLevel(what, def.level);
    this.keyword = def.keyword === undefined ? 1n : checkKeyword(what, def.keyword);
    const opcode = attribute(what, "opcode", def.opcode, 0xff, Opcode.Info);
    const id = attribute(what, "id", def.id, 0xffff, 0);
    const version = attribute(what, "version", def.version, 0xff, 0);
    const tag = attribute(what, "tag", def.tag, 0xffff, 0);
    if (def.activity !== undefined && def.activity !== "id" && def.activity !== "related") {
      throw new UmmuArgumentError(
        `${what}: activity must be "id" or "related" (or absent), got ${
          describeValue(def.activity)
        }`,
      );
    }
    const fields = def.fields ?? [];
    if (!Array.isArray(fields) || fields.length > MAX_TOP_LEVEL_FIELDS) {
      throw new UmmuArgumentError(
        `${what}: fields must be an array of at most ${MAX_TOP_LEVEL_FIELDS} EventField (Microsoft's decoders read no more), got ${
          describeValue(fields)
        }`,
      );
    }
    this.#b = new GrowableBuffer(1024) /* [prefix: header + extensions][payload] */;
    this.#nodes = fields.map((f, i) =>
      compileField(this.#b, f, {
        path: String((f as { name?: unknown })?.name),
        index: String(i),
        event: def.name,
        depth: 1,
      })
    );
    this.#names = fields.map((f) => f.name).join(", ");
    const meta: number[] = [];
    for (const c of new TextEncoder().encode(metaName)) meta.push(c);
    meta.push(0);
    for (const n of this.#nodes) metadataOf(n, meta);
    if (meta.length > 0xffff) {
      throw new UmmuArgumentError(
        `${what}: its metadata (names, attributes and types) takes ${meta.length} bytes; an extension holds at most 65535`,
      );
    }
    const actLen = def.activity === "related" ? 32 : def.activity === "id" ? 16 : 0;
    const prefix = 8 + (actLen ? 4 + actLen : 0) + 4 + meta.length;
    this.#b.ensure(prefix + 256);
    const b = this.#b.buf;
    const dv = this.#b.dv;
    b[0] = HeaderFlags.Pointer64 | HeaderFlags.LittleEndian | HeaderFlags.Extension;
    b[1] = version;
    dv.setUint16(2, id, true);
    dv.setUint16(4, tag, true);
    b[6] = opcode;
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

  /** @internal The buffer the Emitter points the kernel at: prefix then the last encoded payload. */
  get buffer(): { buf: Uint8Array; generation: number } {
    return this.#b;
  }

  /**
   * Writes the activity id (and, for activity "related", the related id: all
   * zeros when omitted) into the ActivityId extension. Each is 16 bytes or a
   * UUID string.
   */
  setActivity(activityId: Uint8Array | string, relatedId?: Uint8Array | string): void {
    const what = `event ${this.def.name}`;
    if (this.activityOffset < 0) {
      throw new UmmuArgumentError(
        `${what} has no activity extension (define it with activity: "id" | "related")`,
      );
    }
    if (this.def.activity !== "related" && relatedId !== undefined) {
      throw new UmmuArgumentError(
        `${what} carries only an activity id (activity: "id"); define it with activity: "related" to send a related id`,
      );
    }
    const buf = this.#b.buf;
    activityBytes(`${what}: the activity id`, buf, this.activityOffset, activityId);
    if (this.def.activity === "related") {
      if (relatedId === undefined) buf.fill(0, this.activityOffset + 16, this.activityOffset + 32);
      else activityBytes(`${what}: the related id`, buf, this.activityOffset + 16, relatedId);
    }
  }

  /**
   * Encodes the values (in field order) after the prefix; returns the event's
   * length. A value its field cannot take throws UmmuArgumentError naming the
   * field (name and index), the value and the type expected.
   */
  encode(values: ArrayLike<unknown>): number {
    const nodes = this.#nodes;
    if (values.length !== nodes.length) {
      throw new UmmuArgumentError(
        `event ${this.def.name}: expected ${nodes.length} values (${this.#names}), got ${values.length}`,
      );
    }
    let pos = this.prefixLength;
    for (let i = 0; i < nodes.length; i++) pos = nodes[i].write(values[i], pos, -1);
    return pos;
  }

  /** A copy of the event encoded from `values` (for tests, or another transport). */
  bytes(values: ArrayLike<unknown>): Uint8Array {
    const n = this.encode(values);
    return this.#b.buf.slice(0, n);
  }
}
