#!/usr/bin/env node
/**
 * The bench runner: `npm run bench -- [NAME...] [--runtime deno|bun] [--cpus 1|2]`.
 *
 * For each NAME (default: every bench/*.ts) it runs bench/NAME.ts under Deno
 * (`deno run -A`) and Bun, each in two conditions, one after the other:
 *   pinned    `taskset -c 0 …`    UMMU_BENCH_CPUS=1  (every thread on one CPU)
 *   unpinned  `taskset -c 0,1 …`  UMMU_BENCH_CPUS=2  (two CPUs)
 * It streams each run's stdout (one JSON object per line) to its own stdout,
 * checks the contract (every line is JSON with the run's "runtime" and
 * "cpus"; at least one line), and exits 1 if any run failed, timed out
 * (UMMU_BENCH_TIMEOUT seconds, default 900) or broke the contract.
 * The runtimes come from node_modules/.bin. See bench/README.md.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);
const bin = join(root, "node_modules", ".bin");

const RUNTIMES = {
  deno: (file) => [join(bin, "deno"), ["run", "-A", file]],
  bun: (file) => [join(bin, "bun"), ["run", file]],
};
const CONDITIONS = [
  { cpus: 1, cpuList: "0", label: "pinned" },
  { cpus: 2, cpuList: "0,1", label: "unpinned" },
];

function usage(msg) {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write("usage: node bench/run.mjs [NAME...] [--runtime deno|bun] [--cpus 1|2]\n");
  process.exit(2);
}

const names = [];
let onlyRuntime = null, onlyCpus = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--runtime") onlyRuntime = argv[++i];
  else if (a.startsWith("--runtime=")) onlyRuntime = a.slice(10);
  else if (a === "--cpus") onlyCpus = Number(argv[++i]);
  else if (a.startsWith("--cpus=")) onlyCpus = Number(a.slice(7));
  else if (a === "-h" || a === "--help") usage();
  else if (a.startsWith("-")) usage(`unknown option ${a}`);
  else names.push(a.replace(/\.ts$/, ""));
}
if (onlyRuntime !== null && !(onlyRuntime in RUNTIMES)) usage(`unknown runtime ${onlyRuntime}`);
if (onlyCpus !== null && onlyCpus !== 1 && onlyCpus !== 2) usage(`--cpus must be 1 or 2`);
if (names.length === 0) {
  for (const f of readdirSync(benchDir).sort()) {
    if (f.endsWith(".ts")) names.push(basename(f, ".ts"));
  }
}
for (const name of names) {
  if (!existsSync(join(benchDir, `${name}.ts`))) usage(`no bench/${name}.ts`);
}

const timeoutS = Number(process.env.UMMU_BENCH_TIMEOUT ?? 900);
const cpusHere = availableParallelism();

/** Runs one bench in one runtime and condition; resolves to a failure string or null. */
function runOne(name, runtime, cond) {
  const file = join(benchDir, `${name}.ts`);
  const [exe, args] = RUNTIMES[runtime](file);
  const tag = `${name} ${runtime} ${cond.label}`;
  if (!existsSync(exe)) return Promise.resolve(`${tag}: ${exe} is missing (npm install)`);
  if (cpusHere < cond.cpus) {
    return Promise.resolve(`${tag}: needs ${cond.cpus} CPUs, this machine has ${cpusHere}`);
  }
  process.stderr.write(`bench: ${tag}: taskset -c ${cond.cpuList} ${runtime} ${args.join(" ")}\n`);
  const child = spawn("taskset", ["-c", cond.cpuList, exe, ...args], {
    cwd: root,
    env: { ...process.env, UMMU_BENCH_CPUS: String(cond.cpus), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const problems = [];
  let lines = 0;
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line.trim() === "") return;
    process.stdout.write(line + "\n");
    lines++;
    let obj;
    try {
      obj = JSON.parse(line);
    } catch {
      problems.push(`stdout line is not JSON: ${line.slice(0, 80)}`);
      return;
    }
    if (obj === null || typeof obj !== "object") problems.push("stdout line is not a JSON object");
    else if (obj.runtime !== runtime) {
      problems.push(`"runtime" is ${JSON.stringify(obj.runtime)}, not "${runtime}"`);
    } else if (obj.cpus !== cond.cpus) {
      problems.push(`"cpus" is ${JSON.stringify(obj.cpus)}, not ${cond.cpus}`);
    }
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutS * 1000);
  return new Promise((resolve) => {
    child.on("error", (e) => problems.push(`spawn failed: ${e.message}`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) problems.push(`timed out after ${timeoutS} s`);
      else if (code !== 0) problems.push(`exited with ${signal ?? code}`);
      if (lines === 0 && code === 0) problems.push("printed no JSON line");
      resolve(problems.length ? `${tag}: ${problems.join("; ")}` : null);
    });
  });
}

const failures = [];
let runs = 0;
for (const name of names) {
  for (const runtime of Object.keys(RUNTIMES)) {
    if (onlyRuntime && runtime !== onlyRuntime) continue;
    for (const cond of CONDITIONS) {
      if (onlyCpus && cond.cpus !== onlyCpus) continue;
      runs++;
      const failure = await runOne(name, runtime, cond);
      if (failure) {
        failures.push(failure);
        process.stderr.write(`bench: FAILED ${failure}\n`);
      }
    }
  }
}
process.stderr.write(`bench: ${runs - failures.length}/${runs} runs passed\n`);
for (const f of failures) process.stderr.write(`bench: FAILED ${f}\n`);
process.exit(failures.length ? 1 : 0);
