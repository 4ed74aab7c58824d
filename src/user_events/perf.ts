/**
 * perf_event_open(2) on a tracepoint id and a reader of the mmap ring buffer:
 * PERF_SAMPLE_TID | TIME | CPU | RAW records, the raw part being the
 * tracepoint's record (struct trace_entry, then the fields, then padding to
 * 8 bytes). System-wide (one event per online CPU, needs CAP_PERFMON or
 * perf_event_paranoid ≤ 0... as root it works) or for one thread (pid).
 */
import { runtime } from "../../ffi/platform.ts";
import { check, errno, libc, PAGE_SIZE } from "../libc.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import { describeValue } from "./values.ts";
import * as pe from "../../ffi/perf_event.ts";
import * as m from "../../ffi/mman.ts";
import { readText } from "./tracefs.ts";

/** One PERF_RECORD_SAMPLE: where and when the event fired, who emitted it, and its record. */
export interface PerfSample {
  /** The CPU the event was recorded on. */
  cpu: number;
  /** The emitting process (its thread group id). */
  pid: number;
  /** The emitting thread (a Worker's differs from the main thread's). */
  tid: number;
  /** perf clock, nanoseconds. */
  time: bigint;
  /** The tracepoint record: struct trace_entry (8 bytes), fields, padding. */
  raw: Uint8Array;
}

/** How {@linkcode PerfTracepoint.open} attaches: system-wide on some CPUs, or to one thread. */
export interface PerfOpenOptions {
  /** CPUs to open (system-wide mode; default: every online CPU). */
  cpus?: number[];
  /** Trace only this thread id (0: the calling thread) on any CPU, instead of system-wide. */
  pid?: number;
  /** Data pages per ring buffer, a power of two (default 8). */
  pages?: number;
  /** Open disabled (then call enable()). Default false. */
  disabled?: boolean;
}

/** The perf_event_open syscall number of this architecture (libc has no wrapper for it). */
export function perfEventOpenNr(): number {
  if (runtime.arch === "x64") return pe.__NR_perf_event_open_x86_64;
  if (runtime.arch === "arm64") return pe.__NR_perf_event_open_arm64;
  throw new Error(`perf_event_open: unknown syscall number for ${runtime.arch}`);
}

