/**
 * Which pages of a lazily loaded buffer were faulted in, by which thread, in
 * which order: the kernel's page-faults event sampled at every fault with
 * PERF_SAMPLE_IP|TID|ADDR, on a LazyMapping whose pages a Worker serves on
 * first touch (userfaultfd). The thread that touches a page is the one the
 * kernel samples (not the Worker that fills it).
 *
 *   deno run -A examples/perf_page_faults.ts      bun examples/perf_page_faults.ts
 */
import process from "node:process";
import { LazyMapping, sources } from "ummu";
import {
  decodeAttr,
  encodeAttr,
  PERF_COUNT_SW_PAGE_FAULTS,
  PERF_SAMPLE_ADDR,
  PERF_SAMPLE_IP,
  PERF_SAMPLE_TID,
  PERF_TYPE_SOFTWARE,
  PerfEvent,
  RecordDecoder,
} from "ummu/perf";

const PAGE = 4096;
const PAGES = 16;
// Each page of the source starts with its own number.
const content = new Uint8Array(PAGES * PAGE);
for (let p = 0; p < PAGES; p++) content[p * PAGE] = p;

const lazy = await LazyMapping.create(PAGES * PAGE, { source: sources.bytes(content) });
const faults = PerfEvent.open({
  type: PERF_TYPE_SOFTWARE,
  config: BigInt(PERF_COUNT_SW_PAGE_FAULTS),
  samplePeriod: 1n, // a sample at every fault
  sampleType: PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_ADDR,
}, { ring: { pages: 8 } }); // this thread (the default target)

const order = [11, 3, 7, 3, 0, 15, 7, 8]; // pages read, some twice
const bytes = new Uint8Array(lazy.buffer);
faults.enable();
const seen = order.map((p) => bytes[p * PAGE]);
faults.disable();

const start = lazy.mapping.address;
const end = start + BigInt(lazy.mapping.length);
const decoder = new RecordDecoder(decodeAttr(encodeAttr(faults.attr)));
const faulted: number[] = [];
faults.drain((ring, offset) => {
  const r = decoder.decodeReused(ring, offset); // valid until the callback returns
  if (r.kind !== "sample" || r.addr! < start || r.addr! >= end) return; // the runtime's own faults
  const page = Number((r.addr! - start) / BigInt(PAGE));
  faulted.push(page);
  console.log(
    `page ${String(page).padStart(2)} faulted: thread ${r.tid}${
      r.tid === process.pid ? " (main)" : ""
    }, ip 0x${r.ip!.toString(16)}`,
  );
});
console.log(
  `read pages ${order.join(", ")} (values ${seen.join(", ")}); faulted in order: ${
    faulted.join(", ")
  }; ${lazy.stats.pages} pages served by the fault handler, ${faults.lost} samples lost`,
);
await faults.close();
await lazy.close();
const expected = [...new Set(order)];
if (faulted.join() !== expected.join() || seen.join() !== order.join()) {
  throw new Error(`perf page faults: expected pages ${expected.join(", ")} to fault in order`);
}
