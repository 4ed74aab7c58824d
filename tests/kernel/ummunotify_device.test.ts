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
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import process from "node:process";
import { GenerationCounter, Ummunotify } from "../../src/ummunotify/mod.ts";
import { createPageControl } from "../../src/ummunotify/counter_page.ts";
import { UmmuArgumentError, UmmuError } from "../../src/errors.ts";
import * as mm from "../../ffi/mman.ts";
import { libc } from "../../src/libc.ts";
import { semanticSuite } from "../ummunotify_suite.ts";
import { tableSuite } from "../ummunotify_table_suite.ts";
import {
  ask,
  backendSkip,
  mapAnon,
  markGone,
  P,
  release,
  unmap,
  worker,
} from "../ummunotify_helpers.ts";
import { isMapped, runChild } from "../helpers.ts";

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

test(
  "[device] madvise(DONTNEED) of the counter page: the next changed() maps it back (no SIGBUS)",
  { skip },
  async () => {
    const un = await Ummunotify.open({ backend: "device" });
    const a = mapAnon(1);
    try {
      const line = readFileSync("/proc/self/maps", "utf8").split("\n").find((l) =>
        l.includes("/dev/ummunotify")
      );
      assert.ok(line, "a mapping of /dev/ummunotify");
      const page = parseInt(line!.split("-")[0], 16);
      un.register(a, a + P, 1n);
      unmap(a, P);
      assert.equal(un.generation, 1n);
      // What a library that drops a range containing the counter page does.
      assert.equal(libc.madvise(page, P, 4 /* MADV_DONTNEED */), 0);
      assert.equal(un.changed(1n), false, "the same counter is mapped back");
      assert.equal(un.generation, 1n);
      assert.equal(libc.madvise(page, P, 4 /* MADV_DONTNEED */), 0);
      const b = mapAnon(1);
      un.register(b, b + P, 2n);
      unmap(b, P);
      assert.equal(un.generation, 2n, "and it keeps counting");
    } finally {
      await un.close();
    }
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

/** The /dev/ummunotify counter page mapped in this process (one notifier open), or null. */
function counterPage(): number | null {
  const line = readFileSync("/proc/self/maps", "utf8").split("\n").find((l) =>
    l.includes("/dev/ummunotify")
  );
  return line ? parseInt(line.split("-")[0], 16) : null;
}

test(
  "[device] a counter rebuilt in a Worker outlives the notifier: it reads DEAD (no SIGSEGV), and its close() unmaps the page",
  { skip },
  async () => {
    const un = await Ummunotify.open({ backend: "device" });
    const w = await worker();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      const page = counterPage()!;
      assert.deepEqual(await ask(w, { op: "hold", handle: un.counter.handle }), { generation: 0n });
      unmap(a, P);
      assert.deepEqual(await ask(w, { op: "held", since: 0n }), {
        changed: true,
        dead: false,
        generation: 1n,
      });
      await un.close();
      // The Worker still reads the address: a read-only anonymous page that says DEAD.
      assert.ok(isMapped(page, P), "the page stays mapped while the Worker's counter uses it");
      assert.equal(counterPage(), null, "the device file is released (its mapping is gone)");
      assert.deepEqual(await ask(w, { op: "held", since: 1n }), {
        changed: true,
        dead: true,
        generation: 1n,
      });
      // A handle of a closed notifier gives a dead counter, without reading the address.
      const late = await ask<{ changed: boolean }>(w, {
        op: "check",
        handle: un.backendImpl.counter.handle,
        since: 1n,
      });
      assert.equal(late.changed, true);
      await ask(w, { op: "release" });
      assert.equal(isMapped(page, P), false, "the last use unmapped it");
    } finally {
      w.terminate();
      await un.close();
    }
  },
);

test(
  "[device] fromHandle refuses a handle whose address is not the counter page of its fd",
  { skip },
  async () => {
    const un = await Ummunotify.open({ backend: "device" });
    const anon = mapAnon(1);
    try {
      const fd = (un.backendImpl as unknown as { fd: number }).fd;
      const page = counterPage()!;
      const rdev = readFileSync("/sys/class/misc/ummunotify/dev", "utf8").trim().split(":").map(
        Number,
      ) as [number, number];
      // The true description is accepted (and released at once).
      GenerationCounter.fromHandle({
        kind: "device",
        control: createPageControl({ address: page, fd, rdev }),
      }).close();
      for (
        const lie of [
          { address: anon, fd, rdev }, // a readable page, not the counter
          { address: page, fd: 0, rdev }, // the counter, but fd 0 is not the device
          { address: page, fd, rdev: [1, 3] as [number, number] }, // the device is not /dev/null
        ]
      ) {
        assert.throws(
          () => GenerationCounter.fromHandle({ kind: "device", control: createPageControl(lie) }),
          (e: unknown) => e instanceof UmmuArgumentError && /not a live ummunotify/.test(e.message),
          JSON.stringify(lie),
        );
      }
    } finally {
      release(anon, P);
      await un.close();
    }
  },
);

test(
  "[device] waitForChangeSync blocks on the device fd until another thread unmaps (or the timeout)",
  { skip },
  async () => {
    const un = await Ummunotify.open({ backend: "device" });
    const w = await worker();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      assert.equal(un.counter.waitForChangeSync(0n, 30), 0n, "the timeout: unchanged");
      const done = ask(w, { op: "munmap-later", addr: a, len: P, delayMs: 50 });
      await new Promise((r) => setTimeout(r, 5));
      assert.ok(un.counter.waitForChangeSync(0n, 10_000) >= 1n);
      await done;
      markGone(a, P);
    } finally {
      w.terminate();
      await un.close();
    }
  },
);

test(
  "[device] devicePath: another node of the same device works; another character device is refused",
  { skip },
  async () => {
    const [major, minor] = readFileSync("/sys/class/misc/ummunotify/dev", "utf8").trim().split(":");
    const alt = "/tmp/ummunotify-alt";
    execFileSync("mknod", [alt, "c", major, minor]);
    try {
      const un = await Ummunotify.open({ backend: "device", devicePath: alt });
      assert.equal(un.backend, "device");
      await un.close();
      await assert.rejects(
        Ummunotify.open({ backend: "device", devicePath: "/dev/zero" }),
        (e: unknown) =>
          e instanceof UmmuError && e.code === "ENOTTY" &&
          /character device 1:5, not the ummunotify device \(10:\d+/.test(e.message),
      );
    } finally {
      rmSync(alt);
    }
  },
);

for (const what of ["open", "watching", "reading"]) {
  for (const how of ["forget", "exit", "throw"]) {
    if (what === "reading" && how === "forget") continue;
    test(`[device] a program that ends (${how}) with a ${what} device notifier exits on its own`, {
      skip,
      timeout: 120_000, // a runtime starting in the VM (TCG) takes seconds; Bun's default is 5 s
    }, async () => {
      process.env.UMMU_TEST_BACKEND = "device";
      try {
        const r = await runChild(
          new URL("../fixtures/ummunotify_exit.ts", import.meta.url),
          [what, how],
          60_000,
        );
        assert.equal(r.hung, false, `the process hung: ${r.stderr.slice(-400)}`);
        assert.match(r.stdout, /opened device \d+/, r.stderr.slice(-400));
        assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr.slice(-400)}`);
        assert.equal(r.code, how === "throw" ? 1 : 0, r.stderr.slice(-400));
      } finally {
        delete process.env.UMMU_TEST_BACKEND;
      }
    });
  }
}
