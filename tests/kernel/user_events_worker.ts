/**
 * Worker for tests/kernel/user_events.test.ts: receives tracepoint handles,
 * checks the shared enable bit, emits, and reports its thread id.
 */
import { Tracepoint, type TracepointHandle } from "../../src/user_events/tracepoint.ts";
import { EventHeaderEvent, type EventHeaderHandle } from "../../src/user_events/eventheader.ts";
import { libc } from "../../src/libc.ts";
import { announceLoaded, onWorkerMessage, postFromWorker } from "../../src/worker.ts";

interface Job {
  raw: TracepointHandle;
  rawValues: unknown[][];
  eh: EventHeaderHandle;
  ehValues: unknown[][];
}

onWorkerMessage<Job>(({ raw, rawValues, eh, ehValues }) => {
  try {
    const tp = Tracepoint.fromHandle(raw);
    const ev = EventHeaderEvent.fromHandle(eh);
    const enabled = [tp.enabled, ev.enabled];
    const written: boolean[] = [];
    for (const v of rawValues) written.push(tp.emit(...v));
    for (const v of ehValues) written.push(ev.emit(...v));
    postFromWorker({ tid: libc.gettid(), enabled, written });
  } catch (err) {
    postFromWorker({ error: String((err as Error)?.stack ?? err) });
  }
});

announceLoaded();
