/**
 * What each backend sees: one test per memory operation, each measuring how
 * far the counter moves and what the read returns, and asserting the
 * measured value for that backend (docs/ummunotify.md has the table).
 * tests/ummunotify_table.test.ts runs it on the host, and
 * tests/kernel/ummunotify_device.test.ts for the device in the VM.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type BackendKind, Ummunotify, type UmmunotifyEvent } from "../src/ummunotify/mod.ts";
import * as mm from "../ffi/mman.ts";
import { runtime } from "../ffi/platform.ts";
import { check, cstring, libc, madvise, mmap, mprotect } from "../src/libc.ts";
import {
  backendSkip,
  forkUnavailable,
  getForker,
  live,
  mapAnon,
  P,
  pagemap,
  release,
  remap,
  scratchDir,
  unmap,
  vmSwap,
} from "./ummunotify_helpers.ts";

const MADV_PAGEOUT = 21;
const MS_SYNC = 4;

interface Measured {
  delta: bigint;
  events: UmmunotifyEvent[];
}

/** Runs `op` and returns how far the counter moved and what a read returns. */
function measure(un: Ummunotify, op: () => void): Measured {
  const g = un.generation;
  op();
  const delta = un.generation - g;
  return { delta, events: un.readEvents().filter((e) => e.kind === "invalidate") };
}

type Expect = Record<BackendKind, number>;

