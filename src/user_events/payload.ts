/**
 * The raw tracepoint payload: the encoder emit() uses (fixed fields at fixed
 * offsets, __data_loc/__rel_loc data appended after them), and the decoder a
 * reader uses. Every value is checked against its field's type before it is
 * written: a wrong type, an integer out of range, a string that does not fit
 * or a loc word whose 16-bit offset or length would wrap is an
 * UmmuArgumentError naming the field, never a silent truncation.
 */
import { SIZEOF_TRACE_ENTRY } from "../../ffi/user_events.ts";
import { UmmuArgumentError } from "../errors.ts";
import { GrowableBuffer } from "./buffer.ts";
import { charsetProblem, ENC_TOO_LONG, writeUtf8 } from "./charsets.ts";
import { type FieldLayout, fixedSize } from "./fields.ts";
import {
  describeValue,
  fitsInt64,
  intExpectation,
  intFits,
  setInt64,
  valueError,
} from "./values.ts";

/** The largest offset or length a loc word holds (16 bits each). */
const LOC_MAX = 0xffff;
/** No record can be longer: the last loc word's data starts at most at 65535 and is at most 65535 long. */
export const MAX_RAW_PAYLOAD = 2 * LOC_MAX + 1;

type Writer = (v: unknown, end: number) => number;

/**
 * A reusable payload buffer for one tracepoint: fixed fields at fixed offsets,
 * dynamic data appended after them. `buf` keeps its address until it has to
 * grow (then `generation` changes).
 */
export class PayloadEncoder extends GrowableBuffer {
  /** The fields, as parseFields laid them out. */
  readonly layout: readonly FieldLayout[];
  /** Bytes of the fixed part (dynamic data starts here). */
  readonly fixed: number;
  readonly #writers: Writer[];
  readonly #event: string;

  /** `event` names the tracepoint in error messages. */
  constructor(layout: readonly FieldLayout[], event = "(unnamed)", initial = 4096) {
    super(Math.max(initial, fixedSize(layout) + 256));
    this.layout = layout;
    this.fixed = fixedSize(layout);
    this.#event = event;
    this.#writers = layout.map((f, i) => this.#writer(f, i));
  }

  /** Grows the buffer so that `need` bytes fit (keeps the content), up to the largest record. */
  override ensure(need: number): void {
    if (need <= this.buf.length) return;
    if (need > MAX_RAW_PAYLOAD) {
      throw new UmmuArgumentError(
        `tracepoint ${this.#event}: a payload of ${need} bytes exceeds the ${MAX_RAW_PAYLOAD} a user_events record can address`,
      );
    }
    super.ensure(need);
  }

  /** Encodes one event's values (in field order); returns the payload length. */
  encode(values: ArrayLike<unknown>): number {
    const w = this.#writers;
    if (values.length !== w.length) {
      throw new UmmuArgumentError(
        `tracepoint ${this.#event}: expected ${w.length} values (${
          this.layout.map((f) => f.name).join(", ")
        }), got ${values.length}`,
      );
    }
    let end = this.fixed;
    for (let i = 0; i < w.length; i++) end = w[i](values[i], end);
    return end;
  }

