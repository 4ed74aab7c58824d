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
import { Mapping, UmmuError, Ummunotify } from "ummu";

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
  let ids = 0;
  // The "expensive" setup: here it only remembers what the memory held.
  const setup = (start: number, end: number): Registration => ({ id: ++ids, start, end });
  const cache = new RegistrationCache(un, setup);
  const range = (m: Mapping): [number, number] => [m.base, m.base + m.length];

  const a = Mapping.create(4 * 4096), b = Mapping.create(4 * 4096), c = Mapping.create(4 * 4096);
  const P = a.pageSize;
  for (const x of [a, b, c]) new Uint8Array(x.buffer).fill(1);
  const ra = cache.get(...range(a)), rb = cache.get(...range(b)), rc = cache.get(...range(c));
  for (let i = 0; i < 1000; i++) cache.get(...range(a)); // the fast path: one atomic load each
  console.log(
    `registration cache (${un.backend} backend): ${cache.setups} setups, ${cache.hits} hits`,
  );

  // 1. The program frees buffer b and allocates new memory that lands at the same address.
  const bAddress = b.address;
  b.close();
  let b2: Mapping;
  try {
    b2 = Mapping.create(4 * P, { address: bAddress });
  } catch (e) {
    if (!(e instanceof UmmuError)) throw e;
    b2 = Mapping.create(4 * P); // another thread took the address meanwhile
  }
  new Uint8Array(b2.buffer).fill(2);
  const rb2 = cache.get(...range(b2));
  console.log(
    `  freed and reallocated at the same address: ${
      rb2 === rb ? "STALE ENTRY USED" : `stale entry #${rb.id} caught, set up again as #${rb2.id}`
    }`,
  );

  // 2. Part of buffer a is given back to the kernel (free() of a large block does this).
  a.discard(P, P);
  const ra2 = cache.get(...range(a));
  console.log(
    `  madvise(DONTNEED) of one page: ${
      ra2 === ra ? "STALE ENTRY USED" : `stale entry #${ra.id} caught, set up again as #${ra2.id}`
    }`,
  );

  // 3. Buffer c is grown by mremap and moves (realloc of a large block does this).
  c.resize(8 * P);
  const rc2 = cache.get(...range(c));
  const cDropped = cache.dropped.some((d) => d.startsWith(`registration #${rc.id} `));
  console.log(
    `  mremap moved it: ${
      cDropped ? `entry #${rc.id} of the old address dropped` : "STALE ENTRY KEPT"
    }, the new one set up as #${rc2.id}`,
  );
  for (const d of cache.dropped) console.log(`    dropped ${d}`);

  const stale = [rb2 === rb, ra2 === ra, !cDropped].some(Boolean);
  await un.close();
  for (const m of [a, b2, c]) m.close();
  if (stale) throw new Error("registration cache: a stale entry was used");
}

if (import.meta.main) await main();
