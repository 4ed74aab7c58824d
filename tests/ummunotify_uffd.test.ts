/**
 * What only the userfaultfd backend has to prove: no window between an unmap
 * returning and changed() seeing it (in any thread), a dead monitor hangs
 * nothing, plain reads and writes never fault, the limits and their errors,
 * and that it gives back the userfaultfd registrations it no longer needs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ummunotify } from "../src/ummunotify/mod.ts";
import { TEST_HOOKS, type UffdBackend } from "../src/ummunotify/uffd_backend.ts";
import { STATE_FAILED } from "../src/ummunotify/queue.ts";
import { UserfaultFd } from "../src/userfaultfd/uffd.ts";
import { UmmuError } from "../src/errors.ts";
import * as mm from "../ffi/mman.ts";
import { runtime } from "../ffi/platform.ts";
import { libc, madvise, mmap } from "../src/libc.ts";
import {
  ask,
  big,
  live,
  mapAnon,
  markGone,
  P,
  pagemap,
  release,
  remap,
  scratchDir,
  unmap,
  warmUp,
  worker,
} from "./ummunotify_helpers.ts";
import { assertNoLeak, quiescent } from "./helpers.ts";
import { vmasOverlapping } from "../src/maps.ts";

const open = (opts = {}) => Ummunotify.open({ backend: "userfaultfd", ...opts });
const hooks = (un: Ummunotify) => (un.backendImpl as UffdBackend)[TEST_HOOKS];
const stats = (un: Ummunotify) => (un.backendImpl as UffdBackend).stats;
const code = (c: string, also?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UmmuError, `expected UmmuError ${c}, got ${e}`);
  assert.equal(e.code, c, e.message);
  if (also) assert.match(e.message, also);
  return true;
};

let cookie = 0n; // unique across stress runs on one notifier

interface StressResult {
  /** changed() was false right after the unmapping call returned, in the unmapping thread. */
  misses: number;
  n: number;
  /** Checks by the checker thread, and what it found wrong (the first miss it saw). */
  checks: number;
  checkerError?: string;
}

/**
 * `workers` Workers each unmap (or free, or remap) `perWorker` watched pages,
 * one at a time, and check changed() right after each call returns; a
 * checker Worker checks, whenever k calls have returned, that the counter
 * moved at least k times.
 */
async function stress(
  un: Ummunotify,
  how: 0 | 1 | 2,
  workers = 4,
  perWorker = 400,
): Promise<StressResult> {
  const regions: number[] = [];
  const ws = [];
  for (let i = 0; i < workers; i++) ws.push(await worker());
  const checker = await worker();
  const done = new Int32Array(new SharedArrayBuffer(4 * workers));
  const start = new Int32Array(new SharedArrayBuffer(4));
  const jobs = [];
  for (let i = 0; i < workers; i++) {
    const a = mapAnon(perWorker + 1); // + an unwatched page after the last (mremap must move)
    regions.push(a);
    const addrs = [];
    for (let k = 0; k < perWorker; k++) {
      un.register(a + k * P, a + (k + 1) * P, cookie++);
      addrs.push(a + k * P);
    }
    jobs.push(ask<{ misses: number; n: number }>(ws[i], {
      op: "stress",
      handle: un.counter.handle,
      addrs,
      len: P,
      how,
      done: done.buffer,
      doneIndex: i,
      start: start.buffer,
    }));
  }
  const checked = ask<{ checks?: number; error?: string }>(checker, {
    op: "checker",
    handle: un.counter.handle,
    done: done.buffer,
    workers,
    total: workers * perWorker,
    before: un.generation,
  });
  Atomics.store(start, 0, 1);
  Atomics.notify(start, 0);
  const results = await Promise.all(jobs);
  // The Workers unmapped (or moved away) every page they were given; only DONTNEED keeps them.
  if (how !== 1) { for (const a of regions) markGone(a, perWorker * P); }
  const c = await checked;
  for (const w of [...ws, checker]) w.terminate();
  for (const a of regions) release(a, (perWorker + 1) * P);
  return {
    misses: results.reduce((s, r) => s + r.misses, 0),
    n: results.reduce((s, r) => s + r.n, 0),
    checks: c.checks ?? 0,
    checkerError: c.error,
  };
}

