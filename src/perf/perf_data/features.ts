/**
 * perf.data feature sections (tools/perf/util/header.c `write_*` /
 * `process_*`): decoded for the ones a reader needs (build ids, host and
 * kernel, CPUs, memory, command line, event descriptions, CPU topology,
 * clock, sample times), kept as bytes for the rest. Also their encoders, for
 * the writer. Every length is checked: a short or inconsistent section throws
 * PerfDataError naming the feature.
 * @module
 */
import * as f from "./format.ts";
import { decodeAttr, type PerfEventAttrFields } from "../attr.ts";
import { UmmuArgumentError } from "../../errors.ts";

/** A perf.data file that cannot be read: what, and where in the file. */
export class PerfDataError extends UmmuArgumentError {
  /** Always "PerfDataError". */
  override name = "PerfDataError";
  /** `offset`: the file offset where reading stopped (-1 when unknown). */
  constructor(message: string, readonly offset: number) {
    super(
      offset >= 0 ? `perf.data: ${message} (at file offset ${offset})` : `perf.data: ${message}`,
    );
  }
}

/** One build id (HEADER_BUILD_ID entries, PERF_RECORD_HEADER_BUILD_ID). */
export interface BuildIdEntry {
  /** The pid of the machine (-1: the host kernel, 0 or a pid: a user space mapping). */
  pid: number;
  /** The header's misc (cpumode of the object: kernel or user). */
  misc: number;
  buildId: Uint8Array;
  filename: string;
}

/** One event of HEADER_EVENT_DESC: its attr, name and ids. */
export interface EventDesc {
  attr: PerfEventAttrFields;
  name: string;
  ids: bigint[];
}

/** HEADER_CPU_TOPOLOGY (the parts before the die and cluster lists). */
export interface CpuTopology {
  coreSiblings: string[];
  threadSiblings: string[];
  /** Per CPU, when the file has them. */
  cores?: { coreId: number; socketId: number }[];
}

