/**
 * perf.data: the header features against `perf report --header-only`, the
 * writer read back by Debian's perf (`perf report -D` on every record, `perf
 * script` line for line equal to the original's), and hostile input
 * (truncations at every section, sizes of 0 or past the end, an attr size of
 * 0, a huge callchain nr, random byte flips): typed errors, never an engine
 * error, never a hang.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { perf, perfSkip } from "./fixtures/perf_dump.ts";
import { assertAgreesWithPerf } from "./fixtures/perf_compare.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import { PerfDataWriter } from "../src/perf/perf_data/writer.ts";
import { PerfDecodeError, RecordDecoder } from "../src/perf/record_decoder.ts";
import { UmmuArgumentError } from "../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "ummu-perf-data-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const WORKLOAD = ["sh", "-c", "ls -R /usr/lib >/dev/null 2>&1; sleep 0.01"];

let recorded: string | undefined;
/** One recording shared by the tests: cpu-clock and page-faults with callchains. */
function sample(): string {
  if (recorded) return recorded;
  recorded = join(dir, "sw.data");
  perf([
    "record",
    "-q",
    "-o",
    recorded,
    "-e",
    "cpu-clock/period=100000/,page-faults/period=10/",
    "-g",
    "--",
    ...WORKLOAD,
  ]);
  return recorded;
}

