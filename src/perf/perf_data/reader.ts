/**
 * PerfDataReader: perf.data files as `perf record` writes them, in file mode
 * (`PERFILE2` header, attrs with their ids, the data section, feature
 * sections) and pipe mode (`perf record -o -`: attrs, features and tracing
 * data as records in the stream). Little-endian files only.
 *
 * The data section is read in chunks (node:fs, positional reads in file mode,
 * sequential reads of a pipe), never whole: a record is always contiguous in
 * the chunk handed to the {@linkcode RecordDecoder}. Payloads that follow a
 * record (AUXTRACE data, pipe-mode tracing data) are kept up to `maxPayload`
 * bytes and skipped beyond (their file offset is in the record).
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import * as f from "./format.ts";
import { decodeAttr, type PerfEventAttrFields } from "../attr.ts";
import { RecordDecoder } from "../record_decoder.ts";
import type { PerfRecord } from "../records.ts";
import { PerfDecodeError } from "../decode_error.ts";
import { parseBuildIds, parseFeature, PerfDataError, type PerfDataFeatures } from "./features.ts";
import { decodeToolRecord, payloadSizeOf, type ToolRecord } from "./tool_records.ts";
import { ClosedError } from "../../errors.ts";
import { invalid } from "../../validate.ts";

export { PerfDataError } from "./features.ts";

/** An attr of the file, its event ids and (from event_desc) its name. */
export interface PerfDataAttr {
  attr: PerfEventAttrFields;
  ids: bigint[];
  /** The event's name as perf knows it (HEADER_EVENT_DESC), when the file has it. */
  name?: string;
}

/** A record of a perf.data stream: the kernel's, or the perf tool's. */
export type PerfDataRecord = PerfRecord | ToolRecord;

/** A record and where it is. */
export interface PerfDataEntry {
  /** The record's offset in the file (pipe mode: in the stream). */
  offset: number;
  /** The index in `attrs` of the event a kernel record belongs to (0 when it cannot be told). */
  attrIndex: number;
  record: PerfDataRecord;
}

/** Options of {@linkcode PerfDataReader.open}. */
export interface PerfDataReaderOptions {
  /** Bytes read at a time (default 1 MiB; grown for a record that needs more). */
  chunkSize?: number;
  /** Payloads (AUXTRACE, tracing data) up to this size are kept in the record (default 16 MiB). */
  maxPayload?: number;
}

const DEFAULT_CHUNK = 1 << 20;
const DEFAULT_MAX_PAYLOAD = 16 << 20;

/** Sequential reads over a file region or a pipe, with a buffer a record never straddles. */
class ChunkSource {
  buf: Uint8Array;
  start = 0;
  end = 0;
  /** Stream offset of buf[start]. */
  offset: number;
  eof = false;
  constructor(
    readonly fd: number,
    /** Positional (file mode) or sequential (pipe). */
    readonly positional: boolean,
    offset: number,
    /** Stream offset where the region ends (Infinity: until EOF). */
    readonly limit: number,
    chunk: number,
  ) {
    this.offset = offset;
    this.buf = new Uint8Array(chunk);
  }
  get available(): number {
    return this.end - this.start;
  }
  /** Makes at least `n` bytes available unless the region ends first; returns what is. */
  ensure(n: number): number {
    if (this.available >= n || this.eof) return this.available;
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.buf.length < n) {
      const bigger = new Uint8Array(Math.max(n, this.buf.length * 2));
      bigger.set(this.buf.subarray(0, this.end));
      this.buf = bigger;
    }
    while (this.end < n && !this.eof) {
      const at = this.offset + this.end;
      const room = Math.min(this.buf.length - this.end, this.limit - at);
      if (room <= 0) {
        this.eof = true;
        break;
      }
      const got = readSync(this.fd, this.buf, this.end, room, this.positional ? at : null);
      if (got === 0) this.eof = true;
      this.end += got;
    }
    return this.available;
  }
  advance(n: number): void {
    this.start += n;
    this.offset += n;
  }
  /** Skips `n` bytes (a payload): from the buffer, then by seeking or reading. */
  skip(n: number): void {
    const inBuf = Math.min(n, this.available);
    this.advance(inBuf);
    let left = n - inBuf;
    if (left === 0) return;
    if (this.positional) {
      this.offset += left;
      this.start = this.end = 0;
      return;
    }
    while (left > 0) {
      this.start = this.end = 0;
      const got = this.ensure(Math.min(left, this.buf.length));
      if (got === 0) return;
      const k = Math.min(got, left);
      this.advance(k);
      left -= k;
    }
  }
}

