/**
 * The kernel's userfaultfd unit tests, MINOR faults (uffd-unit-tests.c:
 * minor, minor-wp, minor-collapse) through ummu's public API. area_dst_alias
 * is registered MINOR; the test fills area_dst (the other mapping of the same
 * memory) with p % 255 per page, and reads everything back through the alias:
 * each first touch is a minor fault, which the monitor resolves by flipping
 * the page's bits and UFFDIO_CONTINUE. minor and minor-wp read the uffd with
 * events() in a Worker (uffd_poll_thread); minor-collapse, which needs the
 * range still registered after the monitor stops, is served by a FaultHandler
 * that leaves the uffd to the test when it closes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { TestContext } from "node:test";
import { FaultHandler, sources } from "../mod.ts";
import { libc } from "../src/libc.ts";
import {
  type Ctx,
  MADV_COLLAPSE,
  monitored,
  pmdPageSize,
  unitTests,
  Watchdog,
} from "./fixtures/uffd_selftest_common.ts";

/** check_memory_contents(): every byte of page i reads ~(i % 255). */
function checkMemoryContents(ctx: Ctx, buffer: ArrayBuffer): void {
  const ps = ctx.pageSize;
  for (let i = 0; i < ctx.nrPages; i++) {
    const expected = ~(i % 255) & 0xff;
    const page = new Uint8Array(buffer, i * ps, ps);
    const words = new Uint32Array(buffer, i * ps, ps / 4);
    const word = (expected * 0x01010101) >>> 0;
    for (let j = 0; j < words.length; j++) {
      if (words[j] !== word) {
        const at = page.findIndex((b) => b !== expected);
        assert.fail(
          `unexpected page contents: page ${i} byte ${at} is ${page[at]}, not ${expected}`,
        );
      }
    }
  }
}

/** Populates the non-registered side: page p of area_dst is p % 255 (no minor fault). */
function populate(ctx: Ctx): void {
  const d = new Uint8Array(ctx.dst.buffer);
  for (let p = 0; p < ctx.nrPages; p++) d.fill(p % 255, p * ctx.pageSize, (p + 1) * ctx.pageSize);
}

async function minorTest(ctx: Ctx, testWp: boolean): Promise<void> {
  const { dst, pageSize, nrPages } = ctx;
  ctx.uffd.register(dst.alias, dst.length, testWp ? ["wp", "minor"] : ["minor"]);
  populate(ctx);
  const options = {
    mode: "default" as const,
    applyWp: testWp,
    areaSrc: ctx.src.address,
    areaDst: dst.address,
    areaDstAlias: dst.alias,
    pageSize,
    nrPages,
    moveLen: 0,
  };
  // Read each page back through the registered mapping: a minor fault each, the first time.
  const report = await monitored(
    ctx,
    `minor${testWp ? "-wp" : ""} on ${ctx.mem}`,
    options,
    { address: dst.alias, length: dst.length },
    () => checkMemoryContents(ctx, dst.aliasBuffer!),
  );
  assert.deepEqual(
    [report.missingFaults, report.minorFaults],
    [0, nrPages],
    `stats check error: ${report.missingFaults} missing, ${report.minorFaults} minor faults`,
  );
}

unitTests(
  "minor",
  ["shmem", "hugetlb"],
  ["MINOR_HUGETLBFS", "MINOR_SHMEM"],
  (ctx) => minorTest(ctx, false),
);

unitTests(
  "minor-wp",
  ["shmem", "hugetlb"],
  // The kernel test uses WP_UNPOPULATED to detect that minor mode supports wr-protect.
  ["MINOR_HUGETLBFS", "MINOR_SHMEM", "PAGEFAULT_FLAG_WP", "WP_UNPOPULATED"],
  (ctx) => minorTest(ctx, true),
);

/** check_huge_shmem(): the VMA at `address` maps `count` PMD-sized shmem pages. */
function shmemPmdMappedKb(address: number): number {
  const smaps = readFileSync("/proc/self/smaps", "utf8");
  const at = smaps.indexOf(`\n${address.toString(16)}-`);
  if (at < 0) throw new Error(`no VMA at 0x${address.toString(16)} in /proc/self/smaps`);
  const block = smaps.slice(at + 1).split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)[0];
  return Number(/ShmemPmdMapped:\s+(\d+) kB/.exec(block)?.[1] ?? 0);
}

unitTests(
  "minor-collapse",
  // MADV_COLLAPSE only works with shmem.
  ["shmem"],
  ["MINOR_SHMEM"],
  async (ctx: Ctx, t: TestContext) => {
    const { uffd, dst, pageSize, nrPages } = ctx;
    // NOTE! MADV_COLLAPSE may not work with uffd-wp: MINOR only.
    uffd.register(dst.alias, dst.length, ["minor"]);
    populate(ctx);
    const handler = await FaultHandler.start(uffd, {
      ranges: [{
        address: dst.alias,
        length: dst.length,
        alias: dst.address,
        pageSize,
        source: sources.module(
          new URL("./fixtures/uffd_selftest_flip_source.ts", import.meta.url),
          {
            pageSize,
          },
        ),
      }],
      ownsUffd: false, // the range stays registered for MADV_COLLAPSE
    });
    const watchdog = await Watchdog.arm(`minor-collapse on ${ctx.mem}`, 60_000);
    watchdog.uffd(uffd.fd, dst.alias, dst.length);
    try {
      checkMemoryContents(ctx, dst.aliasBuffer!);
    } finally {
      watchdog.disarm();
    }
    const stats = handler.stats;
    await handler.close();
    assert.deepEqual(handler.errors, [], "the handler met no error");
    assert.deepEqual(
      [stats.faults - stats.minorFaults, stats.minorFaults],
      [0, nrPages],
      `stats check error: ${
        stats.faults - stats.minorFaults
      } missing, ${stats.minorFaults} minor faults`,
    );
    if (libc.madvise(dst.alias, dst.length, MADV_COLLAPSE) !== 0) {
      // It's fine to fail for this one...
      return t.skip("MADV_COLLAPSE failed");
    }
    const pmd = pmdPageSize();
    const expected = (nrPages * pageSize) / pmd;
    assert.equal(
      shmemPmdMappedKb(dst.alias),
      expected * (pmd >> 10),
      `Did not find expected ${expected} number of hugepages`,
    );
    // This won't cause uffd-fault - it purely just makes sure there was no corruption.
    checkMemoryContents(ctx, dst.aliasBuffer!);
  },
);
