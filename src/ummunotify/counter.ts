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
 *   page tables change. Who may read the page and who unmaps it, across
 *   threads, is counter_page.ts.
 *
 * A counter can be rebuilt in another Worker from its `handle` (structured
 * clone): `GenerationCounter.fromHandle(e.data)`. A handle is checked, never
 * trusted: its control buffer must be one the library made, and a device
 * handle's page must be the counter page of that fd.
 */
import { runtime } from "../../ffi/platform.ts";
import { BUSY, CTL, DEAD_BIT, GEN_MASK, isTableControl } from "./queue.ts";
import { ClosedError, UmmuError } from "../errors.ts";
import { invalid, milliseconds } from "../validate.ts";
import { type CheckedWait, u64, type U64Like, waitOptions } from "./args.ts";
import {
  acquirePage,
  isPageControl,
  pageClosed,
  readPageControl,
  releasePage,
  verifyCounterPage,
} from "./counter_page.ts";
import { libc } from "../libc.ts";
import { whileWaiting } from "./keep_alive.ts";
import * as m from "../../ffi/mman.ts";

/**
 * What a Worker needs to rebuild a counter (postMessage it). Opaque: only
 * `GenerationCounter#handle` makes one that fromHandle() accepts.
 */
export type CounterHandle =
  | { readonly kind: "shared"; readonly control: SharedArrayBuffer }
  | { readonly kind: "device"; readonly control: SharedArrayBuffer };

/** Options of the waits. */
export interface WaitOptions {
  /** Give up after this many milliseconds (≥ 0, or Infinity): the wait resolves with the current value. */
  timeoutMs?: number;
  /** Abort the wait (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

const SPIN = 64;
/** How long changed() waits for a monitor that marked the counter BUSY before it gives up. */
const SETTLE_LIMIT_MS = 10_000;
const ETIMEDOUT = 110;
const TWO64 = 1n << 64n;
/** What a closed counter's word holds: negative (never equal to a valid `since`), every flag set. */
const CLOSED_WORD = -1n;
/** A device counter rebuilt from a handle gives its use of the page back when collected. */
const pageUses = new FinalizationRegistry<() => void>((release) => release());

/** The DEAD value of generation `g`: every check answers "changed". */
export function deadWord(g: bigint): bigint {
  return (g & GEN_MASK) | BUSY | DEAD_BIT;
}

/** The counter of one notifier, in this thread. */
export class GenerationCounter {
  #word: BigInt64Array;
  readonly #seq: Int32Array | null;
  readonly #handle: CounterHandle;
  /** Device: the notifier's fd, polled for readiness by the waits. */
  readonly #fd: number;
  /** The notifier's own counter: the notifier's close() ends it, not this close(). */
  readonly #owned: boolean;
  /** Device counter rebuilt from a handle: gives this thread's use of the page back. */
  #release: (() => void) | null = null;
  #closed = false;
  /** Device backend: waits for fd readiness (set by the owner or lazily). */
  #deviceWait: ((since: bigint, wait: CheckedWait) => Promise<bigint>) | null = null;

  private constructor(
    handle: CounterHandle,
    word: BigInt64Array,
    seq: Int32Array | null,
    fd: number,
    owned: boolean,
  ) {
    this.#handle = handle;
    this.#word = word;
    this.#seq = seq;
    this.#fd = fd;
    this.#owned = owned;
  }

  /** @internal The userfaultfd backend's counter over its table's control buffer. */
  static ofTable(control: SharedArrayBuffer): GenerationCounter {
    return new GenerationCounter(
      { kind: "shared", control },
      new BigInt64Array(control, 0, 1),
      new Int32Array(control),
      -1,
      true,
    );
  }

  /** @internal The device backend's counter over the page it mapped (`control` describes it). */
  static ofDevicePage(control: SharedArrayBuffer): GenerationCounter {
    const page = readPageControl(control);
    return new GenerationCounter(
      { kind: "device", control },
      new BigInt64Array(runtime.view(page.address, 8)),
      null,
      page.fd,
      true,
    );
  }

