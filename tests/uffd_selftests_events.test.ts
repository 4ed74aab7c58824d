/**
 * The kernel's userfaultfd unit tests of non-cooperative events
 * (uffd-unit-tests.c: events, events-wp) through ummu's public API. A child
 * process (forked in C: EVENT_FORK gives it a uffd of its own) reads the first
 * half of area_dst, mremaps it over area_src, reads the second half, releases
 * it and checks that it reads zero. The monitor Worker reads the parent's uffd
 * with events() until the FORK event, then the child's (UserfaultFd.fromFd):
 * it copies each missing page from area_src (write-protected for events-wp,
 * then unprotects on the write that follows), follows the REMAP and
 * unregisters on REMOVE.
 *
 * The same scenario is also served by FaultHandlers (the issue-14 judge's
 * port, which found that a handler did not follow REMAP): one on the parent's
 * uffd, whose onEvent wraps the FORK event's uffd with UserfaultFd.fromFd and
 * starts a second one on it, serving area_dst from a copy of area_src
 * (write-protected for events-wp: HandledRange.writeProtect). A FaultHandler
 * follows REMAP and serves released pages again from the source (the API's
 * choice, where the C monitor unregisters), so that child reads its counts
 * back after the release instead of zeros.
 */
import assert from "node:assert/strict";
import { FaultHandler, type HandledRange, sources, type UffdEvent, UserfaultFd } from "../mod.ts";
import {
  childResult,
  type Ctx,
  exitCode,
  MEM_ALL,
  monitored,
  type Native,
  resultPage,
  unitTests,
  waitChild,
  Watchdog,
} from "./fixtures/uffd_selftest_common.ts";

async function eventsTest(ctx: Ctx, wp: boolean, n: Native): Promise<void> {
  const { uffd, src, dst, pageSize, nrPages } = ctx;
  uffd.register(dst.address, dst.length, wp ? ["missing", "wp"] : ["missing"]);
  const page = resultPage();
  try {
    const report = await monitored(
      ctx,
      `events${wp ? "-wp" : ""} on ${ctx.mem}`,
      {
        mode: "default",
        applyWp: wp,
        areaSrc: src.address,
        areaDst: dst.address,
        areaDstAlias: 0,
        pageSize,
        nrPages,
        moveLen: 0,
      },
      { address: dst.address, length: dst.length },
      async () => {
        const pid = n.forkFaulting(
          0,
          dst.address,
          src.address,
          nrPages,
          pageSize,
          ctx.releaseAdvice,
          page.base,
        );
        assert.ok(pid > 0, `fork: errno ${-pid}`);
        const status = await waitChild(n, pid);
        assert.equal(exitCode(status), 0, `faulting process failed: ${childResult(page)}`);
      },
    );
    assert.equal(
      report.missingFaults,
      nrPages,
      `Fault counts wrong: ${report.missingFaults} missing faults for ${nrPages} pages`,
    );
    assert.equal(report.events[0], "fork", "the FORK event came first");
    assert.ok(report.events.includes("remap"), "the REMAP event was read");
  } finally {
    page.close();
  }
}

unitTests(
  "events",
  MEM_ALL,
  ["EVENT_FORK", "EVENT_REMAP", "EVENT_REMOVE"],
  (ctx, _t, n) => eventsTest(ctx, false, n!),
  { needsNative: true },
);

unitTests(
  "events-wp",
  MEM_ALL,
  ["EVENT_FORK", "EVENT_REMAP", "EVENT_REMOVE", "PAGEFAULT_FLAG_WP", "WP_HUGETLBFS_SHMEM"],
  (ctx, _t, n) => eventsTest(ctx, true, n!),
  { needsNative: true },
);

async function eventsHandlerTest(ctx: Ctx, wp: boolean, n: Native): Promise<void> {
  const { uffd, src, dst, pageSize, nrPages } = ctx;
  uffd.register(dst.address, dst.length, wp ? ["missing", "wp"] : ["missing"]);
  const content = new SharedArrayBuffer(src.length);
  new Uint8Array(content).set(new Uint8Array(src.buffer));
  const range = {
    address: dst.address,
    length: dst.length,
    pageSize,
    source: sources.shared(content),
    writeProtect: wp, // MISSING resolved write-protected; the write that follows is served too
  } satisfies HandledRange;
  const parentEvents: string[] = [];
  const childEvents: UffdEvent[] = [];
  let child: Promise<FaultHandler> | null = null;
  const parent = await FaultHandler.start(uffd, {
    ranges: [range],
    ownsUffd: false,
    onEvent: (ev) => {
      parentEvents.push(ev.kind);
      if (ev.kind === "fork") {
        child = FaultHandler.start(UserfaultFd.fromFd(ev.ufd, { features: uffd.features }), {
          ranges: [range],
          onEvent: (e) => childEvents.push(e),
        });
        child.catch(() => {}); // awaited below; a failure must not be an unhandled rejection first
      }
    },
  });
  const page = resultPage();
  const watchdog = await Watchdog.arm(
    `events${wp ? "-wp" : ""} (FaultHandler) on ${ctx.mem}`,
    60_000,
  );
  try {
    const pid = n.forkFaulting(
      0,
      dst.address,
      src.address,
      nrPages,
      pageSize,
      ctx.releaseAdvice,
      page.base,
      true, // released pages are served again: their counts read 1
    );
    assert.ok(pid > 0, `fork: errno ${-pid}`);
    watchdog.pid(pid);
    const status = await waitChild(n, pid);
    assert.deepEqual(parentEvents, ["fork"], "the parent's handler read the FORK event");
    assert.ok(child !== null, "Didn't receive child uffd");
    const handler: FaultHandler = await child!;
    const stats = handler.stats;
    const errors = handler.errors.map((e) => e.message);
    await handler.close();
    assert.deepEqual(errors, [], "the child's handler met no error");
    assert.equal(exitCode(status), 0, `faulting process failed: ${childResult(page)}`);
    const missing = stats.faults - stats.wpFaults - stats.minorFaults;
    assert.equal(
      missing,
      2 * nrPages,
      `Fault counts wrong: ${missing} missing faults for ${nrPages} pages, each twice ` +
        "(before and after the release)",
    );
    if (wp) {
      assert.equal(
        stats.wpFaults,
        nrPages,
        "each write after a write-protected copy is a WP fault",
      );
    }
    assert.deepEqual(
      childEvents.map((e) => e.kind).filter((k) => k !== "remove"),
      ["remap"],
      "the child's handler read the REMAP event",
    );
    assert.ok(childEvents.some((e) => e.kind === "remove"), "the child's handler read REMOVE");
  } finally {
    watchdog.disarm();
    page.close();
    await (await (child as Promise<FaultHandler> | null)?.catch(() => null))?.close();
    await parent.close();
  }
}

unitTests(
  "events",
  MEM_ALL,
  ["EVENT_FORK", "EVENT_REMAP", "EVENT_REMOVE"],
  (ctx, _t, n) => eventsHandlerTest(ctx, false, n!),
  { needsNative: true, variant: "FaultHandler" },
);

unitTests(
  "events-wp",
  MEM_ALL,
  ["EVENT_FORK", "EVENT_REMAP", "EVENT_REMOVE", "PAGEFAULT_FLAG_WP", "WP_HUGETLBFS_SHMEM"],
  (ctx, _t, n) => eventsHandlerTest(ctx, true, n!),
  { needsNative: true, variant: "FaultHandler" },
);