/** Defines one test per row for a backend. */
export function tableSuite(kind: BackendKind, label: string = kind): void {
  const skip = backendSkip(kind);
  const row = (
    name: string,
    expect: Expect,
    fn: (un: Ummunotify, exp: number) => void | string | Promise<void | string>,
  ) =>
    test(`[${label}] sees ${name}: ${expect[kind]} invalidation(s)`, {
      skip,
      timeout: 120_000, // Bun's default is 5 s; the VM is slow
    }, async (ctx) => {
      const un = await Ummunotify.open({ backend: kind });
      try {
        const why = await fn(un, expect[kind]);
        if (typeof why === "string") {
          // Decided only now (the kernel's choice): say so, never pass silently.
          console.log(`SKIPPED: ${why}`);
          (ctx as unknown as { skip?(m: string): void }).skip?.(why);
        }
      } finally {
        await un.close();
      }
    });
  const hit = (m: Measured, exp: number, cookie = 1n) => {
    assert.equal(m.delta, BigInt(exp), `counter moved by ${m.delta}`);
    assert.equal(m.events.length, exp === 0 ? 0 : 1, "one report per registration");
    if (exp > 0) assert.equal((m.events[0] as { cookie: bigint }).cookie, cookie);
    if (exp > 1) {
      assert.equal((m.events[0] as { hint?: unknown }).hint, undefined, "merged: no HINT");
    }
  };

  row("munmap", { userfaultfd: 1, device: 1 }, (un, exp) => {
    const a = mapAnon(2);
    un.register(a, a + P, 1n);
    hit(measure(un, () => unmap(a, P)), exp);
    release(a, 2 * P);
  });

  row("mmap(MAP_FIXED) over the range", { userfaultfd: 1, device: 1 }, (un, exp) => {
    const a = mapAnon(2);
    un.register(a, a + P, 1n);
    hit(
      measure(un, () =>
        mmap(
          P,
          mm.PROT_READ | mm.PROT_WRITE,
          mm.MAP_PRIVATE | mm.MAP_ANONYMOUS | mm.MAP_FIXED,
          -1,
          0,
          a,
        )),
      exp,
    );
    release(a, 2 * P);
  });

  row("mremap moving the range away", { userfaultfd: 2, device: 2 }, (un, exp) => {
    const a = mapAnon(4);
    un.register(a, a + 2 * P, 1n);
    hit(
      measure(un, () => remap(a, 2 * P, 2 * P, mm.MREMAP_MAYMOVE | mm.MREMAP_FIXED, a + 2 * P)),
      exp,
    );
    release(a, 4 * P);
  });

  row("mremap shrinking the range", { userfaultfd: 1, device: 1 }, (un, exp) => {
    const a = mapAnon(2);
    un.register(a, a + 2 * P, 1n);
    const m = measure(un, () => remap(a, 2 * P, P, 0));
    hit(m, exp);
    assert.deepEqual((m.events[0] as { hint?: unknown }).hint, {
      start: BigInt(a + P),
      end: BigInt(a + 2 * P),
    });
    release(a, 2 * P);
  });

  row(
    "mremap growing in place (nothing is invalidated)",
    { userfaultfd: 0, device: 0 },
    (un, exp) => {
      const a = mapAnon(4);
      unmap(a + 2 * P, 2 * P);
      un.register(a, a + 2 * P, 1n);
      hit(measure(un, () => assert.equal(remap(a, 2 * P, 4 * P, 0), a)), exp);
      release(a, 4 * P);
    },
  );

  row("mremap of another mapping onto the range", { userfaultfd: 1, device: 1 }, (un, exp) => {
    const a = mapAnon(2), b = mapAnon(1);
    un.register(a, a + P, 1n);
    hit(measure(un, () => remap(b, P, P, mm.MREMAP_MAYMOVE | mm.MREMAP_FIXED, a)), exp);
    release(a, 2 * P);
  });

  row("madvise(MADV_DONTNEED)", { userfaultfd: 1, device: 1 }, (un, exp) => {
    const a = mapAnon(2);
    un.register(a, a + P, 1n);
    hit(measure(un, () => madvise(a, 2 * P, mm.MADV_DONTNEED)), exp);
    release(a, 2 * P);
  });

  row("madvise(MADV_FREE)", { userfaultfd: 1, device: 1 }, (un, exp) => {
    const a = mapAnon(2);
    un.register(a, a + P, 1n);
    hit(measure(un, () => madvise(a, P, mm.MADV_FREE)), exp);
    release(a, 2 * P);
  });

  const memfd = (pages: number) => {
    const fd = check(libc.memfd_create(cstring("ummu-table"), mm.MFD_CLOEXEC), "memfd_create");
    check(libc.ftruncate(fd, pages * P), "ftruncate");
    const a = live(mmap(pages * P, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_SHARED, fd, 0), pages * P);
    new Uint8Array(runtime.view(a, pages * P)).fill(3);
    return { fd, a };
  };

  row("madvise(MADV_REMOVE) of shared memory (memfd)", { userfaultfd: 1, device: 1 }, (un, exp) => {
    const { fd, a } = memfd(2);
    un.register(a, a + P, 1n);
    hit(measure(un, () => madvise(a, P, mm.MADV_REMOVE)), exp);
    release(a, 2 * P);
    libc.close(fd);
  });

  row("ftruncate of a mapped memfd", { userfaultfd: 0, device: 2 }, (un, exp) => {
    const { fd, a } = memfd(2);
    un.register(a, a + 2 * P, 1n);
    hit(measure(un, () => check(libc.ftruncate(fd, 0), "ftruncate")), exp);
    release(a, 2 * P);
    libc.close(fd);
  });

  row("mprotect", { userfaultfd: 0, device: 1 }, (un, exp) => {
    const a = mapAnon(2);
    un.register(a, a + P, 1n);
    hit(measure(un, () => mprotect(a, P, mm.PROT_READ)), exp);
    release(a, 2 * P);
  });

  row(
    "fork (the parent's private pages are write-protected)",
    { userfaultfd: 0, device: 1 },
    async (un, exp) => {
      const forker = await getForker();
      if (!forker) return forkUnavailable;
      const a = mapAnon(1);
      un.register(a, a + P, 1n);
      hit(measure(un, () => assert.equal(forker.wait(forker.fork(0, 0, 0)), 0)), exp);
      release(a, P);
    },
  );

  row("a COW break in the parent after fork", { userfaultfd: 0, device: 1 }, async (un, exp) => {
    const forker = await getForker();
    if (!forker) return forkUnavailable;
    const a = mapAnon(1);
    un.register(a, a + P, 1n);
    const pid = forker.fork(0, 0, 3); // the child stays alive: the page stays shared
    try {
      un.readEvents();
      const before = pagemap(a, 1)[0].pfn;
      hit(
        measure(un, () => {
          new Uint8Array(runtime.view(a, 1))[0] = 9;
        }),
        exp,
      );
      if (before !== 0n) assert.notEqual(pagemap(a, 1)[0].pfn, before, "the parent got a new page");
    } finally {
      forker.kill(pid);
      forker.wait(pid);
      release(a, P);
    }
  });

  row("writeback of a dirty shared file page (msync)", { userfaultfd: 0, device: 1 }, (un, exp) => {
    const dir = scratchDir();
    const path = join(dir, "wb.bin");
    writeFileSync(path, new Uint8Array(P));
    const fd = openSync(path, "r+");
    try {
      const a = live(mmap(P, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_SHARED, fd, 0), P);
      new Uint8Array(runtime.view(a, P))[0] = 1; // dirty
      un.register(a, a + P, 1n);
      const m = measure(un, () => check(libc.msync(a, P, MS_SYNC), "msync"));
      if (kind === "device" && m.delta === 0n) {
        return "this file system did not write-protect the page for writeback";
      }
      hit(m, exp);
      release(a, P);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });

  row(
    "reclaim of a file page (madvise(MADV_PAGEOUT))",
    { userfaultfd: 0, device: 1 },
    (un, exp) => {
      const dir = scratchDir();
      const path = join(dir, "po.bin");
      writeFileSync(path, new Uint8Array(P).fill(7));
      const fd = openSync(path, "r");
      try {
        const a = live(mmap(P, mm.PROT_READ, mm.MAP_PRIVATE, fd, 0), P);
        assert.equal(new Uint8Array(runtime.view(a, P))[0], 7); // present
        un.register(a, a + P, 1n);
        const m = measure(un, () => libc.madvise(a, P, MADV_PAGEOUT));
        const present = pagemap(a, 1)[0].present;
        release(a, P);
        if (present) return "the kernel kept the page (MADV_PAGEOUT is advice)";
        hit(m, exp);
      } finally {
        closeSync(fd);
        rmSync(dir, { recursive: true });
      }
    },
  );

  row(
    "swap-out of anonymous memory (madvise(MADV_PAGEOUT))",
    { userfaultfd: 0, device: 1 },
    (un, exp) => {
      vmSwap();
      if (
        readFileSync("/proc/swaps", "utf8").trim().split("\n").length < 2
      ) return "no swap device here";
      const a = mapAnon(1);
      un.register(a, a + P, 1n);
      const m = measure(un, () => libc.madvise(a, P, MADV_PAGEOUT));
      const present = pagemap(a, 1)[0].present;
      release(a, P);
      if (present) return "the kernel kept the page";
      hit(m, exp);
    },
  );

  row("page migration (compaction)", { userfaultfd: 0, device: 1 }, (un, exp) => {
    const pages = 512;
    const a = mapAnon(pages);
    try {
      un.register(a, a + pages * P, 1n);
      const before = pagemap(a, pages).map((p) => p.pfn);
      if (before.every((x) => x === 0n)) return "PFNs are hidden (not root)";
      let fd: number;
      try {
        fd = openSync("/proc/sys/vm/compact_memory", "w");
      } catch {
        return "cannot write /proc/sys/vm/compact_memory";
      }
      const m = measure(un, () => {
        writeFileSync(fd, "1");
        closeSync(fd);
      });
      const after = pagemap(a, pages).map((p) => p.pfn);
      const moved = after.filter((x, i) => x !== before[i]).length;
      if (moved === 0) return "compaction moved none of our pages";
      assert.equal(
        m.delta >= BigInt(exp),
        true,
        `counter moved by ${m.delta} for ${moved} migrated pages`,
      );
      if (exp === 0) assert.equal(m.delta, 0n);
      assert.equal(m.events.length, exp === 0 ? 0 : 1);
    } finally {
      release(a, pages * P);
    }
  });
}
