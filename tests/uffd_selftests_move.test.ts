/**
 * The kernel's userfaultfd unit tests, UFFDIO_MOVE (uffd-unit-tests.c: move,
 * move-pmd, move-pmd-split, anonymous memory) through ummu's public API. The
 * main thread reads area_dst page by page; a monitor Worker (events(), as
 * uffd_poll_thread) resolves each MISSING fault by moving the page, or the
 * PMD-sized chunk, from area_src.
 */
import assert from "node:assert/strict";
import { errno, libc } from "../src/libc.ts";
import {
  type Ctx,
  MADV_DONTFORK,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  madvise,
  monitored,
  pmdPageSize,
  unitTests,
} from "./fixtures/uffd_selftest_common.ts";

const EINVAL = 22;

/** prevent_hugepages(): MADV_NOHUGEPAGE on area_src, before it is populated. */
function preventHugepages(ctx: Ctx): string | void {
  if (libc.madvise(ctx.src.address, ctx.src.length, MADV_NOHUGEPAGE) !== 0 && errno() !== EINVAL) {
    return "madvise(MADV_NOHUGEPAGE) failed";
  }
}

/** request_hugepages(): MADV_HUGEPAGE on area_src, before it is populated. */
function requestHugepages(ctx: Ctx): string | void {
  if (libc.madvise(ctx.src.address, ctx.src.length, MADV_HUGEPAGE) !== 0) {
    return errno() === EINVAL
      ? "CONFIG_TRANSPARENT_HUGEPAGE is not set"
      : "madvise(MADV_HUGEPAGE) failed";
  }
}

async function moveTest(ctx: Ctx, chunkSize: number): Promise<void> {
  const { uffd, src, dst, pageSize: ps, nrPages } = ctx;
  // Prevent source pages from being mapped more than once.
  madvise(src.address, src.length, MADV_DONTFORK, "MADV_DONTFORK");
  uffd.register(dst.address, dst.length, ["missing"]);
  const stepSize = chunkSize / ps;
  let stepCount = nrPages / stepSize;
  let areaSrc = src.address, areaDst = dst.address;
  let srcOffs = 0, dstOffs = 0;
  if (chunkSize > ps) {
    const alignUp = (a: number) => Math.ceil(a / chunkSize) * chunkSize;
    const alignedSrc = alignUp(areaSrc), alignedDst = alignUp(areaDst);
    if (alignedSrc !== areaSrc || alignedDst !== areaDst) {
      srcOffs = (alignedSrc - areaSrc) / ps;
      dstOffs = (alignedDst - areaDst) / ps;
      stepCount--;
    }
    areaSrc = alignedSrc;
    areaDst = alignedDst;
  }
  const report = await monitored(
    ctx,
    `move (${chunkSize}) on ${ctx.mem}`,
    {
      mode: "move",
      applyWp: false,
      areaSrc,
      areaDst,
      areaDstAlias: 0,
      pageSize: ps,
      nrPages,
      moveLen: chunkSize,
    },
    { address: dst.address, length: dst.length },
    () => {
      // The first touch of each chunk of area_dst is a missing fault: the monitor moves it.
      for (let nr = 0; nr < stepCount * stepSize; nr += stepSize) {
        for (let i = 0; i < stepSize; i++) {
          const count = ctx.count(src, srcOffs + nr + i);
          assert.equal(count, 1n, `nr ${nr + i} source memory invalid ${count} 1`);
        }
        for (let i = 0; i < stepSize; i++) {
          const count = ctx.count(dst, dstOffs + nr + i);
          assert.equal(count, 1n, `nr ${nr} memory corruption ${count} 1`);
        }
        // Re-check area_src content which should be empty.
        for (let i = 0; i < stepSize; i++) {
          const count = ctx.count(src, srcOffs + nr + i);
          assert.equal(count, 0n, `nr ${nr} move failed ${count} 1`);
        }
      }
    },
  );
  assert.deepEqual(
    [report.missingFaults, report.minorFaults],
    [stepCount, 0],
    `stats check error: ${report.missingFaults} moves for ${stepCount} steps`,
  );
}

unitTests("move", ["anon"], ["MOVE"], (ctx) => moveTest(ctx, ctx.pageSize), {
  postAlloc: preventHugepages,
});

unitTests(
  "move-pmd",
  ["anon"],
  ["MOVE"],
  (ctx) => {
    madvise(ctx.dst.address, ctx.dst.length, MADV_HUGEPAGE, "MADV_HUGEPAGE");
    return moveTest(ctx, pmdPageSize());
  },
  { postAlloc: requestHugepages },
);

unitTests(
  "move-pmd-split",
  ["anon"],
  ["MOVE"],
  (ctx) => {
    madvise(ctx.dst.address, ctx.dst.length, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
    return moveTest(ctx, pmdPageSize());
  },
  { postAlloc: requestHugepages },
);
