/**
 * One fd used from several threads (a userfaultfd: the handle's thread, a
 * FaultHandler Worker, a polling Worker): who may still call on its fd
 * number, who reads its messages, and who closes it, exactly once.
 *
 * Why: an fd number is reused by the next open() as soon as it is closed. A
 * thread that checks "still open" and then calls ioctl() could hit an
 * unrelated file if another thread closed the fd in between; a second
 * close() would close that file. So every call on the fd is bracketed by
 * enter()/leave() (a shared count of calls in flight, sequentially
 * consistent with the state word), and close() moves the state from OPEN to
 * CLOSED with one compare-exchange (the winner alone closes), wakes pollers,
 * waits for the calls in flight to leave, and only then calls close(2).
 */
import { libc, sched } from "./libc.ts";

const STATE = 0, INFLIGHT = 1, READER = 2, TRANSIT = 3, WORDS = 4;
const OPEN = 0, CLOSED = 1;

/** Who reads the fd's messages: the handle itself, or a FaultHandler's Worker. */
export const READER_HANDLE = 0;
export const READER_HANDLER = 1;

/** How long close() waits for calls in flight (a thread stuck in one is a bug; we say so). */
const DRAIN_MS = 2000;

/** The shared part: an fd number and its control words (structured-clone it to a Worker). */
export interface FdShare {
  fd: number;
  words: SharedArrayBuffer;
}

/** One thread's view of the shared control of a userfaultfd. */
export class FdControl {
  readonly fd: number;
  readonly #w: Int32Array;

  constructor(share: FdShare) {
    this.fd = share.fd;
    this.#w = new Int32Array(share.words);
  }

  /** Control for a newly created fd. */
  static create(fd: number): FdControl {
    return new FdControl({ fd, words: new SharedArrayBuffer(4 * WORDS) });
  }

  /** What another thread needs. */
  get share(): FdShare {
    return { fd: this.fd, words: this.#w.buffer as SharedArrayBuffer };
  }

  /** True until someone closed the fd. */
  get open(): boolean {
    return Atomics.load(this.#w, STATE) === OPEN;
  }

  /**
   * Before each call on the fd: false if it is closed (then make no call).
   * Pair every true with leave().
   */
  enter(): boolean {
    Atomics.add(this.#w, INFLIGHT, 1);
    if (Atomics.load(this.#w, STATE) === OPEN) return true;
    this.leave();
    return false;
  }

  /** After the call. */
  leave(): void {
    if (Atomics.sub(this.#w, INFLIGHT, 1) === 1 && Atomics.load(this.#w, STATE) !== OPEN) {
      Atomics.notify(this.#w, INFLIGHT);
    }
  }

  /** The reader of messages (READER_HANDLE or READER_HANDLER). */
  get reader(): number {
    return Atomics.load(this.#w, READER);
  }

  /** Makes a FaultHandler the reader; false if one already is. */
  claimReader(): boolean {
    return Atomics.compareExchange(this.#w, READER, READER_HANDLE, READER_HANDLER) ===
      READER_HANDLE;
  }

  /** Gives reading back to the handle. */
  releaseReader(): void {
    Atomics.store(this.#w, READER, READER_HANDLE);
  }

  /** Marks the fd as handed to another thread; false if it already is in transit. */
  beginTransfer(): boolean {
    return Atomics.compareExchange(this.#w, TRANSIT, 0, 1) === 0;
  }

  /** The receiving thread takes it; false if someone already did. */
  completeTransfer(): boolean {
    return Atomics.compareExchange(this.#w, TRANSIT, 1, 0) === 1;
  }

  /**
   * Marks the fd closed without closing it (someone outside this protocol
   * closed it); false if it already was.
   */
  forget(): boolean {
    return Atomics.compareExchange(this.#w, STATE, OPEN, CLOSED) === OPEN;
  }

  /**
   * Closes the fd if nobody has: `wake` runs first (signal the pollers, whose
   * poll(2) holds the file open), then the calls in flight drain, then
   * close(2). Returns false if it was already closed. Must not be called
   * between enter() and leave() on this thread.
   */
  close(wake?: () => void): boolean {
    if (Atomics.compareExchange(this.#w, STATE, OPEN, CLOSED) !== OPEN) return false;
    wake?.();
    const deadline = Date.now() + DRAIN_MS;
    for (let spins = 0;; spins++) {
      const n = Atomics.load(this.#w, INFLIGHT);
      if (n === 0 || Date.now() > deadline) break;
      if (spins < 100) sched();
      else Atomics.wait(this.#w, INFLIGHT, n, 5);
    }
    libc.close(this.fd);
    return true;
  }
}