  /**
   * Rebuilds a counter from a handle, in any thread of this process. The
   * handle is checked (UmmuArgumentError if it is not a live counter's); a
   * device counter takes a use of the counter page, which close() (or the
   * counter's collection) gives back. The handle of a closed notifier gives
   * a dead counter: every changed() is true.
   */
  static fromHandle(handle: CounterHandle): GenerationCounter {
    const h = checkHandle(handle);
    if (h.kind === "shared") {
      return new GenerationCounter(
        h,
        new BigInt64Array(h.control, 0, 1),
        new Int32Array(h.control),
        -1,
        false,
      );
    }
    const page = readPageControl(h.control);
    const dead = () =>
      new GenerationCounter(h, new BigInt64Array([deadWord(0n)]), null, page.fd, false);
    if (!acquirePage(h.control)) return dead();
    try {
      verifyCounterPage(page);
    } catch (e) {
      // Closed meanwhile: the page may already be the DEAD one; that is not the caller's fault.
      const closed = pageClosed(h.control);
      releasePage(h.control);
      if (closed) return dead();
      throw e;
    }
    const c = new GenerationCounter(
      h,
      new BigInt64Array(runtime.view(page.address, 8)),
      null,
      page.fd,
      false,
    );
    const control = h.control;
    let given = false;
    const release = () => {
      if (given) return;
      given = true;
      releasePage(control);
    };
    c.#release = release;
    pageUses.register(c, release, c);
    return c;
  }

  /**
   * What a Worker needs to rebuild this counter: postMessage it, then
   * {@link GenerationCounter.fromHandle}.
   */
  get handle(): CounterHandle {
    this.#checkOpen();
    return this.#handle;
  }

