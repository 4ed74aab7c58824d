/**
 * A reduced uffd-stress (tools/testing/selftests/mm/uffd-stress.c) through
 * ummu's public API, on anon, shmem, shmem-private, hugetlb and
 * hugetlb-private memory. Each bounce moves the memory of area_src into
 * area_dst: a locking Worker per CPU (locking_thread) takes the lock word of
 * pages of area_dst and increments their counters, checked against
 * count_verify; a FaultHandler (the uffd threads) serves the MISSING faults
 * from area_src, write-protected when the kernel has uffd-wp
 * (HandledRange.writeProtect), and the WP faults the writes then raise; the
 * main thread (background_thread) copies every page with UFFDIO_COPY,
 * write-protects the first half once copied, and retries one copy on purpose
 * (EEXIST, counted as resolved). Then area_src is released, the lockers stop,
 * write protection is cleared, the range unregistered, every counter verified,
 * and the areas swap for the next bounce. The lockers are at work before the
 * copies begin (each says so after its first iteration), so that every bounce
 * races them against the copies whatever the scheduler does.
 *
 * Bounded in time: UMMU_STRESS_SECONDS per memory type (default 3), at least
 * two bounces (one each way).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import process from "node:process";
import {
  FaultHandler,
  type HandledRange,
  type RegisterMode,
  sources,
  UserfaultFd,
} from "../mod.ts";
import * as mm from "../ffi/mman.ts";
import { PAGE_SIZE } from "../src/libc.ts";
import { spawnWorker } from "../src/worker.ts";
import {
  allocateArea,
  type Area,
  capabilities,
  COUNT_OFFSET,
  defaultHugePageSize,
  madvise,
  MEM_ALL,
  MEM_TYPES,
  type MemTypeName,
  reserveHugePages,
  skipReason,
  Watchdog,
} from "./fixtures/uffd_selftest_common.ts";
import type { LockerInit, LockerMessage, LockerReport } from "./fixtures/uffd_selftest_locker.ts";

const SECONDS = Number(process.env.UMMU_STRESS_SECONDS ?? 3);
const NR_CPUS = Math.max(2, Math.min(availableParallelism(), 4));

const BOUNCE_RANDOM = 1 << 0;
const BOUNCE_RACINGFAULTS = 1 << 1;

interface BounceStats {
  bounce: number;
  mode: string;
  lockerIterations: number;
  faults: number;
  wpFaults: number;
}

/**
 * Starts a locker; resolves once it made its first iteration (a fault the
 * handler served), with `done`, its report once finished (in an object, not a
 * nested promise, which await would flatten).
 */
async function startLocker(init: LockerInit): Promise<{ done: Promise<LockerReport> }> {
  const w = await spawnWorker(new URL("./fixtures/uffd_selftest_locker.ts", import.meta.url));
  let onRunning: () => void = () => {};
  const running = new Promise<void>((resolve) => onRunning = resolve);
  const done = new Promise<LockerReport>((resolve) => {
    w.onmessage = (e: MessageEvent<LockerMessage>) => {
      if (e.data.type === "running") return onRunning();
      w.terminate();
      onRunning();
      resolve(e.data);
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault?.();
      w.terminate();
      onRunning();
      resolve({ type: "report", iterations: 0, error: `locker Worker error: ${e.message}` });
    };
  });
  w.postMessage(init);
  await running;
  return { done };
}

