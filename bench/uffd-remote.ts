/**
 * bench/uffd-remote.ts: another process's 4 KiB MISSING faults, served over
 * Firecracker's protocol from a snapshot file: ummu's FirecrackerHandler
 * (its FaultHandler Worker, pread + UFFDIO_COPY) against the C reference
 * handler (bench/c/uffd_remote_handler.c: one read() of one message, one
 * pread(), one UFFDIO_COPY per fault), in the same run. The guest is the
 * tests' Firecracker stand-in (tests/fixtures/firecracker_guest.c, variant
 * "bench"): one thread reads one byte of each page in order, timed, then
 * checks every byte against the snapshot; the first page, which waits for
 * the handler to start serving, is timed apart. See bench/README.md.
 *
 * Prints one JSON line:
 *   {"bench":"uffd-remote-4k","runtime":…,"cpus":…,"c_per_s":…,"js_per_s":…,
 *    "ratio":…,"readahead_ratio":…, …details}
 * ratio: ours (one page per fault) / C faults per second; readahead_ratio:
 * ours resolving 16 pages per fault / C single page; each the median of the
 * per-rep ratios.
 *
 * Environment: UMMU_BENCH_CPUS (1 pinned, 2 unpinned; reported as "cpus"),
 * UMMU_BENCH_PAGES (default 16384), UMMU_BENCH_REPS (default 7, at least 3).
 */
import { execFileSync, spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { runtime } from "../ffi/platform.ts";
import { FirecrackerHandler, type FirecrackerSessionEnd } from "../src/userfaultfd/firecracker.ts";

const PAGE = 4096;
const env = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === "" ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number >= 0, got ${v}`);
  return n;
};
const CPUS = env("UMMU_BENCH_CPUS", 2);
const PAGES = Math.max(64, Math.floor(env("UMMU_BENCH_PAGES", 16384)));
const REPS = Math.max(3, Math.floor(env("UMMU_BENCH_REPS", 7)));
const READAHEAD = 16;

const log = (s: string) =>
  process.stderr.write(`uffd-remote[${runtime.name},cpus=${CPUS}]: ${s}\n`);

// ---- the C programs: compiled into bench/bin/ when missing or stale ------------------------
const here = new URL(".", import.meta.url).pathname;
// bench/c is the repository's (the Node runs link it beside the transpiled bench): the guest
// is the tests' fixture, found from there.
const cDir = realpathSync(`${here}c`);
const handlerSource = join(cDir, "uffd_remote_handler.c");
const guestSource = join(cDir, "..", "..", "tests", "fixtures", "firecracker_guest.c");
const handlerBinary = `${here}bin/uffd_remote_handler`;
const guestBinary = `${here}bin/uffd_remote_guest`;
function build(source: string, binary: string): void {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return;
  mkdirSync(`${here}bin`, { recursive: true });
  log(`compiling ${source}`);
  execFileSync("cc", ["-O2", "-pthread", "-o", binary, source], { stdio: "inherit" });
}

/** Runs a program to its end; its stdout. */
function run(binary: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${binary} ${args.join(" ")} failed (${code}): ${err}`));
    });
  });
}

/** First faults (µs from the send to the first page served), per handler. */
const firstFaults: Record<string, number[]> = { c: [], single: [], readahead: [] };

/** The guest against a handler at `socket`: its faults per second, after checking every byte. */
async function guest(socket: string, snapshot: string, name: string): Promise<number> {
  const out = await run(guestBinary, [socket, snapshot, "anon", "1", "bench"]);
  if (!out.includes(`verified ${PAGES}`)) throw new Error(`the guest did not verify: ${out}`);
  firstFaults[name].push(Number(/first_fault_us (\d+)/.exec(out)![1]));
  return Number(/faults_per_sec (\d+)/.exec(out)![1]);
}

/** One C reference run: the handler listens, the guest runs against it. */
async function runC(socket: string, snapshot: string): Promise<number> {
  const handler = spawn(handlerBinary, [socket, snapshot], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const done = new Promise<string>((resolve, reject) => {
    handler.on(
      "close",
      (code) => code === 0 ? resolve(out) : reject(new Error(`C handler: ${code}`)),
    );
  });
  await new Promise<void>((resolve) =>
    handler.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("listening")) resolve();
    })
  );
  const perS = await guest(socket, snapshot, "c");
  const faults = JSON.parse((await done).trim().split("\n").pop()!).faults;
  if (faults !== PAGES) throw new Error(`the C handler served ${faults} faults, not ${PAGES}`);
  return perS;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x: number, digits: number) => Number(x.toFixed(digits));

build(handlerSource, handlerBinary);
build(guestSource, guestBinary);
const dir = mkdtempSync(join(tmpdir(), "ummu-bench-remote-"));
const snapshot = join(dir, "mem.snap");
writeFileSync(snapshot, randomFillSync(new Uint8Array(PAGES * PAGE)));

interface Ours {
  name: string;
  handler: FirecrackerHandler;
  socket: string;
  ends: FirecrackerSessionEnd[];
  samples: number[];
}
function listen(name: string, readahead: number): Ours {
  const socket = join(dir, `${name}.sock`);
  const ends: FirecrackerSessionEnd[] = [];
  const handler = FirecrackerHandler.listen(socket, {
    memoryFile: snapshot,
    readahead,
    onSessionEnd: (e) => ends.push(e),
    onError: (e) => log(`error: ${e.message}`),
  });
  return { name, handler, socket, ends, samples: [] };
}
/** One run of the guest against one of ours; checks the session's count of pages. */
async function runOurs(o: Ours): Promise<number> {
  const n = o.ends.length;
  const perS = await guest(o.socket, snapshot, o.name);
  while (o.ends.length === n) await new Promise((r) => setTimeout(r, 5));
  const end = o.ends[n];
  if (end.reason !== "peer-exited" || end.stats.pages < PAGES || end.errors.length) {
    throw new Error(`session: ${JSON.stringify({ ...end, errors: end.errors.map(String) })}`);
  }
  return perS;
}

const single = listen("single", 1), ahead = listen("readahead", READAHEAD);
try {
  // Warm-up: JIT the handler Worker's loop; the C programs' pages in the page cache.
  await runOurs(single);
  await runOurs(ahead);
  await runC(join(dir, "c.sock"), snapshot);
  const cSamples: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    cSamples.push(await runC(join(dir, "c.sock"), snapshot));
    single.samples.push(await runOurs(single));
    ahead.samples.push(await runOurs(ahead));
  }
  const paired = (xs: number[]) => median(xs.map((x, i) => x / cSamples[i]));
  console.log(JSON.stringify({
    bench: "uffd-remote-4k",
    runtime: runtime.name,
    cpus: CPUS,
    c_per_s: Math.round(median(cSamples)),
    js_per_s: Math.round(median(single.samples)),
    js_readahead_per_s: Math.round(median(ahead.samples)),
    ratio: round(paired(single.samples), 3),
    readahead_ratio: round(paired(ahead.samples), 3),
    // Not in the rates: the first fault waits for the handler to start serving (ours starts
    // a FaultHandler Worker per VM once its message came; the C one serves from its loop).
    c_first_fault_us: Math.round(median(firstFaults.c)),
    js_first_fault_us: Math.round(median(firstFaults.single)),
    pages: PAGES,
    reps: REPS,
    c_samples: cSamples.map(Math.round),
    js_samples: single.samples.map(Math.round),
  }));
} finally {
  await single.handler.close();
  await ahead.handler.close();
  rmSync(dir, { recursive: true, force: true });
}
