/**
 * Reading an event's records: the rings drained raw or decoded, the wait
 * for more, the Worker-hosted reader, and the rule of one reader per ring.
 *
 * Which to use:
 * - `readRecords(each)`: `each` gets the decoder's reused object (a SAMPLE is
 *   a SampleView whose getters read the ring's bytes); it and every byte view
 *   it holds are valid only until `each` returns, because after that the
 *   reader publishes data_tail and the kernel may write over those bytes.
 *   Copy what you keep (`decoder.decode()` makes an owning copy).
 * - `for await (const r of event.records())`: each record is a fresh object
 *   that owns its bytes; keep it as long as you like. The iterator waits in
 *   a Worker-backed poll (readable()) when the rings are empty, and ends when
 *   the event is closed, or every watched task exited and the rings are empty.
 * - `startReader()`: a Worker drains the rings as the kernel fills them (for
 *   a main thread that may be busy longer than a ring lasts); then it is the
 *   only reader of these rings.
 * @module
 */
import { ClosedError, UmmuArgumentError } from "../errors.ts";
import { FdReadiness } from "../poller.ts";
import type { RecordDecoder } from "./record_decoder.ts";
import type { PerfRecord } from "./records.ts";
import type { PerfRing, RecordCallback } from "./ring.ts";
import type { EventFds } from "./event_fds.ts";
import { PerfWorkerReader, type PerfWorkerReaderOptions } from "./worker_reader.ts";

/** The rings of one event (its group members write into them too) and their readers. */
export class EventRecords {
  readonly rings: readonly PerfRing[];
  readonly #fds: EventFds;
  readonly #decoder: () => RecordDecoder;
  readonly #isClosed: () => boolean;
  #readiness: FdReadiness | null = null;
  #readinessStart: Promise<FdReadiness> | null = null;
  readonly #readers: PerfWorkerReader[] = [];
  #readerStarting = false;

  constructor(
    rings: readonly PerfRing[],
    fds: EventFds,
    decoder: () => RecordDecoder,
    isClosed: () => boolean,
  ) {
    this.rings = rings;
    this.#fds = fds;
    this.#decoder = decoder;
    this.#isClosed = isClosed;
  }

  /** Records the kernel reported lost, over every ring. */
  get lost(): number {
    let n = 0;
    for (const r of this.rings) n += r.lost;
    return n;
  }

  /** Throws unless this thread may read the rings now. */
  #mine(what: string): void {
    if (this.#isClosed()) throw new ClosedError(`PerfEvent (${what})`);
    if (this.rings.length === 0) {
      throw new UmmuArgumentError(
        `PerfEvent.${what}: this event has no ring (open it with ring: {})`,
      );
    }
    if (this.#readers.length > 0 || this.#readerStarting) {
      throw new UmmuArgumentError(
        `PerfEvent.${what}: a Worker reader (startReader) drains these rings; read its records() or readRecords() instead (one reader per ring)`,
      );
    }
  }

  drain(each: RecordCallback, max: number): number {
    this.#mine("drain");
    let n = 0;
    for (const r of this.rings) n += r.drain(each, max - n);
    return n;
  }

  snapshot(each: RecordCallback, max: number): number {
    this.#mine("snapshot");
    let n = 0;
    for (const r of this.rings) n += r.snapshot(each, max - n);
    return n;
  }

  readRecords(each: (record: PerfRecord) => void, max: number): number {
    this.#mine("readRecords");
    const d = this.#decoder();
    let n = 0;
    for (const r of this.rings) {
      n += r.drain((bytes, off) => {
        each(d.decodeReused(bytes, off));
      }, max - n);
    }
    return n;
  }

  snapshotRecords(each: (record: PerfRecord) => void, max: number): number {
    this.#mine("snapshotRecords");
    const d = this.#decoder();
    let n = 0;
    for (const r of this.rings) {
      n += r.snapshot((bytes, off) => {
        each(d.decodeReused(bytes, off));
      }, max - n);
    }
    return n;
  }

  async readable(): Promise<boolean> {
    this.#mine("readable");
    if (this.#readiness === null) {
      // tick: records below the ring's watermark wake nobody; a wait ends at least once a second.
      this.#readinessStart ??= FdReadiness.start(
        this.rings.map((r) => this.#fds.controlOf(r.fd).share),
        { tick: true, dropHungUp: true },
      );
      const r = await this.#readinessStart;
      if (this.#isClosed()) {
        await r.close();
        throw new ClosedError("PerfEvent (readable)");
      }
      this.#readiness = r;
    }
    if (this.#readiness.allHungUp) return false;
    this.#readiness.rearm();
    await this.#readiness.readable({ keepAlive: true });
    return !this.#readiness.allHungUp;
  }

  async *records(): AsyncGenerator<PerfRecord, void, undefined> {
    this.#mine("records");
    const d = this.#decoder();
    const batch: PerfRecord[] = [];
    let more = true;
    for (;;) {
      if (this.#isClosed()) return;
      this.#mine("records");
      for (const r of this.rings) {
        r.drain((bytes, off) => {
          batch.push(d.decode(bytes, off));
        });
      }
      if (batch.length) {
        for (let i = 0; i < batch.length; i++) yield batch[i];
        batch.length = 0;
        continue;
      }
      if (!more) return; // every watched task exited and the rings are empty
      try {
        more = await this.readable();
      } catch (e) {
        if (e instanceof ClosedError) return;
        throw e;
      }
    }
  }

  async startReader(options: PerfWorkerReaderOptions): Promise<PerfWorkerReader> {
    this.#mine("startReader");
    if (this.rings.some((r) => r.overwrite)) {
      throw new UmmuArgumentError(
        "PerfEvent.startReader: an overwrite ring is read with snapshotRecords(), not drained by a Worker",
      );
    }
    const rings = this.rings.map((ring) => ({ ring, control: this.#fds.controlOf(ring.fd).share }));
    this.#readerStarting = true;
    let reader: PerfWorkerReader;
    try {
      reader = await PerfWorkerReader.start(rings, this.#decoder(), options, (x) => {
        const i = this.#readers.indexOf(x);
        if (i >= 0) this.#readers.splice(i, 1);
      });
    } finally {
      this.#readerStarting = false;
    }
    if (this.#isClosed()) {
      await reader.close();
      throw new ClosedError("PerfEvent (startReader)");
    }
    this.#readers.push(reader);
    return reader;
  }

  /** Tells every waiting Worker to stop (before the fds close: their poll holds the files). */
  wake(): void {
    this.#readiness?.stop();
    for (const r of this.#readers) r.stop();
  }

  /** After the fds are closed: unmaps the rings. */
  unmap(): void {
    for (const r of this.rings) r.unmap();
  }

  /** Joins the Workers. */
  async join(): Promise<void> {
    const r = this.#readiness ??
      (this.#readinessStart ? await this.#readinessStart.catch(() => null) : null);
    await r?.close();
    await Promise.all(this.#readers.splice(0).map((x) => x.close()));
  }
}