/** Online CPU numbers, from /sys/devices/system/cpu/online ("0-3,6"). */
export function onlineCpus(): number[] {
  const out: number[] = [];
  for (const part of readText("/sys/devices/system/cpu/online").trim().split(",")) {
    const [a, b] = part.split("-").map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

const SAMPLE_TYPE = pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_TIME | pe.PERF_SAMPLE_CPU |
  pe.PERF_SAMPLE_RAW;

function perfOpen(id: number, pid: number, cpu: number, disabled: boolean): number {
  const attr = new Uint8Array(new ArrayBuffer(pe.SIZEOF_PERF_EVENT_ATTR));
  const dv = new DataView(attr.buffer);
  const o = pe.PERF_EVENT_ATTR_OFF;
  dv.setUint32(o.type, pe.PERF_TYPE_TRACEPOINT, true);
  dv.setUint32(o.size, pe.SIZEOF_PERF_EVENT_ATTR, true);
  dv.setBigUint64(o.config, BigInt(id), true);
  dv.setBigUint64(o.sample_period, 1n, true);
  dv.setBigUint64(o.sample_type, BigInt(SAMPLE_TYPE), true);
  dv.setBigUint64(o.flags, BigInt(disabled ? pe.PERF_ATTR_FLAG_DISABLED : 0), true);
  dv.setUint32(o.wakeup_events, 1, true);
  const r = Number(
    libc.syscall(perfEventOpenNr(), runtime.addressOf(attr), pid, cpu, -1, pe.PERF_FLAG_FD_CLOEXEC),
  );
  if (r < 0) {
    const e = errno();
    const hints: Record<number, string> = {
      1: "perf_event_open needs CAP_PERFMON (or root), or a lower kernel.perf_event_paranoid",
      13: "perf_event_open needs CAP_PERFMON (or root), or a lower kernel.perf_event_paranoid",
      2: `no tracepoint with id ${id}`,
      22: "invalid attribute (is the id a tracepoint id?)",
    };
    throw new UmmuError(
      `perf_event_open(tracepoint ${id}, pid ${pid}, cpu ${cpu})`,
      e,
      hints[e] ?? "",
    );
  }
  return r;
}

class Ring {
  readonly fd: number;
  readonly addr: number;
  readonly len: number;
  readonly #ctl: BigUint64Array;
  readonly #data: Uint8Array;
  readonly #dataOff: number;
  readonly #size: number;

  constructor(fd: number, pages: number) {
    this.fd = fd;
    this.len = (1 + pages) * PAGE_SIZE;
    this.addr = check(
      libc.mmap(0, this.len, m.PROT_READ | m.PROT_WRITE, m.MAP_SHARED, fd, 0),
      "mmap(perf ring)",
    );
    const ab = runtime.view(this.addr, this.len);
    this.#ctl = new BigUint64Array(ab, 0, PAGE_SIZE / 8);
    const dv = new DataView(ab);
    this.#dataOff = Number(dv.getBigUint64(pe.PERF_MMAP_PAGE_OFF.data_offset, true)) || PAGE_SIZE;
    this.#size = Number(dv.getBigUint64(pe.PERF_MMAP_PAGE_OFF.data_size, true)) ||
      pages * PAGE_SIZE;
    this.#data = new Uint8Array(ab, this.#dataOff, this.#size);
  }

  /** Drains the ring into `out`; returns the count of lost records reported. */
  drain(out: PerfSample[]): number {
    const headIdx = pe.PERF_MMAP_PAGE_OFF.data_head / 8;
    const tailIdx = pe.PERF_MMAP_PAGE_OFF.data_tail / 8;
    // Atomics.load is sequentially consistent: it orders the data reads after it (the smp_rmb).
    const head = Number(Atomics.load(this.#ctl, headIdx));
    let tail = Number(this.#ctl[tailIdx]);
    let lost = 0;
    while (tail < head) {
      const hdr = this.#bytes(tail, 8);
      const hv = new DataView(hdr.buffer, hdr.byteOffset, 8);
      const type = hv.getUint32(0, true);
      const recSize = hv.getUint16(6, true);
      if (recSize < 8) break;
      const rec = this.#bytes(tail, recSize);
      const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
      if (type === pe.PERF_RECORD_SAMPLE) {
        const pid = dv.getUint32(8, true);
        const tid = dv.getUint32(12, true);
        const time = dv.getBigUint64(16, true);
        const cpu = dv.getUint32(24, true);
        const rawSize = dv.getUint32(32, true);
        out.push({ cpu, pid, tid, time, raw: rec.slice(36, 36 + rawSize) });
      } else if (type === pe.PERF_RECORD_LOST) {
        lost += Number(dv.getBigUint64(16, true));
      }
      tail += recSize;
    }
    Atomics.store(this.#ctl, tailIdx, BigInt(tail));
    return lost;
  }

  /** `n` bytes at ring position `pos`, copied if they wrap around the end. */
  #bytes(pos: number, n: number): Uint8Array {
    const start = pos % this.#size;
    if (start + n <= this.#size) return this.#data.subarray(start, start + n);
    const b = new Uint8Array(n);
    const first = this.#size - start;
    b.set(this.#data.subarray(start));
    b.set(this.#data.subarray(0, n - first), first);
    return b;
  }

  close(): void {
    libc.munmap(this.addr, this.len);
    libc.close(this.fd);
  }
}

/**
 * A tracepoint opened with perf_event_open, with one ring buffer per event.
 * Unlike ftrace's `trace` buffer, shared by every ftrace user, the rings belong
 * to this object: read() consumes what it returns, and each sample carries the
 * record's raw bytes for decodePayload() or decodeEventHeader().
 *
 * @example
 * ```ts
 * import { decodePayload, PerfTracepoint, tracepointId, UserEvents } from "@ummu/ummu/user_events";
 *
 * const events = UserEvents.open();
 * const tp = events.register("myapp_gc", "u32 freed_kb");
 * const perf = PerfTracepoint.open(tracepointId("user_events", tp.name), { pages: 16 });
 * console.log(tp.enabled); // true: perf is attached
 * tp.emit(512);
 * for (const s of perf.read()) {
 *   console.log(s.cpu, s.tid, s.time, decodePayload(tp.layout, s.raw.subarray(8)));
 * }
 * perf.close();
 * events.close();
 * ```
 */
export class PerfTracepoint {
  /** The tracepoint id it was opened on (perf_event_attr.config). */
  readonly id: number;
  readonly #rings: Ring[];
  #closed = false;
  /** Records the kernel dropped (PERF_RECORD_LOST), summed over reads. */
  lost = 0;

  private constructor(id: number, rings: Ring[]) {
    this.id = id;
    this.#rings = rings;
  }

  /**
   * Opens tracepoint `id` (from events/<system>/<name>/id). Opening attaches
   * the tracer at once: a user_events enable bit is set when this returns.
   */
  static open(id: number, opts: PerfOpenOptions = {}): PerfTracepoint {
    checkOpenOptions(id, opts);
    const pages = opts.pages ?? 8;
    const rings: Ring[] = [];
    try {
      const targets: [number, number][] = opts.pid !== undefined
        ? [[opts.pid, -1]]
        : (opts.cpus ?? onlineCpus()).map((c) => [-1, c]);
      for (const [pid, cpu] of targets) {
        const fd = perfOpen(id, pid, cpu, opts.disabled ?? false);
        try {
          rings.push(new Ring(fd, pages));
        } catch (e) {
          libc.close(fd);
          throw e;
        }
      }
    } catch (e) {
      for (const r of rings) r.close();
      throw e;
    }
    return new PerfTracepoint(id, rings);
  }

  /** The perf event fds, one per ring: poll(2) them for POLLIN to wait for records. */
  get fds(): number[] {
    return this.#rings.map((r) => r.fd);
  }

  /** Starts recording on every ring (PERF_EVENT_IOC_ENABLE): after open({ disabled: true }). */
  enable(): void {
    for (const r of this.#rings) {
      check(libc.ioctl_int(r.fd, pe.PERF_EVENT_IOC_ENABLE, 0), "ioctl(PERF_EVENT_IOC_ENABLE)");
    }
  }

  /**
   * Stops recording on every ring (PERF_EVENT_IOC_DISABLE) without closing:
   * records already in the rings can still be read; enable() resumes.
   */
  disable(): void {
    for (const r of this.#rings) {
      check(libc.ioctl_int(r.fd, pe.PERF_EVENT_IOC_DISABLE, 0), "ioctl(PERF_EVENT_IOC_DISABLE)");
    }
  }

  /** Every sample waiting in the ring buffers, ordered by time. */
  read(): PerfSample[] {
    if (this.#closed) throw new ClosedError("PerfTracepoint");
    const out: PerfSample[] = [];
    for (const r of this.#rings) this.lost += r.drain(out);
    out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    return out;
  }

  /** Unmaps the rings and closes the fds (detaching the tracer: the enable bit clears). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#rings) r.close();
  }
}

function checkOpenOptions(id: unknown, opts: PerfOpenOptions): void {
  const bad = (what: string, expected: string, v: unknown) =>
    new UmmuArgumentError(
      `PerfTracepoint.open: ${what} must be ${expected}, got ${describeValue(v)}`,
    );
  if (!(Number.isInteger(id) && (id as number) >= 0 && (id as number) <= 0xffffffff)) {
    throw bad("the tracepoint id", "an integer (from events/<system>/<name>/id)", id);
  }
  if (opts === null || typeof opts !== "object") throw bad("options", "an object", opts);
  const pages = opts.pages ?? 8;
  if (!(Number.isInteger(pages) && pages >= 1 && pages <= 1 << 20 && (pages & (pages - 1)) === 0)) {
    throw bad("pages", "a power of two (data pages per ring)", opts.pages);
  }
  if (opts.pid !== undefined && !(Number.isInteger(opts.pid) && opts.pid >= 0)) {
    throw bad("pid", "a thread id (0: the calling thread)", opts.pid);
  }
  if (
    opts.cpus !== undefined &&
    !(Array.isArray(opts.cpus) && opts.cpus.every((c) => Number.isInteger(c) && c >= 0))
  ) {
    throw bad("cpus", "an array of CPU numbers", opts.cpus);
  }
  if (opts.disabled !== undefined && typeof opts.disabled !== "boolean") {
    throw bad("disabled", "a boolean", opts.disabled);
  }
}

/** struct trace_entry at the start of a raw tracepoint record (8 bytes). */
export function traceEntry(
  raw: Uint8Array,
): { type: number; flags: number; preemptCount: number; pid: number } {
  if (!(raw instanceof Uint8Array) || raw.length < 8) {
    throw new UmmuArgumentError(
      `traceEntry takes a raw record of at least 8 bytes (struct trace_entry), got ${
        describeValue(raw)
      }`,
    );
  }
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return {
    type: dv.getUint16(0, true),
    flags: raw[2],
    preemptCount: raw[3],
    pid: dv.getInt32(4, true),
  };
}