async function stress(mem: MemTypeName): Promise<BounceStats[]> {
  const type = MEM_TYPES[mem];
  const pageSize = type.hugetlb ? defaultHugePageSize() : PAGE_SIZE;
  const nrPagesPerCpu = type.hugetlb ? 4 : 1024;
  const nrPages = nrPagesPerCpu * NR_CPUS;
  const len = nrPages * pageSize;
  const caps = capabilities();
  const testUffdioWp = typeof caps !== "string" && caps.features.has("PAGEFAULT_FLAG_WP");
  const releaseAdvice = type.shmem || (type.hugetlb && type.shared)
    ? mm.MADV_REMOVE
    : mm.MADV_DONTNEED;
  const release = (a: Area) => madvise(a.address, a.length, releaseAdvice, `release ${mem}`);

  let src = allocateArea(mem, len, true);
  let dst = allocateArea(mem, len, false);
  const uffd = UserfaultFd.open({ features: ["WP_UNPOPULATED"] });
  const countVerify = new BigUint64Array(new SharedArrayBuffer(8 * nrPages));
  const stats: BounceStats[] = [];
  try {
    const s = new DataView(src.buffer);
    for (let nr = 0; nr < nrPages; nr++) {
      s.setBigUint64(nr * pageSize + COUNT_OFFSET, 1n, true);
      s.setBigUint64(nr * pageSize + COUNT_OFFSET + 8, 1n, true); // the non-zero placeholder
      countVerify[nr] = 1n;
    }
    const end = Date.now() + SECONDS * 1000;
    for (let b = 0; stats.length < 2 || Date.now() < end; b++) {
      const bounces = 15 - (b % 16);
      const modes: RegisterMode[] = testUffdioWp ? ["missing", "wp"] : ["missing"];
      uffd.register(dst.address, len, modes);
      if (dst.alias) uffd.register(dst.alias, len, modes);
      // Released after registering: a racing copy of the last bounce may have left pages.
      release(dst);

      // The uffd threads.
      const source = sources.module(
        new URL("./fixtures/uffd_selftest_bounce_source.ts", import.meta.url),
        { src: src.address, length: len },
      );
      const ranges = [dst.address, dst.alias].filter((a) => a !== 0).map((address) =>
        ({
          address,
          length: len,
          pageSize,
          source,
          writeProtect: testUffdioWp,
        }) satisfies HandledRange
      );
      const handler = await FaultHandler.start(uffd, { ranges, ownsUffd: false });
      const watchdog = await Watchdog.arm(
        `uffd-stress ${mem} bounce ${b}`,
        60_000 + SECONDS * 1000,
      );
      watchdog.uffd(uffd.fd, dst.address, len);
      if (dst.alias) watchdog.uffd(uffd.fd, dst.alias, len);
      const finished = new SharedArrayBuffer(4);
      let lockers: { done: Promise<LockerReport> }[] = [];
      let failure: unknown = null;
      try {
        lockers = await Promise.all(
          Array.from({ length: NR_CPUS }, (_, cpu) =>
            startLocker({
              dst: dst.address,
              nrPages,
              pageSize,
              nrPagesPerCpu,
              cpu,
              random: (bounces & BOUNCE_RANDOM) !== 0,
              racing: (bounces & BOUNCE_RACINGFAULTS) !== 0,
              bounces,
              countVerify: countVerify.buffer as SharedArrayBuffer,
              finished,
            })),
        );
        // The background threads, one CPU's share after another.
        let eexistChecked = false;
        for (let cpu = 0; cpu < NR_CPUS; cpu++) {
          const start = cpu * nrPagesPerCpu, stop = (cpu + 1) * nrPagesPerCpu;
          const mid = (start + stop) / 2;
          const copy = (nr: number) => {
            const off = nr * pageSize;
            const n = uffd.copy(dst.address + off, src.address + off, pageSize, {
              wp: testUffdioWp,
            });
            assert.equal(n, pageSize, `UFFDIO_COPY error: ${n}`);
            if (!eexistChecked) {
              // retry_copy_page(): the same page again (through the alias) meets EEXIST.
              eexistChecked = true;
              const again = uffd.copy(
                (dst.alias || dst.address) + off,
                src.address + off,
                pageSize,
                { wp: testUffdioWp },
              );
              assert.equal(again, pageSize, "UFFDIO_COPY retry: EEXIST is resolved");
            }
          };
          // Copy the first half of the pages.
          for (let nr = start; nr < mid; nr++) copy(nr);
          // Then write-protect this CPU's share: the copied half, and markers on the rest.
          if (testUffdioWp) {
            uffd.writeProtect(dst.address + start * pageSize, nrPagesPerCpu * pageSize, true);
          }
          // Continue the 2nd half, while WP faults are served.
          for (let nr = mid; nr < stop; nr++) copy(nr);
        }
        // Be strict and immediately zap area_src: the whole area has been transferred.
        release(src);
      } catch (e) {
        failure = e;
      } finally {
        Atomics.store(new Int32Array(finished), 0, 1);
      }
      // Joined and closed whatever happened, so that nothing outlives the test.
      const reports = await Promise.all(lockers.map((l) => l.done));
      watchdog.disarm();
      const hs = handler.stats;
      await handler.close();
      if (failure) throw failure;
      assert.deepEqual(handler.errors.map((e) => e.message), [], "the fault handler met no error");
      for (const r of reports) assert.equal(r.error, null, r.error ?? "");

      // Clear all the write protections if there is any, then unregister.
      if (testUffdioWp) uffd.writeProtect(dst.address, len, false);
      uffd.unregister(dst.address, len);
      if (dst.alias) uffd.unregister(dst.alias, len);
      // Verification.
      const d = new DataView(dst.buffer);
      for (let nr = 0; nr < nrPages; nr++) {
        const count = d.getBigUint64(nr * pageSize + COUNT_OFFSET, true);
        assert.equal(count, countVerify[nr], `error area_count ${count} ${countVerify[nr]} ${nr}`);
      }
      stats.push({
        bounce: b,
        mode: `${bounces & BOUNCE_RANDOM ? "rnd" : "seq"}${
          bounces & BOUNCE_RACINGFAULTS ? " racing" : ""
        }`,
        lockerIterations: reports.reduce((a, r) => a + r.iterations, 0),
        faults: hs.faults,
        wpFaults: hs.wpFaults,
      });
      // Prepare the next bounce.
      [src, dst] = [dst, src];
    }
  } finally {
    uffd.close();
    dst.close();
    src.close();
  }
  return stats;
}

for (const mem of MEM_ALL) {
  const skip = skipReason(mem, ["WP_UNPOPULATED"], false);
  test(
    `uffd-stress: ${mem}`,
    { skip, timeout: 180_000 + SECONDS * 1000 },
    async (t) => {
      const restore = MEM_TYPES[mem].hugetlb ? reserveHugePages(16 * NR_CPUS + 8) : () => {};
      if (typeof restore === "string") return t.skip(restore);
      try {
        const stats = await stress(mem);
        assert.ok(stats.length >= 2, "at least one bounce each way");
        // Every locker made at least its first iteration before the background copies began.
        assert.ok(
          stats.every((s) => s.lockerIterations >= NR_CPUS),
          `every bounce made progress: ${JSON.stringify(stats)}`,
        );
      } finally {
        restore();
      }
    },
  );
}
