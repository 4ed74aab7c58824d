/**
 * Intel BTS records: no recording from BTS hardware is public and no machine
 * here has BTS, so the records are laid out from the Intel SDM (24 bytes:
 * from, to, flags with bit 4 = predicted), written into a perf.data file as
 * perf record writes an intel_bts recording (AUXTRACE_INFO of type Intel BTS,
 * then AUXTRACE records carrying the AUX data), and judged by Debian's perf,
 * whose `perf report -D` dumps each BTS record as "from -> to pred|miss".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import process from "node:process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { perf, perfSkip, ummuPerf } from "./fixtures/perf_dump.ts";
import { BTS_RECORD_SIZE, btsBranches, decodeBts, encodeBts } from "../src/perf/bts.ts";
import { PerfDataWriter } from "../src/perf/perf_data/writer.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import * as f from "../src/perf/perf_data/format.ts";
import { UmmuArgumentError } from "../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "ummu-perf-bts-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

test("BTS records from the SDM layout: from, to, predicted bit 4, padding and trace begin/end", () => {
  const bytes = new Uint8Array(5 * BTS_RECORD_SIZE + 7);
  const dv = new DataView(bytes.buffer);
  const put = (i: number, from: bigint, to: bigint, flags: bigint) => {
    dv.setBigUint64(i * 24, from, true);
    dv.setBigUint64(i * 24 + 8, to, true);
    dv.setBigUint64(i * 24 + 16, flags, true);
  };
  put(0, 0x401000n, 0x402000n, 0x10n); // predicted
  put(1, 0x402010n, 0x401004n, 0n); // mispredicted
  put(2, 0n, 0n, 0n); // padding
  put(3, 0n, 0x401000n, 0x10n); // tracing began at 0x401000
  put(4, 0xffffffff81000000n, 0n, 0xefn); // every flag bit but 4: not predicted; tracing ended
  const got = btsBranches(bytes);
  assert.deepEqual(
    got.map((b) => [b.offset, b.from, b.to, b.predicted, b.mispred, b.traceBegin, b.traceEnd]),
    [
      [0, 0x401000n, 0x402000n, true, false, false, false],
      [24, 0x402010n, 0x401004n, false, true, false, false],
      [72, 0n, 0x401000n, true, false, true, false],
      [96, 0xffffffff81000000n, 0n, false, true, false, true],
    ],
  );
  // BTS has none of the LBR's extra fields: the same BranchEntry shape, zeroed.
  for (const b of got) {
    assert.equal(b.cycles, 0);
    assert.equal(b.inTx || b.abort, false);
    assert.equal(b.type | b.spec | b.newType | b.priv, 0);
  }
  let seen = 0;
  const summary = decodeBts(bytes, () => {
    seen++;
  });
  assert.deepEqual(summary, { branches: 4, padding: 1, trailingBytes: 7 });
  assert.equal(seen, 4);
  // Returning false stops.
  assert.equal(decodeBts(bytes, () => false).branches, 1);
  assert.throws(() => decodeBts([1, 2] as never, () => {}), UmmuArgumentError);
  assert.throws(() => decodeBts(bytes, null as never), UmmuArgumentError);
  assert.deepEqual(btsBranches(new Uint8Array(0)), []);
  assert.throws(() => encodeBts("x" as never), UmmuArgumentError);
  assert.throws(() => encodeBts([{ from: 1, to: 2n }] as never), /encodeBts branches\[0\]/);
  assert.throws(() => encodeBts([null] as never), UmmuArgumentError);
  const w = PerfDataWriter.create(join(dir, "bad-aux.data"), [{
    attr: { type: 1, config: 0n },
    name: "cpu-clock",
  }]);
  try {
    assert.throws(() => w.writeAuxtrace([1] as never), /writeAuxtrace: data/);
    assert.throws(
      () => w.writeAuxtrace(new Uint8Array(8), { offset: 5 as never }),
      /where\.offset/,
    );
    assert.throws(() => w.writeAuxtrace(new Uint8Array(8), { cpu: 1.5 }), /where\.cpu/);
    assert.throws(() => w.writeAuxtrace(new Uint8Array(8), null as never), /where/);
    assert.equal(w.records, 0, "nothing written by a refused call");
  } finally {
    w.close();
  }
});

test(
  "BTS data in a perf.data file: perf report -D dumps every record as ummu decodes it",
  { skip: perfSkip },
  () => {
    // 1000 branches over two AUX buffers (two cpus), addresses spread over user and kernel space.
    const branches = Array.from({ length: 1000 }, (_, i) => ({
      from: i % 7 === 0 ? 0xffffffff81000000n + BigInt(i * 16) : 0x400000n + BigInt(i * 40),
      to: i % 5 === 0 ? 0x7f0000001000n + BigInt(i) : 0x400100n + BigInt(i * 24),
      predicted: i % 3 !== 0,
    }));
    const aux = [encodeBts(branches.slice(0, 600)), encodeBts(branches.slice(600))];
    const file = join(dir, "bts.data");
    const w = PerfDataWriter.create(file, [{
      // The intel_bts PMU's attr as perf records it (the type is the PMU's dynamic number).
      attr: { type: 8, config: 0n, sampleType: 0, disabled: true, enableOnExec: true },
      name: "intel_bts//",
    }]);
    // AUXTRACE_INFO of type Intel BTS: pmu type, time shift/mult/zero, cap_user_time_zero, snapshot mode.
    const info = new Uint8Array(16 + 6 * 8);
    const dv = new DataView(info.buffer);
    dv.setUint32(0, f.PERF_RECORD_AUXTRACE_INFO, true);
    dv.setUint16(6, info.length, true);
    dv.setUint32(8, f.PERF_AUXTRACE_INTEL_BTS, true);
    dv.setBigUint64(16, 8n, true);
    w.writeRecord(info);
    aux.forEach((data, cpu) => w.writeAuxtrace(data, { idx: cpu, cpu, tid: 1234, reference: 1n }));
    w.close();

    const dump = perf(["report", "-D", "-i", file]).stdout;
    const theirs = [
      ...dump.matchAll(/^\.\s+([0-9a-f]{8}):\s+(?:[0-9a-f]{2} ){24}(\S+) -> (\S+) (pred|miss)$/gm),
    ]
      .map((m) => `${parseInt(m[1], 16)} 0x${m[2]} 0x${m[3]} ${m[4]}`);
    assert.equal(theirs.length, 1000, "perf dumped every BTS record");
    assert.equal((dump.match(/Intel BTS data: size (\d+) bytes/g) ?? []).length, 2);

    // ummu reads the AUXTRACE payloads back and decodes them.
    const mine: string[] = [];
    const r = PerfDataReader.open(file);
    let infoType = -1;
    for (const rec of r.records()) {
      if (rec.kind === "auxtraceInfo") infoType = rec.auxtraceType;
      if (rec.kind !== "auxtrace") continue;
      assert.equal(rec.payloadSize % 8n, 0n);
      decodeBts(rec.payload!, (b) => {
        mine.push(
          `${b.offset} 0x${b.from.toString(16)} 0x${b.to.toString(16)} ${
            b.predicted ? "pred" : "miss"
          }`,
        );
      });
    }
    r.close();
    assert.equal(infoType, f.PERF_AUXTRACE_INTEL_BTS);
    assert.deepEqual(mine, theirs);

    // `ummu perf decode` prints the same branches, one JSON line each.
    const cli = ummuPerf(["decode", "--hex", file]);
    assert.equal(cli.status, 0, cli.stderr);
    const lines = cli.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .filter((l) => l.kind === "btsBranch");
    assert.deepEqual(
      lines.map((l) => `${l.offset} ${l.from} ${l.to} ${l.predicted ? "pred" : "miss"}`),
      theirs,
    );
  },
);