/** A perf.data file or stream, opened for reading. */
export class PerfDataReader {
  /** "file" (PERFILE2 with sections) or "pipe" (everything as records). */
  readonly mode: "file" | "pipe";
  /** The attrs (pipe mode: those seen so far). */
  readonly attrs: PerfDataAttr[] = [];
  /** The features (pipe mode: those seen so far, as HEADER_FEATURE records). */
  readonly features: PerfDataFeatures = { other: new Map() };
  /** The data section (file mode); in pipe mode it starts after the 16-byte header. */
  readonly dataOffset: number;
  readonly dataSize: number;
  #fd: number;
  #ownsFd: boolean;
  #chunk: number;
  #maxPayload: number;
  #decoder: RecordDecoder | null = null;
  #reading = false;

  private constructor(fd: number, ownsFd: boolean, options: PerfDataReaderOptions) {
    this.#fd = fd;
    this.#ownsFd = ownsFd;
    this.#chunk = options.chunkSize ?? DEFAULT_CHUNK;
    this.#maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (!Number.isSafeInteger(this.#chunk) || this.#chunk < 4096) {
      invalid(
        "PerfDataReader: options.chunkSize",
        options.chunkSize,
        "an integer of at least 4096",
      );
    }
    if (!Number.isSafeInteger(this.#maxPayload) || this.#maxPayload < 0) {
      invalid("PerfDataReader: options.maxPayload", options.maxPayload, "a non-negative integer");
    }
    const head = new Uint8Array(f.PERF_FILE_HEADER_SIZE);
    const got = readSync(fd, head, 0, f.PERF_PIPE_HEADER_SIZE, null);
    if (got < 8) throw new PerfDataError(`no perf.data header: the input has ${got} bytes`, 0);
    const dv = new DataView(head.buffer);
    const magic = dv.getBigUint64(0, true);
    if (magic === f.PERF_MAGIC2_SWAPPED) {
      throw new PerfDataError(
        "a big-endian perf.data (written on a big-endian machine): only little-endian files are read",
        0,
      );
    }
    if (magic !== f.PERF_MAGIC2) {
      throw new PerfDataError(
        `not a perf.data file: the magic is 0x${magic.toString(16)}, not "PERFILE2"` +
          (magic === 0x454c494646524550n
            ? ' ("PERFFILE": the version 1 format, not supported)'
            : ""),
        0,
      );
    }
    if (got < 16) throw new PerfDataError("the header is truncated", 8);
    const headerSize = Number(dv.getBigUint64(8, true));
    if (headerSize === f.PERF_PIPE_HEADER_SIZE) {
      this.mode = "pipe";
      this.dataOffset = f.PERF_PIPE_HEADER_SIZE;
      this.dataSize = Infinity;
      return;
    }
    if (headerSize !== f.PERF_FILE_HEADER_SIZE) {
      throw new PerfDataError(
        `header size ${headerSize}: expected ${f.PERF_FILE_HEADER_SIZE} (file) or 16 (pipe)`,
        8,
      );
    }
    this.mode = "file";
    const rest = readSync(fd, head, 16, f.PERF_FILE_HEADER_SIZE - 16, 16);
    if (rest < f.PERF_FILE_HEADER_SIZE - 16) throw new PerfDataError("the header is truncated", 16);
    const fileSize = fstatSync(fd).size;
    const section = (at: number, what: string) => {
      const offset = dv.getBigUint64(at, true), size = dv.getBigUint64(at + 8, true);
      if (offset + size > BigInt(fileSize)) {
        throw new PerfDataError(
          `the ${what} section [${offset}, +${size}) runs past the end of the ${fileSize}-byte file`,
          at,
        );
      }
      return { offset: Number(offset), size: Number(size) };
    };
    const attrSize = Number(dv.getBigUint64(f.PERF_FILE_HEADER_OFF.attr_size, true));
    const attrs = section(f.PERF_FILE_HEADER_OFF.attrs, "attrs");
    const data = section(f.PERF_FILE_HEADER_OFF.data, "data");
    this.dataOffset = data.offset;
    this.dataSize = data.size;
    if (attrSize < 64 + f.PERF_FILE_SECTION_SIZE || attrs.size % attrSize !== 0) {
      throw new PerfDataError(
        `attr_size ${attrSize} with an attrs section of ${attrs.size} bytes: attr_size must be at least 80 and divide it`,
        f.PERF_FILE_HEADER_OFF.attr_size,
      );
    }
    const attrBytes = this.#readAt(attrs.offset, attrs.size, "attrs");
    const adv = new DataView(attrBytes.buffer);
    for (let p = 0; p < attrs.size; p += attrSize) {
      const attr = decodeAttr(attrBytes.slice(p, p + attrSize - f.PERF_FILE_SECTION_SIZE));
      const idsAt = p + attrSize - f.PERF_FILE_SECTION_SIZE;
      const idsOff = adv.getBigUint64(idsAt, true), idsSize = adv.getBigUint64(idsAt + 8, true);
      if (idsOff + idsSize > BigInt(fileSize) || idsSize % 8n !== 0n) {
        throw new PerfDataError(
          `attr ${p / attrSize}: its ids section [${idsOff}, +${idsSize}) is not inside the file`,
          attrs.offset + idsAt,
        );
      }
      const idBytes = this.#readAt(Number(idsOff), Number(idsSize), "ids");
      this.attrs.push({ attr, ids: [...new BigUint64Array(idBytes.buffer)] });
    }
    // Feature sections: one perf_file_section per set bit, right after the data section.
    const bits: number[] = [];
    for (let i = 0; i < f.HEADER_FEAT_BITS; i++) {
      const word = dv.getBigUint64(f.PERF_FILE_HEADER_OFF.adds_features + (i >> 6) * 8, true);
      if ((word >> BigInt(i & 63)) & 1n) bits.push(i);
    }
    const featAt = data.offset + data.size;
    const table = this.#readAt(featAt, bits.length * 16, "feature table");
    const tdv = new DataView(table.buffer);
    bits.forEach((id, i) => {
      const off = tdv.getBigUint64(i * 16, true), size = tdv.getBigUint64(i * 16 + 8, true);
      if (off + size > BigInt(fileSize)) {
        throw new PerfDataError(
          `feature ${
            f.FEATURE_NAMES[id] ?? id
          }: its section [${off}, +${size}) runs past the end of the file`,
          featAt + i * 16,
        );
      }
      // nrcpus before cpu_topology: the topology's per-CPU part needs the CPU count (ids ascend).
      parseFeature(
        id,
        this.#readAt(Number(off), Number(size), "feature"),
        Number(off),
        this.features,
      );
    });
    this.#nameAttrs();
  }