  #writer(f: FieldLayout, index: number): Writer {
    const off = f.offset;
    const size = f.size;
    const label = `field "${f.name}" (#${index}) of tracepoint ${this.#event}`;
    const bad = (v: unknown, expected: string) => valueError(label, -1, v, expected);
    switch (f.kind) {
      case "int":
        return intWriter(this, f, bad);
      case "fixed_string": {
        const want = `a string of at most ${size} bytes of UTF-8, without NUL (${f.type})`;
        return (v, end) => {
          if (typeof v !== "string") throw bad(v, want);
          const b = this.buf;
          b.fill(0, off, off + size);
          const n = writeUtf8(b, off, v, size, true);
          if (n < 0) {
            throw new UmmuArgumentError(
              `${label}: ${describeValue(v)} does not fit ${f.type}: ${
                charsetProblem(n, v, "UTF-8", size)
              }`,
            );
          }
          return end;
        };
      }
      case "fixed_bytes":
        return (v, end) => {
          if (!(v instanceof Uint8Array) || v.length > size) {
            throw bad(v, `a Uint8Array of at most ${size} bytes (${f.type})`);
          }
          const b = this.buf;
          b.set(v, off);
          if (v.length < size) b.fill(0, off + v.length, off + size);
          return end;
        };
      case "struct":
        return (v, end) => {
          if (!(v instanceof Uint8Array) || v.length !== size) {
            throw bad(v, `a Uint8Array of exactly ${size} bytes (${f.type})`);
          }
          this.buf.set(v, off);
          return end;
        };
      case "string": {
        // __data_loc counts from the start of the record (struct trace_entry first),
        // __rel_loc from the end of the loc word itself.
        const base = f.rel ? -(off + 4) : SIZEOF_TRACE_ENTRY;
        return (v, end) => {
          if (typeof v !== "string") throw bad(v, `a string without NUL (${f.type})`);
          // UTF-8 takes at least one byte per UTF-16 unit, and the NUL one more.
          if (v.length > LOC_MAX - 1) throw this.#tooLong(label, f, v.length + 1);
          const o = end + base;
          if (o > LOC_MAX) throw this.#unreachable(label, f, o, end);
          let room = v.length * 3;
          if (room > LOC_MAX - 1) room = LOC_MAX - 1;
          this.ensure(end + room + 1);
          const n = writeUtf8(this.buf, end, v, LOC_MAX - 1, true);
          if (n < 0) {
            if (n === ENC_TOO_LONG) throw this.#tooLong(label, f, LOC_MAX + 1);
            throw new UmmuArgumentError(
              `${label}: ${describeValue(v)} cannot be stored: ${charsetProblem(n, v, "UTF-8")}`,
            );
          }
          this.buf[end + n] = 0;
          this.dv.setUint32(off, (((n + 1) << 16) | o) >>> 0, true);
          return end + n + 1;
        };
      }
      case "bytes": {
        const base = f.rel ? -(off + 4) : SIZEOF_TRACE_ENTRY;
        return (v, end) => {
          if (!(v instanceof Uint8Array)) throw bad(v, `a Uint8Array (${f.type})`);
          if (v.length > LOC_MAX) throw this.#tooLong(label, f, v.length);
          const o = end + base;
          if (o > LOC_MAX) throw this.#unreachable(label, f, o, end);
          this.ensure(end + v.length);
          this.buf.set(v, end);
          this.dv.setUint32(off, ((v.length << 16) | o) >>> 0, true);
          return end + v.length;
        };
      }
    }
  }

  /** The loc word's 16-bit offset cannot reach the data (`o` > 65535): nothing is written. */
  #unreachable(label: string, f: FieldLayout, o: number, dataPos: number): UmmuArgumentError {
    return new UmmuArgumentError(
      `${label}: its data would start at ${f.rel ? "offset" : "record offset"} ${o}${
        f.rel ? " from the end of its loc word" : ""
      }, beyond the ${LOC_MAX} the 16-bit offset of a ${
        f.rel ? "__rel_loc" : "__data_loc"
      } word can hold (the dynamic data before it takes ${dataPos - this.fixed} bytes)`,
    );
  }

  #tooLong(label: string, f: FieldLayout, bytes: number): UmmuArgumentError {
    return new UmmuArgumentError(
      `${label}: ${bytes}${
        bytes > LOC_MAX ? " or more" : ""
      } bytes of data exceed the ${LOC_MAX} the 16-bit length of a ${
        f.rel ? "__rel_loc" : "__data_loc"
      } word can hold`,
    );
  }
}

function intWriter(
  p: PayloadEncoder,
  f: FieldLayout,
  bad: (v: unknown, expected: string) => UmmuArgumentError,
): Writer {
  const off = f.offset;
  const bits = f.size * 8;
  const want = intExpectation(bits, f.signed, f.type);
  if (bits === 64) {
    return (v, end) => {
      if (!fitsInt64(v, f.signed)) throw bad(v, want);
      setInt64(p.dv, off, v as number | bigint, f.signed);
      return end;
    };
  }
  const fits = intFits(bits as 8 | 16 | 32, f.signed);
  switch (bits) {
    case 8:
      return (v, end) => {
        if (!fits(v)) throw bad(v, want);
        p.buf[off] = v;
        return end;
      };
    case 16:
      return (v, end) => {
        if (!fits(v)) throw bad(v, want);
        p.dv.setUint16(off, v, true);
        return end;
      };
    default:
      return (v, end) => {
        if (!fits(v)) throw bad(v, want);
        p.dv.setUint32(off, v >>> 0, true);
        return end;
      };
  }
}

/**
 * Decodes a raw user_events payload (what follows struct trace_entry) by its layout: for tests
 * and readers. Dynamic fields are found through their loc words, as a tracer would. A payload
 * shorter than its fields, or a loc word pointing outside it, throws UmmuArgumentError.
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
  if (!Array.isArray(layout)) {
    throw new UmmuArgumentError(
      `layout must be the array parseFields returns, got ${describeValue(layout)}`,
    );
  }
  if (!(data instanceof Uint8Array)) {
    throw new UmmuArgumentError(`data must be a Uint8Array, got ${describeValue(data)}`);
  }
  const fixed = fixedSize(layout);
  if (data.length < fixed) {
    throw new UmmuArgumentError(
      `payload of ${data.length} bytes is shorter than the ${fixed} bytes of its fixed fields`,
    );
  }
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
        if (start < 0 || start + len > data.length) {
          throw new UmmuArgumentError(
            `field "${f.name}": its loc word 0x${loc.toString(16)} points at bytes ${start}..${
              start + len
            } of a ${data.length}-byte payload`,
          );
        }
        const b = data.subarray(start, start + len);
        out[f.name] = f.kind === "string"
          ? dec.decode(len > 0 && b[len - 1] === 0 ? b.subarray(0, len - 1) : b)
          : b.slice();
        break;
      }
    }
  }
  return out;
}
