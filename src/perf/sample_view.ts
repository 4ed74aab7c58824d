/**
 * PERF_RECORD_SAMPLE without copying: `SampleView.locate` walks a sample once,
 * checking every field against the record's end and remembering where each
 * one is; the getters read a field only when asked. Locating allocates
 * nothing, so a ring reader can decode millions of samples a second and pay
 * only for the fields it reads (a 64-bit field read is a bigint, which the
 * engines allocate; byte fields are views into the caller's bytes).
 * `materializeSample` turns a view into a plain SampleRecord that owns its bytes.
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import type {
  BranchEntry,
  BranchStack,
  Callchain,
  CallchainContext,
  CallchainSegment,
  CpuMode,
  DataSource,
  ReadValues,
  SampledRegs,
  SampleRecord,
  StackUser,
  WeightStruct,
} from "./records.ts";
import type { RecordLayout } from "./record_layout.ts";
import { PerfDecodeError } from "./decode_error.ts";

const CONTEXTS = new Map<bigint, CallchainContext>([
  [pe.PERF_CONTEXT_HV, "hv"],
  [pe.PERF_CONTEXT_KERNEL, "kernel"],
  [pe.PERF_CONTEXT_USER, "user"],
  [pe.PERF_CONTEXT_GUEST, "guest"],
  [pe.PERF_CONTEXT_GUEST_KERNEL, "guestKernel"],
  [pe.PERF_CONTEXT_GUEST_USER, "guestUser"],
]);

/** The u64s at `off` as a BigUint64Array: a view when aligned, else a copy. */
export function u64Array(u8: Uint8Array, off: number, count: number): BigUint64Array {
  const abs = u8.byteOffset + off;
  if (abs % 8 === 0) return new BigUint64Array(u8.buffer, abs, count);
  return new BigUint64Array(u8.slice(off, off + count * 8).buffer);
}

/** Decodes perf_branch_entry's third word (mispred:1 predicted:1 in_tx:1 abort:1 cycles:16 type:4 spec:2 new_type:4 priv:3). */
export function branchEntry(
  from: bigint,
  to: bigint,
  flagsLo: number,
  flagsHi: number,
): BranchEntry {
  return {
    from,
    to,
    mispred: (flagsLo & 1) !== 0,
    predicted: (flagsLo & 2) !== 0,
    inTx: (flagsLo & 4) !== 0,
    abort: (flagsLo & 8) !== 0,
    cycles: (flagsLo >>> 4) & 0xffff,
    type: (flagsLo >>> 20) & 0xf,
    spec: (flagsLo >>> 24) & 0x3,
    newType: (flagsLo >>> 26) & 0xf,
    priv: ((flagsLo >>> 30) & 0x3) | ((flagsHi & 1) << 2),
  };
}

/** union perf_mem_data_src's bitfields. */
export function dataSource(raw: bigint): DataSource {
  const lo = Number(raw & 0xffffffffn);
  const hi = Number(raw >> 32n);
  return {
    raw,
    memOp: lo & 0x1f,
    memLvl: (lo >>> 5) & 0x3fff,
    memSnoop: (lo >>> 19) & 0x1f,
    memLock: (lo >>> 24) & 0x3,
    memDtlb: ((lo >>> 26) & 0x3f) | ((hi & 1) << 6),
    memLvlNum: (hi >>> 1) & 0xf,
    memRemote: (hi >>> 5) & 1,
    memSnoopx: (hi >>> 6) & 3,
    memBlk: (hi >>> 8) & 7,
    memHops: (hi >>> 11) & 7,
  };
}

