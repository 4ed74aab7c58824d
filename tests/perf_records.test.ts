/**
 * The record decoder against Debian's perf: files recorded here by `perf
 * record` (software events with callchains and data addresses, context
 * switches, fork/exec/exit of a spawned command, a tracepoint, pipe mode) and
 * the recordings from real hardware in tests/fixtures/perf-golden (LBR and AMD
 * branch stacks, Intel PT AUX records), each read by ummu and compared with
 * `perf report -D` on every record (see tests/fixtures/perf_compare.ts for
 * the fields compared). The reused (hot-path) mode is checked against the
 * fresh mode on every record of the same files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { perf, perfSkip } from "./fixtures/perf_dump.ts";
import { assertAgreesWithPerf } from "./fixtures/perf_compare.ts";
import { ensureTracefs } from "./tracefs_mount.ts";
import { assertReusedMatchesFresh } from "./fixtures/perf_reused.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import type { PerfRecord } from "../src/perf/records.ts";

const dir = mkdtempSync(join(tmpdir(), "ummu-perf-records-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

/** A command that forks, execs, faults pages, sleeps (switches) and exits. */
const WORKLOAD = [
  "sh",
  "-c",
  "ls -R /usr/lib >/dev/null 2>&1; sleep 0.02; cat /proc/self/maps >/dev/null",
];

function record(name: string, args: string[]): string {
  const out = join(dir, name);
  perf(["record", "-q", "-o", out, ...args, "--", ...WORKLOAD]);
  return out;
}

const GOLDEN = new URL("./fixtures/perf-golden/", import.meta.url).pathname;
const goldenSkip = existsSync(GOLDEN + "perf.data.branch-4.14")
  ? perfSkip
  : `no ${GOLDEN} (the recordings from real hardware live beside the repo)`;

function kinds(path: string): Record<string, number> {
  const r = PerfDataReader.open(path);
  const out: Record<string, number> = {};
  for (const rec of r.records()) out[rec.kind] = (out[rec.kind] ?? 0) + 1;
  r.close();
  return out;
}

test("software events with -g: every record and callchain agrees with perf report -D", {
  skip: perfSkip,
}, () => {
  const f = record("sw.data", [
    "-e",
    "cpu-clock/period=200000/,page-faults/period=20/,context-switches/period=1/",
    "-g",
  ]);
  const a = assertAgreesWithPerf(f);
  assert.ok(a.samples > 10, `samples: ${a.samples}`);
  assert.ok(a.callchainFrames > a.samples, `callchain frames: ${a.callchainFrames}`);
  const k = kinds(f);
  for (const kind of ["sample", "mmap2", "comm", "fork", "exit"]) {
    assert.ok(k[kind] > 0, `${kind} records: ${JSON.stringify(k)}`);
  }
  // The three events are told apart by id: each has samples.
  const per = new Map<number, number>();
  for (const e of a.entries) {
    if (e.record.kind === "sample") per.set(e.attrIndex, (per.get(e.attrIndex) ?? 0) + 1);
  }
  assert.deepEqual(
    [...per.keys()].sort(),
    [0, 1, 2],
    `samples per attr: ${JSON.stringify([...per])}`,
  );
  // A kernel callchain splits into kernel and user segments at perf's markers.
  const withUser = a.entries.find((e) =>
    e.record.kind === "sample" && e.record.callchain?.segments.some((s) => s.context === "user") &&
    e.record.callchain.segments.some((s) => s.context === "kernel")
  );
  assert.ok(withUser, "a sample with kernel and user frames");
  assert.ok(assertReusedMatchesFresh(f) > 10);
});

