/**
 * The channel between the handler Worker and the Worker that runs module
 * page sources (source_worker.ts): shared words and a shared data buffer,
 * no messages, so the handler waits for a fill with a deadline it enforces.
 *
 * Why a Worker of its own: a module source is the user's code. In the
 * handler's thread, a fill that hangs, spins, exits its Worker or throws from
 * a timer would leave every faulting thread blocked (the main thread among
 * them, which then cannot notice anything). Here it costs one fill: after
 * `timeoutMs`, or as soon as the source Worker is gone, the fill fails (the
 * toucher gets the onSourceError policy) and the source is not used again.
 *
 * The data buffer is written by the source only during a fill and read by
 * the handler only after that fill completed in time; once a source is
 * declared dead its buffer is never read again, so a late (or runaway) writer
 * cannot change a page anyone is served.
 */

/** Word indexes in `ctl`. */
export const LINK = {
  /** Request sequence, bumped by the handler (the source waits on it). */
  req: 0,
  /** The last request completed, set by the source (the handler waits on it). */
  done: 1,
  /** 0: the fill succeeded; 1: it threw (message in `msg`). */
  status: 2,
  /** Which module, and where: the offset in the range (two 32-bit halves) and the length. */
  module: 3,
  offsetLo: 4,
  offsetHi: 5,
  length: 6,
  /** LINK_* below. */
  state: 7,
  /** Bytes of the UTF-8 error message in `msg`. */
  msgLength: 8,
  /** The source Worker's thread id, once loaded (the handler watches the thread). */
  tid: 9,
  words: 10,
} as const;
export const LINK_STARTING = 0;
export const LINK_READY = 1;
/** The source Worker is gone or missed a deadline: never used again. */
export const LINK_DEAD = 2;
/** The handler is stopping: waits end. */
export const LINK_STOP = 3;

export const MSG_BYTES = 1024;

/** The shared buffers of a link (structured-cloned to both Workers). */
export interface SourceLinkInit {
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  msg: SharedArrayBuffer;
  timeoutMs: number;
}

/** A new link whose data buffer holds `dataLength` bytes. */
export function createLink(dataLength: number, timeoutMs: number): SourceLinkInit {
  return {
    ctl: new SharedArrayBuffer(4 * LINK.words),
    data: new SharedArrayBuffer(dataLength),
    msg: new SharedArrayBuffer(MSG_BYTES),
    timeoutMs,
  };
}

/** Marks a link dead or stopping (main side), waking a handler that waits on it. */
export function endLink(link: SourceLinkInit, state: typeof LINK_DEAD | typeof LINK_STOP): void {
  const ctl = new Int32Array(link.ctl);
  if (Atomics.load(ctl, LINK.state) !== LINK_DEAD) Atomics.store(ctl, LINK.state, state);
  Atomics.notify(ctl, LINK.done);
  Atomics.notify(ctl, LINK.req);
}

/** fill() outcomes besides success. */
export const FILL_OK = 0, FILL_THREW = 1, FILL_DEAD = 2, FILL_STOPPING = 3;

const decoder = new TextDecoder();
const TWO32 = 2 ** 32;

/** The handler's end: one fill at a time. */
export class SourceClient {
  readonly ctl: Int32Array;
  readonly data: Uint8Array;
  readonly #msg: Uint8Array;
  readonly #timeoutMs: number;
  readonly #threadAlive: (tid: number) => boolean;
  /** Why the last fill failed. */
  message = "";

  /**
   * `threadAlive(tid)` tells whether the source Worker's thread still
   * exists: a Worker that ends itself (process.exit) says nothing, and the
   * handler would otherwise wait for the deadline.
   */
  constructor(link: SourceLinkInit, threadAlive: (tid: number) => boolean) {
    this.ctl = new Int32Array(link.ctl);
    this.data = new Uint8Array(link.data);
    this.#msg = new Uint8Array(link.msg);
    this.#timeoutMs = link.timeoutMs;
    this.#threadAlive = threadAlive;
  }

  /** Asks module `module` for `length` bytes at `offset`; on FILL_OK they are in data[0, length). */
  fill(module: number, offset: number, length: number): number {
    const c = this.ctl;
    const state = Atomics.load(c, LINK.state);
    if (state === LINK_DEAD) {
      this.message = "the page source failed earlier and is no longer used";
      return FILL_DEAD;
    }
    if (state === LINK_STOP) return FILL_STOPPING;
    Atomics.store(c, LINK.module, module);
    Atomics.store(c, LINK.offsetLo, offset >>> 0);
    Atomics.store(c, LINK.offsetHi, Math.floor(offset / TWO32));
    Atomics.store(c, LINK.length, length);
    const seq = (Atomics.load(c, LINK.req) + 1) | 0;
    Atomics.store(c, LINK.req, seq);
    Atomics.notify(c, LINK.req);
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      const done = Atomics.load(c, LINK.done);
      if (done === seq) break;
      const s = Atomics.load(c, LINK.state);
      if (s === LINK_DEAD) {
        this.message = "the page source's Worker ended (it exited, or an error killed it)";
        return FILL_DEAD;
      }
      if (s === LINK_STOP) return FILL_STOPPING;
      const left = deadline - performance.now();
      if (left <= 0) {
        Atomics.store(c, LINK.state, LINK_DEAD);
        this.message = `the page source did not fill within ${this.#timeoutMs} ms ` +
          "(sourceTimeoutMs); it is no longer used";
        return FILL_DEAD;
      }
      if (Atomics.wait(c, LINK.done, done, Math.min(left, 50)) === "timed-out") {
        const tid = Atomics.load(c, LINK.tid);
        if (tid > 0 && !this.#threadAlive(tid)) Atomics.store(c, LINK.state, LINK_DEAD);
      }
    }
    if (Atomics.load(c, LINK.status) === 0) return FILL_OK;
    const n = Math.min(Atomics.load(c, LINK.msgLength), MSG_BYTES);
    this.message = decoder.decode(this.#msg.slice(0, n));
    return FILL_THREW;
  }
}
