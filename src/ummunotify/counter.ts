/**
 * GenerationCounter: the notifier's 64-bit counter, read with one atomic load
 * on the fast path, in any thread.
 *
 * Two sources:
 * - "shared": the userfaultfd backend's control SharedArrayBuffer. The
 *   monitor Worker stores the counter with its top bit set (BUSY) *before*
 *   each read(2) of the userfaultfd, and the plain new value after it applied
 *   the events. A thread that unmapped watched memory is released by that
 *   read(2), so its next load sees BUSY or the new value, never the old one:
 *   on BUSY, changed() waits (Atomics.wait on the seq word that the monitor
 *   notifies) until the monitor has published. DEAD (monitor gone) answers
 *   "changed" forever.
 * - "device": the read-only counter page of /dev/ummunotify, mapped in this
 *   process; the kernel stores it (one aligned 64-bit store) before the
 *   page tables change.
 *
 * A counter can be rebuilt in another Worker from its `handle` (structured
 * clone): `GenerationCounter.fromHandle(e.data)`.
 */
import { runtime } from "../../ffi/platform.ts";
import { CTL, DEAD_BIT, GEN_MASK } from "./queue.ts";
import { ClosedError } from "../errors.ts";

/** What a Worker needs to rebuild a counter (postMessage it). */
export type CounterHandle =
  | { kind: "shared"; control: SharedArrayBuffer }
  | { kind: "device"; address: number; fd: number };

/** Options of the waits. */
export interface WaitOptions {
  /** Give up after this many milliseconds: the wait resolves with the current value. */
  timeoutMs?: number;
  /** Abort the wait (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

const SPIN = 64;

/** The counter of one notifier, in this thread. */
export class GenerationCounter {
  readonly #word: BigInt64Array;
  readonly #seq: Int32Array | null;
  /** What a Worker needs to rebuild this counter: postMessage it, then {@link GenerationCounter.fromHandle}. */
  readonly handle: CounterHandle;
  /** Device backend: waits for fd readiness (set by the owner or lazily). */
  #deviceWait: ((since: bigint, opts: WaitOptions) => Promise<bigint>) | null = null;

  private constructor(handle: CounterHandle, word: BigInt64Array, seq: Int32Array | null) {
    this.handle = handle;
    this.#word = word;
    this.#seq = seq;
  }

  /** Rebuilds a counter from a handle (in any thread of this process). */
  static fromHandle(handle: CounterHandle): GenerationCounter {
    if (handle.kind === "shared") {
      return new GenerationCounter(
        handle,
        new BigInt64Array(handle.control, 0, 1),
        new Int32Array(handle.control),
      );
    }
    return new GenerationCounter(handle, new BigInt64Array(runtime.view(handle.address, 8)), null);
  }

  /**
   * @internal The device page is about to be unmapped: detach the view, so a
   * later load throws instead of touching unmapped memory.
   */
  detach(): void {
    const b = this.#word.buffer as ArrayBuffer & { transfer?: (n: number) => ArrayBuffer };
    if (!(b instanceof SharedArrayBuffer) && typeof b.transfer === "function") b.transfer(0);
  }

  /** @internal the owner's waiter for the device backend. */
  setDeviceWait(fn: (since: bigint, opts: WaitOptions) => Promise<bigint>): void {
    this.#deviceWait = fn;
  }

  /**
   * The current generation. Compare it later with changed(). Waits (briefly)
   * while the monitor is applying events that were already taken off the
   * userfaultfd.
   */
  get generation(): bigint {
    const v = Atomics.load(this.#word, 0);
    return v >= 0n ? v : this.#settle(v);
  }

  /**
   * True if the counter moved since `since` (a generation or a LAST event's
   * counter). One atomic load when nothing changed.
   */
  changed(since: bigint): boolean {
    const v = Atomics.load(this.#word, 0);
    return v === since ? false : this.#slowChanged(since, v);
  }

  /** True once the userfaultfd monitor is gone: every changed() is true from then on. */
  get dead(): boolean {
    const v = Atomics.load(this.#word, 0);
    return v < 0n && (v & DEAD_BIT) !== 0n;
  }

  /**
   * Resolves with the generation once it differs from `since`, without
   * polling: Atomics.waitAsync on the word the monitor notifies (userfaultfd
   * backend), or poll(2) readiness of the device fd.
   */
  async waitForChange(since: bigint, opts: WaitOptions = {}): Promise<bigint> {
    if (this.#seq === null) {
      if (this.changed(since)) return this.generation;
      if (this.#deviceWait === null) {
        const { deviceWaiter } = await import("./device_backend.ts");
        this.#deviceWait = deviceWaiter(this, (this.handle as { fd: number }).fd);
      }
      return this.#deviceWait(since, opts);
    }
    const seq = this.#seq;
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    for (;;) {
      opts.signal?.throwIfAborted();
      const s = Atomics.load(seq, CTL.seq);
      if (this.changed(since)) return this.generation;
      const left = deadline - Date.now();
      if (left <= 0) return this.generation;
      // Bounded chunks: a wait never outlives the notifier by more than a second.
      const r = Atomics.waitAsync(seq, CTL.seq, s, Math.min(left, 1000));
      if (!r.async) continue;
      if (opts.signal) {
        await abortable(r.value, opts.signal);
      } else await r.value;
    }
  }

  /** Blocks this thread until the counter differs from `since` (or the timeout); returns the generation. */
  waitForChangeSync(since: bigint, timeoutMs = Infinity): bigint {
    if (this.#seq === null) {
      throw new ClosedError("waitForChangeSync on a device counter (use waitForChange)");
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = Atomics.load(this.#seq, CTL.seq);
      if (this.changed(since)) return this.generation;
      const left = deadline - Date.now();
      if (left <= 0) return this.generation;
      Atomics.wait(this.#seq, CTL.seq, s, left === Infinity ? undefined : left);
    }
  }

  #slowChanged(since: bigint, v: bigint): boolean {
    if (v >= 0n) return true;
    return this.#settle(v) !== since || this.dead;
  }

  /** BUSY: wait until the monitor publishes. DEAD: the last generation. */
  #settle(v: bigint): bigint {
    const seq = this.#seq!;
    for (let i = 0;; i++) {
      if ((v & DEAD_BIT) !== 0n) return v & GEN_MASK;
      if (i >= SPIN) {
        const s = Atomics.load(seq, CTL.seq);
        v = Atomics.load(this.#word, 0);
        if (v >= 0n) return v;
        if ((v & DEAD_BIT) !== 0n) continue;
        Atomics.wait(seq, CTL.seq, s, 20);
      }
      v = Atomics.load(this.#word, 0);
      if (v >= 0n) return v;
    }
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then((v) => {
      signal.removeEventListener("abort", onAbort);
      resolve(v);
    }, reject);
  });
}
