/**
 * The tracepoints an exporter writes to: an EventHeaderProvider's
 * `<provider>_L<level>K1` tracepoints, registered at construction as Rust's
 * register_set() does, each with its enable word and an Emitter that points
 * the kernel at the one EventHeaderBuilder's buffers (so an event is written
 * where it was built: no copy, no allocation). When user_events cannot be
 * opened or a tracepoint cannot be registered, the sink says so once through
 * diag and every level stays disabled: nothing is built, nothing is thrown.
 */
import { EventHeaderProvider } from "../user_events/eventheader.ts";
import type { Tracepoint } from "../user_events/tracepoint.ts";
import { EventHeaderEmitter } from "./eventheader_emitter.ts";
import { EBADF } from "../user_events/diagnose.ts";
import { UmmuError } from "../errors.ts";
import { EVENTHEADER_MAX_META_AND_DATA, EventHeaderBuilder } from "./eventheader_builder.ts";
import { OnceReporter, OTEL_KEYWORD, unavailableHint } from "./common_schema.ts";

export class EventHeaderSink {
  /** The builder every event of this sink is built in. */
  readonly builder = new EventHeaderBuilder();
  /** Failures, reported once each. */
  readonly report: OnceReporter;
  #provider: EventHeaderProvider | null = null;
  /** Per level (index 1..5): the enable word array, its index and mask, and the emitter. */
  readonly #words: (Int32Array | null)[] = [null, null, null, null, null, null];
  readonly #word = new Int32Array(6);
  readonly #mask = new Int32Array(6);
  readonly #emitters: (EventHeaderEmitter | null)[] = [null, null, null, null, null, null];
  readonly #tracepoints: (Tracepoint | null)[] = [null, null, null, null, null, null];

  /**
   * Registers `<name>_L<level>K1` for each of `levels`; `who` names the
   * exporter in diag messages. `given` (benchmarks, tests): tracepoints made
   * elsewhere, by level, used instead of registering any.
   */
  constructor(
    name: string,
    levels: readonly number[],
    who: string,
    given?: ReadonlyMap<number, Tracepoint>,
  ) {
    this.report = new OnceReporter(who);
    if (given === undefined) {
      try {
        this.#provider = new EventHeaderProvider(name);
      } catch (e) {
        this.report.warn("open", unavailableHint(e));
        return;
      }
    }
    for (const level of levels) {
      try {
        const tp = given !== undefined
          ? given.get(level)
          : this.#provider!.tracepoint(level, OTEL_KEYWORD);
        if (tp === undefined) continue;
        this.#tracepoints[level] = tp;
        this.#words[level] = tp.slab.words;
        this.#word[level] = tp.word;
        this.#mask[level] = 1 << tp.bit;
        this.#emitters[level] = new EventHeaderEmitter(
          tp.fd,
          tp.writeIndex,
          this.builder.out,
          this.builder.data,
          tp.name,
        );
      } catch (e) {
        this.report.warn(`register${level}`, unavailableHint(e));
      }
    }
  }

  /** True while a tracer listens on the level's tracepoint (false when it could not be registered). */
  enabled(level: number): boolean {
    const w = this.#words[level];
    return w !== null && w !== undefined &&
      (Atomics.load(w, this.#word[level]) & this.#mask[level]) !== 0;
  }

  /** The tracepoint of `level`, when registered (for tests and tools: its name). */
  tracepoint(level: number): Tracepoint | null {
    return this.#tracepoints[level] ?? null;
  }

  /**
   * Writes the built event to the level's tracepoint. Returns true when
   * written; false when nobody listened any more (EBADF, not an error), it
   * was too large, or the write failed (those two reported once).
   */
  write(level: number): boolean {
    const em = this.#emitters[level];
    if (!em) return false;
    if (this.builder.size > EVENTHEADER_MAX_META_AND_DATA) {
      this.report.warn(
        "size",
        `an event of ${this.builder.size} bytes exceeds the 64 KiB a user_events event can hold (limit ${EVENTHEADER_MAX_META_AND_DATA} bytes of metadata and data); it was dropped: shorten its attributes or body`,
      );
      return false;
    }
    const head = this.builder.finish();
    try {
      return em.write(head, this.builder.dataLength);
    } catch (e) {
      if (e instanceof UmmuError && e.errno === EBADF) return false;
      this.report.warn("write", `writing to ${em.fd} failed: ${(e as Error).message}`);
      return false;
    }
  }

  /** Unregisters the tracepoints (Rust's shutdown). Idempotent. */
  close(): void {
    const p = this.#provider;
    this.#provider = null;
    for (let i = 0; i < 6; i++) {
      this.#words[i] = null;
      this.#emitters[i] = null;
      this.#tracepoints[i] = null;
    }
    p?.close();
  }
}
