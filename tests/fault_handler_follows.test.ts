/**
 * A FaultHandler follows the address space it serves: a range moved by
 * mremap is served at its new address from the same source offsets, an
 * unmapped part is dropped, removed pages are served again; a fault where no
 * range is (hugetlb included) is answered at the memory's real page size and
 * reported. On every kind of memory. (The kernel's `events` selftest found
 * the remap case served as zero pages, and the hugetlb one killed the Worker.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FaultHandler,
  Mapping,
  type MappingKind,
  sources,
  type UffdEvent,
  UserfaultFd,
} from "../mod.ts";
import { libc } from "../src/libc.ts";
import { runtime } from "../ffi/platform.ts";
import * as mm from "../ffi/mman.ts";
import { PAGE, reserveHugePages, waitFor } from "./helpers.ts";

const HUGE = 2 << 20;
const FEATURES = {
  anonymous: [],
  memfd: ["MISSING_SHMEM"],
  hugetlb: ["MISSING_HUGETLBFS"],
} as const;

/** Memory of a kind, its handler serving `content` (page p filled with p+1), and its events. */
async function setUp(kind: MappingKind, pages: number) {
  const mem = Mapping.create(pages * (kind === "hugetlb" ? HUGE : PAGE), { kind });
  const ps = mem.pageSize;
  const content = new Uint8Array(mem.length);
  for (let p = 0; p < pages; p++) content.fill(p + 1, p * ps, (p + 1) * ps);
  const uffd = UserfaultFd.open({
    features: [...FEATURES[kind], "EVENT_REMAP", "EVENT_UNMAP", "EVENT_REMOVE"],
  });
  uffd.register(mem.address, mem.length);
  const events: UffdEvent[] = [];
  const handler = await FaultHandler.start(uffd, {
    ranges: [{ address: mem.address, length: mem.length, source: sources.bytes(content) }],
    onEvent: (e) => events.push(e),
  });
  return { mem, ps, handler, events };
}

/** A fresh address range of `len` bytes, reserved (PROT_NONE) so mremap can move onto it. */
function reserve(len: number, align: number): number {
  const raw = Number(
    libc.mmap(
      0,
      len + align,
      mm.PROT_NONE,
      mm.MAP_PRIVATE | mm.MAP_ANONYMOUS | mm.MAP_NORESERVE,
      -1,
      0,
    ),
  );
  const at = Math.ceil(raw / align) * align;
  if (at > raw) libc.munmap(raw, at - raw);
  if (raw + len + align > at + len) libc.munmap(at + len, raw + len + align - at - len);
  return at;
}

for (const kind of ["anonymous", "memfd", "hugetlb"] as MappingKind[]) {
  test(`${kind}: a range moved by mremap is served at its new address from the same source offsets`, async (t) => {
    const restore = kind === "hugetlb" ? reserveHugePages(8) : () => {};
    if (typeof restore === "string") return t.skip(restore);
    try {
      const { mem, ps, handler, events } = await setUp(kind, 4);
      const base = mem.base;
      const view = new Uint8Array(mem.buffer);
      assert.equal(view[0], 1, "page 0 served in place");
      // Move pages 2..3 to a new place: they were never touched, so they fault there.
      const to = reserve(2 * ps, ps);
      const moved = Number(
        libc.mremap(base + 2 * ps, 2 * ps, 2 * ps, mm.MREMAP_MAYMOVE | mm.MREMAP_FIXED, to),
      );
      assert.equal(moved, to);
      assert.ok(await waitFor(() => events.some((e) => e.kind === "remap")));
      const there = new Uint8Array(runtime.view(to, 2 * ps));
      assert.equal(there[0], 3, "old page 2 at its new address: the source's page 2, not zeros");
      assert.equal(there[ps + 5], 4, "old page 3");
      assert.equal(handler.stats.outside, 0, "no fault fell outside the handled ranges");
      assert.equal(handler.failed, false);
      assert.deepEqual(handler.errors, []);
      await handler.close();
      libc.munmap(to, 2 * ps);
      mem.close();
    } finally {
      restore();
    }
  });
}

test("UNMAP drops the unmapped part; REMOVE makes pages fault again and they are served again", async () => {
  const { mem, handler, events } = await setUp("anonymous", 8);
  const view = new Uint8Array(mem.buffer);
  assert.equal(view[3 * PAGE], 4);
  view[3 * PAGE] = 99;
  libc.madvise(mem.base + 3 * PAGE, PAGE, mm.MADV_DONTNEED);
  assert.equal(view[3 * PAGE], 4, "a removed page faults again and is served from its source");
  libc.munmap(mem.base + 6 * PAGE, 2 * PAGE);
  assert.ok(await waitFor(() => events.some((e) => e.kind === "unmap")));
  assert.equal(view[5 * PAGE], 6, "the rest of the range is still served");
  assert.equal(handler.stats.outside, 0);
  await handler.close();
  mem.close();
});

test("hugetlb: a fault outside every handled range is zero-filled at 2 MiB, reported, and the Worker lives", async (t) => {
  const restore = reserveHugePages(4);
  if (typeof restore === "string") return t.skip(restore);
  try {
    const mem = Mapping.create(2 * HUGE, { kind: "hugetlb" });
    const uffd = UserfaultFd.open({ features: ["MISSING_HUGETLBFS"] });
    uffd.register(mem.address, mem.length);
    const handler = await FaultHandler.start(uffd, {
      ranges: [{
        address: mem.address,
        length: HUGE,
        source: sources.bytes(new Uint8Array(HUGE).fill(7)),
      }],
    });
    const view = new Uint8Array(mem.buffer);
    assert.equal(view[HUGE + 12345], 0, "the second huge page is outside: zeros");
    assert.equal(view[100], 7, "the handled one is still served: the Worker lived");
    assert.equal(handler.stats.outside, 1);
    assert.equal(handler.failed, false);
    assert.ok(
      await waitFor(() =>
        handler.errors.some((e) => /outside every handled range/.test(e.message))
      ),
    );
    await handler.close();
    mem.close();
  } finally {
    restore();
  }
});
