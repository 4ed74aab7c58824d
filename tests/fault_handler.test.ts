/**
 * The Worker-hosted fault handler: the JS main thread touches registered
 * memory and blocks in the kernel; the handler Worker resolves the fault.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FaultHandler,
  LazyMapping,
  LiveSnapshot,
  Mapping,
  sources,
  type UffdEvent,
  UmmuError,
  UserfaultFd,
} from "../mod.ts";
import { libc } from "../src/libc.ts";
import * as mm from "../ffi/mman.ts";
import {
  assertNoLeak,
  mapsLines,
  PAGE,
  quiescent,
  reserveHugePages,
  stillMapped,
  touchFromWorker,
  waitFor,
} from "./helpers.ts";
import { getForker } from "./ummunotify_helpers.ts";

test("main thread reads lazily loaded file pages; only touched pages are read", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ummu-"));
  const file = join(dir, "data.bin");
  const data = new Uint8Array(64 * PAGE);
  for (let i = 0; i < data.length; i += 512) data[i] = (i / 512) & 255;
  writeFileSync(file, data);
  const lazy = await LazyMapping.create(data.length, { source: sources.file(file) });
  const v = new Uint8Array(lazy.buffer);
  assert.equal(v[10 * PAGE + 512], data[10 * PAGE + 512]);
  assert.equal(v[63 * PAGE + 3584], data[63 * PAGE + 3584]);
  assert.equal(v[10 * PAGE], data[10 * PAGE], "a resolved page does not fault again");
  assert.deepEqual([lazy.stats.faults, lazy.stats.pages], [2, 2]);
  await lazy.close();
  assert.equal(v.length, 0, "views are detached by close(), not left dangling");
  rmSync(dir, { recursive: true });
});

test("a file shorter than the mapping: pages past its end read as zeros", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ummu-"));
  const file = join(dir, "short.bin");
  writeFileSync(file, new Uint8Array(PAGE + 10).fill(5));
  const lazy = await LazyMapping.create(4 * PAGE, { source: sources.file(file) });
  const v = new Uint8Array(lazy.buffer);
  assert.deepEqual([v[PAGE + 9], v[PAGE + 10], v[3 * PAGE]], [5, 0, 0]);
  await lazy.close();
  rmSync(dir, { recursive: true });
});

test("readahead resolves k pages per fault, stopping at pages already resolved", async () => {
  const bytes = new Uint8Array(40 * PAGE);
  for (let p = 0; p < 40; p++) bytes[p * PAGE] = p;
  const lazy = await LazyMapping.create(bytes.length, {
    source: sources.bytes(bytes),
    readahead: 16,
  });
  const v = new Uint8Array(lazy.buffer);
  assert.equal(v[20 * PAGE], 20); // resolves 20..35
  assert.equal(v[5 * PAGE], 5); // resolves 5..19 (stops at 20)
  assert.deepEqual([lazy.stats.faults, lazy.stats.pages], [2, 31]);
  for (let p = 5; p < 36; p++) assert.equal(v[p * PAGE], p);
  assert.equal(lazy.stats.faults, 2, "pages 5..35 were all resolved by those two faults");
  assert.equal(v[36 * PAGE], 36); // 36..39: clipped at the end of the range
  assert.equal(lazy.stats.pages, 35);
  await lazy.close();
});

test("sources: zero, shared (no staging copy), and a user module run in the Worker", async () => {
  const zero = await LazyMapping.create(4 * PAGE, { source: sources.zero() });
  assert.equal(new Uint8Array(zero.buffer)[PAGE + 1], 0);
  assert.equal(zero.stats.pages, 1);
  await zero.close();

  const sab = new SharedArrayBuffer(4 * PAGE);
  new Uint8Array(sab).fill(0xab);
  const shared = await LazyMapping.create(4 * PAGE, { source: sources.shared(sab) });
  assert.equal(new Uint8Array(shared.buffer)[3 * PAGE + 17], 0xab);
  await shared.close();

  const mod = await LazyMapping.create(8 * PAGE, {
    source: sources.module(new URL("./fixtures/source_module.ts", import.meta.url), { seed: 100 }),
    readahead: 2,
  });
  const v = new Uint8Array(mod.buffer);
  assert.deepEqual([v[3 * PAGE], v[4 * PAGE + 4095], v[7 * PAGE]], [103, 104, 107]);
  await mod.close();
});

test("a source that throws: the toucher gets a zero page, the handle reports the error", async () => {
  const lazy = await LazyMapping.create(4 * PAGE, {
    source: sources.module(new URL("./fixtures/throwing_source.ts", import.meta.url)),
  });
  const v = new Uint8Array(lazy.buffer);
  assert.equal(v[0], 7);
  assert.equal(v[PAGE + 5], 0, "page 1's source threw: zero page");
  assert.equal(v[2 * PAGE], 7, "the handler keeps serving");
  assert.equal(lazy.stats.errors, 1);
  await waitFor(() => lazy.errors.length === 1);
  assert.match(lazy.errors[0].message, /offset 4096: disk on fire/);
  await lazy.close();
});

test("shutdown with a fault pending in a hung source: close() wakes the toucher", async () => {
  await (await LazyMapping.create(PAGE, { source: sources.zero() })).close(); // warm the runtime up
  const before = await quiescent();
  const lazy = await LazyMapping.create(2 * PAGE, {
    source: sources.module(new URL("./fixtures/hanging_source.ts", import.meta.url)),
  });
  const held = lazy.resources();
  const own = [...held.mappings, held.mapping].flatMap((mp) => mapsLines(mp.address, mp.length));
  const touch = touchFromWorker([lazy.mapping.base + PAGE]);
  await new Promise((r) => setTimeout(r, 200)); // the toucher is now blocked in the kernel
  await lazy.stop();
  assert.deepEqual(
    (await touch).values,
    [0],
    "woken by the uffd close, then an ordinary zero page",
  );
  await lazy.close();
  await assertNoLeak(before, "no fd, thread or Worker may be left behind");
  assert.deepEqual(stillMapped(own), [], "every mapping the handler held is unmapped");
});

test("a handler that cannot start fails with a typed error and leaks nothing", async () => {
  await (await LazyMapping.create(PAGE, { source: sources.zero() })).close(); // warm the runtime up
  const before = await quiescent();
  await assert.rejects(
    LazyMapping.create(PAGE, { source: sources.file("/nonexistent/ummu-file") }),
    (e: unknown) =>
      e instanceof UmmuError && e.code === "ENOENT" && e.call === "open(/nonexistent/ummu-file)",
  );
  await assertNoLeak(before);
});

test("non-cooperative events from the main thread: unmap, remove, remap (read by the Worker)", async () => {
  const mem = Mapping.create(8 * PAGE);
  const uffd = UserfaultFd.open({ features: ["EVENT_UNMAP", "EVENT_REMOVE", "EVENT_REMAP"] });
  uffd.register(mem.address, mem.length);
  const events: UffdEvent[] = [];
  const handler = await FaultHandler.start(uffd, {
    ranges: [{ address: mem.address, length: mem.length }],
    onEvent: (e) => events.push(e),
  });
  const base = mem.base;
  new Uint8Array(mem.buffer)[0] = 1; // a zero page, served
  libc.madvise(base, PAGE, mm.MADV_DONTNEED); // blocks until the Worker reads REMOVE
  libc.munmap(base + 7 * PAGE, PAGE); // blocks until the Worker reads UNMAP
  const moved = Number(
    libc.mremap(base + 4 * PAGE, PAGE, PAGE, mm.MREMAP_MAYMOVE | mm.MREMAP_FIXED, base + 6 * PAGE),
  );
  assert.equal(moved, base + 6 * PAGE);
  await waitFor(() => events.length >= 5);
  const b = BigInt(base), P = BigInt(PAGE);
  assert.deepEqual(events, [
    { kind: "remove", start: b, end: b + P },
    { kind: "unmap", start: b + 7n * P, end: b + 8n * P },
    // MREMAP_FIXED onto page 6: what was there is unmapped, page 4 moves,
    // and the kernel then reports the old range unmapped too.
    { kind: "unmap", start: b + 6n * P, end: b + 7n * P },
    { kind: "remap", from: b + 4n * P, to: b + 6n * P, length: P },
    { kind: "unmap", start: b + 4n * P, end: b + 5n * P },
  ]);
  assert.equal(handler.stats.events, 5);
  await handler.close();
  mem.close(); // munmap of the whole range, holes included, is fine
});

test("fork event: the parent's fork is released by the Worker; the child's uffd arrives", async (t) => {
  const forker = await getForker(); // forks in C: no JS runs in the child
  if (forker === null) return t.skip("needs a C compiler (cc) for the fork helper");
  const mem = Mapping.create(PAGE);
  const uffd = UserfaultFd.open({ features: ["EVENT_FORK"] });
  uffd.register(mem.address, mem.length);
  const events: UffdEvent[] = [];
  const handler = await FaultHandler.start(uffd, {
    ranges: [{ address: mem.address, length: mem.length }],
    onEvent: (e) => events.push(e),
  });
  const pid = forker.fork(0, 0, 0); // blocks until the handler Worker reads the FORK event
  assert.ok(pid > 0);
  assert.equal(forker.wait(pid), 0, "the child exited cleanly");
  await waitFor(() => events.length >= 1);
  assert.equal(events[0].kind, "fork");
  if (events[0].kind === "fork") {
    assert.ok(events[0].ufd > 2);
    assert.equal(libc.close(events[0].ufd), 0, "the child's uffd is an fd of ours to close");
  }
  await handler.close();
  mem.close();
});

test("live snapshot: writes from the main thread land after their page is copied out", async () => {
  const mem = Mapping.create(16 * PAGE);
  const v = new Uint8Array(mem.buffer);
  for (let p = 0; p < 12; p++) v[p * PAGE] = p; // pages 12..15 stay unpopulated
  const snap = await LiveSnapshot.start(mem.address, mem.length);
  v[3 * PAGE] = 200;
  v[3 * PAGE + 1] = 201; // same page: no second fault
  v[13 * PAGE] = 113; // an unpopulated page is protected too (WP_UNPOPULATED)
  assert.equal(snap.pagesCopiedOnWrite, 2);
  const copy = new Uint8Array(await snap.finish());
  for (let p = 0; p < 12; p++) assert.equal(copy[p * PAGE], p, `page ${p} as at start`);
  assert.equal(copy[13 * PAGE], 0);
  assert.deepEqual([v[3 * PAGE], v[3 * PAGE + 1], v[13 * PAGE]], [200, 201, 113]);
  v[5 * PAGE] = 55; // unprotected after finish(): no fault
  assert.equal(snap.pagesCopiedOnWrite, 2);
  await snap.close();
  mem.close();
});

test("a handler Worker that dies closes the uffd: a blocked toucher wakes", async () => {
  const mem = Mapping.create(2 * PAGE);
  const uffd = UserfaultFd.open();
  uffd.register(mem.address, mem.length);
  // A range the handler does not know, and a source module URL that fails on its first fill:
  const handler = await FaultHandler.start(uffd, {
    ranges: [{
      address: mem.address,
      length: mem.length,
      source: sources.module("data:text/javascript,export function fill(){ throw new Error('x') }"),
    }],
    onSourceError: "zero",
  });
  assert.equal(new Uint8Array(mem.buffer)[0], 0);
  assert.equal(handler.failed, false, "a throwing source is not fatal");
  await handler.close();
  assert.equal(uffd.closed, true);
  mem.close();
});

test("many faults from the main thread and a Worker at once", async () => {
  const bytes = new Uint8Array(256 * PAGE);
  for (let p = 0; p < 256; p++) bytes[p * PAGE + 1] = p;
  const lazy = await LazyMapping.create(bytes.length, { source: sources.bytes(bytes) });
  const addrs = Array.from({ length: 128 }, (_, i) => lazy.mapping.base + (255 - i) * PAGE + 1);
  const touch = touchFromWorker(addrs);
  const v = new Uint8Array(lazy.buffer);
  for (let p = 0; p < 128; p++) assert.equal(v[p * PAGE + 1], p);
  assert.deepEqual((await touch).values, addrs.map((_, i) => 255 - i));
  assert.equal(lazy.stats.pages, 256);
  await lazy.close();
});

test("closing everything releases every fd, mapping and Worker", async () => {
  await (await LazyMapping.create(PAGE, { source: sources.zero() })).close(); // warm the runtime up
  const before = await quiescent();
  // Each mapping's own /proc/self/maps lines, taken before its close: they must be gone after.
  const mapped: string[] = [];
  for (let i = 0; i < 3; i++) {
    const lazy = await LazyMapping.create(8 * PAGE, { source: sources.zero(), readahead: 4 });
    new Uint8Array(lazy.buffer)[0] = 1;
    const held = lazy.resources();
    for (const mp of [...held.mappings, held.mapping]) {
      mapped.push(...mapsLines(mp.address, mp.length));
    }
    await lazy.close();
  }
  // An events() iterator waiting when its uffd closes ends, and its poller Worker goes.
  const uffd = UserfaultFd.open();
  const mem = Mapping.create(PAGE);
  uffd.register(mem.address, PAGE);
  const it = uffd.events();
  const pending = it.next();
  await new Promise((r) => setTimeout(r, 100));
  uffd.close();
  assert.deepEqual(await pending, { done: true, value: undefined });
  mapped.push(...mapsLines(mem.base, PAGE));
  mem.close();
  await assertNoLeak(before);
  assert.deepEqual(stillMapped(mapped), []);
});

test("the handler meets EAGAIN from a pending REMOVE: it reads the event, then resolves the fault", async () => {
  const gate = new SharedArrayBuffer(8);
  const g = new Int32Array(gate);
  const mem = Mapping.create(2 * PAGE);
  new Uint8Array(mem.buffer)[PAGE] = 1;
  const uffd = UserfaultFd.open({ features: ["EVENT_REMOVE"] });
  uffd.register(mem.address, mem.length);
  const events: UffdEvent[] = [];
  const handler = await FaultHandler.start(uffd, {
    ranges: [{
      address: mem.address,
      length: mem.length,
      source: sources.module(new URL("./fixtures/gated_source.ts", import.meta.url), { gate }),
    }],
    onEvent: (e) => events.push(e),
  });
  const toucher = touchFromWorker([mem.base]); // the handler Worker blocks in fill()
  assert.ok(await waitFor(() => Atomics.load(g, 1) === 1));
  const remover = touchFromWorker([], undefined, { address: mem.base + PAGE, length: PAGE });
  await new Promise((r) => setTimeout(r, 200)); // REMOVE is pending, the remover blocked
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0); // fill() returns; COPY meets EAGAIN until the REMOVE is read
  assert.deepEqual((await toucher).values, [0x42]);
  await remover;
  assert.ok(await waitFor(() => events.length === 1));
  assert.equal(events[0].kind, "remove");
  await handler.close();
  mem.close();
});

test("shmem: MISSING faults on a memfd mapping, and MINOR faults filled through a second mapping", async () => {
  const bytes = new Uint8Array(4 * PAGE).fill(0x21);
  const lazy = await LazyMapping.create(4 * PAGE, { kind: "memfd", source: sources.bytes(bytes) });
  assert.equal(new Uint8Array(lazy.buffer)[PAGE + 3], 0x21);
  await lazy.close();

  const shm = Mapping.create(4 * PAGE, { kind: "memfd" });
  const alias = shm.alias();
  new Uint8Array(alias.buffer).fill(1); // every page is in the page cache; `shm` maps none
  const uffd = UserfaultFd.open({ features: ["MINOR_SHMEM"] });
  uffd.register(shm.address, shm.length, ["minor"]);
  const content = new Uint8Array(4 * PAGE);
  for (let p = 0; p < 4; p++) content.fill(0x60 + p, p * PAGE, (p + 1) * PAGE);
  const handler = await FaultHandler.start(uffd, {
    ranges: [{
      address: shm.address,
      length: shm.length,
      alias: alias.address,
      source: sources.bytes(content),
    }],
  });
  const v = new Uint8Array(shm.buffer);
  assert.deepEqual([v[0], v[2 * PAGE + 7], v[3 * PAGE]], [0x60, 0x62, 0x63]);
  assert.equal(handler.stats.minorFaults, 3);
  assert.equal(
    new Uint8Array(alias.buffer)[2 * PAGE],
    0x62,
    "filled through the alias: both see it",
  );
  await handler.close();
  alias.close();
  shm.close();
});

test("writeProtect ranges: pages arrive write-protected, so their first write is a WP fault the handler serves", async () => {
  const mem = Mapping.create(4 * PAGE);
  const uffd = UserfaultFd.open({ features: ["PAGEFAULT_FLAG_WP"] });
  uffd.register(mem.address, mem.length, ["missing", "wp"]);
  const handler = await FaultHandler.start(uffd, {
    ranges: [{
      address: mem.address,
      length: mem.length,
      source: sources.bytes(new Uint8Array(4 * PAGE).fill(0x61)),
      writeProtect: true,
    }],
  });
  const v = new Uint8Array(mem.buffer);
  assert.equal(v[PAGE], 0x61, "MISSING served (UFFDIO_COPY_MODE_WP)");
  assert.equal(handler.stats.wpFaults, 0);
  v[PAGE] = 1; // the page is write-protected: a WP fault, unprotected by the handler
  assert.equal(v[PAGE], 1);
  assert.equal(handler.stats.wpFaults, 1);
  v[PAGE + 1] = 2; // unprotected now: no new fault
  assert.equal(handler.stats.wpFaults, 1);
  v[3 * PAGE] = 3; // a write to a missing page: MISSING (write-protected), then WP
  assert.equal(v[3 * PAGE], 3);
  assert.equal(handler.stats.wpFaults, 2);
  await handler.close();
  mem.close();
});

test("hugetlb: the handle's copy() skips an existing huge page whole (EEXIST), where it once stepped 4 KiB and failed", (t) => {
  const HUGE = 2 << 20;
  const restore = reserveHugePages(4);
  if (typeof restore === "string") return t.skip(restore);
  try {
    const mem = Mapping.create(2 * HUGE, { kind: "hugetlb" });
    const uffd = UserfaultFd.open({ features: ["MISSING_HUGETLBFS"] });
    uffd.register(mem.address, mem.length);
    const src = new Uint8Array(2 * HUGE).fill(0x21);
    assert.equal(uffd.copy(mem.address, src.subarray(0, HUGE), HUGE), HUGE);
    src.fill(0x22);
    assert.equal(
      uffd.copy(mem.address, src, 2 * HUGE),
      2 * HUGE,
      "EEXIST on the first counts as done",
    );
    const v = new Uint8Array(mem.buffer);
    assert.deepEqual([v[5], v[HUGE + 5]], [0x21, 0x22]);
    assert.throws(
      () => uffd.zeropage(mem.address, HUGE),
      (e: unknown) => e instanceof UmmuError && /hugetlb memory has no zero page/.test(e.message),
    );
    uffd.close();
    mem.close();
  } finally {
    restore();
  }
});

test("closing a handler that does not own its uffd leaves the uffd open, and a second handler then serves it", async () => {
  const mem = Mapping.create(2 * PAGE);
  const uffd = UserfaultFd.open();
  uffd.register(mem.address, mem.length);
  const first = await FaultHandler.start(uffd, {
    ranges: [{ address: mem.address, length: mem.length }],
    ownsUffd: false,
  });
  assert.equal(new Uint8Array(mem.buffer)[0], 0);
  await first.close();
  await new Promise((r) => setTimeout(r, 200)); // the Worker's exit, on every runtime, came and went
  assert.equal(uffd.closed, false, "its Worker's end is not a failure: the uffd stays open");
  assert.deepEqual(first.errors, []);
  const second = await FaultHandler.start(uffd, {
    ranges: [{
      address: mem.address,
      length: mem.length,
      source: sources.bytes(new Uint8Array(2 * PAGE).fill(4)),
    }],
  });
  assert.equal(new Uint8Array(mem.buffer)[PAGE], 4, "served by the second handler");
  await second.close();
  assert.equal(uffd.closed, true, "the second owned it");
  mem.close();
});
