/**
 * AUX data decoded as it arrives: the Intel PT trace recorded on a Skylake
 * (tests/fixtures/perf-golden) and BTS records from the SDM layout, cut into
 * pieces of every size (1 byte, inside packets, at random) as a reader of a
 * live AUX area would get them, decode to exactly what the whole decodes to:
 * the same packets with the same full IPs at the same stream offsets, the
 * same branches. (PAD bytes are left out of the comparison: perf's listing
 * folds up to 8 zero bytes into the packet before them, which a cut splits.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { AuxStreamDecoder } from "../src/perf/aux_stream.ts";
import type { BranchEvent, PtPacketEvent } from "../src/perf/branch_events.ts";
import { encodeBts } from "../src/perf/bts.ts";
import { formatPtPacket } from "../src/perf/intel_pt/format.ts";
import { PtPacketDecoder } from "../src/perf/intel_pt/packets.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import { UmmuArgumentError } from "../src/errors.ts";

const GOLDEN = new URL("./fixtures/perf-golden/perf.data.intel_pt-4.14", import.meta.url)
  .pathname;

/** A small deterministic generator (the cuts must be the same on every run). */
function lcg(seed: number) {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function cut(data: Uint8Array, sizes: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 0; p < data.length;) {
    const n = Math.min(data.length - p, Math.max(1, sizes()));
    out.push(data.slice(p, p + n));
    p += n;
  }
  return out;
}

function ptWhole(data: Uint8Array): string[] {
  const d = new PtPacketDecoder(data);
  const out: string[] = [];
  for (let p = d.next(); p !== undefined; p = d.next()) {
    if (p.kind !== "PAD") out.push(`${p.offset} ${formatPtPacket(p)} ${p.ip ?? "-"}`);
  }
  return out;
}

function ptPieces(pieces: Uint8Array[], perPush: () => number): string[] {
  const dec = new AuxStreamDecoder("pt");
  const out: string[] = [];
  let offset = 0;
  for (let i = 0; i < pieces.length;) {
    // One push may bring one piece or two (an area's read that wraps gives two chunks).
    const n = Math.min(pieces.length - i, perPush());
    const batch = pieces.slice(i, i + n);
    for (const e of dec.push(batch, offset) as PtPacketEvent[]) {
      if (e.packet.kind === "PAD") continue;
      out.push(`${e.streamOffset} ${formatPtPacket(e.packet)} ${e.packet.ip ?? "-"}`);
    }
    offset += batch.reduce((s, b) => s + b.length, 0);
    i += n;
  }
  assert.equal(dec.pending, 0, "nothing held back at the end of a whole trace");
  return out;
}

test(
  "Intel PT from real hardware in pieces of any size: the packets and full IPs of the whole",
  { skip: !existsSync(GOLDEN) && "no tests/fixtures/perf-golden/perf.data.intel_pt-4.14" },
  () => {
    const r = PerfDataReader.open(GOLDEN);
    const payloads: Uint8Array[] = [];
    for (const rec of r.records()) if (rec.kind === "auxtrace") payloads.push(rec.payload!);
    r.close();
    assert.equal(payloads.length, 2);
    for (const data of payloads) {
      const whole = ptWhole(data);
      assert.ok(whole.length > 1000);
      const rnd = lcg(data.length);
      for (
        const [name, sizes, perPush] of [
          ["1-byte pieces", () => 1, () => 1],
          ["3-byte pieces two at a time", () => 3, () => 2],
          [
            "random pieces up to 64 bytes",
            () => Math.floor(rnd() * 64),
            () => 1 + (rnd() < 0.3 ? 1 : 0),
          ],
          ["random pieces up to 4 KiB", () => Math.floor(rnd() * 4096), () => 1],
        ] as const
      ) {
        assert.deepEqual(ptPieces(cut(data, sizes), perPush), whole, name);
      }
    }
  },
);

test("BTS records in pieces cut inside records: the branches of the whole", () => {
  const branches = Array.from({ length: 300 }, (_, i) => ({
    from: 0x400000n + BigInt(i * 8),
    to: i % 17 === 0 ? 0n : 0x500000n + BigInt(i),
    predicted: i % 2 === 0,
  }));
  const data = encodeBts(branches);
  for (const size of [1, 5, 23, 24, 25, 100, 7200]) {
    const dec = new AuxStreamDecoder("bts");
    const got: BranchEvent[] = [];
    let offset = 0;
    for (const piece of cut(data, () => size)) {
      got.push(...(dec.push([piece], offset) as BranchEvent[]));
      offset += piece.length;
    }
    assert.equal(dec.pending, 0);
    assert.deepEqual(
      got.map((b) => [b.from, b.to, b.predicted, b.traceEnd, b.via]),
      branches.map((b) => [b.from, b.to, b.predicted, b.to === 0n, "bts"]),
      `pieces of ${size} bytes`,
    );
  }
  // A record cut at the end waits: 30 bytes give one branch and hold 6 back.
  const dec = new AuxStreamDecoder("bts");
  assert.equal(dec.push([data.subarray(0, 30)], 0).length, 1);
  assert.equal(dec.pending, 6);
  assert.equal(dec.push([data.subarray(30, 48)], 30).length, 1);
  assert.equal(dec.pending, 0);
  assert.throws(() => new AuxStreamDecoder("lbr" as never), UmmuArgumentError);
  assert.throws(() => dec.push([[1, 2] as never], 0), /pieces/);
  assert.throws(() => dec.push("x" as never, 0), /pieces/);
  assert.throws(() => dec.push([], -1), /offset/);
  assert.throws(() => dec.push([], 1.5), /offset/);
});
