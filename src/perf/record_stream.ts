/**
 * The records of an event's rings, decoded: the hot path that hands each
 * record to a callback in a reused object (nothing allocated per SAMPLE),
 * and the async iterator that waits for records and yields objects that own
 * their bytes.
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
 *   the event is closed or the loop breaks.
 * @module
 */
import { ClosedError } from "../errors.ts";
import { RecordDecoder } from "./record_decoder.ts";
import type { PerfRecord } from "./records.ts";
import type { PerfRing } from "./ring.ts";

/** The rings of one event (and its group), and their decoder. */
export class RecordStream {
  readonly #rings: readonly PerfRing[];
  readonly #decoder: () => RecordDecoder;
  readonly #readable: () => Promise<boolean>;
  readonly #isClosed: () => boolean;

  constructor(
    rings: readonly PerfRing[],
    decoder: () => RecordDecoder,
    readable: () => Promise<boolean>,
    isClosed: () => boolean,
  ) {
    this.#rings = rings;
    this.#decoder = decoder;
    this.#readable = readable;
    this.#isClosed = isClosed;
  }

  /** Decodes every record in the rings into the decoder's reused objects; see the module comment. */
  readRecords(each: (record: PerfRecord) => void, max = Infinity): number {
    const d = this.#decoder();
    let n = 0;
    for (const r of this.#rings) {
      n += r.drain((bytes, off) => {
        each(d.decodeReused(bytes, off));
      }, max - n);
    }
    return n;
  }

  /** Decodes a flight recorder's newest records (newest first), as readRecords does. */
  snapshotRecords(each: (record: PerfRecord) => void, max = Infinity): number {
    const d = this.#decoder();
    let n = 0;
    for (const r of this.#rings) {
      n += r.snapshot((bytes, off) => {
        each(d.decodeReused(bytes, off));
      }, max - n);
    }
    return n;
  }

  /** Every record, as owning objects, waiting when the rings are empty; ends at close. */
  async *records(): AsyncGenerator<PerfRecord, void, undefined> {
    const d = this.#decoder();
    const batch: PerfRecord[] = [];
    let more = true;
    for (;;) {
      if (this.#isClosed()) return;
      for (const r of this.#rings) {
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
        more = await this.#readable();
      } catch (e) {
        if (e instanceof ClosedError) return;
        throw e;
      }
    }
  }
}
