/**
 * The perf ring on the real kernel. Records come from watchpoints on words
 * this thread writes: each write makes exactly one record, of a size the
 * test chooses (the sample type of the event watching that word), so the
 * sequence the ring must deliver is known record by record.
 *
 * - Wrap-around at every offset: one data page, filled many times over with
 *   16-, 24- and 40-byte records in a pseudo-random order, drained after a
 *   few records each time: every record well-formed and in order, none lost,
 *   and every 8-byte offset of the page a record start at least once.
 * - Too slow a reader: the kernel drops records and says how many (a LOST
 *   record, written before the next record that fits).
 * - The overwrite ring (flight recorder): the newest records, newest first,
 *   nothing lost to a slow reader, and output resumes after a snapshot.
 */
import { test } from "node:test";
import process from "node:process";
import assert from "node:assert/strict";
import * as pe from "../ffi/perf_event.ts";
import { runtime } from "../ffi/platform.ts";
import { PAGE_SIZE } from "../src/libc.ts";
import { PerfEvent } from "../src/perf/event.ts";
import type { PerfEventAttr } from "../src/perf/attr.ts";
import type { SampleRecord } from "../src/perf/records.ts";
import { decoderFor, owned, ownedBackTo } from "./fixtures/perf_common.ts";

function watchWord(address: number, sampleType: number, extra: PerfEventAttr = {}): PerfEventAttr {
  return {
    type: pe.PERF_TYPE_BREAKPOINT,
    bpType: pe.HW_BREAKPOINT_W,
    bpAddr: BigInt(address),
    bpLen: 4n,
    samplePeriod: 1n,
    sampleType,
    ...extra,
  };
}

/** A tiny deterministic generator (the sequence is the same on every run). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
}

/** Word index -> the record size its watchpoint writes (header included). */
const WORDS = [
  { index: 0, sampleType: pe.PERF_SAMPLE_IP, size: 16 },
  { index: 2, sampleType: pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID, size: 24 },
  {
    index: 4,
    sampleType: pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_TIME |
      pe.PERF_SAMPLE_ADDR,
    size: 40,
  },
];

/** Three watchpoints on three words of one SAB, sharing the leader's ring of `pages` data pages. */
function openWatchGroup(pages: number) {
  const sab = new SharedArrayBuffer(64);
  const words = new Int32Array(sab);
  const address = runtime.addressOf(new Uint8Array(sab));
  const leader = PerfEvent.open(watchWord(address + WORDS[0].index * 4, WORDS[0].sampleType), {
    ring: { pages },
  });
  const members = WORDS.slice(1).map((w) =>
    PerfEvent.open(watchWord(address + w.index * 4, w.sampleType), { group: leader })
  );
  return { leader, members, words, address };
}

test("wrap-around at every offset: one data page filled many times, records of 16, 24 and 40 bytes", async () => {
  const before = owned();
  const { leader, members, words, address } = openWatchGroup(1);
  const ring = leader.rings[0];
  assert.equal(ring.dataSize, PAGE_SIZE, "one data page");
  const decoders = [leader, ...members].map((e) => decoderFor(e));
  const next = lcg(12345);
  const expected: number[] = []; // word slot (0..2) of each write, in order
  let got = 0;
  let pos = 0; // bytes consumed since the ring was mapped (data_tail starts at 0)
  let wrapped = 0;
  let lastTime = 0n;
  const starts = new Set<number>();
  const drain = () =>
    ring.drain((bytes, offset, size) => {
      const start = pos % PAGE_SIZE;
      starts.add(start);
      if (bytes.byteLength === PAGE_SIZE) {
        assert.equal(offset, start, "an unwrapped record is read in place, at the tail");
      } else {
        assert.ok(start + size > PAGE_SIZE, "only a record that wraps is copied");
        assert.equal(offset, 0);
        wrapped++;
      }
      const slot = expected[got];
      assert.ok(slot !== undefined, `record #${got}: more records than writes`);
      const w = WORDS[slot];
      assert.equal(size, w.size, `record #${got} (word ${w.index}) size`);
      const r = decoders[slot].decode(bytes, offset) as SampleRecord;
      assert.equal(r.kind, "sample", `record #${got}`);
      assert.ok(r.ip !== undefined && r.ip > 0n);
      if (slot >= 1) assert.equal(r.pid, process.pid);
      if (slot === 2) {
        assert.equal(r.addr, BigInt(address + w.index * 4));
        assert.ok(r.time! >= lastTime, "time never goes back");
        lastTime = r.time!;
      }
      got++;
      pos += size;
    });
  try {
    leader.enable(true);
    for (let round = 0; round < 800; round++) {
      const writes = 1 + (next() % 12); // at most 12 x 40 bytes between drains: never full
      for (let i = 0; i < writes; i++) {
        const slot = next() % 3;
        expected.push(slot);
        Atomics.store(words, WORDS[slot].index, i);
      }
      drain();
      assert.equal(got, expected.length, `round ${round}: every record delivered`);
    }
    leader.disable(true);
    assert.equal(leader.lost, 0, "drained in time: nothing lost");
    assert.ok(pos > 20 * PAGE_SIZE, `the page was filled ${Math.floor(pos / PAGE_SIZE)} times`);
    assert.ok(wrapped > 20, `${wrapped} records wrapped around the end`);
    const missing = [];
    for (let o = 0; o < PAGE_SIZE; o += 8) if (!starts.has(o)) missing.push(o);
    assert.deepEqual(missing, [], "every 8-byte offset of the page started a record");
    assert.equal(starts.size, PAGE_SIZE / 8);
  } finally {
    // Members first: this test is about the ring (a leader's close() of its group is
    // perf_event.test.ts's "a counting group").
    for (const m of members) await m.close();
    await leader.close();
  }
  assert.deepEqual(await ownedBackTo(before), before);
});