test("no window: 4 Workers unmap watched pages and check changed() at once: zero misses", async () => {
  const un = await open();
  try {
    const r = await stress(un, 0);
    console.log(`  munmap: ${r.n} unmaps, ${r.misses} misses, ${r.checks} cross-thread checks`);
    assert.equal(r.misses, 0);
    assert.equal(r.checkerError, undefined);
    assert.equal(un.generation, BigInt(r.n), "one invalidation each");
  } finally {
    await un.close();
  }
});

test("no window: madvise(DONTNEED) and mremap from 4 Workers: zero misses", async () => {
  const un = await open();
  try {
    const dontneed = await stress(un, 1);
    const remap = await stress(un, 2);
    console.log(
      `  DONTNEED: ${dontneed.misses}/${dontneed.n} misses; mremap: ${remap.misses}/${remap.n} misses`,
    );
    assert.equal(dontneed.misses + remap.misses, 0);
    assert.equal(dontneed.checkerError ?? remap.checkerError, undefined);
  } finally {
    await un.close();
  }
});

test("the stress test sees the window when the BUSY marker is off (what the marker closes)", async () => {
  const un = await open({ unsafeNoBusyMarker: true });
  try {
    const r = await stress(un, 0, 4, 400);
    // Timing-dependent: reported, not asserted (docs/ummunotify.md quotes it).
    console.log(
      `  without the marker: ${r.misses} misses of ${r.n} in the unmapping threads; checker: ${
        r.checkerError ?? "no miss seen"
      }`,
    );
  } finally {
    await un.close();
  }
});

test("the table grows (the monitor adopts larger buffers) while events flow; nothing is lost", async () => {
  const un = await open();
  const w = await worker();
  const a = mapAnon(200), b = mapAnon(2000);
  try {
    for (let i = 0; i < 60; i++) un.register(a + i * P, a + (i + 1) * P, big(i));
    unmap(a, 10 * P); // ten reports queued before any growth
    const addrs = [];
    for (let i = 60; i < 200; i++) {
      un.register(a + i * P, a + (i + 1) * P, big(i));
      if (i >= 100) addrs.push(a + i * P);
    }
    const done = ask<{ misses: number; n: number }>(w, {
      op: "stress",
      handle: un.counter.handle,
      addrs,
      len: P,
    });
    for (let i = 0; i < 2000; i++) un.register(b + i * P, b + (i + 1) * P, big(10_000 + i)); // 64 -> 4096 slots
    const r = await done;
    markGone(a + 100 * P, 100 * P);
    assert.equal(r.misses, 0);
    assert.equal(un.generation, 101n, "one for the first munmap (ten pages), one per page after");
    const cookies = un.readEvents().filter((e) => e.kind === "invalidate").map((e) =>
      (e as { cookie: bigint }).cookie
    );
    const want = [...Array(10).keys()].map(big).concat(
      [...Array(100).keys()].map((i) => big(100 + i)),
    );
    assert.deepEqual(cookies.sort((x, y) => Number(x - y)), want);
  } finally {
    w.terminate();
    release(a, 200 * P);
    release(b, 2000 * P);
    await un.close();
  }
});

test("plain reads and writes of watched memory never fault (no page is write-protected)", async () => {
  const un = await open();
  const w = await worker();
  const a = mapAnon(64, false);
  try {
    un.register(a, a + 64 * P, 1n);
    const v = new Uint8Array(runtime.view(a, 64 * P));
    for (let i = 0; i < v.length; i += 512) v[i] = ((i >> 9) & 127) + 1; // first touch: missing pages, then writes
    let sum = 0;
    for (let i = 0; i < v.length; i += 512) sum += v[i];
    assert.ok(sum > 0);
    await ask(w, { op: "check", handle: un.counter.handle, since: 0n });
    assert.equal(stats(un).messages, 0, "the monitor read no message: nothing faulted");
    assert.ok(pagemap(a, 64).every((p) => p.present && !p.uffdWp), "present, none write-protected");
    assert.equal(un.generation, 0n);
  } finally {
    w.terminate();
    release(a, 64 * P);
    await un.close();
  }
});

