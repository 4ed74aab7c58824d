/**
 * bench/branches.ts: ummu's decoders of recorded branches against perf's
 * dump of the same files, in the same run:
 * - Intel PT: every packet of every AUXTRACE payload of
 *   tests/fixtures/perf-golden/perf.data.intel_pt-4.14 (PerfDataReader, then
 *   decodePtPackets: one reused packet, every IP reconstructed);
 * - branch stacks: every branch entry of every sample of
 *   tests/fixtures/perf-golden/perf.data.branch_stack_spec (PerfDataReader's
 *   records, each sample's branchStack; the reader has no reused-record path).
 * The reference is `perf report -D -i FILE` with its output to /dev/null, the
 * whole process (it prints every packet and entry as text), best of REPS.
 *
 * ummu's side is timed three ways, best of REPS each:
 * - in process: open the file, read its records, decode (the figure `ratio`
 *   uses: perf's time over this; a JIT-warm decoder, as a program that decodes
 *   more than one file sees it);
 * - in process with text: the same, and each packet formatted as perf's line
 *   (formatPtDumpLine), the work perf's dump does (`pt_text_ratio`);
 * - whole process: this runtime started on this file with `--child`, once per
 *   rep, its start-up and module loading included (`*_process_ratio`).
 * Checks: ummu's packet and branch entry counts are perf's (from one captured
 * `perf report -D`), no packet is bad; a failed check exits 1.
 *
 * Prints one JSON line (fields in bench/README.md). Environment:
 * UMMU_BENCH_CPUS (reported), UMMU_BENCH_REPS (default 9, at least 3),
 * UMMU_PERF_GOLDEN (the folder of the recordings; default tests/fixtures/perf-golden
 * beside the repository).
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import { decodePtPackets, formatPtDumpLine, type PtPacket } from "../src/perf/intel_pt/mod.ts";

const RUNTIME = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const env = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === "" ? dflt : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
};
const CPUS = env("UMMU_BENCH_CPUS", 2);
const REPS = Math.max(3, Math.floor(env("UMMU_BENCH_REPS", 9)));
// The runner's cwd is the repository (Node runs a transpiled copy elsewhere: no import.meta here).
const GOLDEN = resolve(
  process.env.UMMU_PERF_GOLDEN ?? join(process.cwd(), "tests/fixtures/perf-golden"),
);
const PT_FILE = join(GOLDEN, "perf.data.intel_pt-4.14");
const BS_FILE = join(GOLDEN, "perf.data.branch_stack_spec");
const log = (s: string) => process.stderr.write(`branches[${RUNTIME}]: ${s}\n`);

// ---- ummu's work ------------------------------------------------------------------------------

/** What a decode saw: counts, and sums that keep the work from being optimized away. */
interface Tally {
  items: number;
  bad: number;
  check: number;
}

/** Every PT packet of the file; `text`: each formatted as perf's line, too. */
function decodePt(file: string, text: boolean): Tally {
  const t: Tally = { items: 0, bad: 0, check: 0 };
  const reader = PerfDataReader.open(file);
  try {
    for (const r of reader.records()) {
      if (r.kind !== "auxtrace" || r.payload === undefined) continue;
      const payload = r.payload;
      const each = text
        ? (p: PtPacket) => {
          t.items++;
          t.check += formatPtDumpLine(p, payload).length;
        }
        : (p: PtPacket) => {
          t.items++;
          if (p.kind === "bad") t.bad++;
          // The reconstructed IP's low half, as a user of the decoder reads it.
          else if (p.ipCode === 1) t.check = (t.check + p.ipLo) % 0x7fffffff;
        };
      decodePtPackets(payload, each, { resync: "byte" });
    }
  } finally {
    reader.close();
  }
  return t;
}

/** Every branch entry of every sample of the file. */
function decodeBranchStacks(file: string): Tally {
  const t: Tally = { items: 0, bad: 0, check: 0 };
  const reader = PerfDataReader.open(file);
  try {
    for (const r of reader.records()) {
      if (r.kind !== "sample" || r.branchStack === undefined) continue;
      for (const e of r.branchStack.entries) {
        t.items++;
        t.check = (t.check + Number(e.to & 0xffffn) + e.cycles + (e.mispred ? 1 : 0)) %
          0x7fffffff;
      }
    }
  } finally {
    reader.close();
  }
  return t;
}

// A child run: the work once, its tally on stdout (the parent times the whole process).
const childAt = process.argv.indexOf("--child");
if (childAt >= 0) {
  const what = process.argv[childAt + 1];
  const t = what === "pt" ? decodePt(PT_FILE, false) : decodeBranchStacks(BS_FILE);
  process.stdout.write(JSON.stringify(t) + "\n");
  process.exit(0);
}

// ---- timing -----------------------------------------------------------------------------------

const now = () => Number(process.hrtime.bigint()) / 1e6;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Best wall time of `fn` over REPS runs (ms) and its last result. */
function best<T>(fn: () => T): { ms: number; result: T; all: number[] } {
  const all: number[] = [];
  let result!: T;
  for (let i = 0; i < REPS; i++) {
    const t0 = now();
    result = fn();
    all.push(now() - t0);
  }
  return { ms: Math.min(...all), result, all };
}