/** The decoded features of a perf.data file (each present when the file has it). */
export interface PerfDataFeatures {
  tracingData?: Uint8Array;
  buildIds?: BuildIdEntry[];
  hostname?: string;
  osrelease?: string;
  version?: string;
  arch?: string;
  nrcpus?: { available: number; online: number };
  cpudesc?: string;
  cpuid?: string;
  /** kB (as /proc/meminfo's MemTotal). */
  totalMem?: bigint;
  cmdline?: string[];
  eventDesc?: EventDesc[];
  cpuTopology?: CpuTopology;
  /** The resolution of the attrs' clock, ns (HEADER_CLOCKID). */
  clockidResNs?: bigint;
  sampleTime?: { first: bigint; last: bigint };
  /** Every feature this reader does not decode, by id, as its bytes. */
  other: Map<number, Uint8Array>;
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** A cursor over one feature section's bytes with checked reads. */
class Cursor {
  p = 0;
  readonly dv: DataView;
  constructor(readonly u8: Uint8Array, readonly what: string, readonly base: number) {
    this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  }
  need(n: number, field: string): void {
    if (n < 0 || this.p + n > this.u8.length) {
      throw new PerfDataError(
        `feature ${this.what}: ${field} needs ${n} bytes, ${this.u8.length - this.p} left`,
        this.base + this.p,
      );
    }
  }
  u32(field: string): number {
    this.need(4, field);
    return (this.p += 4, this.dv.getUint32(this.p - 4, true));
  }
  u64(field: string): bigint {
    this.need(8, field);
    return (this.p += 8, this.dv.getBigUint64(this.p - 8, true));
  }
  /** do_write_string: u32 len (padded), then len bytes, NUL-terminated. */
  string(field: string): string {
    const len = this.u32(`${field} length`);
    this.need(len, field);
    let end = this.p;
    while (end < this.p + len && this.u8[end] !== 0) end++;
    const s = utf8.decode(this.u8.subarray(this.p, end));
    this.p += len;
    return s;
  }
  count(field: string, each: number): number {
    const n = this.u32(field);
    if (n * each > this.u8.length - this.p) {
      throw new PerfDataError(
        `feature ${this.what}: ${field} ${n} does not fit in the ${
          this.u8.length - this.p
        } bytes left`,
        this.base + this.p - 4,
      );
    }
    return n;
  }
}

/** Reads build-id records (struct perf_record_header_build_id) back to back. */
export function parseBuildIds(u8: Uint8Array, base: number): BuildIdEntry[] {
  const out: BuildIdEntry[] = [];
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let p = 0;
  while (p + 8 <= u8.length) {
    const misc = dv.getUint16(p + 4, true);
    const size = dv.getUint16(p + 6, true);
    if (size < 36 || p + size > u8.length) {
      throw new PerfDataError(
        `build id entry of size ${size} (at least 36, within the section)`,
        base + p,
      );
    }
    out.push(parseBuildIdRecord(u8.subarray(p, p + size), misc));
    p += size;
  }
  return out;
}

/** One build-id record's body: pid s32, build_id[24] (data[20], size u8), filename. */
export function parseBuildIdRecord(rec: Uint8Array, misc: number): BuildIdEntry {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const pid = dv.getInt32(8, true);
  const n = misc & f.PERF_RECORD_MISC_BUILD_ID_SIZE ? Math.min(rec[32], 20) : 20;
  const buildId = rec.slice(12, 12 + n);
  let end = 36;
  while (end < rec.length && rec[end] !== 0) end++;
  return { pid, misc, buildId, filename: utf8.decode(rec.subarray(36, end)) };
}

/** Decodes the section of feature `id` into `out` (unknown ones go to `out.other`). */
export function parseFeature(
  id: number,
  u8: Uint8Array,
  base: number,
  out: PerfDataFeatures,
): void {
  const c = new Cursor(u8, f.FEATURE_NAMES[id] ?? `#${id}`, base);
  switch (id) {
    case f.HEADER_TRACING_DATA:
      out.tracingData = u8.slice();
      return;
    case f.HEADER_BUILD_ID:
      out.buildIds = parseBuildIds(u8, base);
      return;
    case f.HEADER_HOSTNAME:
      out.hostname = c.string("hostname");
      return;
    case f.HEADER_OSRELEASE:
      out.osrelease = c.string("osrelease");
      return;
    case f.HEADER_VERSION:
      out.version = c.string("version");
      return;
    case f.HEADER_ARCH:
      out.arch = c.string("arch");
      return;
    case f.HEADER_CPUDESC:
      out.cpudesc = c.string("cpudesc");
      return;
    case f.HEADER_CPUID:
      out.cpuid = c.string("cpuid");
      return;
    case f.HEADER_NRCPUS:
      out.nrcpus = { available: c.u32("nr_cpus_avail"), online: c.u32("nr_cpus_online") };
      return;
    case f.HEADER_TOTAL_MEM:
      out.totalMem = c.u64("total_mem");
      return;
    case f.HEADER_CMDLINE: {
      const n = c.count("nr", 4);
      out.cmdline = [];
      for (let i = 0; i < n; i++) out.cmdline.push(c.string(`argv[${i}]`));
      return;
    }
    case f.HEADER_EVENT_DESC: {
      const n = c.count("nr_events", 8);
      const attrSize = c.u32("attr_size");
      if (attrSize < 64) {
        throw new PerfDataError(
          `feature event_desc: attr_size ${attrSize} (at least 64)`,
          base + 4,
        );
      }
      out.eventDesc = [];
      for (let i = 0; i < n; i++) {
        c.need(attrSize, `event ${i} attr`);
        const attr = decodeAttr(u8.slice(c.p, c.p + attrSize));
        c.p += attrSize;
        const nrIds = c.count(`event ${i} nr_ids`, 8);
        const name = c.string(`event ${i} name`);
        const ids: bigint[] = [];
        for (let j = 0; j < nrIds; j++) ids.push(c.u64(`event ${i} id ${j}`));
        out.eventDesc.push({ attr, name, ids });
      }
      return;
    }
    case f.HEADER_CPU_TOPOLOGY: {
      const topo: CpuTopology = { coreSiblings: [], threadSiblings: [] };
      const nc = c.count("nr core siblings", 4);
      for (let i = 0; i < nc; i++) topo.coreSiblings.push(c.string("core siblings"));
      const nt = c.count("nr thread siblings", 4);
      for (let i = 0; i < nt; i++) topo.threadSiblings.push(c.string("thread siblings"));
      const cpus = out.nrcpus?.available;
      if (cpus !== undefined && u8.length - c.p >= cpus * 8) {
        topo.cores = [];
        for (let i = 0; i < cpus; i++) {
          topo.cores.push({ coreId: c.u32("core_id"), socketId: c.u32("socket_id") });
        }
      }
      out.cpuTopology = topo;
      return;
    }
    case f.HEADER_CLOCKID:
      out.clockidResNs = c.u64("clockid_res_ns");
      return;
    case f.HEADER_SAMPLE_TIME:
      out.sampleTime = { first: c.u64("first"), last: c.u64("last") };
      return;
    default:
      out.other.set(id, u8.slice());
  }
}

/** A growing little-endian byte writer (for feature sections and records). */
export class ByteWriter {
  #buf = new Uint8Array(256);
  #dv = new DataView(this.#buf.buffer);
  length = 0;
  #grow(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#dv = new DataView(next.buffer);
  }
  u16(v: number): this {
    this.#grow(2);
    this.#dv.setUint16(this.length, v, true);
    return (this.length += 2, this);
  }
  u32(v: number): this {
    this.#grow(4);
    this.#dv.setUint32(this.length, v >>> 0, true);
    return (this.length += 4, this);
  }
  i32(v: number): this {
    this.#grow(4);
    this.#dv.setInt32(this.length, v, true);
    return (this.length += 4, this);
  }
  u64(v: bigint): this {
    this.#grow(8);
    this.#dv.setBigUint64(this.length, BigInt.asUintN(64, v), true);
    return (this.length += 8, this);
  }
  bytes(b: Uint8Array): this {
    this.#grow(b.length);
    this.#buf.set(b, this.length);
    return (this.length += b.length, this);
  }
  zeros(n: number): this {
    this.#grow(n);
    this.#buf.fill(0, this.length, this.length + n);
    return (this.length += n, this);
  }
  /** Pads with zeros to a multiple of `n`. */
  align(n: number): this {
    return this.zeros((n - (this.length % n)) % n);
  }
  /** do_write_string: u32 len (NUL included, padded to NAME_ALIGN), the bytes, zeros. */
  string(s: string): this {
    const b = encoder.encode(s);
    const len = Math.ceil((b.length + 1) / f.NAME_ALIGN) * f.NAME_ALIGN;
    this.u32(len).bytes(b).zeros(len - b.length);
    return this;
  }
  /** Overwrites a u16 at `at` (a record's size once known). */
  patchU16(at: number, v: number): void {
    this.#dv.setUint16(at, v, true);
  }
  patchU64(at: number, v: bigint): void {
    this.#dv.setBigUint64(at, v, true);
  }
  result(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}