test("a killed monitor hangs nothing: the uffd is closed, munmap returns, every changed() is true", async () => {
  await warmUp("userfaultfd");
  const before = await quiescent();
  const un = await open();
  const a = mapAnon(2);
  un.register(a, a + 2 * P, 1n);
  const g = un.generation;
  hooks(un).kill();
  unmap(a, P); // would block forever if the uffd were still open with nobody reading
  assert.equal(un.changed(g), true, "nothing is watched any more: always changed");
  assert.equal(un.counter.dead, true);
  assert.throws(() => un.readEvents(), code("ENODEV", /monitor/));
  assert.throws(() => un.register(a + P, a + 2 * P, 2n), code("ENODEV"));
  unmap(a + P, P);
  await un.close();
  await assertNoLeak(before);
});

test("a monitor that throws closes the uffd itself; munmap returns", async () => {
  await warmUp("userfaultfd");
  const before = await quiescent();
  const un = await open();
  const a = mapAnon(1);
  un.register(a, a + P, 1n);
  hooks(un).crash();
  await hooks(un).stopped;
  assert.equal(hooks(un).state(), STATE_FAILED);
  unmap(a, P);
  assert.equal(un.changed(0n), true);
  assert.throws(() => un.readEvents(), code("ENODEV", /crash requested/));
  await un.close();
  await assertNoLeak(before);
});

test("EBUSY: memory registered with another userfaultfd (e.g. a FaultHandler's range)", async () => {
  const un = await open();
  const other = UserfaultFd.open();
  const a = mapAnon(4);
  try {
    other.register(a + P, 2 * P, ["missing"]);
    assert.throws(() => un.register(a, a + 2 * P, 1n), code("EBUSY", /another userfaultfd/));
    un.register(a + 3 * P, a + 4 * P, 2n); // the rest is fine
    other.unregister(a + P, 2 * P);
    un.register(a, a + 2 * P, 1n); // now it is free
  } finally {
    other.close();
    release(a, 4 * P);
    await un.close();
  }
});

test("ENOMEM: memory that is not mapped (a hole, or nothing) cannot be watched", async () => {
  const un = await open();
  const a = mapAnon(3);
  try {
    unmap(a + P, P);
    assert.throws(() => un.register(a, a + 3 * P, 1n), code("ENOMEM", /not entirely mapped/));
    assert.throws(() => un.register(a + P, a + 2 * P, 1n), code("ENOMEM"));
    un.register(a, a + P, 1n);
  } finally {
    release(a, 3 * P);
    await un.close();
  }
});

test("EINVAL: special mappings (VM_PFNMAP|VM_IO [vvar], [vdso]) cannot be registered", async () => {
  const un = await open();
  try {
    const smaps = readFileSync("/proc/self/smaps", "utf8").split("\n");
    let tried = 0;
    for (let i = 0; i < smaps.length; i++) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) .*\[(vvar|vvar_vclock|vdso)\]/.exec(smaps[i]);
      if (!m) continue;
      const flags = smaps.slice(i, i + 30).find((l) => l.startsWith("VmFlags:")) ?? "";
      const s = parseInt(m[1], 16), e = parseInt(m[2], 16);
      assert.throws(() => un.register(s, e, big(s)), code("EINVAL"), `${m[3]} (${flags})`);
      if (m[3] !== "vdso") assert.match(flags, / pf /, "VM_PFNMAP");
      tried++;
    }
    assert.ok(tried >= 2, "found [vvar] and [vdso]");
  } finally {
    await un.close();
  }
});

test("EPERM: a shared mapping of a file opened read-only", async () => {
  const un = await open();
  const dir = scratchDir();
  const path = join(dir, "ro.bin");
  writeFileSync(path, new Uint8Array(P));
  const fd = openSync(path, "r");
  const a = live(mmap(P, mm.PROT_READ, mm.MAP_SHARED, fd, 0), P);
  try {
    assert.throws(() => un.register(a, a + P, 1n), code("EPERM", /not writable/));
  } finally {
    release(a, P);
    closeSync(fd);
    rmSync(dir, { recursive: true });
    await un.close();
  }
});

