/**
 * PerfEvent: one perf event, opened on a target (a thread, a process, CPUs,
 * a cgroup), counting and optionally sampling into ring buffers, with every
 * ioctl of the perf fd. One logical event may be several fds (one per thread
 * or CPU): the ioctls apply to all, read() sums them, the rings are drained
 * together. A group is a leader and members opened with `group: leader`:
 * they count together, and the leader reads them all at once.
 *
 * The fds are used through FdControl (src/fd_control.ts), as the userfaultfd
 * is: the Worker that waits for records never polls a number that close()
 * has released.
 * @module
 */
import { release } from "node:os";
import * as pe from "../../ffi/perf_event.ts";
import { runtime } from "../../ffi/platform.ts";
import { check, cstring, libc } from "../libc.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import { FdControl } from "../fd_control.ts";
import { integer, invalid, powerOfTwo } from "../validate.ts";
import { decodeAttr, encodeAttr, type PerfEventAttr, validateAttr } from "./attr.ts";
import { RecordDecoder } from "./record_decoder.ts";
import type { PerfRecord } from "./records.ts";
import { EventFds } from "./event_fds.ts";
import { type ParsedEvent, parseEvent } from "./event_names.ts";
import { EventRecords } from "./event_records.ts";
import type { PerfWorkerReader, PerfWorkerReaderOptions } from "./worker_reader.ts";
import {
  decodeCount,
  decodeGroupCount,
  type PerfCount,
  type PerfGroupCount,
  readSize,
  sumCounts,
} from "./counts.ts";
import { type OpenSlot, perfEventOpen } from "./open.ts";
import { PerfRing, type RecordCallback } from "./ring.ts";
import type { PerfAuxArea, PerfAuxOptions } from "./aux_area.ts";
import { type PerfTarget, releaseTarget, resolveTarget } from "./target.ts";

/** How the ring buffers of a sampling event are made. */
export interface PerfRingOptions {
  /** Data pages per ring, a power of two (default 8: 32 KiB). */
  pages?: number;
  /**
   * A flight recorder: the kernel overwrites the oldest records
   * (attr.writeBackward) and snapshot() reads the newest. Default false.
   */
  overwrite?: boolean;
  /**
   * Also map an AUX area beside each ring, for a PMU that traces into one
   * (intel_pt, intel_bts): `{ pages?, snapshot? }`, see PerfAuxArea.
   */
  aux?: PerfAuxOptions;
}

/** How PerfEvent.open attaches. */
export interface PerfEventOptions {
  /** What to watch (default: `{ thread: 0 }`, the calling thread). */
  target?: PerfTarget;
  /** Open as a member of this leader's group (the leader's target is used). */
  group?: PerfEvent;
  /** Map ring buffers for the records (samples and the rest). A group member writes into its leader's. */
  ring?: PerfRingOptions;
  /** A name for error messages (default: the event name, or "type T config C"). */
  name?: string;
  /** Attr fields set over those of an event name (samplePeriod, sampleType, ...). */
  attr?: PerfEventAttr;
  /**
   * Write records into this event's rings (PERF_EVENT_IOC_SET_OUTPUT), on
   * its target, without joining a group: several events, one stream, read
   * (and decoded, told apart by id) through the ring's owner. Closing the
   * owner closes the events that write into it.
   */
  output?: PerfEvent;
}

/**
 * The default read_format: enabled and running times (for scaling), the id,
 * and (Linux 6.0+) the samples lost: the kernel's own count, which includes
 * losses no LOST record has reported yet (it writes one only before the next
 * record that fits).
 */
const DEFAULT_READ_FORMAT = pe.PERF_FORMAT_TOTAL_TIME_ENABLED | pe.PERF_FORMAT_TOTAL_TIME_RUNNING |
  pe.PERF_FORMAT_ID | (kernelAtLeast(6, 0) ? pe.PERF_FORMAT_LOST : 0);

function kernelAtLeast(major: number, minor: number): boolean {
  const [a, b] = release().split(".").map((x) => parseInt(x, 10));
  return a > major || (a === major && b >= minor);
}

