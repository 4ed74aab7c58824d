/**
 * /dev/ummunotify against the real driver (kmod/ummunotify in the 6.12 test
 * VM): the same semantic suite and table as the userfaultfd backend, plus what
 * only the device has (the counter page, a blocking read(2), "auto").
 *
 * Run: kmod/ummunotify/test.sh build, then
 *      tests/vm/run.sh -- kmod/ummunotify/with-module.sh deno test -A tests/kernel/ummunotify_device.test.ts
 *      tests/vm/run.sh -- kmod/ummunotify/with-module.sh bun test ./tests/kernel/ummunotify_device.test.ts
 * Without the device every test skips with the reason.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Ummunotify } from "../../src/ummunotify/mod.ts";
import { UmmuError } from "../../src/errors.ts";
import * as mm from "../../ffi/mman.ts";
import { libc } from "../../src/libc.ts";
import { semanticSuite } from "../ummunotify_suite.ts";
import { tableSuite } from "../ummunotify_table_suite.ts";
import { backendSkip, mapAnon, P, release, unmap, worker } from "../ummunotify_helpers.ts";

semanticSuite("device");
tableSuite("device");
// The userfaultfd backend on this kernel too (6.12), for the table's other column.
tableSuite("userfaultfd", "userfaultfd@vm");

const skip = backendSkip("device");

test("[device] auto picks the device when it exists", { skip }, async () => {
  const un = await Ummunotify.open();
  assert.equal(un.backend, "device");
  await un.close();
});

test(
  "[device] the counter page is mapped read-only, shared, one page; it cannot be made writable",
  { skip },
  async () => {
    const un = await Ummunotify.open({ backend: "device" });
    try {
      const line = readFileSync("/proc/self/maps", "utf8").split("\n").find((l) =>
        l.includes("/dev/ummunotify")
      );
      assert.ok(line, "a mapping of /dev/ummunotify");
      const [range, perms] = line!.split(/\s+/);
      const [s, e] = range.split("-").map((x) => parseInt(x, 16));
      assert.equal(e - s, P);
      assert.equal(perms, "r--s");
      assert.equal(libc.mprotect(s, P, mm.PROT_READ | mm.PROT_WRITE), -1);
    } finally {
      await un.close();
    }
    assert.equal(
      readFileSync("/proc/self/maps", "utf8").includes("/dev/ummunotify"),
      false,
      "unmapped by close()",
    );
  },
);

test("[device] a blocking read(2) sleeps until an invalidation is queued", { skip }, async () => {
  const w = await worker();
  const a = mapAnon(1);
  try {
    const ready = new Int32Array(new SharedArrayBuffer(4));
    const answer = new Promise<{ events: unknown[]; got: number; ms: number; error?: string }>(
      (resolve) => {
        w.onmessage = (e) => resolve(e.data);
      },
    );
    w.postMessage({
      op: "device-blocking-read",
      start: a,
      end: a + P,
      cookie: 42n,
      ready: ready.buffer,
    });
    while (Atomics.load(ready, 0) === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100)); // it is asleep in read(2) now
    unmap(a, P);
    const r = await answer;
    assert.equal(r.error, undefined);
    assert.ok(r.ms >= 50, `read(2) slept ${r.ms} ms`);
    assert.deepEqual(r.events, [
      { kind: "invalidate", cookie: 42n, hint: { start: BigInt(a), end: BigInt(a + P) } },
      { kind: "last", generation: 1n },
    ]);
  } finally {
    w.terminate();
  }
});

test(
  "[device] both backends read byte-identical events for the same invalidations",
  { skip },
  async () => {
    const dev = await Ummunotify.open({ backend: "device" });
    const uffd = await Ummunotify.open({ backend: "userfaultfd" });
    const a = mapAnon(4);
    try {
      for (const un of [dev, uffd]) {
        un.register(a, a + 2 * P, 1n);
        un.register(a + P + 100, a + 4 * P - 100, 2n);
        un.register(a + 3 * P, a + 4 * P, 3n);
      }
      unmap(a + P, P); // hits 1 and 2
      libc.madvise(a + 3 * P, P, 4 /* MADV_DONTNEED */); // hits 2 (again: no HINT) and 3
      const bufs = [new Uint8Array(256), new Uint8Array(256)];
      const n = [dev.readInto(bufs[0]), uffd.readInto(bufs[1])];
      assert.equal(n[0], 4 * 32);
      assert.deepEqual(n[1], n[0]);
      assert.deepEqual(bufs[1], bufs[0]);
    } finally {
      release(a, 4 * P);
      await uffd.close();
      await dev.close();
    }
  },
);

test("[device] the counter read by a Worker during invalidations is whole and never goes back", {
  skip,
}, async () => {
  const un = await Ummunotify.open({ backend: "device" });
  const w = await worker();
  const a = mapAnon(1);
  try {
    un.register(a, a + P, 1n);
    const until = new Int32Array(new SharedArrayBuffer(4));
    const reader = new Promise<{ reads: number; bad: number }>((resolve) => {
      w.onmessage = (e) => resolve(e.data);
    });
    w.postMessage({ op: "tear", handle: un.counter.handle, lo: 0n, hi: 200n, until: until.buffer });
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 200; i++) libc.madvise(a, P, 4 /* MADV_DONTNEED */);
    await new Promise((r) => setTimeout(r, 20));
    Atomics.store(until, 0, 1);
    const r = await reader;
    assert.equal(un.generation, 200n);
    assert.equal(r.bad, 0, `${r.bad} of ${r.reads} reads out of range or backwards`);
  } finally {
    w.terminate();
    release(a, P);
    await un.close();
  }
});

test(
  "[device] register errors are the driver's: EINVAL (empty range, duplicate cookie)",
  { skip },
  async () => {
    const un = await Ummunotify.open({ backend: "device" });
    try {
      un.register(0x1000, 0x2000, 1n); // unmapped memory is fine for the device: it watches addresses
      assert.throws(
        () => un.register(0x1000, 0x2000, 1n),
        (e: unknown) => e instanceof UmmuError && e.code === "EINVAL",
      );
      assert.throws(
        () => un.register(0x2000, 0x2000, 2n),
        (e: unknown) => e instanceof UmmuError && e.code === "EINVAL",
      );
    } finally {
      await un.close();
    }
  },
);
