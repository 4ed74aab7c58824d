/** Dirty tracking: WP_ASYNC write-protection, PAGEMAP_SCAN to read and reset the written set. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClosedError, DirtyTracker, Mapping } from "../mod.ts";
import { PAGE, touchFromWorker } from "./helpers.ts";

const pagesOf = (t: DirtyTracker, base: bigint) =>
  t.dirtyPages().map((a) => Number((a - base) / BigInt(PAGE)));

test("writes from any thread are tracked, with no fault served by anyone", async () => {
  const mem = Mapping.create(64 * PAGE);
  const v = new Uint8Array(mem.buffer);
  v[10 * PAGE] = 1; // populated before tracking starts: still counts as clean
  const t = DirtyTracker.start(mem.address, mem.length);
  assert.deepEqual(t.dirty(), [], "everything is clean at start");
  assert.equal(v[10 * PAGE], 1, "reads are not writes");
  v[3 * PAGE] = 1;
  v[4 * PAGE + 4095] = 1;
  await touchFromWorker([mem.base + 40 * PAGE], 7); // a Worker's write counts too
  assert.deepEqual(pagesOf(t, mem.address), [3, 4, 40]);
  assert.deepEqual(t.dirty(), [
    { start: mem.address + 3n * BigInt(PAGE), end: mem.address + 5n * BigInt(PAGE) },
    { start: mem.address + 40n * BigInt(PAGE), end: mem.address + 41n * BigInt(PAGE) },
  ], "runs are merged");
  t.close();
  mem.close();
});

test("dirtyAndReset returns the set and re-protects it in the same walk; reset() clears all", () => {
  const mem = Mapping.create(16 * PAGE);
  const v = new Uint8Array(mem.buffer);
  const t = DirtyTracker.start(mem.address, mem.length);
  v[1 * PAGE] = 1;
  v[2 * PAGE] = 1;
  assert.deepEqual(t.dirtyAndReset().length, 1);
  assert.deepEqual(t.dirty(), []);
  v[2 * PAGE] = 2; // written again after the reset: dirty again
  v[9 * PAGE] = 2;
  assert.deepEqual(pagesOf(t, mem.address), [2, 9]);
  t.reset();
  assert.deepEqual(t.dirty(), []);
  assert.deepEqual([v[1 * PAGE], v[2 * PAGE], v[9 * PAGE]], [1, 2, 2], "the data is untouched");
  t.close();
  t.close();
  assert.throws(() => t.dirty(), ClosedError);
  mem.close();
});

test("more written runs than one PAGEMAP_SCAN vector holds are all reported", () => {
  const mem = Mapping.create(1024 * PAGE);
  const v = new Uint8Array(mem.buffer);
  const t = DirtyTracker.start(mem.address, mem.length);
  for (let p = 0; p < 1024; p += 2) v[p * PAGE] = 1; // 512 separate runs, vector of 256
  const pages = pagesOf(t, mem.address);
  assert.equal(pages.length, 512);
  assert.deepEqual(pages.slice(0, 3), [0, 2, 4]);
  assert.equal(pages.at(-1), 1022);
  t.close();
  mem.close();
});