test("features agree with perf report --header-only", { skip: perfSkip }, () => {
  const f = sample();
  const text = perf(["report", "--header-only", "-i", f]).stdout;
  const field = (name: string) => new RegExp(`^# ${name}\\s*: (.*)$`, "m").exec(text)?.[1].trim();
  const r = PerfDataReader.open(f);
  const ft = r.features;
  assert.equal(ft.hostname, field("hostname"));
  assert.equal(ft.osrelease, field("os release"));
  assert.equal(ft.version, field("perf version"));
  assert.equal(ft.arch, field("arch"));
  assert.equal(String(ft.nrcpus?.online), field("nrcpus online"));
  assert.equal(String(ft.nrcpus?.available), field("nrcpus avail"));
  assert.equal(ft.cpudesc, field("cpudesc"));
  assert.equal(ft.cpuid, field("cpuid"));
  assert.equal(`${ft.totalMem} kB`, field("total memory"));
  assert.equal(ft.cmdline?.join(" "), field("cmdline"));
  const events = [...text.matchAll(/^# event : name = ([^,]+), .*?id = \{ ([\d, ]+) \}/gm)];
  assert.deepEqual(
    r.attrs.map((a) => [a.name, a.ids.join(", ")]),
    events.map((m) => [m[1], m[2].trim()]),
  );
  const first = ft.sampleTime!.first; // perf prints seconds.microseconds, truncated
  const usec = String((first % 1_000_000_000n) / 1000n).padStart(6, "0");
  assert.equal(`${first / 1_000_000_000n}.${usec}`, field("time of first sample"));
  assert.ok(ft.cpuTopology && ft.cpuTopology.coreSiblings.length > 0, "cpu topology");
  r.close();
});

test("the writer: perf report -D and perf script read ummu's file as the original", {
  skip: perfSkip,
}, () => {
  const src = sample();
  const out = join(dir, "written.data");
  const bytes = new Uint8Array(readFileSync(src));
  const r = PerfDataReader.open(src);
  const w = PerfDataWriter.create(
    out,
    r.attrs.map((a) => ({ attr: { ...a.attr, size: undefined }, ids: a.ids, name: a.name! })),
  );
  let kernel = 0;
  for (const e of r.entries()) {
    if (e.record.type >= 64) continue; // perf's own records are the tool's, not captured ones
    w.writeRecord(bytes.subarray(e.offset, e.offset + e.record.size));
    kernel++;
  }
  w.close();
  r.close();
  assert.equal(w.records, kernel);
  const a = assertAgreesWithPerf(out);
  assert.equal(
    Object.values(a.perfCounts).reduce((x, y) => x + y, 0),
    kernel,
    "perf sees every record",
  );
  const fields = ["-F", "comm,pid,tid,time,event,ip,sym,period", "--ns"];
  const theirs = perf(["script", "-i", src, ...fields]).stdout;
  const ours = perf(["script", "-i", out, ...fields]).stdout;
  assert.ok(theirs.split("\n").length > 20);
  assert.equal(ours, theirs, "perf script prints the same for ummu's file");
  const header = perf(["report", "--header-only", "-i", out]).stdout;
  assert.match(header, /# event : name = cpu-clock\/period=100000\/,/);
  assert.match(header, /# event : name = page-faults\/period=10\/,/);
  assert.match(header, /# perf version : ummu/);
});

function expectTyped(what: string, fn: () => unknown): UmmuArgumentError | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof UmmuArgumentError, `${what}: ${e instanceof Error ? e.stack : e}`);
    return e;
  }
}

function readAll(path: string): number {
  const r = PerfDataReader.open(path);
  try {
    let n = 0;
    for (const _ of r.entries()) n++;
    return n;
  } finally {
    r.close();
  }
}

test("hostile perf.data: truncations, bad sizes, a huge callchain nr: typed errors", {
  skip: perfSkip,
}, () => {
  const good = new Uint8Array(readFileSync(sample()));
  const r = PerfDataReader.open(sample());
  const entries = [...r.entries()];
  const dataOffset = r.dataOffset, dataEnd = r.dataOffset + r.dataSize;
  r.close();
  const bad = join(dir, "bad.data");
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  // Truncated anywhere: in the header, the attrs, the data, the features.
  for (
    const cut of [
      0,
      7,
      16,
      60,
      103,
      200,
      dataOffset + 4,
      dataOffset + 100,
      dataEnd - 3,
      dataEnd + 10,
      good.length - 1,
    ]
  ) {
    writeFileSync(bad, good.subarray(0, cut));
    const e = expectTyped(`cut at ${cut}`, () => readAll(bad));
    assert.ok(e, `a file cut at ${cut} of ${good.length} is refused`);
  }
  // A record of size 0, and one past the data section.
  const firstSample = entries.find((e) => e.record.kind === "sample")!;
  for (const size of [0, 4, 0xfff8]) {
    const b = good.slice();
    dv(b).setUint16(firstSample.offset + 6, size, true);
    writeFileSync(bad, b);
    const e = expectTyped(`size ${size}`, () => readAll(bad));
    if (size < 8) assert.ok(e instanceof PerfDecodeError && e.field === "header.size", String(e));
    // A larger size desynchronises the walk: whatever follows is refused with a typed error.
  }
  // attr_size 0 in the file header.
  {
    const b = good.slice();
    dv(b).setBigUint64(16, 0n, true);
    writeFileSync(bad, b);
    assert.match(expectTyped("attr_size 0", () => readAll(bad))!.message, /attr_size 0/);
  }
  // A callchain nr of 2^60: the sample's callchain.nr is the word after IP|TID|TIME|ID.
  {
    const b = good.slice();
    dv(b).setBigUint64(firstSample.offset + 8 + 4 * 8, 1n << 60n, true);
    writeFileSync(bad, b);
    const e = expectTyped("callchain nr", () => readAll(bad));
    assert.ok(e instanceof PerfDecodeError, String(e));
    assert.equal(e.field, "callchain.nr");
    assert.equal(e.recordOffset, firstSample.offset);
    assert.match(
      e.message,
      /SAMPLE \(9\) at byte \d+ \(size \d+\): field callchain\.nr at record byte 40/,
    );
  }
  // A big-endian file.
  {
    const b = good.slice();
    b.set(new TextEncoder().encode("2ELIFREP"), 0);
    writeFileSync(bad, b);
    assert.match(expectTyped("big-endian", () => readAll(bad))!.message, /big-endian/);
  }
});

test("hostile records: random byte flips in the data section never escape as engine errors", {
  skip: perfSkip,
}, () => {
  const good = new Uint8Array(readFileSync(sample()));
  const r = PerfDataReader.open(sample());
  const start = r.dataOffset, len = Math.min(r.dataSize, 64 << 10);
  r.close();
  const bad = join(dir, "flip.data");
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  let refused = 0;
  for (let i = 0; i < 60; i++) {
    const b = good.slice();
    for (let k = 0; k < 20; k++) b[start + Math.floor(rand() * len)] = Math.floor(rand() * 256);
    writeFileSync(bad, b);
    if (expectTyped(`mutation ${i}`, () => readAll(bad))) refused++;
  }
  assert.ok(refused > 0, "some mutations are refused");
});

test("RecordDecoder: malformed input throws PerfDecodeError naming the field", () => {
  const d = new RecordDecoder({
    sampleType: 0x1 | 0x20, // IP | CALLCHAIN
    readFormat: 0,
    sampleIdAll: false,
    branchSampleType: 0,
    sampleRegsUser: 0n,
    sampleRegsIntr: 0n,
  });
  const rec = new Uint8Array(32);
  const v = new DataView(rec.buffer);
  v.setUint32(0, 9, true);
  v.setUint16(6, 32, true);
  v.setBigUint64(8, 0x1234n, true); // ip
  v.setBigUint64(16, 2n, true); // callchain nr 2: 16 bytes, only 8 left
  let e = expectTyped("nr 2", () => d.decode(rec));
  assert.ok(
    e instanceof PerfDecodeError && e.field === "callchain.nr" && e.fieldOffset === 16,
    String(e),
  );
  v.setBigUint64(16, 1n, true);
  v.setBigUint64(24, 0xffff_ffff_ffff_ff80n, true);
  const ok = d.decode(rec);
  assert.equal(ok.kind, "sample");
  assert.deepEqual(ok.kind === "sample" && [...ok.callchain!.ips], [0xffff_ffff_ffff_ff80n]);
  e = expectTyped("short buffer", () => d.decode(rec.subarray(0, 24)));
  assert.ok(e instanceof PerfDecodeError && /past the 24 bytes/.test(e.message), String(e));
  e = expectTyped("offset", () => d.decode(rec, 30));
  assert.ok(e instanceof PerfDecodeError, String(e));
  e = expectTyped("not bytes", () => d.decode("x" as unknown as Uint8Array));
  assert.ok(e && !(e instanceof PerfDecodeError), String(e));
  const empty = new Uint8Array(8);
  new DataView(empty.buffer).setUint32(0, 3, true); // COMM of size 0
  e = expectTyped("size 0", () => d.decode(empty));
  assert.ok(e instanceof PerfDecodeError && e.field === "header.size", String(e));
});

test("a THREAD_MAP whose size is not 16 + 24n: its threads are counted, not divided into a fraction", () => {
  const file = join(dir, "thread_map.data");
  const w = PerfDataWriter.create(file, [{ attr: { type: 1, config: 0n }, name: "cpu-clock" }]);
  // 16 + 24 + 8 bytes: room for one thread and 8 bytes more (a fuzzer's flip found nr checked
  // against (size - 16) / 24 = 1.33, which BigInt() refused with an engine RangeError).
  for (const nr of [1n, 2n]) {
    const rec = new Uint8Array(48);
    const dv = new DataView(rec.buffer);
    dv.setUint32(0, 73, true); // PERF_RECORD_THREAD_MAP
    dv.setUint16(6, 48, true);
    dv.setBigUint64(8, nr, true);
    dv.setBigUint64(16, 4242n, true);
    w.writeRecord(rec);
  }
  w.close();
  const r = PerfDataReader.open(file);
  const it = r.records();
  const first = it.next().value!;
  assert.equal(first.kind, "threadMap");
  assert.equal((first as { threads: { pid: bigint }[] }).threads[0].pid, 4242n);
  assert.throws(
    () => it.next(),
    (e) => e instanceof PerfDecodeError && /2 threads of 24 bytes/.test(e.message),
  );
  r.close();
});
