/**
 * A dynamic EventHeader event builder: what eventheader_dynamic's EventBuilder
 * (microsoft/LinuxTracepoints-Rust) is to the Rust exporters. The OpenTelemetry
 * layouts depend on each record (which attributes, of which types, whether a
 * trace context is there), so the metadata is written per event, beside the
 * values, into buffers reused for every event: no object per field, no
 * string per value (strings are UTF-8 encoded straight into the buffer).
 *
 * The bytes, as eventheader_dynamic writes them:
 *
 *     eventheader { u8 flags = 0x07; u8 version = 0; u16 id = 0; u16 tag = 0; u8 opcode; u8 level }
 *     extension { u16 size = meta length; u16 kind = Metadata (1) }
 *     meta: event name NUL, then per field: name NUL, encoding byte
 *           (| 0x80 when a format byte follows, which it does when the format is not 0), format byte
 *           (a struct: encoding Struct | 0x80, then its member count in the format byte)
 *     data: the values, in field order (strings: u16 byte length + UTF-8 bytes, at most 65535)
 *
 * Value sizes follow Rust's types: bool is Value8, i16 Value16, i32/u32 Value32,
 * i64/f64 Value64.
 */
import { GrowableBuffer } from "../user_events/buffer.ts";
import { FieldEncoding, FieldFormat } from "../user_events/eventheader_types.ts";

/** eventheader_dynamic's write() refuses meta + data above this (ERANGE): 64 KiB minus headers. */
export const EVENTHEADER_MAX_META_AND_DATA = 65535 - (52 + 16);

/** Header (8) + Metadata extension header (4): where the metadata starts. */
const META_START = 12;

/**
 * UTF-8 bytes of `s` written at `pos` in `g` (growing it); returns the end. Lone
 * surrogates become U+FFFD, as TextEncoder writes them; so does NUL when `name`
 * (a name ends at its NUL in the metadata: one inside would shift every field after).
 */
