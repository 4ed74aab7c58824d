/**
 * A registration cache: the pattern ummunotify exists for. An expensive
 * per-buffer setup (here a stand-in for an RDMA memory registration, an
 * io_uring fixed buffer or a GPU pin) is memoized by address range; the
 * notifier tells the cache when a buffer's memory was unmapped, freed or
 * remapped, so that a stale entry is never used for new memory at the same
 * address. The fast path is one atomic load (`changed()`).
 *
 *   deno run -A examples/registration_cache.ts      bun examples/registration_cache.ts
 */
import { Ummunotify } from "ummu";
import { runtime } from "../ffi/platform.ts";
import { madvise, mmap, mremap, munmap, PAGE_SIZE } from "../src/libc.ts";
import * as mm from "../ffi/mman.ts";

/** What the expensive setup returns (a memory-region handle, say). */
interface Registration {
  id: number;
  start: number;
  end: number;
}

/** Memoizes setup(start, end) per range; drops entries whose memory changed. */
class RegistrationCache {
  readonly #un: Ummunotify;
  readonly #byRange = new Map<string, { reg: Registration; cookie: bigint }>();
  readonly #byCookie = new Map<bigint, string>();
  #seen: bigint;
  #nextCookie = 1n;
  setups = 0;
  hits = 0;
  readonly dropped: string[] = [];

  constructor(un: Ummunotify, readonly setup: (start: number, end: number) => Registration) {
    this.#un = un;
    this.#seen = un.generation;
  }

  /** The registration of [start, end): from the cache if its memory is unchanged, else set up again. */
  get(start: number, end: number): Registration {
    if (this.#un.changed(this.#seen)) this.#invalidate(); // the only check on the fast path
    const key = `${start}:${end}`;
    const hit = this.#byRange.get(key);
    if (hit) {
      this.hits++;
      return hit.reg;
    }
    const reg = this.setup(start, end);
    this.setups++;
    const cookie = this.#nextCookie++;
    this.#un.register(start, end, cookie);
    this.#byRange.set(key, { reg, cookie });
    this.#byCookie.set(cookie, key);
    return reg;
  }

  /** Drops every entry an invalidation hit (and stops watching it). */
  #invalidate(): void {
    for (const ev of this.#un.readEvents()) {
      if (ev.kind === "last") {
        this.#seen = ev.generation;
        continue;
      }
      const key = this.#byCookie.get(ev.cookie);
      if (key === undefined) continue;
      const entry = this.#byRange.get(key)!;
      const what = ev.hint
        ? `[0x${ev.hint.start.toString(16)}, 0x${ev.hint.end.toString(16)})`
        : "the whole range";
      this.dropped.push(
        `registration #${entry.reg.id} (0x${entry.reg.start.toString(16)}): ${what} invalidated`,
      );
      this.#byRange.delete(key);
      this.#byCookie.delete(ev.cookie);
      this.#un.unregister(ev.cookie);
    }
  }
}

export async function main(): Promise<void> {
  const un = await Ummunotify.open();
  const P = PAGE_SIZE;
  let ids = 0;
  // The "expensive" setup: here it only remembers what the memory held.
  const setup = (start: number, end: number): Registration => ({ id: ++ids, start, end });
  const cache = new RegistrationCache(un, setup);
  const rw = mm.PROT_READ | mm.PROT_WRITE, anon = mm.MAP_PRIVATE | mm.MAP_ANONYMOUS;

  const a = mmap(4 * P, rw, anon), b = mmap(4 * P, rw, anon), c = mmap(4 * P, rw, anon);
  for (const x of [a, b, c]) new Uint8Array(runtime.view(x, 4 * P)).fill(1);
  const ra = cache.get(a, a + 4 * P), rb = cache.get(b, b + 4 * P), rc = cache.get(c, c + 4 * P);
  for (let i = 0; i < 1000; i++) cache.get(a, a + 4 * P); // the fast path: one atomic load each
  console.log(
    `registration cache (${un.backend} backend): ${cache.setups} setups, ${cache.hits} hits`,
  );

  // 1. The program frees buffer b and allocates new memory that lands at the same address.
  munmap(b, 4 * P);
  let b2: number;
  try {
    b2 = mmap(4 * P, rw, anon | mm.MAP_FIXED_NOREPLACE, -1, 0, b);
  } catch {
    b2 = mmap(4 * P, rw, anon); // another thread took the address meanwhile
  }
  new Uint8Array(runtime.view(b2, 4 * P)).fill(2);
  const rb2 = cache.get(b2, b2 + 4 * P);
  console.log(
    `  freed and reallocated at the same address: ${
      rb2 === rb ? "STALE ENTRY USED" : `stale entry #${rb.id} caught, set up again as #${rb2.id}`
    }`,
  );

  // 2. Part of buffer a is given back to the kernel (free() of a large block does this).
  madvise(a + P, P, mm.MADV_DONTNEED);
  const ra2 = cache.get(a, a + 4 * P);
  console.log(
    `  madvise(DONTNEED) of one page: ${
      ra2 === ra ? "STALE ENTRY USED" : `stale entry #${ra.id} caught, set up again as #${ra2.id}`
    }`,
  );

  // 3. Buffer c is grown by mremap and moves (realloc of a large block does this).
  const c2 = mremap(c, 4 * P, 8 * P, mm.MREMAP_MAYMOVE);
  const rc2 = cache.get(c2, c2 + 8 * P);
  const cDropped = cache.dropped.some((d) => d.startsWith(`registration #${rc.id} `));
  console.log(
    `  mremap moved it: ${
      cDropped ? `entry #${rc.id} of the old address dropped` : "STALE ENTRY KEPT"
    }, the new one set up as #${rc2.id}`,
  );
  for (const d of cache.dropped) console.log(`    dropped ${d}`);

  const stale = [rb2 === rb, ra2 === ra, !cDropped].some(Boolean);
  await un.close();
  munmap(a, 4 * P);
  munmap(b2, 4 * P);
  munmap(c2, 8 * P);
  if (stale) throw new Error("registration cache: a stale entry was used");
}

if (import.meta.main) await main();
