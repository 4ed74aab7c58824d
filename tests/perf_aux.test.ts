/**
 * The AUX area. No PMU here writes AUX data (intel_pt, intel_bts need the
 * hardware), so the live path is tested where it ends on this machine: the
 * kernel's own refusal to map an AUX area for a software event, after the
 * control page's aux_offset/aux_size were set (EOPNOTSUPP, not EINVAL: the
 * offset and size were right), with every fd and mapping released. The
 * stream arithmetic (which bytes of the area hold [tail, head)) is tested
 * as the pure function it is.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as pe from "../ffi/perf_event.ts";
import { auxChunks } from "../src/perf/aux_area.ts";
import { PerfEvent } from "../src/perf/event.ts";
import { UmmuArgumentError, UmmuError } from "../src/errors.ts";
import { owned, ownedBackTo, software } from "./fixtures/perf_common.ts";

test("auxChunks: the bytes of the area that hold [tail, head), wrapping and overrun", () => {
  assert.deepEqual(auxChunks(0, 0, 4096), []);
  assert.deepEqual(auxChunks(100, 100, 4096), []);
  assert.deepEqual(auxChunks(0, 100, 4096), [[0, 100]]);
  assert.deepEqual(auxChunks(4000, 4096, 4096), [[4000, 96]]);
  assert.deepEqual(auxChunks(4000, 4200, 4096), [[4000, 96], [0, 104]]);
  assert.deepEqual(auxChunks(8192 + 10, 8192 + 20, 4096), [[10, 10]]);
  // More than an area's worth behind: only the last area's bytes are there, oldest first.
  assert.deepEqual(auxChunks(0, 4096 * 3 + 5, 4096), [[5, 4091], [0, 5]]);
  assert.deepEqual(auxChunks(0, 4096, 4096), [[0, 4096]]);
  for (let tail = 0; tail < 300; tail += 7) {
    for (let len = 1; len <= 256; len += 13) {
      const chunks = auxChunks(tail, tail + len, 256);
      assert.equal(chunks.reduce((s, [, n]) => s + n, 0), Math.min(len, 256));
      for (const [start, n] of chunks) assert.ok(start >= 0 && start + n <= 256 && n > 0);
    }
  }
});

test("an AUX area for a PMU that writes none: the kernel's EOPNOTSUPP, named, nothing left", async () => {
  const before = owned();
  let err: unknown;
  try {
    PerfEvent.open(software(pe.PERF_COUNT_SW_DUMMY), { ring: { pages: 1, aux: { pages: 4 } } });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UmmuError, String(err));
  assert.equal((err as UmmuError).code, "EOPNOTSUPP", (err as Error).message);
  assert.match((err as Error).message, /mmap\(perf AUX area, 4 pages at offset 8192\)/);
  assert.match((err as Error).message, /intel_pt, intel_bts/);
  const after = await ownedBackTo(before);
  assert.deepEqual(after, before, "the event's fd and its ring mapping are gone");
});

test("ring.aux options are checked before anything is opened", () => {
  const before = owned();
  const open = (aux: unknown) =>
    PerfEvent.open(software(pe.PERF_COUNT_SW_DUMMY), { ring: { aux: aux as never } });
  assert.throws(
    () => open(null),
    (e) => e instanceof UmmuArgumentError && /ring\.aux/.test(e.message),
  );
  assert.throws(() => open({ pages: 3 }), /ring\.aux\.pages.*power of two/);
  assert.throws(() => open({ pages: 0 }), UmmuArgumentError);
  assert.throws(() => open({ snapshot: "yes" }), /ring\.aux\.snapshot/);
  assert.deepEqual(owned(), before);
});

test("a ring's AUX area can be mapped once, and a closed event's ring has none", () => {
  const ev = PerfEvent.open(software(pe.PERF_COUNT_SW_DUMMY), { ring: { pages: 1 } });
  try {
    assert.deepEqual(ev.auxAreas, []);
    assert.throws(
      () => ev.rings[0].mapAux(4, false),
      (e) => e instanceof UmmuError && e.code === "EOPNOTSUPP",
    );
    assert.equal(ev.rings[0].aux, null, "a failed map leaves no area");
    for (const pages of [3, 0, 1.5, "4" as never, 2 ** 21]) {
      assert.throws(() => ev.rings[0].mapAux(pages, false), UmmuArgumentError, String(pages));
    }
    assert.throws(() => ev.rings[0].mapAux(4, 1 as never), /snapshot/);
  } finally {
    ev.close();
  }
  assert.throws(
    () => ev.rings[0].mapAux(4, false),
    (e) => e instanceof UmmuError && e.code === "EINVAL",
  );
});