test("file-backed private mappings can be watched (WP_ASYNC)", async () => {
  const un = await open();
  const b = un.backendImpl as UffdBackend;
  const dir = scratchDir();
  const path = join(dir, "f.bin");
  writeFileSync(path, new Uint8Array(2 * P).fill(1));
  const fd = openSync(path, "r");
  const a = live(mmap(2 * P, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_PRIVATE, fd, 0), 2 * P);
  try {
    if (!b.features.has("WP_ASYNC")) {
      return void console.log("  SKIPPED: this kernel has no WP_ASYNC (before 6.7)");
    }
    un.register(a, a + 2 * P, 1n);
    new Uint8Array(runtime.view(a, 2 * P))[P] = 5; // a COW write: no fault reaches us
    unmap(a, P);
    assert.deepEqual(un.readEvents(), [
      { kind: "invalidate", cookie: 1n, hint: { start: big(a), end: big(a + P) } },
      { kind: "last", generation: 1n },
    ]);
  } finally {
    release(a, 2 * P);
    closeSync(fd);
    rmSync(dir, { recursive: true });
    await un.close();
  }
});

test("ENOSPC: the registration cap (maxRegistrations) bounds the queue", async () => {
  const un = await open({ maxRegistrations: 3 });
  const a = mapAnon(4);
  try {
    for (let i = 0; i < 3; i++) un.register(a + i * P, a + (i + 1) * P, big(i));
    assert.throws(() => un.register(a + 3 * P, a + 4 * P, 3n), code("ENOSPC"));
    un.unregister(0n);
    un.register(a + 3 * P, a + 4 * P, 3n);
  } finally {
    release(a, 4 * P);
    await un.close();
  }
});

// V8 (Deno, Node) cannot run with the process at the limit: its heap commits pages with
// mprotect() inside its reservation, each a new VMA, and it aborts ("Fatal JavaScript out
// of memory: Scavenger: semi-space copy") whatever the headroom left before the last
// registrations (measured with 40 to 400 mappings to spare, with and without --jitless).
// JavaScriptCore (Bun) keeps running there.
const v8AtTheLimit = "Bun" in globalThis
  ? false
  : "V8 aborts when the process reaches vm.max_map_count (its heap needs new mappings); runs on Bun";

test("vm.max_map_count: registrations split mappings; past the limit, ENOMEM that says so", {
  skip: v8AtTheLimit,
}, async () => {
  const max = Number(readFileSync("/proc/sys/vm/max_map_count", "utf8"));
  const count = () => readFileSync("/proc/self/maps", "utf8").split("\n").length - 1;
  // The process gets near the limit with as little JavaScript as possible: a plain
  // loop of mprotect() splits a scratch mapping up to HEADROOM mappings below the
  // limit, and only the last few hundred are registrations (each splits one page out
  // of a mapping: two more VMAs).
  const HEADROOM = 400;
  const pages = 2 * HEADROOM + 64;
  const un = await open({ maxRegistrations: pages });
  const now = count();
  // mprotect of page 2k+1 splits one more VMA off (2 VMAs per call, past the first).
  const splits = Math.max(0, Math.floor((max - now - HEADROOM) / 2));
  const splitPages = 2 * splits + 2;
  const split = mmap(
    splitPages * P,
    mm.PROT_READ | mm.PROT_WRITE,
    mm.MAP_PRIVATE | mm.MAP_ANONYMOUS | mm.MAP_NORESERVE,
  );
  const a = mmap(
    pages * P,
    mm.PROT_READ | mm.PROT_WRITE,
    mm.MAP_PRIVATE | mm.MAP_ANONYMOUS | mm.MAP_NORESERVE,
  );
  let registered = 0, splitDone = 0;
  let failure: unknown = null;
  try {
    // No allocation that lives: the loop makes only short-lived numbers.
    for (let k = 1; k < splitPages - 1; k += 2) {
      if (libc.mprotect(split + k * P, P, mm.PROT_READ) !== 0) break;
      splitDone++;
    }
    for (let i = 1; i < pages - 1; i += 2) {
      try {
        un.register(a + i * P, a + (i + 1) * P, i);
        registered++;
      } catch (e) {
        failure = e;
        break;
      }
    }
  } finally {
    libc.munmap(a, pages * P); // one call frees every split VMA at once (and reports them)
    libc.munmap(split, splitPages * P);
  }
  const before = now + 2 * splitDone + 2; // + the two mappings made above
  await un.close();
  console.log(
    `  ${registered} registrations before the limit (max_map_count ${max}, ${before} mappings before them)`,
  );
  assert.ok(failure !== null, "the limit was reached");
  code("ENOMEM", /max_map_count/)(failure);
  // Two VMAs per registration; the runtime maps and unmaps a few of its own meanwhile.
  const room = (max - before) / 2;
  assert.ok(registered > 0.5 * room && registered <= room + 16, `${registered} of about ${room}`);
});

