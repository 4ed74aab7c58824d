/**
 * Dirty tracking with WP_ASYNC: which pages a workload wrote, with no fault
 * served by anyone (the kernel resolves each first write itself) and one
 * PAGEMAP_SCAN to read (and reset) the written set.
 *
 *   deno run -A examples/dirty_tracking.ts      bun examples/dirty_tracking.ts
 */
import { DirtyTracker, Mapping } from "ummu";

// deno-lint-ignore require-await -- async like the other examples' main(), which the demo awaits
export async function main(): Promise<void> {
  const pages = 1024;
  const mem = Mapping.create(pages * 4096);
  const bytes = new Uint8Array(mem.buffer);
  const tracker = DirtyTracker.start(mem.address, mem.length);

  // The workload: a few records and one 10-page run.
  for (const p of [3, 17, 18, 500]) bytes[p * 4096 + 100] = 1;
  bytes.fill(9, 700 * 4096, 710 * 4096);
  const fmt = (rs: { start: bigint; end: bigint }[]) =>
    rs.map((r) => {
      const a = Number(r.start - mem.address) / 4096, b = Number(r.end - mem.address) / 4096;
      return b - a === 1 ? `${a}` : `${a}-${b - 1}`;
    }).join(", ");
  const first = tracker.dirtyAndReset();
  console.log(`dirty tracking: round 1 wrote pages [${fmt(first)}]`);
  bytes[17 * 4096] = 2;
  bytes[1023 * 4096] = 2;
  const second = tracker.dirty();
  console.log(`dirty tracking: round 2 (after reset) wrote pages [${fmt(second)}]`);
  tracker.close();
  mem.close();
  if (fmt(first) !== "3, 17-18, 500, 700-709" || fmt(second) !== "17, 1023") {
    throw new Error("dirty tracking: wrong pages");
  }
}

if (import.meta.main) await main();
