/**
 * PerfDataWriter: records captured with ummu (the attrs, their event ids, and
 * the records' bytes as the kernel wrote them) saved as a perf.data file
 * (file mode) or stream (pipe mode) that Debian's `perf report` and `perf
 * script` read.
 *
 * Pipe mode (`createPipe(fd)`, what `perf record -o -` writes): the 16-byte
 * pipe header, a PERF_RECORD_HEADER_ATTR per attr (the attr, then its ids),
 * each feature as a PERF_RECORD_HEADER_FEATURE and perf's end-of-features
 * mark, then the records as they come, with a PERF_RECORD_FINISHED_ROUND after
 * each batch (`finishedRound()`: perf sorts and delivers what came before it).
 * Everything is written in order; nothing is patched later.
 *
 * Layout: the 104-byte header, each attr's id array, the attrs section, the
 * data section (written as records arrive, never held in memory), then the
 * feature table and sections: event_desc (so perf names the events),
 * hostname, osrelease, version, arch, nrcpus, cmdline, total_mem. The header
 * is written last, at close(): a file whose writer never closed has a zero
 * magic, and perf refuses it rather than misreading it.
 * @module
 */
import { closeSync, openSync, writeSync } from "node:fs";
import os from "node:os";
import process from "node:process";
import * as f from "./format.ts";
import * as pe from "../../../ffi/perf_event.ts";
import { encodeAttr, type PerfEventAttr } from "../attr.ts";
import { ByteWriter, PerfDataError } from "./features.ts";
import { ClosedError } from "../../errors.ts";
import { invalid } from "../../validate.ts";

/** One event of the file: its attr, the ids of its kernel events, and its name. */
export interface PerfDataWriterAttr {
  attr: PerfEventAttr;
  /** The event ids (PERF_EVENT_IOC_ID) its records carry; needed when there are several attrs. */
  ids?: readonly bigint[];
  /** The name perf shows (e.g. "cpu-clock", "sched:sched_switch"). */
  name: string;
}

/** What the file says about where it was recorded (defaults: this machine and process). */
export interface PerfDataWriterOptions {
  hostname?: string;
  osrelease?: string;
  /** The "perf version" field (default: "ummu"). */
  version?: string;
  arch?: string;
  nrcpus?: { available: number; online: number };
  cmdline?: string[];
  /** kB. */
  totalMem?: bigint;
}

/**
 * A decoded attr (both forms of each union filled) made encodable: the union
 * form its flag chooses, config1/config2 for the breakpoint words.
 */
export function encodableAttr(attr: PerfEventAttr): PerfEventAttr {
  const a: PerfEventAttr = { ...attr };
  if (a.samplePeriod !== undefined && a.sampleFreq !== undefined) {
    if (a.freq) delete a.samplePeriod;
    else delete a.sampleFreq;
  }
  if (a.wakeupEvents !== undefined && a.wakeupWatermark !== undefined) {
    if (a.watermark) delete a.wakeupEvents;
    else delete a.wakeupWatermark;
  }
  if (a.bpAddr !== undefined && a.config1 !== undefined) delete a.bpAddr;
  if (a.bpLen !== undefined && a.config2 !== undefined) delete a.bpLen;
  return a;
}

/** perf 6.1 refuses attrs larger than it knows (128 bytes, VER7): write 136 only when config3 is set. */
function attrBytes(given: PerfEventAttr): Uint8Array {
  const attr = encodableAttr(given);
  const size = attr.size ??
    ((attr.config3 ?? 0n) !== 0n ? pe.PERF_ATTR_SIZE_VER8 : pe.PERF_ATTR_SIZE_VER7);
  return encodeAttr({ ...attr, size }).slice(0, size);
}

/**
 * perf 6.1's HEADER_LAST_FEATURE: the feat_id of the pipe-mode record that
 * ends the features (perf prints the header info there). A newer perf with
 * more features reads it as an empty feature it knows, or warns.
 */
const PIPE_LAST_FEATURE_MARK = f.HEADER_PMU_CAPS + 1;

/** One FINISHED_ROUND record: a header without a body. */
const FINISHED_ROUND = new ByteWriter().u32(f.PERF_RECORD_FINISHED_ROUND).u16(0).u16(8).result();

