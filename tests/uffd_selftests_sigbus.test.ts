/**
 * The kernel's userfaultfd unit tests that count SIGBUS (uffd-unit-tests.c:
 * sigbus, sigbus-wp, poison) through ummu's public API. A JS runtime cannot
 * survive a SIGBUS, so the touches that raise it are made by the C helper
 * (tests/fixtures/uffd_selftest_native.ts), which catches it as the C test's
 * sigsetjmp/siglongjmp does; every userfaultfd call is ummu's.
 */
import assert from "node:assert/strict";
import {
  childResult,
  type Ctx,
  exitCode,
  MEM_ALL,
  monitored,
  type MonitorOptions,
  type Native,
  resultPage,
  unitTests,
  waitChild,
} from "./fixtures/uffd_selftest_common.ts";

function monitorOptions(ctx: Ctx, applyWp: boolean, mode: MonitorOptions["mode"]): MonitorOptions {
  return {
    mode,
    applyWp,
    areaSrc: ctx.src.address,
    areaDst: ctx.dst.address,
    areaDstAlias: 0,
    pageSize: ctx.pageSize,
    nrPages: ctx.nrPages,
    moveLen: 0,
  };
}

/**
 * faulting_process(1, wp) on this thread: every touch of a missing (or
 * write-protected) page raises SIGBUS (UFFD_FEATURE_SIGBUS); the handler's
 * part resolves it with UFFDIO_COPY (or unprotects), and the touch is retried.
 */
function faultingProcessSignal(ctx: Ctx, wp: boolean, n: Native): void {
  const { uffd, src, dst, pageSize: ps } = ctx;
  const split = Math.floor((ctx.nrPages + 1) / 2);
  let signalled = 0;
  let lastnr = -1;
  for (let nr = 0; nr < split; nr++) {
    let steps = 1;
    const offset = nr * ps;
    const countAt = dst.address + offset + 40;
    for (;;) {
      const count = n.readU64(countAt);
      if (count !== null) {
        assert.equal(count, 1n, `nr ${nr} memory corruption ${count} 1`);
        // Trigger write protection if there is by writing the same value back.
        if (n.writeU64(countAt, count)) break;
      }
      // SIGBUS:
      assert.ok(!(steps === 1 && nr === lastnr), "Signal repeated");
      lastnr = nr;
      if (steps === 1) {
        // This is a MISSING request.
        steps++;
        if (uffd.copy(dst.address + offset, src.address + offset, ps, { wp }) === ps) signalled++;
      } else {
        // This is a WP request.
        assert.equal(steps, 2);
        uffd.writeProtect(dst.address + offset, ps, false);
      }
    }
  }
  assert.equal(
    signalled,
    split,
    `faulting process failed: ${signalled} of ${split} pages signalled`,
  );
}

async function sigbusTest(ctx: Ctx, wp: boolean, n: Native): Promise<void> {
  const { uffd, dst } = ctx;
  uffd.register(dst.address, dst.length, wp ? ["missing", "wp"] : ["missing"]);
  faultingProcessSignal(ctx, wp, n);
  ctx.releasePages(dst);
  // The robustness half: a forked child (EVENT_FORK: it gets its own uffd, which
  // the monitor reads from then on) touches the released area; each touch must
  // raise SIGBUS, and no userfault may reach the monitor.
  const page = resultPage();
  try {
    const report = await monitored(
      ctx,
      `sigbus${wp ? "-wp" : ""} on ${ctx.mem}`,
      monitorOptions(ctx, wp, "default"),
      { address: dst.address, length: dst.length },
      async () => {
        const pid = n.forkFaulting(
          2,
          dst.address,
          ctx.src.address,
          ctx.nrPages,
          ctx.pageSize,
          ctx.releaseAdvice,
          page.base,
        );
        assert.ok(pid > 0, `fork: errno ${-pid}`);
        const status = await waitChild(n, pid);
        assert.equal(exitCode(status), 0, `faulting process failed: ${childResult(page)}`);
      },
    );
    const userfaults = report.missingFaults + report.wpFaults + report.minorFaults;
    assert.equal(userfaults, 0, `Signal test failed, userfaults: ${userfaults}`);
    assert.deepEqual(report.events, ["fork"], "the monitor read the FORK event and nothing else");
  } finally {
    page.close();
  }
}

unitTests(
  "sigbus",
  MEM_ALL,
  ["SIGBUS", "EVENT_FORK"],
  (ctx, _t, n) => sigbusTest(ctx, false, n!),
  { needsNative: true },
);

unitTests(
  "sigbus-wp",
  MEM_ALL,
  ["SIGBUS", "EVENT_FORK", "PAGEFAULT_FLAG_WP", "WP_HUGETLBFS_SHMEM"],
  (ctx, _t, n) => sigbusTest(ctx, true, n!),
  { needsNative: true },
);

/** Make sure to cover odd/even, and minimum duplications. */
const UFFD_POISON_TEST_NPAGES = 4;

unitTests(
  "poison",
  MEM_ALL,
  ["POISON"],
  async (ctx, t, n) => {
    const { uffd, src, dst, pageSize: ps } = ctx;
    const poisonPages = UFFD_POISON_TEST_NPAGES;
    if (ctx.nrPages < poisonPages) return t.skip("Too less pages for POISON test");
    const ioctls = uffd.register(dst.address, poisonPages * ps, ["missing"]);
    assert.ok(
      ioctls.has("COPY") && ioctls.has("POISON"),
      "registered area doesn't support COPY and POISON ioctls",
    );
    new Uint8Array(src.buffer, 0, poisonPages * ps).fill(0);
    let nrSigbus = 0;
    await monitored(
      ctx,
      `poison on ${ctx.mem}`,
      monitorOptions(ctx, false, "poison"),
      { address: dst.address, length: poisonPages * ps },
      () => {
        for (let nr = 0; nr < poisonPages; nr++) {
          const at = n!.firstNonZero(dst.address + nr * ps, ps);
          if (at === "sigbus") nrSigbus++; // a poisoned page
          else {
            assert.equal(
              at,
              -1,
              `nonzero byte in area_dst (0x${dst.address.toString(16)}) at ` +
                `0x${(dst.address + nr * ps + at).toString(16)}`,
            );
          }
        }
      },
    );
    assert.equal(
      nrSigbus,
      poisonPages / 2,
      `expected to receive ${poisonPages / 2} SIGBUS, actually received ${nrSigbus}`,
    );
  },
  { needsNative: true },
);
