/**
 * Who writes this word? A hardware watchpoint (a perf breakpoint event,
 * HW_BREAKPOINT_W) on one 4-byte word of a SharedArrayBuffer that a Worker
 * writes: each write is a sample naming the Worker's thread id and the
 * native instruction that wrote (JIT-compiled code of the runtime).
 *
 *   deno run -A examples/perf_watchpoint.ts      bun examples/perf_watchpoint.ts
 */
import { Worker } from "node:worker_threads";
import {
  decodeAttr,
  encodeAttr,
  HW_BREAKPOINT_W,
  PERF_SAMPLE_ADDR,
  PERF_SAMPLE_IP,
  PERF_SAMPLE_TID,
  PERF_TYPE_BREAKPOINT,
  addressOf,
  PerfEvent,
  RecordDecoder,
} from "ummu/perf";

const WRITES = 5;
const shared = new SharedArrayBuffer(64);
const words = new Int32Array(shared);
const watched = 4; // words[4]: bytes 16..19

// The Worker reports its thread id (words[0]), waits for a go (words[1]), then writes words[4].
const worker = new Worker(
  `
  const { workerData } = require("node:worker_threads");
  const words = new Int32Array(workerData.shared);
  Atomics.store(words, 0, Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop()));
  Atomics.notify(words, 0);
  Atomics.wait(words, 1, 0);
  for (let i = 1; i <= ${WRITES}; i++) Atomics.store(words, ${watched}, i * 100);
  Atomics.store(words, 2, 1);
  Atomics.notify(words, 2);
  `,
  { eval: true, workerData: { shared } },
);
while (Atomics.load(words, 0) === 0) await new Promise((r) => setTimeout(r, 5));
const tid = Atomics.load(words, 0);

const address = addressOf(words) + BigInt(watched * 4);
const watch = PerfEvent.open({
  type: PERF_TYPE_BREAKPOINT,
  bpType: HW_BREAKPOINT_W,
  bpAddr: address,
  bpLen: 4n,
  samplePeriod: 1n, // a sample at every write
  sampleType: PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_ADDR,
}, { target: { thread: tid }, ring: { pages: 2 } });
watch.enable();
Atomics.store(words, 1, 1); // go
Atomics.notify(words, 1);
while (Atomics.load(words, 2) === 0) await new Promise((r) => setTimeout(r, 5));
watch.disable();

const decoder = new RecordDecoder(decodeAttr(encodeAttr(watch.attr)));
let writes = 0;
watch.drain((ring, offset) => {
  const r = decoder.decodeReused(ring, offset);
  if (r.kind !== "sample") return;
  writes++;
  console.log(
    `write #${writes} to 0x${r.addr!.toString(16)}: thread ${r.tid}, ip 0x${r.ip!.toString(16)}`,
  );
});
console.log(
  `watchpoint: ${writes} writes by the Worker (thread ${tid}), value now ${words[watched]}`,
);
await watch.close();
await worker.terminate();
if (writes !== WRITES) throw new Error(`perf watchpoint: ${writes} writes seen, ${WRITES} made`);