  /**
   * Ends this thread's use of a counter rebuilt by fromHandle(): a device
   * counter gives its use of the counter page back (the page of a closed
   * notifier is unmapped by the last use). Every later call throws
   * ClosedError. On a notifier's own counter it does nothing (the notifier's
   * close() ends it). Idempotent.
   */
  close(): void {
    if (this.#owned || this.#closed) return;
    this.#closed = true;
    const word = this.#word;
    this.#word = new BigInt64Array([CLOSED_WORD]);
    if (this.#release) {
      runtime.detach(word.buffer as ArrayBuffer);
      pageUses.unregister(this);
      this.#release();
    }
  }

  /** `using c = GenerationCounter.fromHandle(h)` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * @internal The notifier closes its device page: from now on this counter
   * answers DEAD from a private word. Returns that DEAD value (for the page
   * that other threads may still read).
   */
  retireDevicePage(): bigint {
    const dead = deadWord(Atomics.load(this.#word, 0));
    runtime.detach(this.#word.buffer as ArrayBuffer);
    this.#word = new BigInt64Array([dead]);
    return dead;
  }

  /** @internal the owner's waiter for the device backend. */
  setDeviceWait(fn: (since: bigint, wait: CheckedWait) => Promise<bigint>): void {
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
   * counter: a bigint, or a safe integer number). One atomic load when
   * nothing changed.
   */
  changed(since: U64Like): boolean {
    const v = Atomics.load(this.#word, 0);
    // Equal and not negative: unchanged. A negative word (BUSY, DEAD, closed) never equals a valid `since`.
    return v === since
      ? (v < 0n ? this.#slowChanged(since, v) : false)
      : this.#slowChanged(since, v);
  }

  /** True once nothing is watched any more (the monitor is gone, or the notifier closed): every changed() is true. */
  get dead(): boolean {
    const v = Atomics.load(this.#word, 0);
    if (v === CLOSED_WORD && this.#closed) throw new ClosedError("GenerationCounter");
    return v < 0n && (v & DEAD_BIT) !== 0n;
  }

  /**
   * Resolves with the generation once it differs from `since`, without
   * polling: Atomics.waitAsync on the word the monitor notifies (userfaultfd
   * backend), or poll(2) readiness of the device fd.
   */
  async waitForChange(since: U64Like, opts: WaitOptions = {}): Promise<bigint> {
    const from = u64("since", since);
    const wait = waitOptions("options", opts);
    this.#checkOpen();
    return await whileWaiting(() => this.#waitForChange(from, wait));
  }

  async #waitForChange(from: bigint, wait: CheckedWait): Promise<bigint> {
    if (this.#seq === null) {
      if (this.changed(from)) return this.generation;
      if (this.#deviceWait === null) {
        const { deviceWaiter } = await import("./device_backend.ts");
        this.#deviceWait = deviceWaiter(this, this.#fd);
      }
      return this.#deviceWait(from, wait);
    }
    const seq = this.#seq;
    const deadline = Date.now() + wait.timeoutMs;
    for (;;) {
      wait.signal?.throwIfAborted();
      const s = Atomics.load(seq, CTL.seq);
      if (this.changed(from)) return this.generation;
      const left = deadline - Date.now();
      if (left <= 0) return this.generation;
      // Bounded chunks: a wait never outlives the notifier by more than a second.
      const r = Atomics.waitAsync(seq, CTL.seq, s, Math.min(left, 1000));
      if (!r.async) continue;
      if (wait.signal) {
        await abortable(r.value, wait.signal);
      } else await r.value;
    }
  }

  /**
   * Blocks this thread until the counter differs from `since` (or the
   * timeout, in milliseconds: ≥ 0 or Infinity); returns the generation.
   */
  waitForChangeSync(since: U64Like, timeoutMs: number = Infinity): bigint {
    const from = u64("since", since);
    const ms = milliseconds("timeoutMs", timeoutMs, Infinity);
    this.#checkOpen();
    const deadline = Date.now() + ms;
    if (this.#seq === null) return this.#waitDeviceSync(from, deadline);
    for (;;) {
      const s = Atomics.load(this.#seq, CTL.seq);
      if (this.changed(from)) return this.generation;
      const left = deadline - Date.now();
      if (left <= 0) return this.generation;
      Atomics.wait(this.#seq, CTL.seq, s, left === Infinity ? undefined : left);
    }
  }

  /**
   * The device: poll(2) the fd in bounded chunks (the fd belongs to the
   * notifier, which may close it meanwhile: the counter then reads DEAD).
   * Readable with the counter unchanged means a report from before `since`
   * is still unread, and the kernel gives no edge for the next one: look
   * again shortly.
   */
  #waitDeviceSync(since: bigint, deadline: number): bigint {
    const pollfd = new Uint8Array(m.SIZEOF_POLLFD);
    const pv = new DataView(pollfd.buffer);
    pv.setInt32(0, this.#fd, true);
    pv.setInt16(4, m.POLLIN, true);
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      if (this.changed(since)) return this.generation;
      const left = deadline - Date.now();
      if (left <= 0) return this.generation;
      pv.setInt16(6, 0, true);
      const r = libc.poll(pollfd, 1, Math.ceil(Math.min(left, 250)));
      if (r !== 0) Atomics.wait(nap, 0, 0, Math.min(left, 5));
    }
  }

  #slowChanged(since: U64Like, v: bigint): boolean {
    if (this.#closed) throw new ClosedError("GenerationCounter");
    const from = typeof since === "bigint" && since >= 0n && since < TWO64
      ? since
      : u64("since", since);
    if (v >= 0n) return v !== from;
    return this.#settle(v) !== from || this.dead;
  }

  /** BUSY: wait until the monitor publishes. DEAD: the last generation. */
  #settle(v: bigint): bigint {
    if (this.#closed) throw new ClosedError("GenerationCounter");
    const seq = this.#seq;
    let deadline = 0;
    for (let i = 0;; i++) {
      if ((v & DEAD_BIT) !== 0n || seq === null) return v & GEN_MASK;
      if (i >= SPIN) {
        // A live monitor publishes within microseconds (it never blocks while BUSY): a
        // word that stays BUSY is a corrupted or forged control buffer. Say so, never hang.
        if (deadline === 0) deadline = Date.now() + SETTLE_LIMIT_MS;
        else if (Date.now() > deadline) {
          throw new UmmuError(
            "GenerationCounter",
            ETIMEDOUT,
            `the counter stayed BUSY for ${SETTLE_LIMIT_MS} ms: its control buffer is not a live notifier's (corrupted, or not made by the library); nothing can be said about changes`,
          );
        }
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

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("GenerationCounter");
  }
}

/** A handle as the library made it, or UmmuArgumentError. */
function checkHandle(h: unknown): CounterHandle {
  if (h === null || typeof h !== "object") {
    return invalid("handle", h, "a counter handle (the `handle` of a GenerationCounter)");
  }
  const { kind, control } = h as { kind?: unknown; control?: unknown };
  if (kind === "shared") {
    if (isTableControl(control)) return { kind, control };
    return invalid(
      "handle.control",
      control,
      "the SharedArrayBuffer of a userfaultfd-backend counter's handle",
    );
  }
  if (kind === "device") {
    if (isPageControl(control)) return { kind, control };
    return invalid("handle.control", control, "the SharedArrayBuffer of a device counter's handle");
  }
  return invalid("handle.kind", kind, '"shared" or "device" (from a GenerationCounter\'s handle)');
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
