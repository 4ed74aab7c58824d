/**
 * bench/ummunotify.ts: what watching costs.
 *
 * 1. munmap() of a watched 4 KiB page (each page its own registration, one
 *    page at a time from the JS main thread) with ummu's userfaultfd backend,
 *    against a plain munmap() of an unwatched page, and against the C
 *    reference monitor (bench/c/ummunotify_monitor.c: the same userfaultfd
 *    mechanism and protocol with a C thread) in the same run.
 * 2. changed() against a bare Atomics.load of a BigInt64Array (the floor).
 *
 * Prints one JSON line:
 *   {"bench":"ummunotify","runtime":…,"cpus":…,"watched_vs_c":…,"changed_vs_load":…,
 *    "watched_ns":…,"plain_ns":…,"c_watched_ns":…,"c_plain_ns":…,"changed_ns":…,"load_ns":…, …}
 * Targets: watched_vs_c ≤ 1.5, changed_vs_load ≤ 2.
 *
 * Environment: UMMU_BENCH_CPUS (1 pinned, 2 unpinned: reported as "cpus"; the
 * runner pins the whole process), UMMU_BENCH_PAGES (per rep, default 2000),
 * UMMU_BENCH_REPS (default 7), UMMU_BENCH_SPIN_US (the monitor's spinMicros
 * for the "spin" variant; default 50, 0 to skip it).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import process from "node:process";
import { Ummunotify } from "../src/ummunotify/mod.ts";
import { runtime } from "../ffi/platform.ts";
import { libc, mmap, PAGE_SIZE } from "../src/libc.ts";
import * as mm from "../ffi/mman.ts";

const P = PAGE_SIZE;
const env = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === "" ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new Error(`${name} must be a non-negative number, got ${v}`);
  }
  return n;
};
const CPUS = env("UMMU_BENCH_CPUS", 2);
const PAGES = Math.max(100, Math.floor(env("UMMU_BENCH_PAGES", 2000)));
const REPS = Math.max(3, Math.floor(env("UMMU_BENCH_REPS", 7)));
const SPIN_US = env("UMMU_BENCH_SPIN_US", 50);
const LOOP = 20_000_000;

const log = (s: string) => process.stderr.write(`ummunotify[${runtime.name},cpus=${CPUS}]: ${s}\n`);

// ---- the C reference --------------------------------------------------------------------------
const here = new URL(".", import.meta.url).pathname;
const cSource = `${here}c/ummunotify_monitor.c`;
const cBinary = `${here}bin/ummunotify_monitor`;
function buildC(): void {
  if (existsSync(cBinary) && statSync(cBinary).mtimeMs >= statSync(cSource).mtimeMs) return;
  mkdirSync(`${here}bin`, { recursive: true });
  log(`compiling ${cSource}`);
  execFileSync("cc", ["-O2", "-pthread", "-o", cBinary, cSource], { stdio: "inherit" });
}
function runC(): { watched_ns: number; plain_ns: number } {
  const r = spawnSync(cBinary, [String(PAGES), "3"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cBinary} failed (status ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

// ---- munmap: watched (ummu) and plain -----------------------------------------------------------
let cookie = 0n;

/** Maps PAGES pages and a guard page, registers each page (or not); returns ns per munmap. */
function munmapRun(un: Ummunotify | null): number {
  const a = mmap((PAGES + 1) * P, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_PRIVATE | mm.MAP_ANONYMOUS);
  new Uint8Array(runtime.view(a, (PAGES + 1) * P)).fill(1);
  const cookies: bigint[] = [];
  if (un) {
    for (let i = 0; i < PAGES; i++) {
      un.register(a + i * P, a + (i + 1) * P, cookie);
      cookies.push(cookie++);
    }
  }
  const g0 = un?.generation ?? 0n;
  const t0 = performance.now();
  for (let i = 0; i < PAGES; i++) libc.munmap(a + i * P, P);
  const ns = (performance.now() - t0) * 1e6 / PAGES;
  if (un) {
    // Every munmap was seen (and the check a cache makes costs a load).
    if (un.generation - g0 !== BigInt(PAGES)) {
      throw new Error(`counter moved ${un.generation - g0}, not ${PAGES}`);
    }
    const evs = un.readEvents();
    if (evs.length !== PAGES + 1) throw new Error(`${evs.length} events, not ${PAGES + 1}`);
    for (const c of cookies) un.unregister(c);
  }
  libc.munmap(a + PAGES * P, P);
  return ns;
}