/** A sleep of `ms` in this thread (a pipe's reader is slow: its fd said EAGAIN). */
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function pause(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Writes a perf.data file (`create`) or stream (`createPipe`): `writeRecord()` each record, then `close()`. */
export class PerfDataWriter {
  #fd: number;
  /** Pipe mode: sequential writes to an fd the caller owns (not closed here). */
  #pipe = false;
  #recordsSinceRound = 0;
  #attrs: { bytes: Uint8Array; ids: readonly bigint[]; name: string }[];
  #options: PerfDataWriterOptions;
  #dataOffset: number;
  #pos: number;
  #attrsSection: { offset: number; size: number };
  #attrSize: number;
  /** Records written so far. */
  records = 0;

  private constructor(
    fd: number,
    attrs: readonly PerfDataWriterAttr[],
    options: PerfDataWriterOptions,
    pipe = false,
  ) {
    this.#fd = fd;
    this.#pipe = pipe;
    this.#options = options;
    this.#attrs = attrs.map((a, i) => {
      if (a === null || typeof a !== "object" || typeof a.name !== "string") {
        invalid(`PerfDataWriter: attrs[${i}]`, a, "an object { attr, ids?, name: string }");
      }
      for (const id of a.ids ?? []) {
        if (typeof id !== "bigint" || id < 0n) {
          invalid(`PerfDataWriter: attrs[${i}].ids`, id, "bigint ids");
        }
      }
      return { bytes: attrBytes(a.attr), ids: a.ids ?? [], name: a.name };
    });
    if (this.#attrs.length === 0) invalid("PerfDataWriter: attrs", attrs, "at least one attr");
    // Every attr entry has the same size in the attrs section: the largest attr's + the ids section.
    const attrLen = Math.max(...this.#attrs.map((a) => a.bytes.length));
    this.#attrSize = attrLen + f.PERF_FILE_SECTION_SIZE;
    if (pipe) {
      this.#attrsSection = { offset: 0, size: 0 };
      this.#dataOffset = this.#pos = 0;
      this.#writePipeHeader();
      return;
    }
    const w = new ByteWriter();
    w.zeros(f.PERF_FILE_HEADER_SIZE);
    const idSections = this.#attrs.map((a) => {
      const offset = w.length;
      for (const id of a.ids) w.u64(id);
      return { offset, size: a.ids.length * 8 };
    });
    const attrsOffset = w.length;
    this.#attrs.forEach((a, i) => {
      w.bytes(a.bytes).zeros(attrLen - a.bytes.length);
      w.u64(BigInt(idSections[i].offset)).u64(BigInt(idSections[i].size));
    });
    this.#attrsSection = { offset: attrsOffset, size: w.length - attrsOffset };
    this.#dataOffset = w.length;
    this.#pos = w.length;
    this.#write(w.result(), 0);
  }

  /** Creates (or truncates) `path` for the events `attrs`. */
  static create(
    path: string,
    attrs: readonly PerfDataWriterAttr[],
    options: PerfDataWriterOptions = {},
  ): PerfDataWriter {
    if (typeof path !== "string" || path === "") {
      invalid("PerfDataWriter.create: path", path, "a file path");
    }
    if (!Array.isArray(attrs)) {
      invalid("PerfDataWriter.create: attrs", attrs, "an array of { attr, ids?, name }");
    }
    const fd = openSync(path, "w", 0o600);
    try {
      return new PerfDataWriter(fd, attrs, options);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Writes a pipe-mode stream to `fd` (1 for stdout; the caller owns it, close()
   * leaves it open): the header, attrs and features now, records as they come.
   */
  static createPipe(
    fd: number,
    attrs: readonly PerfDataWriterAttr[],
    options: PerfDataWriterOptions = {},
  ): PerfDataWriter {
    if (!Number.isSafeInteger(fd) || fd < 0) {
      invalid("PerfDataWriter.createPipe: fd", fd, "an open file descriptor (a number >= 0)");
    }
    if (!Array.isArray(attrs)) {
      invalid("PerfDataWriter.createPipe: attrs", attrs, "an array of { attr, ids?, name }");
    }
    return new PerfDataWriter(fd, attrs, options, true);
  }

  /** Pipe mode's beginning: the pipe header, HEADER_ATTR records, HEADER_FEATURE records. */
  #writePipeHeader(): void {
    const w = new ByteWriter().u64(f.PERF_MAGIC2).u64(BigInt(f.PERF_PIPE_HEADER_SIZE));
    const record = (type: number, body: (w: ByteWriter) => void, what: string) => {
      const start = w.length;
      w.u32(type).u16(0).u16(0);
      body(w);
      const size = w.length - start;
      if (size > 0xffff) {
        throw new PerfDataError(
          `${what} needs a pipe-mode record of ${size} bytes, more than its u16 size holds`,
          -1,
        );
      }
      w.patchU16(start + 6, size);
    };
    this.#attrs.forEach((a, i) => {
      record(f.PERF_RECORD_HEADER_ATTR, (w) => {
        w.bytes(a.bytes);
        for (const id of a.ids) w.u64(id);
      }, `attr ${i} (${a.name}) with ${a.ids.length} ids`);
    });
    for (const [id, body] of [...this.#features()].sort((a, b) => a[0] - b[0])) {
      record(f.PERF_RECORD_HEADER_FEATURE, (w) => w.u64(BigInt(id)).bytes(body), `feature ${id}`);
    }
    record(f.PERF_RECORD_HEADER_FEATURE, (w) => w.u64(BigInt(PIPE_LAST_FEATURE_MARK)), "mark");
    this.#write(w.result(), 0);
  }

  #write(bytes: Uint8Array, at: number): void {
    let done = 0;
    while (done < bytes.length) {
      if (!this.#pipe) {
        done += writeSync(this.#fd, bytes, done, bytes.length - done, at + done);
        continue;
      }
      try {
        done += writeSync(this.#fd, bytes, done, bytes.length - done);
      } catch (e) {
        // A runtime may have made its stdout non-blocking: wait for the reader.
        if ((e as { code?: string }).code !== "EAGAIN") throw e;
        pause(1);
      }
    }
  }

  /**
   * Pipe mode: ends a round (a PERF_RECORD_FINISHED_ROUND after the records
   * written since the last one, none if there were none). perf sorts the
   * records of a round by time and delivers them before reading on. A file
   * needs none (perf sorts all of a file's records).
   */
  finishedRound(): void {
    if (this.#fd < 0) throw new ClosedError("PerfDataWriter");
    if (!this.#pipe || this.#recordsSinceRound === 0) return;
    this.#write(FINISHED_ROUND, 0);
    this.#recordsSinceRound = 0;
  }

  /**
   * Appends one record: its bytes as the kernel (or perf) wrote them, header
   * included (`bytes.length` must equal the header's size). Records of the
   * kernel types are checked for a sane header only; their body is the caller's.
   */
  writeRecord(bytes: Uint8Array): void {
    if (this.#fd < 0) throw new ClosedError("PerfDataWriter");
    if (!(bytes instanceof Uint8Array) || bytes.length < 8) {
      invalid(
        "PerfDataWriter.writeRecord: bytes",
        bytes,
        "a Uint8Array holding one record (at least 8 bytes)",
      );
    }
    const size = bytes[6] | (bytes[7] << 8);
    if (size !== bytes.length) {
      invalid(
        "PerfDataWriter.writeRecord: bytes",
        bytes,
        `one whole record: the header says ${size} bytes, ${bytes.length} given`,
      );
    }
    this.#write(bytes, this.#pos);
    this.#pos += bytes.length;
    this.records++;
    this.#recordsSinceRound++;
  }

  /**
   * Appends a PERF_RECORD_AUXTRACE and the AUX data it carries (as perf
   * record does when it copies an AUX area out): `data` padded with zeros to
   * a multiple of 8 bytes, the padded size in the record. `offset` is where
   * the data began in the AUX stream, `reference` what orders it (perf uses a
   * TSC or a counter), `idx` the AUX buffer's index (one per ring).
   */
  writeAuxtrace(
    data: Uint8Array,
    where: { offset?: bigint; reference?: bigint; idx?: number; tid?: number; cpu?: number } = {},
  ): void {
    if (this.#fd < 0) throw new ClosedError("PerfDataWriter");
    if (!(data instanceof Uint8Array)) {
      invalid("PerfDataWriter.writeAuxtrace: data", data, "a Uint8Array of AUX data");
    }
    if (where === null || typeof where !== "object") {
      invalid(
        "PerfDataWriter.writeAuxtrace: where",
        where,
        "{ offset?, reference?, idx?, tid?, cpu? }",
      );
    }
    for (const k of ["offset", "reference"] as const) {
      const x = where[k];
      if (x !== undefined && (typeof x !== "bigint" || x < 0n || x >= 1n << 64n)) {
        invalid(`PerfDataWriter.writeAuxtrace: where.${k}`, x, "a u64 bigint");
      }
    }
    for (const k of ["idx", "tid", "cpu"] as const) {
      const x = where[k];
      if (x !== undefined && (!Number.isInteger(x) || x < -1 || x > 0xffffffff)) {
        invalid(`PerfDataWriter.writeAuxtrace: where.${k}`, x, "a u32 (or -1)");
      }
    }
    const padded = (data.length + 7) & ~7;
    const w = new ByteWriter().u32(f.PERF_RECORD_AUXTRACE).u16(0).u16(f.AUXTRACE_RECORD_SIZE);
    w.u64(BigInt(padded)).u64(where.offset ?? 0n).u64(where.reference ?? 0n);
    const u32 = (x: number | undefined, none: number) => x === undefined ? none : x >>> 0;
    w.u32(u32(where.idx, 0)).u32(u32(where.tid, 0xffffffff)).u32(u32(where.cpu, 0xffffffff)).u32(0);
    w.bytes(data).zeros(padded - data.length);
    this.#write(w.result(), this.#pos);
    this.#pos += f.AUXTRACE_RECORD_SIZE + padded;
    this.records++;
    this.#recordsSinceRound++;
  }

  /**
   * File mode: writes the features and the header, and closes the file. Pipe
   * mode: ends the last round; the fd stays open (it is the caller's).
   */
  close(): void {
    if (this.#fd < 0) return;
    if (this.#pipe) {
      try {
        this.finishedRound();
      } finally {
        this.#fd = -1;
      }
      return;
    }
    try {
      this.#finish();
    } finally {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }

  /** The feature sections' bodies, by HEADER_* id. */
  #features(): Map<number, Uint8Array> {
    const o = this.#options;
    const features = new Map<number, Uint8Array>();
    const str = (s: string) => new ByteWriter().string(s).result();
    features.set(f.HEADER_HOSTNAME, str(o.hostname ?? os.hostname()));
    features.set(f.HEADER_OSRELEASE, str(o.osrelease ?? os.release()));
    features.set(f.HEADER_VERSION, str(o.version ?? "ummu"));
    features.set(f.HEADER_ARCH, str(o.arch ?? os.machine?.() ?? "x86_64"));
    const cpus = os.cpus().length;
    const nr = o.nrcpus ?? { available: cpus, online: cpus };
    features.set(f.HEADER_NRCPUS, new ByteWriter().u32(nr.available).u32(nr.online).result());
    features.set(
      f.HEADER_TOTAL_MEM,
      new ByteWriter().u64(o.totalMem ?? BigInt(Math.floor(os.totalmem() / 1024))).result(),
    );
    const argv = o.cmdline ?? process.argv;
    const cmd = new ByteWriter().u32(argv.length);
    for (const a of argv) cmd.string(a);
    features.set(f.HEADER_CMDLINE, cmd.result());
    const desc = new ByteWriter().u32(this.#attrs.length).u32(
      this.#attrSize - f.PERF_FILE_SECTION_SIZE,
    );
    for (const a of this.#attrs) {
      desc.bytes(a.bytes).zeros(this.#attrSize - f.PERF_FILE_SECTION_SIZE - a.bytes.length);
      desc.u32(a.ids.length).string(a.name);
      for (const id of a.ids) desc.u64(id);
    }
    features.set(f.HEADER_EVENT_DESC, desc.result());
    return features;
  }

  #finish(): void {
    const features = this.#features();
    const ids = [...features.keys()].sort((a, b) => a - b);
    const dataSize = this.#pos - this.#dataOffset;
    const tableAt = this.#pos;
    const table = new ByteWriter();
    let at = tableAt + ids.length * f.PERF_FILE_SECTION_SIZE;
    const bodies = new ByteWriter();
    for (const id of ids) {
      const b = features.get(id)!;
      table.u64(BigInt(at)).u64(BigInt(b.length));
      bodies.bytes(b);
      at += b.length;
    }
    this.#write(table.result(), tableAt);
    this.#write(bodies.result(), tableAt + table.length);

    const h = new ByteWriter();
    h.u64(f.PERF_MAGIC2).u64(BigInt(f.PERF_FILE_HEADER_SIZE)).u64(BigInt(this.#attrSize));
    h.u64(BigInt(this.#attrsSection.offset)).u64(BigInt(this.#attrsSection.size));
    h.u64(BigInt(this.#dataOffset)).u64(BigInt(dataSize));
    h.u64(0n).u64(0n); // event_types: unused since perf 3.x
    const bits = [0n, 0n, 0n, 0n];
    for (const id of ids) bits[id >> 6] |= 1n << BigInt(id & 63);
    for (const b of bits) h.u64(b);
    if (h.length !== f.PERF_FILE_HEADER_SIZE) {
      throw new PerfDataError(`internal: header of ${h.length} bytes`, 0);
    }
    this.#write(h.result(), 0);
  }
}