test("unregister gives the userfaultfd registration back, except pages other registrations still need", async () => {
  const un = await open();
  const other = UserfaultFd.open();
  const a = mapAnon(3);
  // Only the test's own three pages: the runtime's threads map and unmap memory of their
  // own meanwhile (counting every mapping of the process failed on a fresh machine).
  const vmas = () => vmasOverlapping(a, a + 3 * P).length;
  try {
    const v0 = vmas();
    assert.equal(v0, 1, "one mapping before");
    un.register(a, a + 2 * P, 1n);
    un.register(a + P + 10, a + P + 20, 2n); // shares page 1
    assert.throws(() => other.register(a, P, ["missing"]), /EBUSY/);
    un.unregister(1n);
    other.register(a, P, ["missing"]); // page 0 is free again
    other.unregister(a, P);
    assert.throws(
      () => other.register(a + P, P, ["missing"]),
      /EBUSY/,
      "page 1 still watched for cookie 2",
    );
    un.unregister(2n);
    other.register(a + P, P, ["missing"]);
    other.unregister(a + P, P);
    assert.equal(vmas(), v0, "the split mappings merged back");
    un.register(a + P, a + 2 * P, 3n);
    assert.equal(vmas(), 3, "a registration in the middle splits the mapping in three");
    un.unregister(3n);
    assert.equal(vmas(), 1, "and merges back");
  } finally {
    other.close();
    release(a, 3 * P);
    await un.close();
  }
});

test("a remapped range's new home is given back to other userfaultfds", async () => {
  const un = await open();
  const other = UserfaultFd.open();
  const a = mapAnon(4);
  try {
    un.register(a, a + 2 * P, 1n);
    remap(a, 2 * P, 2 * P, mm.MREMAP_MAYMOVE | mm.MREMAP_FIXED, a + 2 * P); // the vmas keep our uffd
    assert.equal(un.generation, 2n);
    un.readEvents(); // any call on the owner first releases remap destinations nobody watches
    other.register(a + 2 * P, 2 * P, ["missing"]);
    other.unregister(a + 2 * P, 2 * P);
  } finally {
    other.close();
    release(a, 4 * P);
    await un.close();
  }
});

test("the counter cannot tear: a Worker reading it while it crosses 2^32 sees only whole values", async () => {
  const un = await open();
  const w = await worker();
  const a = mapAnon(8);
  try {
    hooks(un).setGeneration(2n ** 32n - 3n);
    for (let i = 0; i < 8; i++) un.register(a + i * P, a + (i + 1) * P, big(i));
    const until = new Int32Array(new SharedArrayBuffer(4));
    const reader = ask<{ reads: number; bad: number; seen: string[] }>(w, {
      op: "tear",
      handle: un.counter.handle,
      lo: 2n ** 32n - 3n,
      hi: 2n ** 32n + 5n,
      until: until.buffer,
    });
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 8; i++) {
      madvise(a + i * P, P, mm.MADV_DONTNEED);
      await new Promise((r) => setTimeout(r, 2));
    }
    Atomics.store(until, 0, 1);
    const r = await reader;
    assert.equal(un.generation, 2n ** 32n + 5n);
    assert.equal(r.bad, 0, `${r.bad} of ${r.reads} reads out of range or backwards; saw ${r.seen}`);
    assert.ok(
      r.seen.includes("100000000") || r.seen.includes("100000001"),
      `crossed 2^32: ${r.seen}`,
    );
  } finally {
    w.terminate();
    release(a, 8 * P);
    await un.close();
  }
});