function writeUtf8(g: GrowableBuffer, pos: number, s: string, name = false): number {
  const n = s.length;
  if (pos + n * 3 > g.buf.length) g.ensure(pos + n * 3);
  const b = g.buf;
  let i = 0;
  // ASCII first: most names and values are, and this loop is the whole cost then.
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || c === 0) break;
    b[pos++] = c;
  }
  for (; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c === 0 && name) c = 0xfffd;
    if (c < 0x80) {
      b[pos++] = c;
    } else if (c < 0x800) {
      b[pos++] = 0xc0 | (c >> 6);
      b[pos++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          b[pos++] = 0xf0 | (c >> 18);
          b[pos++] = 0x80 | ((c >> 12) & 0x3f);
          b[pos++] = 0x80 | ((c >> 6) & 0x3f);
          b[pos++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      b[pos++] = 0xe0 | (c >> 12);
      b[pos++] = 0x80 | ((c >> 6) & 0x3f);
      b[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/**
 * Builds one event at a time: reset(), then add*() in field order, then
 * finish() gives the length of the event in `out.buf` (header, metadata,
 * data), ready for an Emitter that points the kernel at `out`.
 */
export class EventHeaderBuilder {
  /** The header and the metadata extension: the first part of the event the emitter writes. */
  readonly out = new GrowableBuffer(1024);
  /** The values: the second part, written from here (not copied behind the metadata). */
  readonly data = new GrowableBuffer(1024);
  #meta = META_START;
  #pos = 0;
  #opcode = 0;
  #level = 0;
  // The previous event's metadata, field by field: while an event's fields are the previous
  // one's (the same name strings, encodings and formats, in the same order: records of one
  // call site), their metadata bytes are already in `out` and are skipped, not written again.
  #prevName = "";
  #prevNameEnd = 0;
  readonly #names: string[] = [];
  #kinds = new Uint16Array(64);
  #lens = new Uint16Array(64);
  #prevCount = 0;
  #count = 0;
  #same = false;

  /** Starts an event named `name` (ASCII or UTF-8, no NUL) at `level` with `opcode`. */
  reset(name: string, level: number, opcode = 0): this {
    this.#level = level;
    this.#opcode = opcode;
    this.#pos = 0;
    this.#count = 0;
    if (name === this.#prevName && this.#prevNameEnd > 0) {
      this.#meta = this.#prevNameEnd;
      this.#same = true;
      return this;
    }
    const end = writeUtf8(this.out, META_START, name, true);
    this.out.ensure(end + 1);
    this.out.buf[end] = 0;
    this.#meta = end + 1;
    this.#prevName = name;
    this.#prevNameEnd = end + 1;
    this.#prevCount = 0;
    this.#same = false;
    return this;
  }

  /** `kind`: encoding << 8 | format (a struct's format is its count, set by addStruct). */
  #field(name: string, encoding: number, format: number): void {
    const i = this.#count++;
    const kind = (encoding << 8) | (encoding === FieldEncoding.Struct ? 0xff : format);
    if (this.#same && i < this.#prevCount && this.#names[i] === name && this.#kinds[i] === kind) {
      this.#meta += this.#lens[i];
      return;
    }
    this.#same = false;
    const start = this.#meta;
    let m = writeUtf8(this.out, start, name, true);
    this.out.ensure(m + 3);
    const b = this.out.buf;
    b[m++] = 0;
    if (format !== 0) {
      b[m++] = encoding | FieldEncoding.ChainFlag;
      b[m++] = format;
    } else {
      b[m++] = encoding;
    }
    this.#meta = m;
    if (i >= this.#kinds.length) {
      const grow = (a: Uint16Array) => {
        const g = new Uint16Array(a.length * 2);
        g.set(a);
        return g;
      };
      this.#kinds = grow(this.#kinds);
      this.#lens = grow(this.#lens);
    }
    this.#names[i] = name;
    this.#kinds[i] = kind;
    this.#lens[i] = m - start;
    this.#prevCount = i + 1;
  }

  /**
   * A struct of `count` members (1..127); returns a bookmark for
   * setStructCount when the count is known only after the members.
   */
  addStruct(name: string, count: number): number {
    this.#field(name, FieldEncoding.Struct, count);
    this.out.buf[this.#meta - 1] = count;
    return this.#meta - 1;
  }

  /** Sets the member count of the struct at `bookmark` (1..127). */
  setStructCount(bookmark: number, count: number): void {
    this.out.buf[bookmark] = count;
  }

  /** A string (StringLength16Char8, UTF-8, format Default): u16 byte length + bytes, cut at 65535. */
  addStr(name: string, value: string): void {
    this.#field(name, FieldEncoding.StringLength16Char8, FieldFormat.Default);
    const start = this.#pos;
    let end = writeUtf8(this.data, start + 2, value);
    if (end - start - 2 > 0xffff) end = start + 2 + 0xffff; // eventheader_dynamic's cut
    this.data.dv.setUint16(start, end - start - 2, true);
    this.#pos = end;
  }

  /** Reserves `n` data bytes; returns where they start. */
  #reserve(n: number): number {
    const p = this.#pos;
    this.data.ensure(p + n);
    this.#pos = p + n;
    return p;
  }

  /** bool: Value8, format Boolean. */
  addBool(name: string, value: boolean): void {
    this.#field(name, FieldEncoding.Value8, FieldFormat.Boolean);
    this.data.buf[this.#reserve(1)] = value ? 1 : 0;
  }

  /** i16: Value16, format SignedInt. */
  addI16(name: string, value: number): void {
    this.#field(name, FieldEncoding.Value16, FieldFormat.SignedInt);
    this.data.dv.setInt16(this.#reserve(2), value, true);
  }

  /** u32 (or a Rust i32 literal given format UnsignedInt): Value32, format UnsignedInt. */
  addU32(name: string, value: number): void {
    this.#field(name, FieldEncoding.Value32, FieldFormat.UnsignedInt);
    this.data.dv.setUint32(this.#reserve(4), value, true);
  }

  /** i64: Value64, format SignedInt. `value` is an integer (a safe number) or a bigint. */
  addI64(name: string, value: number | bigint): void {
    this.#field(name, FieldEncoding.Value64, FieldFormat.SignedInt);
    const p = this.#reserve(8);
    if (typeof value === "bigint") {
      this.data.dv.setBigInt64(p, value, true);
    } else {
      // Two 32-bit halves: no BigInt made per value.
      const lo = value % 0x100000000;
      const hi = Math.floor(value / 0x100000000);
      this.data.dv.setUint32(p, lo < 0 ? lo + 0x100000000 : lo, true);
      this.data.dv.setInt32(p + 4, hi, true);
    }
  }

  /** f64: Value64, format Float. */
  addF64(name: string, value: number): void {
    this.#field(name, FieldEncoding.Value64, FieldFormat.Float);
    this.data.dv.setFloat64(this.#reserve(8), value, true);
  }

  /**
   * A time as chrono's DateTime<Utc>::to_rfc3339 prints it, written without a
   * string: "YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]+00:00" (the
   * fraction in the fewest of 0, 3, 6 or 9 digits that holds it exactly).
   * `seconds` since the epoch, `nanos` 0..999999999.
   */
  addTime(name: string, seconds: number, nanos: number): void {
    this.#field(name, FieldEncoding.StringLength16Char8, FieldFormat.Default);
    const digits = nanos === 0 ? 0 : nanos % 1000000 === 0 ? 3 : nanos % 1000 === 0 ? 6 : 9;
    const len = 19 + (digits ? digits + 1 : 0) + 6;
    const p = this.#reserve(2 + len);
    const b = this.data.buf;
    this.data.dv.setUint16(p, len, true);
    // "YYYY-MM-DDTHH:MM:SS" changes once a second: made once per second, copied otherwise.
    if (seconds !== this.#second) this.#formatSecond(seconds);
    const sec = this.#secondBytes;
    let q = p + 2;
    for (let i = 0; i < 19; i++) b[q++] = sec[i];
    if (digits) {
      b[q++] = 0x2e; // .
      let v = Math.floor(nanos / (digits === 3 ? 1000000 : digits === 6 ? 1000 : 1));
      for (let i = digits - 1; i >= 0; i--) {
        b[q + i] = 0x30 + (v % 10);
        v = (v - (v % 10)) / 10;
      }
      q += digits;
    }
    b[q] = 0x2b; // +00:00
    b[q + 1] =
      b[q + 2] =
      b[q + 4] =
      b[q + 5] =
        0x30;
    b[q + 3] = 0x3a;
  }

  /** The second `#secondBytes` holds (NaN: none yet). */
  #second = NaN;
  /** "YYYY-MM-DDTHH:MM:SS" of `#second`, UTC. */
  readonly #secondBytes = new Uint8Array(19);

  #formatSecond(seconds: number): void {
    this.#second = seconds;
    let days = Math.floor(seconds / 86400);
    let secs = seconds - days * 86400;
    // Howard Hinnant's civil_from_days.
    days += 719468;
    const era = Math.floor(days / 146097);
    const doe = days - era * 146097;
    const yoe = Math.floor(
      (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
    );
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
    const month = mp < 10 ? mp + 3 : mp - 9;
    const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    const hour = Math.floor(secs / 3600);
    secs -= hour * 3600;
    const minute = Math.floor(secs / 60);
    secs -= minute * 60;
    const b = this.#secondBytes;
    const put = (at: number, v: number, n: number) => {
      for (let i = n - 1; i >= 0; i--) {
        b[at + i] = 0x30 + (v % 10);
        v = Math.floor(v / 10);
      }
    };
    put(0, year, 4);
    b[4] = b[7] = 0x2d; // -
    put(5, month, 2);
    put(8, day, 2);
    b[10] = 0x54; // T
    put(11, hour, 2);
    b[13] = b[16] = 0x3a; // :
    put(14, minute, 2);
    put(17, secs, 2);
  }

  /** Metadata + data bytes so far: above EVENTHEADER_MAX_META_AND_DATA the event is refused (ERANGE). */
  get size(): number {
    return this.#meta - META_START + this.#pos;
  }

  /** Bytes of values so far: the second part of the event. */
  get dataLength(): number {
    return this.#pos;
  }

  /**
   * Writes the header and the Metadata extension header; returns the length
   * of the first part (header + metadata) in `out`. The event is those bytes
   * followed by the first `dataLength` bytes of `data`.
   */
  finish(): number {
    const out = this.out;
    this.#prevCount = this.#count; // the next event may reuse these fields' metadata
    out.ensure(this.#meta);
    const b = out.buf;
    b[0] = 0x07; // Pointer64 | LittleEndian | Extension (eventheader_dynamic's DefaultWithExtension)
    b[1] = 0;
    b[2] =
      b[3] =
      b[4] =
      b[5] =
        0; // id, tag
    b[6] = this.#opcode;
    b[7] = this.#level;
    out.dv.setUint16(8, this.#meta - META_START, true);
    out.dv.setUint16(10, 1, true); // ExtensionKind.Metadata, no chain
    return this.#meta;
  }

  /** A copy of the finished event, both parts together (for tests and other transports). */
  bytes(): Uint8Array {
    const head = this.finish();
    const e = new Uint8Array(head + this.#pos);
    e.set(this.out.buf.subarray(0, head));
    e.set(this.data.buf.subarray(0, this.#pos), head);
    return e;
  }
}