  /** Opens a perf.data file (or a file holding a pipe-mode stream), or reads fd (e.g. 0 for stdin). */
  static open(path: string | number, options: PerfDataReaderOptions = {}): PerfDataReader {
    if (typeof path === "number") return new PerfDataReader(path, false, options);
    if (typeof path !== "string" || path === "") {
      invalid("PerfDataReader.open: path", path, "a file path or an fd");
    }
    const fd = openSync(path, "r");
    try {
      return new PerfDataReader(fd, true, options);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  #readAt(offset: number, size: number, what: string): Uint8Array {
    const out = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const got = readSync(this.#fd, out, done, size - done, offset + done);
      if (got === 0) throw new PerfDataError(`the ${what} section is truncated`, offset + done);
      done += got;
    }
    return out;
  }

  #nameAttrs(): void {
    const desc = this.features.eventDesc;
    if (!desc) return;
    this.attrs.forEach((a, i) => {
      const byId = a.ids.length
        ? desc.find((d) => d.ids.some((id) => a.ids.includes(id)))
        : undefined;
      const d = byId ?? desc[i];
      if (d) a.name = d.name;
    });
  }

  #decoderNow(): RecordDecoder {
    if (this.#decoder === null) {
      if (this.attrs.length === 0) {
        throw new PerfDataError(
          "a kernel record before any attr (no HEADER_ATTR in the stream)",
          -1,
        );
      }
      this.#decoder = new RecordDecoder(this.attrs.map((a) => ({ attr: a.attr, ids: a.ids })));
    }
    return this.#decoder;
  }

  /** The event's name for an attr index (event_desc's, else "type:config"). */
  eventName(attrIndex: number): string {
    const a = this.attrs[attrIndex];
    if (!a) return `attr${attrIndex}`;
    return a.name ?? `${a.attr.type}:0x${a.attr.config.toString(16)}`;
  }

  /** Every record of the data section (pipe: of the stream), with its offset and attr index. */
  *entries(): Generator<PerfDataEntry> {
    if (this.#fd < 0) throw new ClosedError("PerfDataReader");
    if (this.#reading) {
      invalid("PerfDataReader.entries()", "a second iteration", "one iteration at a time");
    }
    this.#reading = true;
    const src = new ChunkSource(
      this.#fd,
      this.mode === "file",
      this.dataOffset,
      this.mode === "file" ? this.dataOffset + this.dataSize : Infinity,
      this.#chunk,
    );
    try {
      while (true) {
        const have = src.ensure(8);
        if (have === 0) return;
        const at = src.offset;
        if (have < 8) throw new PerfDataError(`a truncated record header (${have} bytes)`, at);
        const dv = new DataView(src.buf.buffer, src.buf.byteOffset);
        const type = dv.getUint32(src.start, true);
        const size = dv.getUint16(src.start + 6, true);
        if (size < 8) {
          throw new PerfDecodeError(
            type,
            at,
            size,
            "header.size",
            6,
            "less than the 8-byte header",
          );
        }
        if (src.ensure(size) < size) {
          throw new PerfDataError(
            `a truncated record: type ${type}, size ${size}, ${src.available} bytes left`,
            at,
          );
        }
        if (type < f.PERF_RECORD_USER_TYPE_START) {
          const dec = this.#decoderNow();
          let record: PerfRecord;
          try {
            record = dec.decode(src.buf, src.start);
          } catch (e) {
            if (e instanceof PerfDecodeError) {
              throw new PerfDecodeError(
                e.recordType,
                at,
                e.recordSize,
                e.field,
                e.fieldOffset,
                e.detail,
              );
            }
            throw e;
          }
          src.advance(size);
          yield { offset: at, attrIndex: dec.lastAttrIndex, record };
          continue;
        }
        const rec = src.buf.subarray(src.start, src.start + size);
        const record = decodeToolRecord(rec, at);
        const payload = payloadSizeOf(type, rec);
        src.advance(size);
        if (payload > 0n) {
          const n = Number(payload);
          if (n <= this.#maxPayload && src.ensure(n) >= n) {
            (record as { payload?: Uint8Array }).payload = src.buf.slice(src.start, src.start + n);
            src.advance(n);
          } else {
            if (src.positional && src.offset + n > src.limit) {
              throw new PerfDataError(`a payload of ${n} bytes runs past the data section`, at);
            }
            src.skip(n);
          }
        }
        this.#absorb(record);
        yield { offset: at, attrIndex: 0, record };
      }
    } finally {
      this.#reading = false;
    }
  }

  /** Every record, without offsets. */
  *records(): Generator<PerfDataRecord> {
    for (const e of this.entries()) yield e.record;
  }

  /** Pipe mode: attrs and features arrive as records. */
  #absorb(r: ToolRecord): void {
    if (r.kind === "headerAttr") {
      this.attrs.push({ attr: r.attr, ids: r.ids });
      this.#decoder = null;
    } else if (r.kind === "headerFeature") {
      parseFeature(r.featureId, r.data, -1, this.features);
      if (r.featureId === f.HEADER_EVENT_DESC) this.#nameAttrs();
    } else if (r.kind === "tracingData" && r.payload) {
      this.features.tracingData ??= r.payload;
    } else if (r.kind === "buildId") {
      (this.features.buildIds ??= []).push(r.entry);
    }
  }

  /** Closes the file (not an fd the caller gave). */
  close(): void {
    if (this.#fd >= 0 && this.#ownsFd) closeSync(this.#fd);
    this.#fd = -1;
  }
}

/** Build ids from a HEADER_BUILD_ID section's bytes (for callers holding the bytes). */
export { parseBuildIds };