test(
  "--data: page fault addresses agree with perf report -D and perf script",
  { skip: perfSkip },
  () => {
    const f = record("data.data", ["-d", "-e", "page-faults", "-c", "1"]);
    const a = assertAgreesWithPerf(f);
    const samples = a.entries.filter((e) => e.record.kind === "sample").map((e) =>
      e.record as PerfRecord & { kind: "sample" }
    );
    assert.ok(samples.length > 50, `samples: ${samples.length}`);
    assert.ok(samples.every((s) => s.addr !== undefined), "every sample has addr");
    assert.ok(samples.some((s) => s.addr !== 0n), "some addresses are non-zero");
    // perf script, in its own (time) order: the same addresses, ips, pids and times.
    const script = perf(["script", "-i", f, "-F", "pid,tid,time,ip,addr,period", "--ns"]).stdout
      .trim().split("\n");
    const mine = [...samples].sort((x, y) => Number(x.time! - y.time!));
    assert.equal(script.length, mine.length, "sample count vs perf script");
    script.forEach((line, i) => {
      const m = /^\s*(\d+)\/(\d+)\s+(\d+)\.(\d+):\s+(\d+)\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(line);
      assert.ok(m, `unparsed perf script line: ${line}`);
      const s = mine[i];
      assert.deepEqual(
        [
          Number(m[1]),
          Number(m[2]),
          BigInt(m[3] + m[4]),
          BigInt(m[5]),
          BigInt("0x" + m[6]),
          BigInt("0x" + m[7]),
        ],
        [s.pid, s.tid, s.time, s.period ?? 1n, s.addr, s.ip], // -c 1: no PERIOD in the samples
        `perf script line ${i}: ${line}`,
      );
    });
    assertReusedMatchesFresh(f);
  },
);

test(
  "-e dummy --switch-events: SWITCH records agree with perf report -D",
  { skip: perfSkip },
  () => {
    const f = record("switch.data", ["-e", "dummy", "--switch-events"]);
    const a = assertAgreesWithPerf(f);
    const switches = a.entries.filter((e) => e.record.kind === "switch");
    assert.ok(switches.length >= 2, `switch records: ${switches.length}`);
    assert.ok(switches.some((e) => e.record.kind === "switch" && e.record.out), "a switch out");
    assert.ok(switches.some((e) => e.record.kind === "switch" && !e.record.out), "a switch in");
    assertReusedMatchesFresh(f);
  },
);

test("fork, exec and exit of a spawned command: COMM exec, FORK, EXIT, MMAP2 agree", {
  skip: perfSkip,
}, () => {
  const f = record("task.data", ["-e", "task-clock", "-c", "100000"]);
  assertAgreesWithPerf(f);
  const r = PerfDataReader.open(f);
  const recs = [...r.records()];
  r.close();
  assert.ok(recs.some((x) => x.kind === "comm" && x.exec && x.comm === "ls"), "COMM exec of ls");
  assert.ok(recs.some((x) => x.kind === "fork"), "FORK");
  assert.ok(recs.some((x) => x.kind === "exit"), "EXIT");
  assert.ok(recs.some((x) => x.kind === "mmap2" && x.filename.includes("libc")), "MMAP2 of libc");
});

const tracefsRoot = perfSkip ? { skip: perfSkip } : ensureTracefs();
const tracefs = typeof tracefsRoot === "string" ? {} : tracefsRoot;
test("a tracepoint (sched:sched_process_exec): raw data with the exec'd file name", tracefs, () => {
  const f = record("tp.data", ["-e", "sched:sched_process_exec", "-c", "1"]);
  const a = assertAgreesWithPerf(f);
  const r = PerfDataReader.open(f);
  assert.ok(r.features.tracingData && r.features.tracingData.length > 0, "HEADER_TRACING_DATA");
  r.close();
  // perf script prints in time order; the file holds per-CPU buffers one after another.
  const samples = a.entries.filter((e) => e.record.kind === "sample")
    .sort((x, y) =>
      Number(
        ((x.record as { time?: bigint }).time ?? 0n) - ((y.record as { time?: bigint }).time ?? 0n),
      )
    );
  const script = perf(["script", "-i", f, "-F", "trace"]).stdout.trim().split("\n");
  assert.equal(samples.length, script.length);
  const text = new TextDecoder();
  for (const [i, e] of samples.entries()) {
    const raw = (e.record as { raw?: Uint8Array }).raw;
    assert.ok(raw && raw.length > 8, "raw data");
    const m = /filename=(\S+)/.exec(script[i]);
    assert.ok(m, script[i]);
    assert.ok(text.decode(raw).includes(m[1]), `raw data holds ${m[1]}`);
  }
});