const PERF = ["/usr/bin/perf", "/usr/sbin/perf", "/usr/local/bin/perf"].find((p) => existsSync(p));
if (!PERF) {
  log("no perf binary (Debian: apt-get install linux-perf): nothing to compare with");
  process.exit(1);
}
for (const f of [PT_FILE, BS_FILE]) {
  if (!existsSync(f)) {
    log(`no ${f} (the recordings from real hardware; UMMU_PERF_GOLDEN names their folder)`);
    process.exit(1);
  }
}

/** `perf report -D -i file > /dev/null`, the whole process. */
function perfDump(file: string): void {
  const devnull = openSync("/dev/null", "w");
  try {
    const r = spawnSync(PERF!, ["report", "-D", "-i", file], {
      stdio: ["ignore", devnull, devnull],
    });
    if (r.status !== 0) throw new Error(`perf report -D -i ${file}: exit ${r.status}`);
  } finally {
    closeSync(devnull);
  }
}

/** This runtime on this bench with `--child WHAT`, the whole process. */
function childRun(what: string): Tally {
  const script = process.argv[1];
  const args = RUNTIME === "deno"
    ? ["run", "-A", "--no-check", script, "--child", what]
    : RUNTIME === "bun"
    ? ["run", script, "--child", what]
    : [script, "--child", what];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", env: process.env });
  if (r.status !== 0) throw new Error(`${process.execPath} ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim());
}

/** perf's counts: PT packet lines, branch entry lines. */
function perfCounts(): { packets: number; bad: number; entries: number } {
  const dump = (file: string) => {
    const r = spawnSync(PERF!, ["report", "-D", "-i", file], {
      encoding: "utf8",
      maxBuffer: 1 << 30,
    });
    if (r.status !== 0) throw new Error(`perf report -D -i ${file}: exit ${r.status}`);
    return r.stdout;
  };
  const pt = dump(PT_FILE).match(/^\. {2}[0-9a-f]{8}: .*$/gm) ?? [];
  const entries = dump(BS_FILE).match(/^\.{5} +\d+: [0-9a-f]+ -> /gm) ?? [];
  return {
    packets: pt.length,
    bad: pt.filter((l) => l.endsWith("Bad packet!")).length,
    entries: entries.length,
  };
}

const expected = perfCounts();
log(`perf: ${expected.packets} PT packets, ${expected.entries} branch entries`);

const coldPt = (() => {
  const t0 = now();
  decodePt(PT_FILE, false);
  return now() - t0;
})();
const perfPt = best(() => perfDump(PT_FILE));
const oursPt = best(() => decodePt(PT_FILE, false));
const oursPtText = best(() => decodePt(PT_FILE, true));
const oursPtProcess = best(() => childRun("pt"));
const perfBs = best(() => perfDump(BS_FILE));
const oursBs = best(() => decodeBranchStacks(BS_FILE));
const oursBsProcess = best(() => childRun("bs"));

const failures: string[] = [];
for (const [name, t] of [["in process", oursPt.result], ["child", oursPtProcess.result]] as const) {
  if (t.items !== expected.packets) {
    failures.push(`PT ${name}: ${t.items} packets, perf ${expected.packets}`);
  }
  if (t.bad !== expected.bad) {
    failures.push(`PT ${name}: ${t.bad} bad packets, perf ${expected.bad}`);
  }
}
for (const [name, t] of [["in process", oursBs.result], ["child", oursBsProcess.result]] as const) {
  if (t.items !== expected.entries) {
    failures.push(`branch stacks ${name}: ${t.items} entries, perf ${expected.entries}`);
  }
}

const ptRatio = perfPt.ms / oursPt.ms;
const bsRatio = perfBs.ms / oursBs.ms;
console.log(JSON.stringify({
  bench: "branches",
  runtime: RUNTIME,
  cpus: CPUS,
  ratio: round(Math.min(ptRatio, bsRatio)),
  pt_ratio: round(ptRatio),
  pt_text_ratio: round(perfPt.ms / oursPtText.ms),
  pt_process_ratio: round(perfPt.ms / oursPtProcess.ms),
  branch_stack_ratio: round(bsRatio),
  branch_stack_process_ratio: round(perfBs.ms / oursBsProcess.ms),
  pt_packets: oursPt.result.items,
  pt_ns_per_packet: round((oursPt.ms * 1e6) / oursPt.result.items, 1),
  pt_text_ns_per_packet: round((oursPtText.ms * 1e6) / oursPt.result.items, 1),
  perf_pt_ns_per_packet: round((perfPt.ms * 1e6) / expected.packets, 1),
  branch_entries: oursBs.result.items,
  branch_ns_per_entry: round((oursBs.ms * 1e6) / oursBs.result.items, 1),
  perf_pt_ms: round(perfPt.ms),
  ours_pt_ms: round(oursPt.ms),
  ours_pt_cold_ms: round(coldPt),
  ours_pt_text_ms: round(oursPtText.ms),
  ours_pt_process_ms: round(oursPtProcess.ms),
  perf_branch_stack_ms: round(perfBs.ms),
  ours_branch_stack_ms: round(oursBs.ms),
  ours_branch_stack_process_ms: round(oursBsProcess.ms),
  reps: REPS,
}));
if (failures.length) {
  log(`check failed: ${failures.join("; ")}`);
  process.exit(1);
}
