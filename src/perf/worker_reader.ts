/**
 * PerfWorkerReader: a Worker drains an event's rings the moment the kernel
 * wakes it and hands the records to the main thread in batches through a
 * SharedArrayBuffer queue. Use it when the main thread may be busy for
 * longer than a ring lasts: the Worker keeps the kernel's rings empty, so
 * records are lost only when the queue itself is full (then the Worker stops
 * draining, the ring fills, and the kernel's LOST record says how many).
 *
 * Reading:
 * - `for await (const r of reader.records())`: owning objects; waits with
 *   Atomics.waitAsync (no polling on the main thread); ends when the reader
 *   is closed, or every watched task exited and the queue is empty.
 * - `reader.readRecords(each)`: what is queued now, in the decoder's reused
 *   objects, valid until `each` returns (the queue space is then reused).
 * @module
 */
import { ClosedError } from "../errors.ts";
import { closeEventfd, eventfd, signalEventfd } from "../libc.ts";
import { invalid, powerOfTwo } from "../validate.ts";
import { atProcessExit, idleWorker, keepAlive, retireWorker, spawnWorker } from "../worker.ts";
import type { FdShare } from "../fd_control.ts";
import type { RecordDecoder } from "./record_decoder.ts";
import type { PerfRecord } from "./records.ts";
import type { PerfRing } from "./ring.ts";
import {
  createQueue,
  entrySize,
  FLUSH_DONE,
  FLUSH_REQ,
  HEAD,
  HUNG_UP,
  LOST,
  type QueueShare,
  STATE,
  STOP,
  STOPPED,
  TAIL,
  WRAP,
} from "./worker_reader_queue.ts";
import type { ReaderInit } from "./worker_reader_worker.ts";

/** Options of PerfEvent.startReader(). */
export interface PerfWorkerReaderOptions {
  /** Bytes of the shared queue, a power of two (default 4 MiB). */
  queueBytes?: number;
}

/** Records of an event's rings, drained by a Worker. */
export class PerfWorkerReader {
  readonly #queue: QueueShare;
  readonly #words: Int32Array;
  readonly #data: Uint8Array;
  readonly #dv: DataView;
  readonly #decoder: RecordDecoder;
  readonly #worker: Worker;
  readonly #wakeFd: number;
  readonly #unhook: () => void;
  #tail = 0;
  #closed = false;
  #onClosed: (reader: PerfWorkerReader) => void = () => {};

  private constructor(queue: QueueShare, decoder: RecordDecoder, worker: Worker, wakeFd: number) {
    this.#queue = queue;
    this.#words = new Int32Array(queue.words);
    this.#data = new Uint8Array(queue.data);
    this.#dv = new DataView(queue.data);
    this.#decoder = decoder;
    this.#worker = worker;
    this.#wakeFd = wakeFd;
    this.#unhook = atProcessExit(() => this.#stop());
  }

  /** Starts the Worker on these rings (the caller keeps them mapped until close() resolves). @internal */
  static async start(
    rings: readonly { ring: PerfRing; control: FdShare }[],
    decoder: RecordDecoder,
    options: PerfWorkerReaderOptions = {},
    onClosed: (reader: PerfWorkerReader) => void = () => {},
  ): Promise<PerfWorkerReader> {
    if (options === null || typeof options !== "object") {
      invalid("startReader options", options, "an object");
    }
    const bytes = powerOfTwo("queueBytes", options.queueBytes ?? 1 << 22, 1 << 16, 1 << 30);
    const queue = createQueue(bytes);
    const wakeFd = eventfd();
    let worker: Worker;
    try {
      worker = await spawnWorker(new URL("./worker_reader_worker.ts", import.meta.url));
    } catch (e) {
      closeEventfd(wakeFd);
      throw e;
    }
    idleWorker(worker);
    const init: ReaderInit = {
      rings: rings.map((r) => ({ ring: r.ring.share, control: r.control })),
      wakeFd,
      queue,
    };
    worker.postMessage(init);
    const reader = new PerfWorkerReader(queue, decoder, worker, wakeFd);
    reader.#onClosed = onClosed;
    return reader;
  }