// ---- changed() against Atomics.load -----------------------------------------------------------
function changedLoop(un: Ummunotify, since: bigint): number {
  let x = 0;
  const t0 = performance.now();
  for (let i = 0; i < LOOP; i++) if (un.changed(since)) x++;
  const ns = (performance.now() - t0) * 1e6 / LOOP;
  if (x !== 0) throw new Error("changed() moved during the loop");
  return ns;
}
function counterLoop(c: { changed(s: bigint): boolean }, since: bigint): number {
  let x = 0;
  const t0 = performance.now();
  for (let i = 0; i < LOOP; i++) if (c.changed(since)) x++;
  const ns = (performance.now() - t0) * 1e6 / LOOP;
  if (x !== 0) throw new Error("changed() moved during the loop");
  return ns;
}
function loadLoop(word: BigInt64Array, since: bigint): number {
  let x = 0;
  const t0 = performance.now();
  for (let i = 0; i < LOOP; i++) if (Atomics.load(word, 0) !== since) x++;
  const ns = (performance.now() - t0) * 1e6 / LOOP;
  if (x !== 0) throw new Error("the word moved during the loop");
  return ns;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

buildC();
const un = await Ummunotify.open({ backend: "userfaultfd" });
const spin = SPIN_US > 0
  ? await Ummunotify.open({ backend: "userfaultfd", spinMicros: SPIN_US })
  : null;
try {
  log(`${PAGES} pages x ${REPS} reps`);
  munmapRun(un); // warm-up: JIT this thread's loop and the monitor's
  munmapRun(null);
  if (spin) munmapRun(spin);
  runC();
  const watched: number[] = [],
    plain: number[] = [],
    cw: number[] = [],
    cp: number[] = [],
    spun: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    const c = runC();
    cw.push(c.watched_ns);
    cp.push(c.plain_ns);
    watched.push(munmapRun(un));
    plain.push(munmapRun(null));
    if (spin) spun.push(munmapRun(spin));
  }

  // The counter: the notifier's changed(), a counter rebuilt from its handle (as a Worker
  // would), and the bare load on the same kind of word.
  const since = un.generation;
  const counter = un.counter;
  const word = new BigInt64Array(new SharedArrayBuffer(8));
  word[0] = since;
  const ch: number[] = [], cc: number[] = [], ld: number[] = [];
  for (let i = 0; i < 5; i++) {
    ch.push(changedLoop(un, since));
    cc.push(counterLoop(counter, since));
    ld.push(loadLoop(word, since));
  }

  const w = median(watched), c = median(cw), changed = median(ch), load = median(ld);
  console.log(JSON.stringify({
    bench: "ummunotify",
    runtime: runtime.name,
    cpus: CPUS,
    watched_vs_c: r3(w / c),
    changed_vs_load: r3(changed / load),
    watched_ns: r1(w),
    plain_ns: r1(median(plain)),
    c_watched_ns: r1(c),
    c_plain_ns: r1(median(cp)),
    watched_over_plain_ns: r1(w - median(plain)),
    c_over_plain_ns: r1(c - median(cp)),
    spin_us: SPIN_US,
    spin_watched_ns: spin ? r1(median(spun)) : null,
    spin_watched_vs_c: spin ? r3(median(spun) / c) : null,
    changed_ns: r3(changed),
    counter_changed_ns: r3(median(cc)),
    load_ns: r3(load),
    pages: PAGES,
    reps: REPS,
    watched_samples: watched.map(r1),
    c_samples: cw.map(r1),
  }));
} finally {
  await un.close();
  await spin?.close();
}
