/**
 * perf_event_open(2) on a tracepoint id and a reader of the mmap ring buffer:
 * PERF_SAMPLE_TID | TIME | CPU | RAW records, the raw part being the
 * tracepoint's record (struct trace_entry, then the fields, then padding to
 * 8 bytes). System-wide (one event per online CPU, needs CAP_PERFMON or
 * perf_event_paranoid ≤ 0... as root it works) or for one thread (pid).
 */
import { ClosedError, UmmuArgumentError } from "../errors.ts";
import { describeValue } from "./values.ts";
import * as pe from "../../ffi/perf_event.ts";
import { PerfEvent } from "../perf/event.ts";

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
export { perfEventOpenNr } from "../perf/open.ts";
/** Online CPU numbers, from /sys/devices/system/cpu/online ("0-3,6"). */
export { onlineCpus } from "../perf/target.ts";

const SAMPLE_TYPE = pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_TIME | pe.PERF_SAMPLE_CPU |
  pe.PERF_SAMPLE_RAW;

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
  readonly #event: PerfEvent;
  #closed = false;

  private constructor(id: number, event: PerfEvent) {
    this.id = id;
    this.#event = event;
  }

  /**
   * Opens tracepoint `id` (from events/<system>/<name>/id). Opening attaches
   * the tracer at once: a user_events enable bit is set when this returns.
   * Built on {@linkcode PerfEvent} (ummu/perf), which this is a shorthand of.
   */
  static open(id: number, opts: PerfOpenOptions = {}): PerfTracepoint {
    checkOpenOptions(id, opts);
    const event = PerfEvent.open(
      {
        type: pe.PERF_TYPE_TRACEPOINT,
        config: BigInt(id),
        samplePeriod: 1n,
        sampleType: SAMPLE_TYPE,
        wakeupEvents: 1,
        disabled: opts.disabled ?? false,
      },
      {
        target: opts.pid !== undefined ? { thread: opts.pid } : { cpu: opts.cpus ?? "all" },
        ring: { pages: opts.pages ?? 8 },
        name: `tracepoint ${id}`,
      },
    );
    return new PerfTracepoint(id, event);
  }

  /** The perf event fds, one per ring: poll(2) them for POLLIN to wait for records. */
  get fds(): number[] {
    return this.#event.rings.map((r) => r.fd);
  }

  /** Records the kernel dropped (PERF_RECORD_LOST), summed over reads. */
  get lost(): number {
    return this.#event.lost;
  }

  /** Starts recording on every ring (PERF_EVENT_IOC_ENABLE): after open({ disabled: true }). */
  enable(): void {
    this.#event.enable();
  }

  /**
   * Stops recording on every ring (PERF_EVENT_IOC_DISABLE) without closing:
   * records already in the rings can still be read; enable() resumes.
   */
  disable(): void {
    this.#event.disable();
  }

  /** Every sample waiting in the ring buffers, ordered by time. */
  read(): PerfSample[] {
    if (this.#closed) throw new ClosedError("PerfTracepoint");
    const out: PerfSample[] = [];
    this.#event.drain((bytes, off, size) => {
      const dv = new DataView(bytes.buffer, bytes.byteOffset + off, size);
      if (dv.getUint32(0, true) !== pe.PERF_RECORD_SAMPLE) return;
      const rawSize = dv.getUint32(32, true);
      out.push({
        pid: dv.getUint32(8, true),
        tid: dv.getUint32(12, true),
        time: dv.getBigUint64(16, true),
        cpu: dv.getUint32(24, true),
        raw: bytes.slice(off + 36, off + 36 + Math.min(rawSize, size - 36)),
      });
    });
    out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    return out;
  }

  /** Unmaps the rings and closes the fds (detaching the tracer: the enable bit clears). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Everything but joining a waiting Worker (never started here) happens synchronously.
    void this.#event.close();
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
