/**
 * The kernel's userfaultfd unit tests of write protection across fork and on
 * unpopulated memory (uffd-unit-tests.c: wp-fork, wp-fork-with-event,
 * wp-fork-pin, wp-fork-pin-with-event, wp-unpopulated) through ummu's public
 * API. The uffd-wp bit is read from /proc/self/pagemap; the child of
 * pagemap_test_fork() runs in C and reads its own. With EVENT_FORK the fork
 * waits until the FORK event is read: a FaultHandler reads it (ownsUffd:
 * false, so the test keeps its uffd) and the child's uffd is closed through
 * UserfaultFd.fromFd, as the C test closes it.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { FaultHandler, type UffdEvent, UserfaultFd } from "../mod.ts";
import * as mm from "../ffi/mman.ts";
import { libc } from "../src/libc.ts";
import {
  childResult,
  type Ctx,
  exitCode,
  gupTestSkip,
  madvise,
  MEM_ALL,
  type Native,
  pagemapEntry,
  PM_UFFD_WP,
  resultPage,
  sleep,
  unitTests,
  waitChild,
  Watchdog,
} from "./fixtures/uffd_selftest_common.ts";

/** pagemap_check_wp(). */
function checkWp(address: number, wp: boolean, when: string): void {
  const value = pagemapEntry(address);
  assert.equal(
    (value & PM_UFFD_WP) !== 0n,
    wp,
    `pagemap uffd-wp bit error: 0x${value.toString(16)} (${when})`,
  );
}

/**
 * pagemap_test_fork(): forks a child that checks the uffd-wp bit of its own
 * pagemap entry of area_dst: kept with EVENT_FORK, dropped without. Returns
 * the child's failure, or "" if it passed.
 */
async function pagemapTestFork(
  ctx: Ctx,
  withEvent: boolean,
  testPin: boolean,
  n: Native,
): Promise<string> {
  const { uffd, dst, pageSize } = ctx;
  const events: UffdEvent[] = [];
  // Prepare a thread to resolve EVENT_FORK.
  const handler = withEvent
    ? await FaultHandler.start(uffd, {
      ranges: [{ address: dst.address, length: dst.length, pageSize }],
      ownsUffd: false,
      onEvent: (ev) => events.push(ev),
    })
    : null;
  const page = resultPage();
  const watchdog = await Watchdog.arm(`pagemap_test_fork on ${ctx.mem}`, 60_000);
  try {
    const pid = n.forkPagemap(dst.address, withEvent, testPin, pageSize, page.base);
    assert.ok(pid > 0, `fork: errno ${-pid}`);
    watchdog.pid(pid);
    const status = await waitChild(n, pid);
    if (handler !== null) {
      for (let i = 0; i < 1000 && events.length === 0; i++) await sleep(10);
      await handler.close();
      assert.deepEqual(handler.errors, [], "the handler met no error");
      const fork = events.find((e) => e.kind === "fork");
      assert.ok(fork?.kind === "fork" && fork.ufd >= 0, "Didn't receive child uffd");
      UserfaultFd.fromFd(fork.ufd, { features: uffd.features }).close();
    }
    return exitCode(status) === 0 ? "" : childResult(page);
  } finally {
    watchdog.disarm();
    page.close();
    await handler?.close();
  }
}

async function wpForkTest(ctx: Ctx, withEvent: boolean, n: Native): Promise<void> {
  const { uffd, dst, pageSize } = ctx;
  const what = withEvent ? "missing" : "stall";
  uffd.register(dst.address, dst.length, ["wp"]);
  // Touch the page.
  new Uint8Array(dst.buffer)[0] = 1;
  uffd.writeProtect(dst.address, pageSize, true);
  checkWp(dst.address, true, "after UFFDIO_WRITEPROTECT");
  let failed = await pagemapTestFork(ctx, withEvent, false, n);
  assert.equal(failed, "", `Detected ${what} uffd-wp bit in child in present pte: ${failed}`);
  // Zap the page table to test the markers: PAGEOUT on private memory (may fail:
  // private hugetlb does not swap; ignored, as the C test does), DONTNEED on shared.
  if (ctx.shared) madvise(dst.address, pageSize, mm.MADV_DONTNEED, "MADV_DONTNEED");
  else libc.madvise(dst.address, pageSize, mm.MADV_PAGEOUT);
  // Uffd-wp should persist even swapped out.
  checkWp(dst.address, true, "after the zap");
  failed = await pagemapTestFork(ctx, withEvent, false, n);
  assert.equal(failed, "", `Detected ${what} uffd-wp bit in child in zapped pte: ${failed}`);
  // Unprotect; this tests swap pte modifications.
  uffd.writeProtect(dst.address, pageSize, false);
  checkWp(dst.address, false, "after unprotecting");
  // Fault in the page from disk.
  new Uint8Array(dst.buffer)[0] = 2;
  checkWp(dst.address, false, "after the write");
  uffd.unregister(dst.address, dst.length);
}