/** Reads a struct read_format at `off` (already bounds-checked by `readFormatSize`). */
export function readValues(dv: DataView, off: number, readFormat: number): ReadValues {
  const u64 = (o: number) => dv.getBigUint64(o, true);
  const out: ReadValues = { group: (readFormat & pe.PERF_FORMAT_GROUP) !== 0, counters: [] };
  const te = (readFormat & pe.PERF_FORMAT_TOTAL_TIME_ENABLED) !== 0;
  const tr = (readFormat & pe.PERF_FORMAT_TOTAL_TIME_RUNNING) !== 0;
  const hasId = (readFormat & pe.PERF_FORMAT_ID) !== 0;
  const hasLost = (readFormat & pe.PERF_FORMAT_LOST) !== 0;
  let p = off;
  const counter = () => {
    const c: { value: bigint; id?: bigint; lost?: bigint } = { value: u64(p) };
    p += 8;
    if (hasId) c.id = u64(p), p += 8;
    if (hasLost) c.lost = u64(p), p += 8;
    return c;
  };
  if (out.group) {
    const nr = Number(u64(p));
    p += 8;
    if (te) out.timeEnabled = u64(p), p += 8;
    if (tr) out.timeRunning = u64(p), p += 8;
    for (let i = 0; i < nr; i++) out.counters.push(counter());
  } else {
    const value = u64(p);
    p += 8;
    if (te) out.timeEnabled = u64(p), p += 8;
    if (tr) out.timeRunning = u64(p), p += 8;
    const c: { value: bigint; id?: bigint; lost?: bigint } = { value };
    if (hasId) c.id = u64(p), p += 8;
    if (hasLost) c.lost = u64(p), p += 8;
    out.counters.push(c);
  }
  return out;
}

/**
 * The size of the struct read_format at `off`, checked against `end`
 * (PerfDecodeError when its counters do not fit). `fail` builds the error.
 */
export function readFormatSize(
  dv: DataView,
  off: number,
  end: number,
  readFormat: number,
  fail: (field: string, at: number, what: string) => never,
): number {
  const te = (readFormat & pe.PERF_FORMAT_TOTAL_TIME_ENABLED) !== 0 ? 1 : 0;
  const tr = (readFormat & pe.PERF_FORMAT_TOTAL_TIME_RUNNING) !== 0 ? 1 : 0;
  const perCounter = 1 + ((readFormat & pe.PERF_FORMAT_ID) !== 0 ? 1 : 0) +
    ((readFormat & pe.PERF_FORMAT_LOST) !== 0 ? 1 : 0);
  if ((readFormat & pe.PERF_FORMAT_GROUP) === 0) {
    const size = 8 * (te + tr + perCounter);
    if (off + size > end) fail("read", off, `needs ${size} bytes, ${end - off} left`);
    return size;
  }
  if (off + 8 > end) fail("read.nr", off, `needs 8 bytes, ${end - off} left`);
  const nr = dv.getBigUint64(off, true);
  const left = end - off - 8 * (1 + te + tr);
  if (left < 0 || nr > BigInt(Math.floor(left / (8 * perCounter)))) {
    fail("read.nr", off, `${nr} counters of ${8 * perCounter} bytes do not fit in ${left} bytes`);
  }
  return 8 * (1 + te + tr) + Number(nr) * 8 * perCounter;
}

/**
 * The sample fields that are one u64 each: those before READ, and those after
 * the branch stack that are not registers, stacks or AUX data (a page-fault
 * sampler's ADDR | PHYS_ADDR | DATA_PAGE_SIZE is made of these only).
 */
const FIXED_FIELDS = pe.PERF_SAMPLE_IDENTIFIER | pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID |
  pe.PERF_SAMPLE_TIME | pe.PERF_SAMPLE_ADDR | pe.PERF_SAMPLE_ID | pe.PERF_SAMPLE_STREAM_ID |
  pe.PERF_SAMPLE_CPU | pe.PERF_SAMPLE_PERIOD | pe.PERF_SAMPLE_WEIGHT |
  pe.PERF_SAMPLE_WEIGHT_STRUCT | pe.PERF_SAMPLE_DATA_SRC | pe.PERF_SAMPLE_TRANSACTION |
  pe.PERF_SAMPLE_PHYS_ADDR | pe.PERF_SAMPLE_CGROUP | pe.PERF_SAMPLE_DATA_PAGE_SIZE |
  pe.PERF_SAMPLE_CODE_PAGE_SIZE;
const WEIGHTS = pe.PERF_SAMPLE_WEIGHT | pe.PERF_SAMPLE_WEIGHT_STRUCT;

/**
 * A SAMPLE record located in someone's bytes. The decoder keeps one and
 * locates each sample into it; it is valid until the next decode call on that
 * decoder, and its byte views as long as the bytes it was given are unchanged.
 */
