/**
 * bench/perf.ts: ummu's perf ring reader against a C reader of the same ring
 * (bench/c/perf_reader.c), in the same run, on the same workload.
 *
 * The workload is a process (`perf_reader workload PAGES ROUNDS`, the C
 * binary) that maps PAGES fresh anonymous pages, writes a byte to each and
 * unmaps them, ROUNDS times: one page fault per page. Each reader opens the
 * same attr on that process's thread: the page-faults software event, sample
 * period 1, PERF_SAMPLE_IP|TID|TIME|ADDR (40-byte samples), read_format 0,
 * woken every quarter ring (`wakeupWatermark`), and decodes ip, tid, time and
 * addr of every sample, checking them: the tid is the workload's, time never
 * goes back, page-aligned addresses (the workload's writes) + lost records
 * cover the pages written, and samples + what LOST records say never exceed
 * the event's count. Lost is the count less the samples read (the kernel
 * writes no LOST record for drops after the task's last fault).
 *
 * Two measurements, both printed:
 * - stream: the reader drains while the workload faults (C: poll(2) then
 *   drain; JS: `await event.readable()` then `event.readRecords()`), from the start
 *   signal to the last drain after the workload exited. records/s is then
 *   bounded by the workload's fault rate (about 2 µs a fault here): `ratio`
 *   is JS records/s over C records/s, `js_lost`/`c_lost` the records the
 *   kernel dropped because the reader was late.
 * - drain-only: the workload faults into a ring large enough for all of it
 *   and exits; then only the drain of the full ring is timed. That is the
 *   reader's own cost per record, whatever the fault rate: `drain_ratio`.
 *
 * The JS side decodes with the library: `event.readRecords(each)` drains the
 * rings and hands `each` the decoder's reused object (RecordDecoder.decodeReused:
 * a SAMPLE is a SampleView whose getters read ip, pid, tid, time and addr
 * from the ring's bytes). `js_path` names that path.
 *
 * Prints one JSON line (see bench/README.md for the fields). Environment:
 * UMMU_BENCH_CPUS (reported), UMMU_BENCH_RING_PAGES (data pages of the
 * streaming ring, default 128: 512 KiB, perf record's default), UMMU_BENCH_PAGES
 * (pages per round, default 256), UMMU_BENCH_FAULTS (page faults per streaming
 * run, default 262144), UMMU_BENCH_DRAIN_RING_PAGES (default 1024: 4 MiB),
 * UMMU_BENCH_REPS (default 5, at least 3).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import { runtime } from "../ffi/platform.ts";
import {
  PERF_COUNT_SW_PAGE_FAULTS,
  PERF_SAMPLE_ADDR,
  PERF_SAMPLE_IP,
  PERF_SAMPLE_TID,
  PERF_SAMPLE_TIME,
  PERF_TYPE_SOFTWARE,
  PerfEvent,
  type PerfEventAttr,
  type PerfRecord,
} from "../src/perf/mod.ts";

const env = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === "" ? dflt : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
};
const isPow2 = (n: number) => Number.isInteger(n) && (n & (n - 1)) === 0;
const CPUS = env("UMMU_BENCH_CPUS", 2);
const RING_PAGES = env("UMMU_BENCH_RING_PAGES", 128);
const PAGES = Math.floor(env("UMMU_BENCH_PAGES", 256));
const FAULTS = Math.floor(env("UMMU_BENCH_FAULTS", 262_144));
const ROUNDS = Math.max(1, Math.round(FAULTS / PAGES));
const DRAIN_RING_PAGES = env("UMMU_BENCH_DRAIN_RING_PAGES", 1024);
const REPS = Math.max(3, Math.floor(env("UMMU_BENCH_REPS", 5)));
if (!isPow2(RING_PAGES) || !isPow2(DRAIN_RING_PAGES)) {
  throw new Error("UMMU_BENCH_RING_PAGES and UMMU_BENCH_DRAIN_RING_PAGES must be powers of two");
}
const PAGE = 4096;
const STARTUP_MS = 200;
const SAMPLE_BYTES = 40; // header + ip + pid/tid + time + addr
// Drain-only: as many rounds as fill 3/4 of the ring (the workload's other faults fit in the rest).
const DRAIN_ROUNDS = Math.max(
  1,
  Math.floor((DRAIN_RING_PAGES * PAGE * 0.75) / SAMPLE_BYTES / PAGES),
);
const log = (s: string) => process.stderr.write(`perf[${runtime.name}]: ${s}\n`);

// ---- the C reference and workload, compiled into bench/bin/ when missing or stale --------------
const here = new URL(".", import.meta.url).pathname;
const cSource = `${here}c/perf_reader.c`;
const cBinary = `${here}bin/perf_reader`;
if (!existsSync(cBinary) || statSync(cBinary).mtimeMs < statSync(cSource).mtimeMs) {
  mkdirSync(`${here}bin`, { recursive: true });
  log(`compiling ${cSource}`);
  execFileSync("cc", ["-O2", "-o", cBinary, cSource], { stdio: "inherit" });
}
function runC(args: string[]): Record<string, number | number[] | string> {
  const r = spawnSync(cBinary, args, { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`${cBinary} ${args.join(" ")} failed (status ${r.status}): ${r.stderr}`);
  }
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

// ---- the JS reader --------------------------------------------------------------------------
const SAMPLE_TYPE = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR;
function attrFor(ringPages: number): PerfEventAttr {
  return {
    type: PERF_TYPE_SOFTWARE,
    config: BigInt(PERF_COUNT_SW_PAGE_FAULTS),
    samplePeriod: 1n,
    sampleType: SAMPLE_TYPE,
    readFormat: 0,
    disabled: true,
    wakeupWatermark: (ringPages * PAGE) / 4,
  };
}

/** What a reader saw; the same checks as perf_reader.c's. */
class Tally {
  records = 0;
  samples = 0;
  aligned = 0;
  foreign = 0;
  backwards = 0;
  lastTime = 0n;
  lastIp = 0n;
  constructor(readonly pid: number) {}