test(
  "pipe mode (perf record -o -): every record agrees with perf report -D",
  { skip: perfSkip },
  () => {
    const out = perf([
      "record",
      "-q",
      "-o",
      "-",
      "-e",
      "cpu-clock",
      "-g",
      "-c",
      "5000",
      "--",
      ...WORKLOAD,
    ]);
    const f = join(dir, "pipe.data");
    writeFileSync(f, out.raw);
    const a = assertAgreesWithPerf(f);
    assert.ok(a.samples > 0);
    assert.ok((a.perfCounts.FEATURE ?? 0) > 5, `FEATURE records: ${JSON.stringify(a.perfCounts)}`);
    const r = PerfDataReader.open(f);
    assert.equal(r.mode, "pipe");
    for (const _ of r.records()) { /* attrs and features arrive as records */ }
    assert.equal(r.attrs.length, 1);
    assert.equal(r.attrs[0].name, "cpu-clock");
    assert.ok(r.features.hostname, "hostname from a HEADER_FEATURE record");
    r.close();
  },
);

test("golden LBR branch stacks (Skylake): every record and branch entry agrees with perf", {
  skip: goldenSkip,
}, () => {
  const f = GOLDEN + "perf.data.branch-4.14";
  const a = assertAgreesWithPerf(f);
  assert.equal(a.samples, 13);
  assert.equal(a.branchEntries, 13 * 32);
  assertBrstackAgrees(f, a.entries);
  assertReusedMatchesFresh(f);
});

test("golden AMD branch stacks with speculation bits: every branch entry agrees with perf", {
  skip: goldenSkip,
}, () => {
  const f = GOLDEN + "perf.data.branch_stack_spec";
  const a = assertAgreesWithPerf(f);
  assert.equal(a.samples, 8);
  assert.equal(a.branchEntries, 8 * 16);
  assertBrstackAgrees(f, a.entries);
  assertReusedMatchesFresh(f);
});

test(
  "golden Intel PT: AUXTRACE_INFO, AUXTRACE with payload, AUX, ITRACE_START, SWITCH_CPU_WIDE agree",
  { skip: goldenSkip },
  () => {
    const f = GOLDEN + "perf.data.intel_pt-4.14";
    const a = assertAgreesWithPerf(f);
    assert.equal(a.perfCounts.AUX, 10);
    assert.equal(a.perfCounts.SWITCH_CPU_WIDE, 152);
    const aux = a.entries.filter((e) => e.record.kind === "auxtrace");
    assert.equal(aux.length, 2);
    for (const e of aux) {
      const r = e.record as { payloadSize: bigint; payload?: Uint8Array; payloadOffset: number };
      assert.equal(BigInt(r.payload!.length), r.payloadSize, "the payload is kept whole");
      assert.deepEqual(
        r.payload,
        new Uint8Array(readFileSync(f)).subarray(
          r.payloadOffset,
          r.payloadOffset + r.payload!.length,
        ),
      );
    }
    assertReusedMatchesFresh(f);
  },
);

/** perf script -F brstack (in time order): from/to/M|P|-/X|-/A|-/cycles of every entry. */
function assertBrstackAgrees(f: string, entries: { record: { kind: string } }[]) {
  const lines = perf(["script", "-i", f, "-F", "brstack"]).stdout.trim().split("\n");
  const samples = entries.map((e) => e.record).filter((r): r is PerfRecord & { kind: "sample" } =>
    r.kind === "sample"
  ).sort((x, y) => Number((x.time ?? 0n) - (y.time ?? 0n)));
  assert.equal(lines.length, samples.length);
  lines.forEach((line, i) => {
    const theirs = line.trim().split(/\s+/);
    const mine = samples[i].branchStack!.entries.map((b) =>
      `0x${b.from.toString(16)}/0x${b.to.toString(16)}/${
        b.mispred ? "M" : b.predicted ? "P" : "-"
      }/${b.inTx ? "X" : "-"}/${b.abort ? "A" : "-"}/${b.cycles}/`
    );
    assert.deepEqual(theirs.map((t) => t.replace(/\/[^/]*$/, "/")), mine, `sample ${i}`);
  });
}
