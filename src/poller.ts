/**
 * FdReadiness: await "this fd is readable" without blocking the calling
 * thread, the same way on every runtime. A Worker blocks in poll() on the fd
 * and an eventfd; it raises a shared word and notifies; the caller waits with
 * Atomics.waitAsync, drains the fd itself, and re-arms. The fd is used
 * through its control (fd_control.ts): the Worker never polls an fd number
 * that was closed.
 */
import { closeEventfd, eventfd, signalEventfd } from "./libc.ts";
import { ClosedError } from "./errors.ts";
import { atProcessExit, idleWorker, keepAlive, retireWorker, spawnWorker } from "./worker.ts";
import { FdControl, type FdShare } from "./fd_control.ts";

// word 0: 0 = armed (the Worker polls), 1 = readable (the Worker waits for re-arm), 2 = stop, 3 = stopped
const ARMED = 0, READABLE = 1, STOP = 2, STOPPED = 3;

/** The init message of the polling Worker. */
export interface PollerInit {
  shares: FdShare[];
  /** Also report "readable" once a second without POLLIN (a perf ring's records below its watermark). */
  tick?: boolean;
  /** Stop polling an fd that reports POLLHUP/POLLERR without POLLIN, and count it (perf events). */
  dropHungUp?: boolean;
  wakeFd: number;
  word: SharedArrayBuffer;
}

/** Readiness notifications for one fd, from a polling Worker. */
export class FdReadiness {
  // word 1: how many of the fds hung up (POLLHUP/POLLERR without POLLIN); they are polled no more.
  readonly #word = new Int32Array(new SharedArrayBuffer(8));
  readonly #count: number;
  readonly #wakeFd: number;
  readonly #worker: Worker;
  readonly #unhook: () => void;
  #closed = false;

  private constructor(wakeFd: number, worker: Worker, count: number) {
    this.#count = count;
    this.#wakeFd = wakeFd;
    this.#worker = worker;
    this.#unhook = atProcessExit(() => this.#stop());
  }

  /**
   * Starts polling the fd of `share` (or several: readable when any is) for
   * POLLIN. The fds stay owned by the caller. (A bare fd number gets a
   * control of its own: then nothing protects the poller from the caller
   * closing it.) Polling stops when any of the fds is closed.
   */
  static async start(
    fd: FdShare | number | readonly (FdShare | number)[],
    options: { tick?: boolean; dropHungUp?: boolean } = {},
  ): Promise<FdReadiness> {
    const shares = (Array.isArray(fd) ? fd : [fd]).map((f: FdShare | number) =>
      typeof f === "number" ? FdControl.create(f).share : f
    );
    const wakeFd = eventfd();
    let worker: Worker;
    try {
      worker = await spawnWorker(new URL("./poller_worker.ts", import.meta.url));
    } catch (e) {
      closeEventfd(wakeFd);
      throw e;
    }
    idleWorker(worker);
    const r = new FdReadiness(wakeFd, worker, shares.length);
    const init: PollerInit = {
      shares,
      tick: options.tick === true,
      dropHungUp: options.dropHungUp === true,
      wakeFd,
      word: r.#word.buffer as SharedArrayBuffer,
    };
    worker.postMessage(init);
    return r;
  }

  /**
   * Resolves when the fd is (or was, since the last re-arm) readable. The
   * caller then reads until EAGAIN and calls rearm(). Waiting does not keep
   * the process alive by itself (what would make a userfaultfd readable, a
   * thread that faults, does), unless `keepAlive` says so: a perf event is
   * made readable by the kernel, and a program awaiting its records must not
   * exit in the middle of the wait.
   */
  readable(options: { keepAlive?: boolean } = {}): Promise<void> {
    const wait = async () => {
      for (;;) {
        if (this.#closed) throw new ClosedError("FdReadiness");
        const v = Atomics.load(this.#word, 0);
        if (v === READABLE) return;
        if (v !== ARMED) throw new ClosedError("FdReadiness");
        const r = Atomics.waitAsync(this.#word, 0, ARMED);
        if (r.async) await r.value;
      }
    };
    // keepAlive: the caller waits for the kernel itself (perf records), so the process
    // stays alive while it waits, as it would for a socket it reads.
    return options.keepAlive ? keepAlive(this.#worker, wait) : wait();
  }

  /** With dropHungUp: how many of the fds hung up (a perf event's task exited); they are polled no more. */
  get hungUp(): number {
    return Atomics.load(this.#word, 1);
  }

  /** True when every fd hung up: nothing more will become readable. */
  get allHungUp(): boolean {
    return this.hungUp >= this.#count;
  }

  /** Lets the Worker poll again (after the caller drained the fd). */
  rearm(): void {
    if (Atomics.compareExchange(this.#word, 0, READABLE, ARMED) === READABLE) {
      Atomics.notify(this.#word, 0);
    }
  }

  /** Tells the Worker to stop polling now (close() joins it); nothing after close(). */
  stop(): void {
    if (!this.#closed) this.#stop();
  }

  #stop(): void {
    Atomics.store(this.#word, 0, STOP);
    Atomics.notify(this.#word, 0);
    signalEventfd(this.#wakeFd);
  }

  /** Stops and joins the Worker; closes the eventfd. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unhook();
    this.#stop();
    await keepAlive(this.#worker, async () => {
      const deadline = Date.now() + 2000;
      while (Atomics.load(this.#word, 0) !== STOPPED && Date.now() < deadline) {
        const r = Atomics.waitAsync(this.#word, 0, STOP, 50);
        if (r.async) await r.value;
      }
    });
    retireWorker(this.#worker, Atomics.load(this.#word, 0) === STOPPED);
    closeEventfd(this.#wakeFd);
  }
}