  /**
   * Checks the samples against the event's count; returns the records lost: the count less the
   * samples read (the drops after the last LOST record the kernel could write, when the task
   * exits with the ring full, have no LOST record; `lostRecords` is what the LOST records said).
   */
  check(lostRecords: number, count: bigint, faults: number): number {
    const lost = Number(count) - this.samples;
    if (
      this.foreign || this.backwards || this.aligned + lost < faults ||
      this.samples + lostRecords > Number(count)
    ) {
      throw new Error(
        `check failed: ${this.foreign} samples of another thread, ${this.backwards} times going back, ` +
          `${this.aligned} page-aligned addresses (+ ${lost} lost) for ${faults} pages written, ` +
          `samples ${this.samples} + LOST records' ${lostRecords} > count ${count}`,
      );
    }
    return lost;
  }
}

/**
 * The per-record work: decode through the library, read the four fields and
 * check them (the C reader does the same in `decode`). C also sums them into
 * a checksum to keep its compiler from dropping the reads; here the checks
 * and the stored ip do that. A bigint sum (BigInt.asUintN(64, sum + ip + …))
 * would add 35–50 ns a record on Deno and Bun, the cost of bigint arithmetic
 * in the bench, not of the reader.
 */
function reader(t: Tally) {
  return (r: PerfRecord): void => {
    t.records++;
    if (r.kind !== "sample") return;
    const ip = r.ip!, pid = r.pid!, tid = r.tid!, time = r.time!, addr = r.addr!;
    t.samples++;
    t.lastIp = ip;
    if (tid !== t.pid || pid !== t.pid) t.foreign++;
    if (time < t.lastTime) t.backwards++;
    t.lastTime = time;
    if ((addr & 4095n) === 0n) t.aligned++;
  };
}

interface Workload {
  pid: number;
  start(): void;
  exited: Promise<void>;
}

/** Spawns `perf_reader workload PAGES ROUNDS` and waits for its "ready". */
async function spawnWorkload(pages: number, rounds: number): Promise<Workload> {
  const child = spawn(cBinary, ["workload", String(pages), String(rounds)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`the workload exited with ${signal ?? code}`));
    });
  });
  exited.catch(() => {}); // reported where it is awaited
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    exited.then(() => reject(new Error("the workload exited before it was ready")), reject);
  });
  lines.close();
  if (ready !== "ready") throw new Error(`the workload said ${JSON.stringify(ready)}`);
  return {
    pid: child.pid!,
    start: () => child.stdin!.end("g"),
    exited,
  };
}

interface StreamResult {
  records: number;
  lost: number;
  recordsPerS: number;
  wakeups: number;
}

async function streamJs(): Promise<StreamResult> {
  const w = await spawnWorkload(PAGES, ROUNDS);
  const attr = attrFor(RING_PAGES);
  const ev = PerfEvent.open(attr, { target: { thread: w.pid }, ring: { pages: RING_PAGES } });
  try {
    const t = new Tally(w.pid);
    const each = reader(t);
    // The first readable() starts the poller Worker; until it polls, nothing wakes us. Start it
    // before the workload (200 ms is ample here), so that both readers wait from the first record.
    let first: Promise<boolean> | null = ev.readable();
    await new Promise((resolve) => setTimeout(resolve, STARTUP_MS));
    let wakeups = 0;
    ev.enable();
    const t0 = performance.now();
    w.start();
    for (;;) {
      // false: the workload exited (its fd hung up); what it wrote is in the ring.
      const more = first ? await first : await ev.readable();
      first = null;
      wakeups++;
      ev.readRecords(each);
      if (!more) break;
    }
    ev.readRecords(each);
    const seconds = (performance.now() - t0) / 1000;
    await w.exited;
    const lost = t.check(ev.lost, ev.read().value, PAGES * ROUNDS);
    return { records: t.records, lost, recordsPerS: t.records / seconds, wakeups };
  } finally {
    await ev.close();
  }
}