const WP_FEATURES = ["PAGEFAULT_FLAG_WP", "WP_HUGETLBFS_SHMEM"] as const;

unitTests("wp-fork", MEM_ALL, [...WP_FEATURES], (ctx, _t, n) => wpForkTest(ctx, false, n!), {
  needsNative: true,
});

unitTests(
  "wp-fork-with-event",
  MEM_ALL,
  // When set, child process should inherit uffd-wp bits.
  [...WP_FEATURES, "EVENT_FORK"],
  (ctx, _t, n) => wpForkTest(ctx, true, n!),
  { needsNative: true },
);

async function wpForkPinTest(
  ctx: Ctx,
  t: TestContext,
  withEvent: boolean,
  n: Native,
): Promise<void> {
  const { uffd, dst, pageSize } = ctx;
  const what = withEvent ? "missing" : "stall";
  uffd.register(dst.address, pageSize, ["wp"]);
  // Touch the page.
  new Uint8Array(dst.buffer)[0] = 1;
  uffd.writeProtect(dst.address, pageSize, true);
  // 1. First pin, then fork(). This tests fork() special path when doing early CoW if the page is private.
  const pin = n.pin(dst.address, pageSize);
  if (pin < 0) {
    uffd.unregister(dst.address, pageSize);
    return t.skip(`Possibly CONFIG_GUP_TEST missing or unprivileged (errno ${-pin})`);
  }
  let failed: string;
  try {
    failed = await pagemapTestFork(ctx, withEvent, false, n);
  } finally {
    assert.equal(n.unpin(pin), 0, "PIN_LONGTERM_TEST_STOP");
  }
  assert.equal(failed, "", `Detected ${what} uffd-wp bit in early CoW of fork(): ${failed}`);
  // 2. First fork(), then pin (in the child). This tests COR, aka, page unsharing on private memories.
  failed = await pagemapTestFork(ctx, withEvent, true, n);
  assert.equal(failed, "", `Detected ${what} uffd-wp bit when RO pin: ${failed}`);
  uffd.unregister(dst.address, pageSize);
}

unitTests(
  "wp-fork-pin",
  MEM_ALL,
  [...WP_FEATURES],
  (ctx, t, n) => wpForkPinTest(ctx, t, false, n!),
  { needsNative: true, skip: gupTestSkip },
);

unitTests(
  "wp-fork-pin-with-event",
  MEM_ALL,
  [...WP_FEATURES, "EVENT_FORK"],
  (ctx, t, n) => wpForkPinTest(ctx, t, true, n!),
  { needsNative: true, skip: gupTestSkip },
);

unitTests("wp-unpopulated", ["anon"], ["PAGEFAULT_FLAG_WP", "WP_UNPOPULATED"], (ctx) => {
  const { uffd, dst, pageSize } = ctx;
  const at = dst.address;
  const bytes = new Uint8Array(dst.buffer);
  uffd.register(at, dst.length, ["wp"]);
  // Test applying pte marker to anon unpopulated.
  uffd.writeProtect(at, pageSize, true);
  checkWp(at, true, "marker on an unpopulated page");
  // Test unprotect on anon pte marker.
  uffd.writeProtect(at, pageSize, false);
  checkWp(at, false, "marker removed");
  // Test zap on anon marker.
  uffd.writeProtect(at, pageSize, true);
  madvise(at, pageSize, mm.MADV_DONTNEED, "MADV_DONTNEED");
  checkWp(at, false, "marker zapped");
  // Test fault in after marker removed.
  bytes[0] = 1;
  checkWp(at, false, "faulted in after the marker was removed");
  // Drop it to make pte none again.
  madvise(at, pageSize, mm.MADV_DONTNEED, "MADV_DONTNEED");
  // Test read-zero-page upon pte marker.
  uffd.writeProtect(at, pageSize, true);
  assert.equal(bytes[0], 0, "a read of a protected unpopulated page is the zero page");
  // Drop it to make pte none again.
  madvise(at, pageSize, mm.MADV_DONTNEED, "MADV_DONTNEED");
});
