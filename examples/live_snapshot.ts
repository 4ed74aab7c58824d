/**
 * A live snapshot: copy 16 MiB as it is now while the main thread keeps
 * writing to it. Each page is copied out by the handler Worker just before
 * its first write lands; the rest are copied by finish().
 *
 *   deno run -A examples/live_snapshot.ts      bun examples/live_snapshot.ts
 */
import { LiveSnapshot, Mapping } from "ummu";

export async function main(): Promise<void> {
  const pages = 4096;
  const mem = Mapping.create(pages * 4096);
  const live = new Uint32Array(mem.buffer);
  for (let p = 0; p < pages; p++) live[p * 1024] = p; // the state to capture

  const snap = await LiveSnapshot.start(mem.address, mem.length);
  // The program goes on: 10,000 writes scattered over the first 1,000 pages.
  for (let k = 0; k < 10_000; k++) {
    const p = (k * 7919) % 1000;
    live[p * 1024] = 1_000_000 + k;
  }
  const copy = new Uint32Array(await snap.finish());
  let exact = 0;
  for (let p = 0; p < pages; p++) if (copy[p * 1024] === p) exact++;
  console.log(
    `live snapshot: ${pages} pages, ${snap.pagesCopiedOnWrite} copied just before their first write, ` +
      `the others by finish(); snapshot matches the state at start: ${exact === pages}`,
  );
  await snap.close();
  mem.close();
  if (exact !== pages) throw new Error("live snapshot: wrong bytes");
}

if (import.meta.main) await main();
