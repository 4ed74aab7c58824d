/**
 * The driver's semantics, as one suite that runs against either backend:
 * tests/ummunotify.test.ts runs it for both on the host (the device part
 * skips without /dev/ummunotify), tests/kernel/ummunotify_device.test.ts runs
 * it in the VM with kmod/ummunotify loaded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { type BackendKind, Ummunotify, type UmmunotifyEvent } from "../src/ummunotify/mod.ts";
import { decodeEvents } from "../src/ummunotify/events.ts";
import { UmmuArgumentError, UmmuError } from "../src/errors.ts";
import * as mm from "../ffi/mman.ts";
import { madvise, mmap } from "../src/libc.ts";
import {
  ask,
  backendSkip,
  big,
  forkUnavailable,
  getForker,
  live,
  mapAnon,
  markGone,
  P,
  release,
  remap,
  unmap,
  warmUp,
  worker,
} from "./ummunotify_helpers.ts";
import { assertNoLeak, ffiMapsPerWorker, isMapped, quiescent } from "./helpers.ts";

const inval = (cookie: bigint, start?: number, end?: number): UmmunotifyEvent =>
  start === undefined
    ? { kind: "invalidate", cookie }
    : { kind: "invalidate", cookie, hint: { start: big(start), end: big(end!) } };
const last = (generation: bigint): UmmunotifyEvent => ({ kind: "last", generation });

function errno(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof UmmuError, `expected an UmmuError ${code}, got ${e}`);
    assert.equal(e.code, code, `${e.message}`);
    return true;
  };
}

/** Defines every semantic test for one backend. */
export function semanticSuite(kind: BackendKind, label: string = kind): void {
  const skip = backendSkip(kind);
  // Bun stops a test after 5 s by default; in the test VM (TCG) compiling the fork helper alone can take longer.
  const t = (name: string, fn: () => Promise<void>) =>
    test(`[${label}] ${name}`, { skip, timeout: 120_000 }, fn);
  const open = (opts = {}) => Ummunotify.open({ backend: kind, ...opts });

  t(
    "the published test: cookie 123, munmap the middle page, one INVAL with HINT, LAST, unregister",
    async () => {
      const un = await open();
      const a = mapAnon(3);
      try {
        un.register(a, a + 3 * P, 123n);
        assert.equal(un.generation, 0n);
        unmap(a + P, P);
        assert.equal(un.generation, 1n, "the counter moved 0 -> 1");
        assert.ok(un.changed(0n));
        assert.deepEqual(un.readEvents(), [inval(123n, a + P, a + 2 * P), last(1n)]);
        un.unregister(123n);
        unmap(a, P);
        assert.equal(un.generation, 1n, "no event after unregister");
        assert.equal(un.changed(1n), false);
        assert.deepEqual(un.readEvents(), []);
      } finally {
        release(a, 3 * P);
        await un.close();
      }
    },
  );

  t(
    "first invalidation: HINT and the invalidated range clipped to a byte-granular registration",
    async () => {
      const un = await open();
      const a = mapAnon(4);
      try {
        un.register(a + 100, a + 3 * P - 100, 7n);
        unmap(a, 2 * P);
        assert.deepEqual(un.readEvents(), [inval(7n, a + 100, a + 2 * P), last(1n)]);
        unmap(a + 2 * P, 2 * P);
        assert.deepEqual(un.readEvents(), [inval(7n, a + 2 * P, a + 3 * P - 100), last(2n)]);
      } finally {
        release(a, 4 * P);
        await un.close();
      }
    },
  );

  t(
    "a second invalidation before the read: no HINT, the whole range; the counter moves for each",
    async () => {
      const un = await open();
      const a = mapAnon(4);
      try {
        un.register(a, a + 4 * P, 1n);
        unmap(a, P);
        unmap(a + 3 * P, P);
        assert.equal(un.generation, 2n);
        assert.deepEqual(un.readEvents(), [inval(1n), last(2n)]);
        // The raw struct of a report without HINT carries the whole registered range.
        madvise(a + P, P, mm.MADV_DONTNEED);
        madvise(a + 2 * P, P, mm.MADV_DONTNEED);
        const buf = new Uint8Array(64);
        assert.equal(un.readInto(buf), 64);
        const dv = new DataView(buf.buffer);
        assert.deepEqual(
          [
            dv.getUint32(0, true),
            dv.getUint32(4, true),
            dv.getBigUint64(8, true),
            dv.getBigUint64(16, true),
            dv.getBigUint64(24, true),
          ],
          [0, 0, big(a), big(a + 4 * P), 1n],
        );
        assert.deepEqual([dv.getUint32(32, true), dv.getBigUint64(56, true)], [1, 4n]);
      } finally {
        release(a, 4 * P);
        await un.close();
      }
    },
  );

  t(
    "one invalidation over several registrations: one report each, in start order; the counter moves once",
    async () => {
      const un = await open();
      const a = mapAnon(4);
      try {
        un.register(a + P, a + 3 * P, 2n); // B
        un.register(a, a + 2 * P, 1n); // A: starts first
        un.register(a + P, a + 3 * P, 3n); // C: the same range as B, registered after it
        un.register(a + 3 * P, a + 4 * P, 4n); // D: not hit
        unmap(a + P, P);
        assert.equal(un.generation, 1n);
        assert.deepEqual(un.readEvents(), [
          inval(1n, a + P, a + 2 * P),
          inval(2n, a + P, a + 2 * P),
          inval(3n, a + P, a + 2 * P),
          last(1n),
        ]);
      } finally {
        release(a, 4 * P);
        await un.close();
      }
    },
  );

  t(
    "the same cookie twice: EINVAL, nothing changes; overlapping ranges under other cookies are fine",
    async () => {
      const un = await open();
      const a = mapAnon(2), b = mapAnon(1);
      try {
        un.register(a, a + P, 5n);
        assert.throws(() => un.register(b, b + P, 5n), errno("EINVAL"));
        un.register(a, a + P, 6n);
        un.register(a, a + 2 * P, 7n);
        unmap(b, P);
        assert.equal(un.generation, 0n, "the refused registration watches nothing");
        unmap(a, P);
        assert.deepEqual(un.readEvents(), [
          inval(5n, a, a + P),
          inval(6n, a, a + P),
          inval(7n, a, a + P),
          last(1n),
        ]);
        assert.throws(() => un.register(a + P, a + P, 8n), errno("EINVAL"), "an empty range");
        assert.throws(() => un.register(a + 2 * P, a + P, 8n), errno("EINVAL"), "end below start");
      } finally {
        release(a, 2 * P);
        await un.close();
      }
    },
  );

  t(
    "unregister: an unknown cookie is EINVAL; it drops the queued report; the cookie can be reused",
    async () => {
      const un = await open();
      const a = mapAnon(3);
      try {
        assert.throws(() => un.unregister(99n), errno("EINVAL"));
        un.register(a, a + P, 1n);
        un.register(a + P, a + 2 * P, 2n);
        unmap(a, 2 * P);
        assert.equal(un.generation, 1n);
        un.unregister(1n);
        assert.throws(() => un.unregister(1n), errno("EINVAL"), "gone");
        assert.deepEqual(un.readEvents(), [inval(2n, a + P, a + 2 * P), last(1n)]);
        un.unregister(2n);
        un.register(a + 2 * P, a + 3 * P, 1n); // the cookie is free again
        unmap(a + 2 * P, P);
        assert.deepEqual(un.readEvents(), [inval(1n, a + 2 * P, a + 3 * P), last(2n)]);
      } finally {
        release(a, 3 * P);
        await un.close();
      }
    },
  );

  t("a read drains the queue and ends with LAST; then nothing (EAGAIN for readInto)", async () => {
    const un = await open();
    const a = mapAnon(2);
    try {
      un.register(a, a + 2 * P, 1n);
      assert.throws(
        () => un.readInto(new Uint8Array(32)),
        errno("EAGAIN"),
        "nothing queued, nothing owed",
      );
      assert.equal(un.readable, false);
      unmap(a, P);
      assert.equal(un.readable, true);
      assert.deepEqual(un.readEvents(), [inval(1n, a, a + P), last(1n)]);
      assert.equal(un.readable, false);
      assert.deepEqual(un.readEvents(), []);
      assert.throws(() => un.readInto(new Uint8Array(32)), errno("EAGAIN"));
    } finally {
      release(a, 2 * P);
      await un.close();
    }
  });

  t("a read smaller than one event: EINVAL (0, 3 and 31 bytes), nothing consumed", async () => {
    const un = await open();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      unmap(a, P);
      for (const size of [0, 3, 31]) {
        assert.throws(() => un.readInto(new Uint8Array(size)), errno("EINVAL"), `${size} bytes`);
      }
      const buf = new Uint8Array(50); // rounded down to one event
      assert.equal(un.readInto(buf), 32, "one whole event only");
      assert.equal(new DataView(buf.buffer).getUint32(0, true), 0, "the INVAL");
      assert.equal(un.readInto(buf), 32, "the owed LAST");
      assert.equal(new DataView(buf.buffer).getUint32(0, true), 1);
      assert.throws(() => un.readInto(buf), errno("EAGAIN"));
    } finally {
      await un.close();
    }
  });

  t("a read with room for the INVALs only owes the LAST to the next read", async () => {
    const un = await open();
    const a = mapAnon(3);
    try {
      for (let i = 0; i < 3; i++) un.register(a + i * P, a + (i + 1) * P, big(10 + i));
      unmap(a, 3 * P);
      const buf = new Uint8Array(64);
      assert.equal(un.readInto(buf), 64, "two INVALs");
      assert.equal(un.readInto(buf), 64, "the third INVAL and the LAST");
      const dv = new DataView(buf.buffer);
      assert.deepEqual([dv.getUint32(0, true), dv.getBigUint64(24, true), dv.getUint32(32, true)], [
        0,
        12n,
        1,
      ]);
      unmap(a, P);
      for (let i = 0; i < 3; i++) un.unregister(big(10 + i));
    } finally {
      await un.close();
    }
  });

  t("an invalidation that overlaps no registration does not move the counter", async () => {
    const un = await open();
    const a = mapAnon(4);
    try {
      un.register(a + 100, a + 200, 1n);
      un.register(a + 2 * P, a + 3 * P, 2n);
      unmap(a + P, P); // between them
      unmap(a + 3 * P, P); // after
      assert.equal(un.generation, 0n);
      assert.deepEqual(un.readEvents(), []);
      unmap(a, P); // the page of the byte range [a+100, a+200)
      assert.deepEqual(un.readEvents(), [inval(1n, a + 100, a + 200), last(1n)]);
    } finally {
      release(a, 4 * P);
      await un.close();
    }
  });

  t(
    "cookies are u64: 0 and 2^64-1 are ordinary; -1 and 2^64 are refused, not wrapped",
    async () => {
      const un = await open();
      const a = mapAnon(1);
      try {
        un.register(a, a + P, 0n);
        un.register(a, a + P, 2n ** 64n - 1n);
        for (const bad of [-1n, 2n ** 64n, -1]) {
          assert.throws(
            () => un.register(a, a + P, bad),
            (e: unknown) => e instanceof UmmuArgumentError && /cookie/.test(e.message),
            `cookie ${bad}`,
          );
        }
        unmap(a, P);
        assert.deepEqual(un.readEvents(), [
          inval(0n, a, a + P),
          inval(2n ** 64n - 1n, a, a + P),
          last(1n),
        ]);
      } finally {
        await un.close();
      }
    },
  );

  t("the DoS bound: 1000 invalidations of one registration queue one report", async () => {
    const un = await open();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      for (let i = 0; i < 1000; i++) madvise(a, P, mm.MADV_DONTNEED);
      assert.equal(un.generation, 1000n, "the counter counts invalidations");
      const buf = new Uint8Array(64 * 32);
      assert.equal(un.readInto(buf), 64, "one report (merged, no HINT) and the LAST");
      assert.deepEqual(decodeEvents(buf, 64), [inval(1n), last(1000n)]);
    } finally {
      release(a, P);
      await un.close();
    }
  });

  t("the DoS bound: registrations are capped (ENOSPC), so is the queue", async () => {
    const param = "/sys/module/ummunotify/parameters/max_regions";
    let restore: string | null = null;
    if (kind === "device") {
      restore = readFileSync(param, "utf8").trim();
      writeFileSync(param, "3");
    }
    const un = await open(kind === "userfaultfd" ? { maxRegistrations: 3 } : {});
    const a = mapAnon(4);
    try {
      for (let i = 0; i < 3; i++) un.register(a + i * P, a + (i + 1) * P, big(i));
      assert.throws(() => un.register(a + 3 * P, a + 4 * P, 3n), errno("ENOSPC"));
      unmap(a, 4 * P); // every registration hit: at most 3 reports
      assert.deepEqual(un.readEvents(), [
        inval(0n, a, a + P),
        inval(1n, a + P, a + 2 * P),
        inval(2n, a + 2 * P, a + 3 * P),
        last(1n),
      ]);
    } finally {
      if (restore !== null) writeFileSync(param, restore);
      release(a, 4 * P);
      await un.close();
    }
  });

  t(
    "a registration outlives its memory: what is mapped there later is watched by the device, not by userfaultfd",
    async () => {
      const un = await open();
      const a = mapAnon(1);
      try {
        un.register(a, a + P, 1n);
        unmap(a, P);
        assert.deepEqual(un.readEvents(), [inval(1n, a, a + P), last(1n)]);
        let again: number;
        try {
          again = live(
            mmap(
              P,
              mm.PROT_READ | mm.PROT_WRITE,
              mm.MAP_PRIVATE | mm.MAP_ANONYMOUS | mm.MAP_FIXED_NOREPLACE,
              -1,
              0,
              a,
            ),
            P,
          );
        } catch {
          return void console.log("  SKIPPED: another thread took the address meanwhile");
        }
        unmap(again, P);
        // The device watches addresses; userfaultfd watches the mapping that was registered.
        assert.equal(un.generation, kind === "device" ? 2n : 1n);
      } finally {
        await un.close();
      }
    },
  );

  t("exchangeFeatures grants nothing (no feature is defined)", async () => {
    const un = await open();
    try {
      assert.equal(un.exchangeFeatures(0), 0);
      assert.equal(un.exchangeFeatures(0xffffffff), 0);
    } finally {
      await un.close();
    }
  });

  t(
    "madvise(DONTNEED) invalidates and the range stays watched; mremap away: two invalidations, merged",
    async () => {
      const un = await open();
      const a = mapAnon(6);
      try {
        un.register(a, a + 2 * P, 1n);
        madvise(a, P, mm.MADV_DONTNEED);
        assert.deepEqual(un.readEvents(), [inval(1n, a, a + P), last(1n)]);
        madvise(a + P, P, mm.MADV_DONTNEED);
        assert.deepEqual(un.readEvents(), [inval(1n, a + P, a + 2 * P), last(2n)]);
        un.register(a + 2 * P, a + 4 * P, 2n);
        // Onto our own last two pages (MREMAP_FIXED replaces whatever is at the destination).
        assert.equal(
          remap(a + 2 * P, 2 * P, 2 * P, mm.MREMAP_MAYMOVE | mm.MREMAP_FIXED, a + 4 * P),
          a + 4 * P,
        );
        // As the driver measures it: the page tables move (1), the old vma is unmapped (2).
        assert.deepEqual(un.readEvents(), [inval(2n), last(4n)]);
      } finally {
        release(a, 6 * P);
        await un.close();
      }
    },
  );

  t("changed() and generation in a Worker, from the counter's handle", async () => {
    const un = await open();
    const w = await worker();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      const before = await ask<{ changed: boolean; generation: bigint }>(w, {
        op: "check",
        handle: un.counter.handle,
        since: 0n,
      });
      assert.deepEqual(before, { changed: false, generation: 0n });
      unmap(a, P);
      const after = await ask<{ changed: boolean; generation: bigint }>(w, {
        op: "check",
        handle: un.counter.handle,
        since: 0n,
      });
      assert.deepEqual(after, { changed: true, generation: 1n });
    } finally {
      w.terminate();
      await un.close();
    }
  });

  t("waitForChange wakes without polling when another thread unmaps", async () => {
    const un = await open();
    const w = await worker();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      const waited = un.waitForChange(0n, { timeoutMs: 10_000 });
      await ask(w, { op: "munmap-later", addr: a, len: P, delayMs: 50 });
      markGone(a, P);
      // At least 1: the device keeps watching the addresses, and threads that start
      // meanwhile may map and change memory there again (see docs/ummunotify.md).
      const g = await waited;
      assert.ok(g >= 1n, `${g}`);
      un.unregister(1n);
      assert.equal(await un.waitForChange(0n), un.generation, "already changed: at once");
      const t0 = Date.now();
      assert.equal(
        await un.waitForChange(un.generation, { timeoutMs: 100 }),
        un.generation,
        "timeout: the unchanged value",
      );
      assert.ok(Date.now() - t0 >= 90);
    } finally {
      w.terminate();
      await un.close();
    }
  });

  t("waitForChange in a Worker (its own counter) wakes when the main thread unmaps", async () => {
    const un = await open();
    const w = await worker();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      const answer = ask<{ generation: bigint }>(w, {
        op: "wait",
        handle: un.counter.handle,
        since: 0n,
        timeoutMs: 10_000,
      });
      await new Promise((r) => setTimeout(r, 100));
      unmap(a, P);
      assert.ok((await answer).generation >= 1n);
    } finally {
      w.terminate();
      await un.close();
    }
  });

  t(
    "read() waits for an invalidation; a timeout gives []; an AbortSignal rejects; close() ends events()",
    async () => {
      const un = await open();
      const w = await worker();
      const a = mapAnon(2);
      try {
        un.register(a, a + 2 * P, 1n);
        assert.deepEqual(await un.read({ timeoutMs: 50 }), [], "timeout");
        const pending = un.read({ timeoutMs: 10_000 });
        await ask(w, { op: "munmap-later", addr: a, len: P, delayMs: 30 });
        markGone(a, P);
        assert.deepEqual(await pending, [inval(1n, a, a + P), last(1n)]);
        const ac = new AbortController();
        const aborted = un.read({ signal: ac.signal });
        ac.abort(new Error("stop"));
        await assert.rejects(aborted, /stop/);
        const seen: UmmunotifyEvent[] = [];
        const iter = (async () => {
          for await (const ev of un.events()) seen.push(ev);
        })();
        await ask(w, { op: "munmap-later", addr: a + P, len: P, delayMs: 30 });
        markGone(a + P, P);
        for (let i = 0; i < 200 && seen.length < 2; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        await un.close();
        await iter; // ended by close()
        assert.deepEqual(seen, [inval(1n, a + P, a + 2 * P), last(2n)]);
      } finally {
        w.terminate();
        await un.close();
      }
    },
  );

  t("readSync blocks this thread until another thread unmaps (or the timeout)", async () => {
    const un = await open();
    const w = await worker();
    const a = mapAnon(1);
    try {
      un.register(a, a + P, 1n);
      assert.deepEqual(un.readSync(30), []);
      const done = ask(w, { op: "munmap-later", addr: a, len: P, delayMs: 50 });
      // The Worker's message is delivered while we block: its timer runs in its own thread.
      await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(un.readSync(10_000), [inval(1n, a, a + P), last(1n)]);
      await done;
      markGone(a, P);
    } finally {
      w.terminate();
      await un.close();
    }
  });

  t(
    "close with live registrations and queued reports leaks nothing (20 cycles: fds, threads, mappings)",
    async () => {
      const a = mapAnon(8);
      await warmUp(kind);
      // The userfaultfd backend starts one monitor Worker per notifier.
      const ffiAllowance = kind === "device" ? 0 : 20 * (await ffiMapsPerWorker());
      const before = await quiescent();
      const maps = () => readFileSync("/proc/self/maps", "utf8").split("\n").length;
      const mapsBefore = maps();
      for (let i = 0; i < 20; i++) {
        const un = await open();
        for (let j = 0; j < 8; j++) un.register(a + j * P, a + (j + 1) * P, big(j));
        madvise(a, 4 * P, mm.MADV_DONTNEED); // four queued reports
        assert.equal(un.generation, 1n);
        await un.close();
        assert.throws(() => un.register(a, a + P, 99n), /closed/);
      }
      await assertNoLeak(before);
      // The runtimes map and unmap their own memory at will: a leak of one mapping
      // per notifier would show as 20 more; allow a few of theirs, plus what the
      // FFI layer itself keeps per exited Worker (koffi on Node), measured above.
      const grew = maps() - mapsBefore;
      assert.ok(
        grew < 10 + ffiAllowance,
        `/proc/self/maps grew by ${grew} lines over 20 notifiers (FFI allowance ${ffiAllowance})`,
      );
      // Nothing is registered any more: unmapping does not block or report.
      unmap(a, 8 * P);
      assert.equal(isMapped(a, 8 * P), false);
      const nrRegions = "/sys/module/ummunotify/parameters/nr_regions";
      if (kind === "device") {
        assert.equal(
          readFileSync(nrRegions, "utf8").trim(),
          "0",
          "the driver freed every registration",
        );
      }
    },
  );

  t("which process is watched: this one; a forked child's unmaps are not reported", async () => {
    const forker = await getForker();
    if (!forker) return void console.log(`  (skipped: ${forkUnavailable})`);
    const un = await open();
    const a = mapAnon(2);
    try {
      un.register(a, a + P, 1n);
      const g0 = un.generation;
      const pid = forker.fork(a, P, 1); // the child unmaps its copy, then exits
      assert.equal(forker.wait(pid), 0, "the child exited normally");
      // The device sees fork itself (the parent's pages are write-protected); that is all.
      const afterFork = un.readEvents();
      const g1 = un.generation;
      if (kind === "userfaultfd") {
        assert.deepEqual([afterFork, g1], [[], g0], "the child's munmap is not ours");
      } else assert.ok(afterFork.every((e) => e.kind === "last" || e.cookie === 1n));
      unmap(a, P);
      assert.equal(un.generation, g1 + 1n, "our own munmap is");
    } finally {
      release(a, 2 * P);
      await un.close();
    }
  });
}