/** One perf event, possibly over several fds. */
export class PerfEvent {
  /** The attr as opened (validated; defaults filled in). */
  readonly attr: Readonly<PerfEventAttr>;
  /** What it watches, for messages ("this thread", "CPU 0,1", ...). */
  readonly target: string;
  /** The group leader, or null for a leader or a lone event. */
  readonly leader: PerfEvent | null;
  readonly #fds: EventFds;
  readonly #slots: readonly OpenSlot[];
  readonly #records: EventRecords;
  readonly #members: PerfEvent[] = [];
  /** Events that write into this one's rings (options.output), and the one this writes into. */
  readonly #sharers: PerfEvent[] = [];
  #outputOf: PerfEvent | null = null;
  #decoder: RecordDecoder | null = null;
  #closed = false;

  private constructor(
    attr: PerfEventAttr,
    target: string,
    leader: PerfEvent | null,
    name: string,
    controls: FdControl[],
    slots: readonly OpenSlot[],
    rings: PerfRing[],
  ) {
    this.attr = Object.freeze(attr);
    this.target = target;
    this.leader = leader;
    this.#fds = new EventFds(name, controls);
    this.#slots = slots;
    this.#records = new EventRecords(rings, this.#fds, () => this.decoder, () => this.#closed);
  }

  /**
   * Opens an event. A leader or lone event opens disabled unless the attr
   * says `disabled: false` (call enable()); a member follows its leader.
   * Refused before the kernel sees them: `sigtrap` (the kernel would send
   * SIGTRAP to a thread of the JS runtime, which kills it), unknown fields,
   * out-of-range values.
   */
  static open(
    event: PerfEventAttr | ParsedEvent | string,
    options: PerfEventOptions = {},
  ): PerfEvent {
    if (options === null || typeof options !== "object") {
      invalid("PerfEvent.open options", options, "an object");
    }
    // An event name ("page-faults", "sched:sched_switch", "mem:0x1000:w", "pmu/term=1/"), a
    // parsed one (uprobe(), kprobe(), breakpoint(): its `keep` buffers are held until the
    // kernel has read them), or an attr.
    const parsed: ParsedEvent = typeof event === "string"
      ? parseEvent(event)
      : isParsedEvent(event)
      ? event
      : { attr: event as PerfEventAttr, name: "" };
    if (options.attr !== undefined && (options.attr === null || typeof options.attr !== "object")) {
      invalid("PerfEvent.open attr", options.attr, "an object of attr fields");
    }
    const a = validateAttr({ ...validateAttr(parsed.attr), ...validateAttr(options.attr ?? {}) });
    if (a.sigtrap) {
      throw new UmmuArgumentError(
        "perf_event_attr.sigtrap must be absent: the kernel would send SIGTRAP to the thread at each event, and a JS runtime has no way to handle a synchronous signal (it dies); read counts with read() or records from a ring instead",
      );
    }
    const leader = options.group ?? null;
    if (leader !== null) {
      if (!(leader instanceof PerfEvent)) {
        invalid("PerfEvent.open group", leader, "a PerfEvent (the leader)");
      }
      if (leader.#closed) throw new ClosedError("PerfEvent (the group leader)");
      if (leader.leader !== null) {
        invalid("PerfEvent.open group", leader, "a leader (a member cannot lead)");
      }
      if (options.target !== undefined) {
        invalid(
          "PerfEvent.open target",
          options.target,
          "absent for a group member (it takes its leader's)",
        );
      }
    }
    const output = options.output ?? null;
    if (output !== null) {
      if (!(output instanceof PerfEvent)) {
        invalid("PerfEvent.open output", output, "a PerfEvent with a ring");
      }
      if (output.#closed) throw new ClosedError("PerfEvent (the output event)");
      if (output.#records.rings.length === 0) {
        invalid("PerfEvent.open output", output, "an event opened with ring: {}");
      }
      if (leader !== null || options.target !== undefined || options.ring !== undefined) {
        invalid(
          "PerfEvent.open output",
          output,
          "given without group, target or ring (the output event has them)",
        );
      }
      // The kernel requires one direction for events that share a ring.
      a.writeBackward = output.#records.rings[0].overwrite || undefined;
    }
    const ringOpts = options.ring;
    let pages = 0;
    let auxPages = 0;
    if (ringOpts !== undefined) {
      if (ringOpts === null || typeof ringOpts !== "object") {
        invalid("PerfEvent.open ring", ringOpts, "an object { pages?, overwrite? }");
      }
      pages = powerOfTwo("ring.pages", ringOpts.pages ?? 8, 1, 1 << 20);
      if (ringOpts.overwrite !== undefined && typeof ringOpts.overwrite !== "boolean") {
        invalid("ring.overwrite", ringOpts.overwrite, "a boolean");
      }
      if (ringOpts.overwrite) a.writeBackward = true;
      if (ringOpts.aux !== undefined) {
        const ax = ringOpts.aux;
        if (ax === null || typeof ax !== "object") {
          invalid("ring.aux", ax, "an object { pages?, snapshot? }");
        }
        auxPages = powerOfTwo("ring.aux.pages", ax.pages ?? 64, 1, 1 << 20);
        if (ax.snapshot !== undefined && typeof ax.snapshot !== "boolean") {
          invalid("ring.aux.snapshot", ax.snapshot, "a boolean");
        }
      }
    }
    const name = options.name ?? (parsed.name || `type ${a.type ?? 0} config ${a.config ?? 0n}`);
    if (typeof name !== "string") invalid("PerfEvent.open name", name, "a string");
    a.readFormat ??= DEFAULT_READ_FORMAT;
    a.disabled ??= leader === null;
    encodeAttr(a); // every encoding error before any fd exists

    const sampling = ringOpts !== undefined ||
      (leader !== null && leader.#records.rings.length > 0);
    const inheritsFrom = leader ?? output;
    const resolved = inheritsFrom === null ? resolveTarget(options.target, sampling) : null;
    // A member's pid and cpu are its leader's: the kernel builds the group on the leader's
    // context; an event that writes into another's rings must be on the same CPU or task.
    const slots = resolved ? resolved.slots : inheritsFrom!.#slots;
    if (resolved?.inherit && a.inherit === undefined) a.inherit = true;
    const controls: FdControl[] = [];
    const rings: PerfRing[] = [];
    const ringOfCpu = new Map<number, PerfRing>();
    const opened: boolean[] = [];
    try {
      for (let i = 0; i < slots.length; i++) {
        const slot = slots[i];
        let fd: number;
        try {
          fd = perfEventOpen(a, slot, leader ? leader.#fds.controls[i].fd : -1, name);
        } catch (e) {
          // A thread of a process target that exited since /proc/PID/task was listed: skip
          // it (the process's main thread must exist). Members keep their leader's slots.
          if (
            e instanceof UmmuError && e.errno === ESRCH && resolved?.inherit &&
            slot.pid !== resolved.pid && leader === null
          ) {
            opened.push(false);
            continue;
          }
          throw e;
        }
        opened.push(true);
        controls.push(FdControl.create(fd));
        if (output !== null) setOutput(fd, output.#ringFdOf(i));
        else if (leader !== null && leader.#records.rings.length > 0) {
          // A member's records go to its leader's ring of the same slot.
          setOutput(fd, leader.#ringFdOf(i));
        } else if (ringOpts !== undefined) {
          // Per-CPU slots of one CPU share a ring (SET_OUTPUT allows the same CPU).
          const shared = slot.cpu >= 0 ? ringOfCpu.get(slot.cpu) : undefined;
          if (shared) setOutput(fd, shared.fd);
          else {
            const ring = new PerfRing(fd, pages, ringOpts.overwrite === true);
            rings.push(ring);
            if (auxPages) ring.mapAux(auxPages, ringOpts.aux?.snapshot === true);
            if (slot.cpu >= 0) ringOfCpu.set(slot.cpu, ring);
          }
        }
      }
    } catch (e) {
      for (const r of rings) r.unmap();
      for (const c of controls) c.close();
      throw e;
    } finally {
      if (resolved) releaseTarget(resolved);
      holdUntilHere(parsed.keep);
    }
    const ev = new PerfEvent(
      a,
      inheritsFrom?.target ?? resolved!.label,
      leader,
      name,
      controls,
      slots.filter((_, i) => opened[i]),
      rings,
    );
    if (leader) {
      leader.#members.push(ev);
      leader.#decoder = null; // the next decoder knows the new member's id
    }
    if (output) {
      output.#sharers.push(ev);
      ev.#outputOf = output;
      output.#decoder = null;
    }
    return ev;
  }

  /** The fd of the ring slot `i` writes into (its own, or its CPU's, which it was redirected to). */
  #ringFdOf(i: number): number {
    const rings = this.#records.rings;
    const fd = this.#fds.controls[i].fd;
    if (rings.some((r) => r.fd === fd)) return fd;
    const cpu = this.#slots[i].cpu;
    const j = this.#fds.controls.findIndex((c, k) =>
      this.#slots[k].cpu === cpu && rings.some((r) => r.fd === c.fd)
    );
    return this.#fds.controls[j].fd;
  }

  /** The fds (one per thread or CPU slot). Owned by this event: do not close them. */
  get fds(): number[] {
    return this.#fds.fds;
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The AUX areas (ring.aux): one per ring, in the rings' order; none without `ring.aux`. */
  get auxAreas(): readonly PerfAuxArea[] {
    return this.#records.rings.flatMap((r) => r.aux ? [r.aux] : []);
  }

  /** The ring buffers (one per CPU for per-CPU targets; none without `ring`). */
  get rings(): readonly PerfRing[] {
    return this.#records.rings;
  }

  /**
   * Records the kernel reported lost in LOST records, over every ring. The
   * kernel writes a LOST record only before the next record that fits, so
   * the last losses show in `read().lost` (the default readFormat has
   * PERF_FORMAT_LOST) before they show here.
   */
  get lost(): number {
    return this.#records.lost;
  }

  #check(what: string): void {
    if (this.#closed) throw new ClosedError(`PerfEvent (${what})`);
  }

  #ioctl(name: string, request: number, arg: number, hints?: Record<string, string>): void {
    this.#check(name);
    this.#fds.ioctl(name, request, arg, hints);
  }

  /** Starts counting (a leader: with `group`, the whole group at once). */
  enable(group = false): void {
    this.#ioctl("PERF_EVENT_IOC_ENABLE", pe.PERF_EVENT_IOC_ENABLE, groupFlag(group));
  }

  /** Stops counting (records already in the rings stay readable). */
  disable(group = false): void {
    this.#ioctl("PERF_EVENT_IOC_DISABLE", pe.PERF_EVENT_IOC_DISABLE, groupFlag(group));
  }

  /** Sets the count to zero (not the times). */
  reset(group = false): void {
    this.#ioctl("PERF_EVENT_IOC_RESET", pe.PERF_EVENT_IOC_RESET, groupFlag(group));
  }

  /** Enables the event for `n` more overflows (sampling events; then it disables itself). */
  refresh(n: number): void {
    const k = integer("refresh count", n, 1, 0x7fffffff);
    this.#ioctl("PERF_EVENT_IOC_REFRESH", pe.PERF_EVENT_IOC_REFRESH, k);
  }

  /** Sets a new sample period (or frequency, for a freq event). */
  setPeriod(period: number | bigint): void {
    this.#check("PERF_EVENT_IOC_PERIOD");
    const p = typeof period === "bigint" ? period : BigInt(integer("period", period, 1));
    if (p < 1n || p >= 1n << 63n) invalid("period", period, "a positive integer below 2^63");
    const buf = new Uint8Array(new BigUint64Array([p]).buffer);
    this.#fds.ioctlBuffer("PERF_EVENT_IOC_PERIOD", pe.PERF_EVENT_IOC_PERIOD, buf);
  }

  /** Sets a tracepoint's ftrace filter ("common_pid == 42"), or an address filter of a PMU that has them. */
  setFilter(filter: string): void {
    this.#check("PERF_EVENT_IOC_SET_FILTER");
    if (typeof filter !== "string" || filter.includes("\0")) {
      invalid("filter", filter, "a string without NUL");
    }
    const s = cstring(filter);
    this.#ioctl("PERF_EVENT_IOC_SET_FILTER", pe.PERF_EVENT_IOC_SET_FILTER, runtime.addressOf(s), {
      EEXIST: "a tracepoint event takes one filter: open another event for a new one",
      EINVAL:
        "the kernel could not parse the filter (ftrace filter syntax: field == value && ...; the fields are the tracepoint's format)",
    });
  }

  /** The kernel's id of each fd (what samples with PERF_SAMPLE_ID/IDENTIFIER carry). */
  ids(): bigint[] {
    this.#check("PERF_EVENT_IOC_ID");
    return this.#fds.ioctlU64("PERF_EVENT_IOC_ID", pe.PERF_EVENT_IOC_ID);
  }

  /** Attaches a BPF program (an fd from bpf(BPF_PROG_LOAD)) to a tracepoint or kprobe event. */
  setBpf(progFd: number): void {
    const fd = integer("BPF program fd", progFd, 0, 0x7fffffff);
    this.#ioctl("PERF_EVENT_IOC_SET_BPF", pe.PERF_EVENT_IOC_SET_BPF, fd);
  }

  /** Pauses (true) or resumes (false) writing into the ring (the flight recorder's read). */
  pauseOutput(paused: boolean): void {
    if (typeof paused !== "boolean") invalid("pauseOutput", paused, "a boolean");
    this.#ioctl("PERF_EVENT_IOC_PAUSE_OUTPUT", pe.PERF_EVENT_IOC_PAUSE_OUTPUT, paused ? 1 : 0);
  }

  /** The BPF program ids attached to this (tracepoint) event, from its first fd. */
  queryBpf(max = 64): number[] {
    this.#check("PERF_EVENT_IOC_QUERY_BPF");
    const n = integer("queryBpf max", max, 1, 65536);
    const Q = pe.PERF_EVENT_QUERY_BPF_OFF;
    const buf = new Uint8Array(Q.ids + 4 * n);
    const dv = new DataView(buf.buffer);
    dv.setUint32(Q.ids_len, n, true);
    this.#fds.ioctlBuffer("PERF_EVENT_IOC_QUERY_BPF", pe.PERF_EVENT_IOC_QUERY_BPF, buf, true);
    const cnt = Math.min(dv.getUint32(Q.prog_cnt, true), n);
    return Array.from({ length: cnt }, (_, i) => dv.getUint32(Q.ids + 4 * i, true));
  }

  /**
   * Changes the attr of an open event. The kernel allows it for breakpoints
   * (bpAddr, bpLen, bpType, disabled): move a watchpoint without reopening.
   */
  modifyAttributes(changes: PerfEventAttr): void {
    this.#check("PERF_EVENT_IOC_MODIFY_ATTRIBUTES");
    const next = validateAttr({ ...this.attr, ...validateAttr(changes) });
    const bytes = encodeAttr(next);
    this.#fds.ioctlBuffer(
      "PERF_EVENT_IOC_MODIFY_ATTRIBUTES",
      pe.PERF_EVENT_IOC_MODIFY_ATTRIBUTES,
      bytes,
    );
    (this as { attr: Readonly<PerfEventAttr> }).attr = Object.freeze(next);
  }

  /** Reads the counter, summed over every fd (threads, CPUs), with times and the scaled estimate. */
  read(): PerfCount {
    this.#check("read");
    const rf = this.attr.readFormat ?? 0;
    if (rf & pe.PERF_FORMAT_GROUP) {
      throw new UmmuArgumentError(
        "PerfEvent.read: this event reads as a group (readFormat has PERF_FORMAT_GROUP): use readGroup()",
      );
    }
    return sumCounts(this.#fds.read(readSize(rf)).map((dv) => decodeCount(dv, rf)));
  }

  /**
   * Reads the leader and its members with one read per fd (the leader's
   * readFormat must have PERF_FORMAT_GROUP), summed over fds: values in
   * group order, leader first.
   */
  readGroup(): PerfGroupCount {
    this.#check("readGroup");
    const rf = this.attr.readFormat ?? 0;
    if (!(rf & pe.PERF_FORMAT_GROUP) || this.leader !== null) {
      throw new UmmuArgumentError(
        "PerfEvent.readGroup: read a group through its leader, opened with readFormat including PERF_FORMAT_GROUP",
      );
    }
    const per = this.#fds.read(readSize(rf, 1 + this.#members.length)).map((dv) =>
      decodeGroupCount(dv, rf)
    );
    const out: PerfGroupCount = { timeEnabled: 0n, timeRunning: 0n, values: [] };
    for (const g of per) {
      out.timeEnabled += g.timeEnabled;
      out.timeRunning += g.timeRunning;
      g.values.forEach((v, i) => {
        out.values[i] = out.values[i] ? sumCounts([out.values[i], v]) : v;
      });
    }
    return out;
  }

  /** The decoder of this event's records (and its group members', told apart by id). */
  get decoder(): RecordDecoder {
    this.#check("decoder");
    if (this.#decoder === null) {
      const group = [this as PerfEvent, ...this.#members, ...this.#sharers];
      this.#decoder = new RecordDecoder(
        group.map((e) => ({ attr: decodeAttr(encodeAttr(e.attr)), ids: e.ids() })),
      );
    }
    return this.#decoder;
  }

  /**
   * Reads every record in the rings (forward mode), ring by ring, calling
   * `each(bytes, offset, size)`; the view is valid until `each` returns.
   * Returns how many records.
   */
  drain(each: RecordCallback, max = Infinity): number {
    return this.#records.drain(each, max);
  }

  /** A flight recorder's newest records, newest first, with output paused while reading. */
  snapshot(each: RecordCallback, max = Infinity): number {
    return this.#records.snapshot(each, max);
  }

  /**
   * Decodes every record waiting in the rings and hands each to `each` in an
   * object the decoder reuses (a SAMPLE is a SampleView: fields are read when
   * asked). The object and its byte views are valid only until `each`
   * returns: after that the kernel may overwrite the bytes. Returns how many.
   */
  readRecords(each: (record: PerfRecord) => void, max = Infinity): number {
    return this.#records.readRecords(each, max);
  }

  /** A flight recorder's newest records, newest first, decoded as readRecords() does. */
  snapshotRecords(each: (record: PerfRecord) => void, max = Infinity): number {
    return this.#records.snapshotRecords(each, max);
  }

  /**
   * Resolves when a ring has records to read (as wakeupEvents or
   * wakeupWatermark say): true; or false when every watched task has exited
   * (the fds hung up: nothing more will come once the rings are drained). A
   * Worker polls the ring fds (one Worker for all of them); it never keeps
   * the process alive. Throws ClosedError if the event is closed meanwhile.
   */
  readable(): Promise<boolean> {
    return this.#records.readable();
  }

  /**
   * Every record, as objects that own their bytes, waiting (in a Worker-backed
   * poll) while the rings are empty. Ends when the event is closed, or when
   * every watched task has exited and the rings are drained.
   */
  records(): AsyncGenerator<PerfRecord, void, undefined> {
    return this.#records.records();
  }

  /**
   * Starts a Worker that drains the rings as soon as the kernel wakes it and
   * queues the records for this thread (see PerfWorkerReader): for a main
   * thread that may be busy longer than a ring lasts. It is then the rings'
   * only reader. Closing the event closes its readers.
   */
  startReader(options: PerfWorkerReaderOptions = {}): Promise<PerfWorkerReader> {
    return this.#records.startReader(options);
  }

  /**
   * Closes the event: members first (a leader closes its group), then the
   * fds and rings; joins the Workers that waited on them. Everything but the
   * join happens before the first await. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closeSync();
    await this.#records.join();
  }

  #closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of [...this.#members, ...this.#sharers]) m.#closeSync(); // each removes itself
    // Waiters first, then the fds (close waits for a Worker's call in flight), then the
    // mappings: a Worker that reads the rings never reads one that is gone.
    const wake = () => this.#records.wake();
    wake();
    this.#fds.close(wake);
    this.#records.unmap();
    if (this.leader) {
      const i = this.leader.#members.indexOf(this);
      if (i >= 0) this.leader.#members.splice(i, 1);
    }
    if (this.#outputOf) {
      const i = this.#outputOf.#sharers.indexOf(this);
      if (i >= 0) this.#outputOf.#sharers.splice(i, 1);
    }
  }
}

/** A ParsedEvent (from parseEvent, uprobe, kprobe, breakpoint) rather than an attr. */
function isParsedEvent(v: unknown): v is ParsedEvent {
  return v !== null && typeof v === "object" && "attr" in v && "name" in v &&
    typeof (v as ParsedEvent).attr === "object";
}

/** Keeps buffers the attr points into reachable until the kernel has read them. */
function holdUntilHere(keep: readonly Uint8Array[] | undefined): void {
  if (keep !== undefined && keep.length < 0) throw new Error("unreachable");
}

const ESRCH = 3;

const groupFlag = (group: boolean) => (group === true ? pe.PERF_IOC_FLAG_GROUP : 0);

function setOutput(fd: number, target: number): void {
  check(
    libc.ioctl_int(fd, pe.PERF_EVENT_IOC_SET_OUTPUT, target),
    "ioctl(PERF_EVENT_IOC_SET_OUTPUT)",
    "events that share a ring must be on the same CPU, or the same task",
  );
}
