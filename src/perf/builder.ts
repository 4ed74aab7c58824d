/**
 * PerfEventBuilder: PerfEvent.open's options as a chain, in the style of the
 * `perf-event2` crate's Builder and ummu's UffdBuilder. Every setter checks
 * its argument where it is written; build() opens the event.
 *
 * @example
 * ```ts
 * import { PERF_SAMPLE_ADDR, PERF_SAMPLE_IP, PerfEventBuilder } from "ummu/perf";
 *
 * const faults = new PerfEventBuilder("page-faults")
 *   .sampleEvery(1)
 *   .sample(PERF_SAMPLE_IP | PERF_SAMPLE_ADDR)
 *   .ring(64)
 *   .build();
 * faults.enable();
 * ```
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import * as v from "../validate.ts";
import { type PerfEventAttr, validateAttr } from "./attr.ts";
import { PerfEvent, type PerfEventOptions, type PerfRingOptions } from "./event.ts";
import type { ParsedEvent } from "./event_names.ts";
import type { PerfTarget } from "./target.ts";

/** A PerfEvent being described: event, target, sampling, ring; then build(). */
export class PerfEventBuilder {
  readonly #event: PerfEventAttr | ParsedEvent | string;
  #attr: PerfEventAttr = {};
  #options: PerfEventOptions = {};

  /** Starts from an event name ("page-faults", "sched:sched_switch"...), a parsed event, or an attr. */
  constructor(event: PerfEventAttr | ParsedEvent | string) {
    if (typeof event !== "string" && (event === null || typeof event !== "object")) {
      v.invalid("PerfEventBuilder event", event, "an event name, a parsed event or an attr");
    }
    this.#event = event;
  }

  #set(fields: PerfEventAttr): this {
    this.#attr = validateAttr({ ...this.#attr, ...validateAttr(fields) });
    return this;
  }

  /** The calling thread (the default). */
  observeSelf(): this {
    return this.target({ thread: 0 });
  }

  /** Another thread, a process (every thread, inherited), CPUs or a cgroup. */
  target(target: PerfTarget): this {
    if (target === null || typeof target !== "object") {
      v.invalid("target", target, "{ thread }, { process }, { cpu } or { cgroup }");
    }
    this.#options.target = target;
    return this;
  }

  /** Every thread of a process ("self" or a pid), and the threads they create. */
  observeProcess(pid: number | "self"): this {
    return this.target({ process: pid });
  }

  /** Every task on these CPUs (system-wide). */
  onCpus(cpu: number | readonly number[] | "all"): this {
    return this.target({ cpu });
  }

  /** A member of this leader's group. */
  group(leader: PerfEvent): this {
    if (!(leader instanceof PerfEvent)) v.invalid("group", leader, "a PerfEvent (the leader)");
    this.#options.group = leader;
    return this;
  }

  /** Sample every `n` events (samplePeriod). */
  sampleEvery(n: number | bigint): this {
    return this.#set({ samplePeriod: BigInt(v.integer("sampleEvery", n, 1)) });
  }

  /** Sample `hz` times a second (sampleFreq). */
  sampleFrequency(hz: number | bigint): this {
    return this.#set({ sampleFreq: BigInt(v.integer("sampleFrequency", hz, 1)) });
  }

  /** The fields of each sample: PERF_SAMPLE_* bits, added to those set so far. */
  sample(bits: number): this {
    return this.#set({ sampleType: (this.#attr.sampleType ?? 0) | bits });
  }

  /** What read() returns: PERF_FORMAT_* bits. */
  readFormat(bits: number): this {
    return this.#set({ readFormat: bits });
  }

  /** Records of the task's mmaps (MMAP2), comms and forks/exits, with sample_id_all trailers. */
  trackTasks(on = true): this {
    const b = v.boolean("trackTasks", on, true);
    return this.#set({ mmap: b, mmap2: b, comm: b, task: b, sampleIdAll: b });
  }

  /** Count only user space (excludeKernel, excludeHv): what perf_event_paranoid 2 allows. */
  userOnly(on = true): this {
    const b = v.boolean("userOnly", on, true);
    return this.#set({ excludeKernel: b, excludeHv: b });
  }

  /** Follow threads and children created later (inherit). */
  inherit(on = true): this {
    return this.#set({ inherit: v.boolean("inherit", on, true) });
  }

  /** Start counting at the next exec of the target (a command started stopped). */
  enableOnExec(on = true): this {
    return this.#set({ enableOnExec: v.boolean("enableOnExec", on, true) });
  }

  /** Wake a waiter every `n` samples. */
  wakeupEvents(n: number): this {
    return this.#set({ wakeupEvents: v.integer("wakeupEvents", n, 0, 0xffffffff) });
  }

  /** Wake a waiter every `bytes` of records. */
  wakeupWatermark(bytes: number): this {
    return this.#set({ wakeupWatermark: v.integer("wakeupWatermark", bytes, 0, 0xffffffff) });
  }

  /** Record callchains (PERF_SAMPLE_CALLCHAIN), at most `maxStack` frames (0: the sysctl's). */
  callchain(maxStack = 0): this {
    this.sample(pe.PERF_SAMPLE_CALLCHAIN);
    return this.#set({ sampleMaxStack: v.integer("callchain maxStack", maxStack, 0, 0xffff) });
  }

  /** Any other attr fields, as PerfEventAttr. */
  attr(fields: PerfEventAttr): this {
    return this.#set(fields);
  }

  /** Ring buffers of `pages` data pages (a power of two); `overwrite`: a flight recorder. */
  ring(pages = 8, overwrite = false): this {
    const ring: PerfRingOptions = { pages, overwrite: v.boolean("overwrite", overwrite, false) };
    this.#options.ring = ring;
    return this;
  }

  /** A name for error messages. */
  name(name: string): this {
    if (typeof name !== "string") v.invalid("name", name, "a string");
    this.#options.name = name;
    return this;
  }

  /** Opens the event with everything set so far (see PerfEvent.open). */
  build(): PerfEvent {
    return PerfEvent.open(this.#event, { ...this.#options, attr: this.#attr });
  }
}
