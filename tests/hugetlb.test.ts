/** hugetlb memory: MISSING faults served a whole huge page at a time. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { LazyMapping, Mapping, sources, UmmuError } from "../mod.ts";

const NR = "/proc/sys/vm/nr_hugepages";
const HUGE = 2 << 20;

/** Reserves `n` free 2 MiB pages if root; returns a restore function, or a reason it can't. */
function reserveHugePages(n: number): (() => void) | string {
  const free = Number(
    /HugePages_Free:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0,
  );
  if (free >= n) return () => {};
  if (process.getuid?.() !== 0) return `needs ${n} free huge pages (echo ${n} > ${NR}) or root`;
  const before = readFileSync(NR, "utf8").trim();
  writeFileSync(NR, String(Number(before) + n));
  return () => writeFileSync(NR, before);
}

test("hugetlb: a lazily filled huge-page mapping, one fault per 2 MiB page", async (t) => {
  const restore = reserveHugePages(4);
  if (typeof restore === "string") return t.skip(restore);
  try {
    const content = new Uint8Array(2 * HUGE);
    for (let i = 0; i < content.length; i += 4096) content[i] = (i >>> 12) & 0xff;
    const lazy = await LazyMapping.create(2 * HUGE, {
      kind: "hugetlb",
      source: sources.bytes(content),
    });
    assert.equal(lazy.mapping.pageSize, HUGE);
    const v = new Uint8Array(lazy.buffer);
    assert.equal(v[HUGE + 5 * 4096], (512 + 5) & 0xff);
    assert.equal(v[HUGE + 300 * 4096], (512 + 300) & 0xff, "the same huge page: no new fault");
    assert.deepEqual([lazy.stats.faults, lazy.stats.pages], [1, 1]);
    assert.equal(v[7 * 4096], 7);
    assert.equal(lazy.stats.pages, 2);
    await lazy.close();

    const zero = await LazyMapping.create(HUGE, { kind: "hugetlb", source: sources.zero() });
    assert.equal(
      new Uint8Array(zero.buffer)[12345],
      0,
      "zero huge pages are copied (there is no zero huge page)",
    );
    await zero.close();
  } finally {
    restore();
  }
});

test("hugetlb without huge pages: a clear error", {
  skip: process.getuid?.() !== 0 ? "needs root to set nr_hugepages" : false,
}, () => {
  const before = readFileSync(NR, "utf8").trim();
  writeFileSync(NR, "0");
  try {
    assert.throws(
      () => Mapping.create(HUGE, { kind: "hugetlb" }),
      (e: unknown) =>
        e instanceof UmmuError && e.code === "ENOMEM" && e.call === "mmap" &&
        /nr_hugepages/.test(e.hint),
    );
  } finally {
    writeFileSync(NR, before);
  }
});
