/**
 * A lazily loaded file: a 32 MiB file mapped as one buffer whose pages are
 * read from disk only when the JS main thread touches them.
 *
 *   deno run -A examples/lazy_file.ts      bun examples/lazy_file.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LazyMapping, sources } from "ummu";

export async function main(): Promise<void> {
  const size = 32 << 20;
  const dir = mkdtempSync(join(tmpdir(), "ummu-lazy-"));
  const path = join(dir, "big.bin");
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) data[i] = (i >>> 12) & 0xff; // each page starts with its index
  writeFileSync(path, data);

  const lazy = await LazyMapping.create(size, { source: sources.file(path), readahead: 4 });
  const bytes = new Uint8Array(lazy.buffer); // no page is read yet
  let ok = 0;
  const probes = 200;
  for (let k = 0; k < probes; k++) {
    const page = (k * 2654435761) % (size >>> 12); // scattered reads
    if (bytes[page * 4096] === (page & 0xff)) ok++;
  }
  const { faults, pages } = lazy.stats;
  console.log(
    `lazy file: ${probes} scattered reads of a ${size >> 20} MiB file, all correct: ${
      ok === probes
    }; ` +
      `${faults} faults served, ${pages} of ${size >>> 12} pages read (${
        ((pages * 100) / (size >>> 12)).toFixed(1)
      }%)`,
  );
  await lazy.close();
  rmSync(dir, { recursive: true });
  if (ok !== probes) throw new Error("lazy file: wrong bytes");
}

if (import.meta.main) await main();