test("a reader too slow: the kernel drops records and a LOST record says how many", async () => {
  const sab = new SharedArrayBuffer(16);
  const words = new Int32Array(sab);
  const address = runtime.addressOf(new Uint8Array(sab));
  const ev = PerfEvent.open(watchWord(address, WORDS[2].sampleType), { ring: { pages: 1 } });
  const decoder = decoderFor(ev);
  try {
    ev.enable();
    const WRITES = 500; // 500 x 40 bytes: five pages' worth into one
    for (let i = 0; i < WRITES; i++) Atomics.store(words, 0, i);
    ev.disable();
    let samples = 0, lostRecords = 0, lostInRecords = 0n;
    const drain = () =>
      ev.drain((bytes, offset) => {
        const r = decoder.decode(bytes, offset);
        if (r.kind === "sample") samples++;
        else if (r.kind === "lost") {
          lostRecords++;
          lostInRecords += r.lost;
        }
      });
    drain();
    const delivered = samples;
    assert.ok(delivered > 0 && delivered < WRITES, `${delivered} of ${WRITES} fit`);
    // The kernel writes the LOST record before the next record that fits: one more write.
    ev.enable();
    Atomics.store(words, 0, 1);
    ev.disable();
    drain();
    assert.equal(samples, delivered + 1, "after the drain, output goes on");
    assert.equal(lostRecords, 1, "one LOST record");
    assert.equal(Number(lostInRecords), WRITES - delivered, "it counts every dropped write");
    assert.equal(ev.lost, WRITES - delivered, "PerfEvent.lost sums the LOST records");
  } finally {
    await ev.close();
  }
});

test("overwrite ring: the newest records, newest first; nothing lost to slowness; output resumes", async () => {
  const before = owned();
  const sab = new SharedArrayBuffer(16);
  const words = new Int32Array(sab);
  const address = runtime.addressOf(new Uint8Array(sab));
  // PERF_SAMPLE_READ: each sample carries the count at that write (1, 2, 3...): its identity.
  const ev = PerfEvent.open(watchWord(address, pe.PERF_SAMPLE_READ), {
    ring: { pages: 1, overwrite: true },
  });
  const decoder = decoderFor(ev);
  const snapshotCounts = () => {
    const counts: bigint[] = [];
    ev.snapshot((bytes, offset) => {
      const r = decoder.decode(bytes, offset) as SampleRecord;
      assert.equal(r.kind, "sample");
      counts.push(r.read!.counters[0].value);
    });
    return counts;
  };
  try {
    assert.equal(ev.attr.writeBackward, true);
    assert.deepEqual(snapshotCounts(), [], "nothing written yet");
    ev.enable();
    for (let i = 0; i < 1000; i++) Atomics.store(words, 0, i); // ~25 ring-fulls
    const first = snapshotCounts();
    // Record: 8 header + the read_format's words (value, enabled, running, id, and lost on
    // Linux 6.0+: the default) = 40 or 48 bytes; a page holds 85 to 102 of them.
    const recordSize = 8 +
      8 *
        (1 +
          [
            pe.PERF_FORMAT_TOTAL_TIME_ENABLED,
            pe.PERF_FORMAT_TOTAL_TIME_RUNNING,
            pe.PERF_FORMAT_ID,
            pe.PERF_FORMAT_LOST,
          ].filter((b) => (ev.attr.readFormat ?? 0) & b).length);
    const fit = Math.floor(PAGE_SIZE / recordSize);
    assert.ok(
      first.length >= fit - 12 && first.length <= fit,
      `${first.length} records of ${recordSize} bytes`,
    );
    assert.equal(first[0], 1000n, "the newest first");
    first.forEach((c, i) => assert.equal(c, 1000n - BigInt(i), `record ${i}: consecutive`));
    assert.equal(ev.lost, 0, "a flight recorder loses nothing to the reader");
    for (let i = 0; i < 10; i++) Atomics.store(words, 0, i); // output resumed after the snapshot
    ev.disable();
    const second = snapshotCounts();
    assert.equal(second[0], 1010n, "records written after the snapshot");
    second.forEach((c, i) => assert.equal(c, 1010n - BigInt(i)));
    assert.equal(second.length, first.length);
    assert.throws(() => ev.drain(() => {}), /snapshot/, "an overwrite ring is not drained");
  } finally {
    await ev.close();
  }
  assert.deepEqual(await ownedBackTo(before), before);
});