export class SampleView implements SampleRecord {
  readonly kind = "sample" as const;
  type: number = pe.PERF_RECORD_SAMPLE;
  misc = 0;
  size = 0;
  cpumode: CpuMode = "unknown";
  exactIp = false;
  #dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  #u8: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  #layout!: RecordLayout;
  #identifier = -1;
  #ip = -1;
  #tid = -1;
  #time = -1;
  #addr = -1;
  #id = -1;
  #streamId = -1;
  #cpu = -1;
  #period = -1;
  #read = -1;
  #callchain = -1;
  #callchainNr = 0;
  #raw = -1;
  #rawSize = 0;
  #branch = -1;
  #branchNr = 0;
  #regsUser = -1;
  #stackUser = -1;
  #stackSize = 0;
  #weight = -1;
  #dataSrc = -1;
  #transaction = -1;
  #regsIntr = -1;
  #physAddr = -1;
  #cgroup = -1;
  #dataPageSize = -1;
  #codePageSize = -1;
  #aux = -1;
  #auxSize = 0;

  /**
   * Walks the sample at `start` (its header) of `size` bytes, checking each
   * field against the end; `fail` throws the decoder's PerfDecodeError.
   */
  locate(
    dv: DataView,
    u8: Uint8Array,
    start: number,
    misc: number,
    size: number,
    cpumode: CpuMode,
    layout: RecordLayout,
  ): this {
    this.#dv = dv;
    this.#u8 = u8;
    this.#layout = layout;
    this.misc = misc;
    this.size = size;
    this.cpumode = cpumode;
    this.exactIp = (misc & pe.PERF_RECORD_MISC_EXACT_IP) !== 0;
    const st = layout.sampleType;
    const end = start + size;
    if ((st & ~FIXED_FIELDS) === 0) return this.#locateFixed(st, start, size, end);
    let p = start + 8;
    const fail = (field: string, at: number, what: string): never => {
      throw new PerfDecodeError(pe.PERF_RECORD_SAMPLE, start, size, field, at - start, what);
    };
    const take = (field: string, n: number): number => {
      if (p + n > end) fail(field, p, `needs ${n} bytes, ${end - p} left`);
      const at = p;
      p += n;
      return at;
    };
    this.#identifier = st & pe.PERF_SAMPLE_IDENTIFIER ? take("identifier", 8) : -1;
    this.#ip = st & pe.PERF_SAMPLE_IP ? take("ip", 8) : -1;
    this.#tid = st & pe.PERF_SAMPLE_TID ? take("pid/tid", 8) : -1;
    this.#time = st & pe.PERF_SAMPLE_TIME ? take("time", 8) : -1;
    this.#addr = st & pe.PERF_SAMPLE_ADDR ? take("addr", 8) : -1;
    this.#id = st & pe.PERF_SAMPLE_ID ? take("id", 8) : -1;
    this.#streamId = st & pe.PERF_SAMPLE_STREAM_ID ? take("streamId", 8) : -1;
    this.#cpu = st & pe.PERF_SAMPLE_CPU ? take("cpu", 8) : -1;
    this.#period = st & pe.PERF_SAMPLE_PERIOD ? take("period", 8) : -1;
    this.#read = -1;
    if (st & pe.PERF_SAMPLE_READ) {
      this.#read = p;
      p += readFormatSize(dv, p, end, layout.readFormat, fail);
    }
    this.#callchain = -1;
    if (st & pe.PERF_SAMPLE_CALLCHAIN) {
      const at = take("callchain.nr", 8);
      const nr = dv.getBigUint64(at, true);
      if (nr > BigInt((end - p) >> 3)) {
        fail("callchain.nr", at, `${nr} frames do not fit in the ${end - p} bytes left`);
      }
      this.#callchainNr = Number(nr);
      this.#callchain = take("callchain.ips", this.#callchainNr * 8);
    }
    this.#raw = -1;
    if (st & pe.PERF_SAMPLE_RAW) {
      const at = take("raw.size", 4);
      this.#rawSize = dv.getUint32(at, true);
      this.#raw = take("raw", this.#rawSize);
    }
    this.#branch = -1;
    if (st & pe.PERF_SAMPLE_BRANCH_STACK) {
      const bst = layout.branchSampleType;
      const at = take("branchStack.nr", 8);
      const nr = dv.getBigUint64(at, true);
      const hwIdx = (bst & pe.PERF_SAMPLE_BRANCH_HW_INDEX) !== 0 ? 8 : 0;
      const per = (bst & pe.PERF_SAMPLE_BRANCH_COUNTERS) !== 0 ? 32 : 24;
      if (nr > BigInt(Math.max(0, Math.floor((end - p - hwIdx) / per)))) {
        fail("branchStack.nr", at, `${nr} entries of ${per} bytes do not fit in ${end - p} bytes`);
      }
      this.#branchNr = Number(nr);
      this.#branch = at;
      p += hwIdx + this.#branchNr * per;
    }
    this.#regsUser = -1;
    if (st & pe.PERF_SAMPLE_REGS_USER) {
      this.#regsUser = take("regsUser.abi", 8);
      if (dv.getBigUint64(this.#regsUser, true) !== 0n) take("regsUser", layout.regsUserCount * 8);
    }
    this.#stackUser = -1;
    if (st & pe.PERF_SAMPLE_STACK_USER) {
      const at = take("stackUser.size", 8);
      const sz = dv.getBigUint64(at, true);
      if (sz > BigInt(end - p)) fail("stackUser.size", at, `${sz} bytes, ${end - p} left`);
      this.#stackSize = Number(sz);
      this.#stackUser = at;
      if (this.#stackSize !== 0) {
        take("stackUser.data", this.#stackSize);
        take("stackUser.dynSize", 8);
      }
    }
    this.#weight = st & WEIGHTS ? take("weight", 8) : -1;
    this.#dataSrc = st & pe.PERF_SAMPLE_DATA_SRC ? take("dataSrc", 8) : -1;
    this.#transaction = st & pe.PERF_SAMPLE_TRANSACTION ? take("transaction", 8) : -1;
    this.#regsIntr = -1;
    if (st & pe.PERF_SAMPLE_REGS_INTR) {
      this.#regsIntr = take("regsIntr.abi", 8);
      if (dv.getBigUint64(this.#regsIntr, true) !== 0n) take("regsIntr", layout.regsIntrCount * 8);
    }
    this.#physAddr = st & pe.PERF_SAMPLE_PHYS_ADDR ? take("physAddr", 8) : -1;
    this.#cgroup = st & pe.PERF_SAMPLE_CGROUP ? take("cgroup", 8) : -1;
    this.#dataPageSize = st & pe.PERF_SAMPLE_DATA_PAGE_SIZE ? take("dataPageSize", 8) : -1;
    this.#codePageSize = st & pe.PERF_SAMPLE_CODE_PAGE_SIZE ? take("codePageSize", 8) : -1;
    this.#aux = -1;
    if (st & pe.PERF_SAMPLE_AUX) {
      const at = take("aux.size", 8);
      const sz = dv.getBigUint64(at, true);
      if (sz > BigInt(end - p)) fail("aux.size", at, `${sz} bytes, ${end - p} left`);
      this.#auxSize = Number(sz);
      this.#aux = take("aux", this.#auxSize);
    }
    return this;
  }

  /**
   * The hot path of a ring reader: a sample made only of 8-byte fields
   * (identifier, ip, pid/tid, time, addr, id, stream id, cpu, period; weight,
   * data source, transaction, physical address, cgroup, page sizes) is
   * located with one bounds check and no closure.
   */
  #locateFixed(st: number, start: number, size: number, end: number): this {
    let q = start + 8;
    this.#identifier = st & pe.PERF_SAMPLE_IDENTIFIER ? (q += 8) - 8 : -1;
    this.#ip = st & pe.PERF_SAMPLE_IP ? (q += 8) - 8 : -1;
    this.#tid = st & pe.PERF_SAMPLE_TID ? (q += 8) - 8 : -1;
    this.#time = st & pe.PERF_SAMPLE_TIME ? (q += 8) - 8 : -1;
    this.#addr = st & pe.PERF_SAMPLE_ADDR ? (q += 8) - 8 : -1;
    this.#id = st & pe.PERF_SAMPLE_ID ? (q += 8) - 8 : -1;
    this.#streamId = st & pe.PERF_SAMPLE_STREAM_ID ? (q += 8) - 8 : -1;
    this.#cpu = st & pe.PERF_SAMPLE_CPU ? (q += 8) - 8 : -1;
    this.#period = st & pe.PERF_SAMPLE_PERIOD ? (q += 8) - 8 : -1;
    this.#weight = st & WEIGHTS ? (q += 8) - 8 : -1;
    this.#dataSrc = st & pe.PERF_SAMPLE_DATA_SRC ? (q += 8) - 8 : -1;
    this.#transaction = st & pe.PERF_SAMPLE_TRANSACTION ? (q += 8) - 8 : -1;
    this.#physAddr = st & pe.PERF_SAMPLE_PHYS_ADDR ? (q += 8) - 8 : -1;
    this.#cgroup = st & pe.PERF_SAMPLE_CGROUP ? (q += 8) - 8 : -1;
    this.#dataPageSize = st & pe.PERF_SAMPLE_DATA_PAGE_SIZE ? (q += 8) - 8 : -1;
    this.#codePageSize = st & pe.PERF_SAMPLE_CODE_PAGE_SIZE ? (q += 8) - 8 : -1;
    if (q > end) {
      throw new PerfDecodeError(
        pe.PERF_RECORD_SAMPLE,
        start,
        size,
        "fields",
        8,
        `${q - start - 8} bytes of fixed fields do not fit in ${size - 8}`,
      );
    }
    this.#read =
      this.#callchain =
      this.#raw =
      this.#branch =
      this.#regsUser =
      this.#stackUser =
      this.#regsIntr =
      this.#aux =
        -1;
    return this;
  }

  #u64(at: number): bigint | undefined {
    return at < 0 ? undefined : this.#dv.getBigUint64(at, true);
  }
  get identifier(): bigint | undefined {
    return this.#u64(this.#identifier);
  }
  get ip(): bigint | undefined {
    return this.#u64(this.#ip);
  }
  get pid(): number | undefined {
    return this.#tid < 0 ? undefined : this.#dv.getUint32(this.#tid, true);
  }
  get tid(): number | undefined {
    return this.#tid < 0 ? undefined : this.#dv.getUint32(this.#tid + 4, true);
  }
  get time(): bigint | undefined {
    return this.#u64(this.#time);
  }
  get addr(): bigint | undefined {
    return this.#u64(this.#addr);
  }
  get id(): bigint | undefined {
    return this.#u64(this.#id);
  }
  get streamId(): bigint | undefined {
    return this.#u64(this.#streamId);
  }
  get cpu(): number | undefined {
    return this.#cpu < 0 ? undefined : this.#dv.getUint32(this.#cpu, true);
  }
  get period(): bigint | undefined {
    return this.#u64(this.#period);
  }
  /** Built on access (an object per read). */
  get read(): ReadValues | undefined {
    return this.#read < 0 ? undefined : readValues(this.#dv, this.#read, this.#layout.readFormat);
  }
  /** Built on access; `ips` and the segments' ips are views into the record's bytes when 8-aligned. */
  get callchain(): Callchain | undefined {
    if (this.#callchain < 0) return undefined;
    const ips = u64Array(this.#u8, this.#callchain, this.#callchainNr);
    const segments: CallchainSegment[] = [];
    let context: CallchainContext = this.cpumode === "kernel" ? "kernel" : "user";
    let from = 0;
    for (let i = 0; i <= ips.length; i++) {
      const ip = i < ips.length ? ips[i] : undefined;
      const marker = ip !== undefined && ip >= pe.PERF_CONTEXT_MAX;
      if (i === ips.length || marker) {
        if (i > from) segments.push({ context, ips: ips.subarray(from, i) });
        if (marker) {
          context = CONTEXTS.get(ip!) ?? context;
          from = i + 1;
        }
      }
    }
    return { ips, segments };
  }
  /** A view of the `size` raw bytes. */
  get raw(): Uint8Array | undefined {
    return this.#raw < 0 ? undefined : this.#u8.subarray(this.#raw, this.#raw + this.#rawSize);
  }
  /** Built on access (an object per entry). */
  get branchStack(): BranchStack | undefined {
    if (this.#branch < 0) return undefined;
    const dv = this.#dv;
    const bst = this.#layout.branchSampleType;
    let p = this.#branch + 8;
    const out: BranchStack = { entries: [] };
    if (bst & pe.PERF_SAMPLE_BRANCH_HW_INDEX) out.hwIdx = dv.getBigUint64(p, true), p += 8;
    for (let i = 0; i < this.#branchNr; i++, p += 24) {
      out.entries.push(
        branchEntry(
          dv.getBigUint64(p, true),
          dv.getBigUint64(p + 8, true),
          dv.getUint32(p + 16, true),
          dv.getUint32(p + 20, true),
        ),
      );
    }
    if (bst & pe.PERF_SAMPLE_BRANCH_COUNTERS) {
      out.counters = u64Array(this.#u8, p, this.#branchNr);
    }
    return out;
  }
  #regs(at: number, mask: bigint, count: number): SampledRegs | undefined {
    if (at < 0) return undefined;
    const abi = Number(this.#dv.getBigUint64(at, true));
    return { abi, mask, values: u64Array(this.#u8, at + 8, abi === 0 ? 0 : count) };
  }
  get regsUser(): SampledRegs | undefined {
    return this.#regs(this.#regsUser, this.#layout.regsUserMask, this.#layout.regsUserCount);
  }
  get regsIntr(): SampledRegs | undefined {
    return this.#regs(this.#regsIntr, this.#layout.regsIntrMask, this.#layout.regsIntrCount);
  }
  get stackUser(): StackUser | undefined {
    if (this.#stackUser < 0) return undefined;
    const n = this.#stackSize;
    const data = this.#u8.subarray(this.#stackUser + 8, this.#stackUser + 8 + n);
    const dynSize = n === 0 ? 0n : this.#dv.getBigUint64(this.#stackUser + 8 + n, true);
    return { size: BigInt(n), data, dynSize };
  }
  get weight(): bigint | undefined {
    return this.#layout.sampleType & pe.PERF_SAMPLE_WEIGHT ? this.#u64(this.#weight) : undefined;
  }
  get weightStruct(): WeightStruct | undefined {
    if (!(this.#layout.sampleType & pe.PERF_SAMPLE_WEIGHT_STRUCT)) return undefined;
    const dv = this.#dv, w = this.#weight;
    return {
      var1Dw: dv.getUint32(w, true),
      var2W: dv.getUint16(w + 4, true),
      var3W: dv.getUint16(w + 6, true),
    };
  }
  get dataSrc(): DataSource | undefined {
    return this.#dataSrc < 0 ? undefined : dataSource(this.#dv.getBigUint64(this.#dataSrc, true));
  }
  get transaction(): bigint | undefined {
    return this.#u64(this.#transaction);
  }
  get physAddr(): bigint | undefined {
    return this.#u64(this.#physAddr);
  }
  get cgroup(): bigint | undefined {
    return this.#u64(this.#cgroup);
  }
  get dataPageSize(): bigint | undefined {
    return this.#u64(this.#dataPageSize);
  }
  get codePageSize(): bigint | undefined {
    return this.#u64(this.#codePageSize);
  }
  /** A view of the AUX snapshot's bytes. */
  get aux(): Uint8Array | undefined {
    return this.#aux < 0 ? undefined : this.#u8.subarray(this.#aux, this.#aux + this.#auxSize);
  }
}

const SAMPLE_FIELDS = [
  "identifier",
  "ip",
  "pid",
  "tid",
  "time",
  "addr",
  "id",
  "streamId",
  "cpu",
  "period",
  "read",
  "callchain",
  "raw",
  "branchStack",
  "regsUser",
  "stackUser",
  "weight",
  "weightStruct",
  "dataSrc",
  "transaction",
  "regsIntr",
  "physAddr",
  "cgroup",
  "dataPageSize",
  "codePageSize",
  "aux",
] as const;

function copyU64(a: BigUint64Array): BigUint64Array {
  return new BigUint64Array(a);
}

/** A plain SampleRecord with the view's fields, owning copies of every byte field. */
export function materializeSample(v: SampleView): SampleRecord {
  const out: SampleRecord = {
    kind: "sample",
    type: v.type,
    misc: v.misc,
    size: v.size,
    cpumode: v.cpumode,
    exactIp: v.exactIp,
  };
  const o = out as unknown as Record<string, unknown>;
  for (const k of SAMPLE_FIELDS) {
    const x = v[k];
    if (x !== undefined) o[k] = x;
  }
  if (out.raw) out.raw = out.raw.slice();
  if (out.aux) out.aux = out.aux.slice();
  if (out.stackUser) out.stackUser.data = out.stackUser.data.slice();
  if (out.regsUser) out.regsUser.values = copyU64(out.regsUser.values);
  if (out.regsIntr) out.regsIntr.values = copyU64(out.regsIntr.values);
  if (out.branchStack?.counters) out.branchStack.counters = copyU64(out.branchStack.counters);
  if (out.callchain) {
    const ips = copyU64(out.callchain.ips);
    const base = out.callchain.ips.byteOffset;
    out.callchain = {
      ips,
      segments: out.callchain.segments.map((s) => ({
        context: s.context,
        ips: ips.subarray(
          (s.ips.byteOffset - base) / 8,
          (s.ips.byteOffset - base) / 8 + s.ips.length,
        ),
      })),
    };
  }
  return out;
}