  /** Records the kernel reported lost (LOST records), as the Worker saw them. */
  get lost(): number {
    return Atomics.load(this.#words, LOST);
  }

  /**
   * Has the Worker drain the rings now and resolves once it has: records
   * below a ring's watermark wake nobody (the Worker also drains at least
   * once a second by itself). Then readRecords() sees everything written
   * before the call that fit in the queue.
   */
  async flush(): Promise<void> {
    if (this.#closed) throw new ClosedError("PerfWorkerReader");
    const req = Atomics.add(this.#words, FLUSH_REQ, 1) + 1;
    signalEventfd(this.#wakeFd);
    await keepAlive(this.#worker, async () => {
      for (;;) {
        const done = Atomics.load(this.#words, FLUSH_DONE);
        if (done - req >= 0) return;
        const state = Atomics.load(this.#words, STATE);
        if (state === STOPPED || state === HUNG_UP) return;
        const w = Atomics.waitAsync(this.#words, FLUSH_DONE, done, 1000);
        if (w.async) await w.value;
      }
    });
  }

  /** Decodes what is queued now into the decoder's reused objects (valid until `each` returns). */
  readRecords(each: (record: PerfRecord) => void, max = Infinity): number {
    if (this.#closed) throw new ClosedError("PerfWorkerReader");
    return this.#take((u8, off) => each(this.#decoder.decodeReused(u8, off)), max);
  }

  #take(each: (u8: Uint8Array, off: number) => void, max: number): number {
    const mask = this.#data.length - 1;
    const head = Atomics.load(this.#words, HEAD) >>> 0;
    let tail = this.#tail;
    let n = 0;
    while (tail !== head && n < max) {
      const pos = tail & mask;
      const size = this.#data.length - pos >= 4 ? this.#dv.getUint32(pos, true) : WRAP;
      if (size === WRAP) {
        tail = (tail + (this.#data.length - pos)) >>> 0;
        continue;
      }
      each(this.#data, pos + 8);
      tail = (tail + entrySize(size)) >>> 0;
      n++;
    }
    this.#tail = tail;
    // The space is free once every record in it was handed out (Atomics.store after the reads).
    Atomics.store(this.#words, TAIL, tail | 0);
    Atomics.notify(this.#words, TAIL);
    return n;
  }

  /** Every record, as owning objects, waiting while the queue is empty; see the module comment. */
  async *records(): AsyncGenerator<PerfRecord, void, undefined> {
    const batch: PerfRecord[] = [];
    for (;;) {
      if (this.#closed) return;
      this.#take((u8, off) => batch.push(this.#decoder.decode(u8, off)), Infinity);
      if (batch.length) {
        for (let i = 0; i < batch.length; i++) yield batch[i];
        batch.length = 0;
        continue;
      }
      const state = Atomics.load(this.#words, STATE);
      const head = Atomics.load(this.#words, HEAD);
      if ((head >>> 0) !== this.#tail) continue;
      if (state === HUNG_UP || state === STOPPED) return;
      // Awaiting records keeps the process alive (as reading a socket does); an idle
      // reader nobody awaits does not.
      await keepAlive(this.#worker, async () => {
        const w = Atomics.waitAsync(this.#words, HEAD, head, 1000);
        if (w.async) await w.value;
      });
    }
  }

  /** Tells the Worker to stop now (close() joins it). @internal */
  stop(): void {
    if (!this.#closed) this.#stop();
  }

  #stop(): void {
    if (Atomics.load(this.#words, STATE) !== STOPPED) Atomics.store(this.#words, STATE, STOP);
    Atomics.notify(this.#words, STATE);
    Atomics.notify(this.#words, TAIL);
    signalEventfd(this.#wakeFd);
  }

  /** Stops and joins the Worker; closes its eventfd. Idempotent. Records still queued are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClosed(this);
    this.#unhook();
    this.#stop();
    await keepAlive(this.#worker, async () => {
      const deadline = Date.now() + 3000;
      while (Atomics.load(this.#words, STATE) !== STOPPED && Date.now() < deadline) {
        const r = Atomics.waitAsync(this.#words, STATE, Atomics.load(this.#words, STATE), 50);
        if (r.async) await r.value;
      }
    });
    retireWorker(this.#worker, Atomics.load(this.#words, STATE) === STOPPED);
    closeEventfd(this.#wakeFd);
  }
}