async function drainOnlyJs(): Promise<{ records: number; lost: number; recordsPerS: number }> {
  const w = await spawnWorkload(PAGES, DRAIN_ROUNDS);
  const attr = attrFor(DRAIN_RING_PAGES);
  const ev = PerfEvent.open(attr, { target: { thread: w.pid }, ring: { pages: DRAIN_RING_PAGES } });
  try {
    const t = new Tally(w.pid);
    const each = reader(t);
    ev.enable();
    w.start();
    await w.exited; // the ring now holds every record of the run
    ev.disable();
    const t0 = performance.now();
    ev.readRecords(each);
    const seconds = (performance.now() - t0) / 1000;
    const lost = t.check(ev.lost, ev.read().value, PAGES * DRAIN_ROUNDS);
    return { records: t.records, lost, recordsPerS: t.records / seconds };
  } finally {
    await ev.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const round = (x: number, d = 3) => Number(x.toFixed(d));

// Streaming: C and JS in turn, REPS times each (the first JS run also warms the JIT, unmeasured).
log(
  `stream: ${PAGES} pages x ${ROUNDS} rounds, ring ${RING_PAGES} pages; drain-only: ` +
    `${PAGES} x ${DRAIN_ROUNDS}, ring ${DRAIN_RING_PAGES} pages; ${REPS} reps`,
);
await streamJs();
const cStream: Record<string, number | number[] | string>[] = [];
const jsStream: StreamResult[] = [];
for (let i = 0; i < REPS; i++) {
  cStream.push(runC(["stream", String(RING_PAGES), String(PAGES), String(ROUNDS)]));
  jsStream.push(await streamJs());
}
// Drain-only: the C program runs its REPS in one process; ours after one warm-up.
await drainOnlyJs();
const jsDrain = [];
for (let i = 0; i < REPS; i++) jsDrain.push(await drainOnlyJs());
const cDrain = runC([
  "drain",
  String(DRAIN_RING_PAGES),
  String(PAGES),
  String(DRAIN_ROUNDS),
  String(REPS),
]);

const cRates = cStream.map((r) => r.records_per_s as number);
const jsRates = jsStream.map((r) => r.recordsPerS);
const cRate = median(cRates), jsRate = median(jsRates);
// Each rep's JS run beside the C run just before it (the machine is shared: load drifts).
const pairedRatio = median(jsRates.map((js, i) => js / cRates[i]));
const jsDrainRate = median(jsDrain.map((r) => r.recordsPerS));
const cDrainRate = cDrain.records_per_s as number;
// The best drain of each: the reader's cost with no other process and no GC in the way.
const jsDrainBest = Math.max(...jsDrain.map((r) => r.recordsPerS));
const cDrainBest = Math.max(...(cDrain.rep_records_per_s as number[]));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

console.log(JSON.stringify({
  bench: "perf-page-faults",
  runtime: runtime.name,
  cpus: CPUS,
  ratio: round(pairedRatio),
  drain_ratio: round(jsDrainRate / cDrainRate),
  drain_ratio_best: round(jsDrainBest / cDrainBest),
  js_lost: sum(jsStream.map((r) => r.lost)),
  c_lost: sum(cStream.map((r) => r.lost as number)),
  js_records_per_s: Math.round(jsRate),
  c_records_per_s: Math.round(cRate),
  js_drain_records_per_s: Math.round(jsDrainRate),
  c_drain_records_per_s: Math.round(cDrainRate),
  js_drain_ns_per_record: round(1e9 / jsDrainRate, 1),
  c_drain_ns_per_record: round(1e9 / cDrainRate, 2),
  js_drain_best_ns_per_record: round(1e9 / jsDrainBest, 1),
  c_drain_best_ns_per_record: round(1e9 / cDrainBest, 2),
  js_path: "readRecords",
  ring_pages: RING_PAGES,
  drain_ring_pages: DRAIN_RING_PAGES,
  pages: PAGES,
  rounds: ROUNDS,
  drain_rounds: DRAIN_ROUNDS,
  reps: REPS,
  js_wakeups: median(jsStream.map((r) => r.wakeups)),
  c_wakeups: median(cStream.map((r) => r.wakeups as number)),
  js_lost_per_rep: jsStream.map((r) => r.lost),
  c_lost_per_rep: cStream.map((r) => r.lost as number),
  js_samples: jsRates.map(Math.round),
  c_samples: cRates,
  js_drain_samples: jsDrain.map((r) => Math.round(r.recordsPerS)),
  c_drain_samples: cDrain.rep_records_per_s,
}));
