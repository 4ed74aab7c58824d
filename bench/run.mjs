#!/usr/bin/env node
/**
 * The bench runner: `npm run bench -- [NAME...] [--runtime deno|bun|node] [--cpus 1|2]`.
 *
 * For each NAME (default: every bench/*.ts) it runs bench/NAME.ts under Deno
 * (`deno run -A`), Bun and Node, each in two conditions, one after the other:
 *   pinned    `taskset -c 0 …`    UMMU_BENCH_CPUS=1  (every thread on one CPU)
 *   unpinned  `taskset -c 0,1 …`  UMMU_BENCH_CPUS=2  (two CPUs)
 * It streams each run's stdout (one JSON object per line) to its own stdout,
 * checks the contract (every line is JSON with the run's "runtime" and
 * "cpus"; at least one line), and exits 1 if any run failed, timed out
 * (UMMU_BENCH_TIMEOUT seconds, default 900) or broke the contract.
 * Deno and Bun come from node_modules/.bin and run the .ts sources. Node runs
 * what a Node user installs: the npm package that scripts/build_npm.mjs builds
 * (koffi for the FFI), copied to .cache/bench-node/pkg/, and each bench
 * transpiled by TypeScript to .cache/bench-node/bench/NAME.mjs with its
 * imports of the library pointed into that copy. See bench/README.md.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname, join, posix } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);
const bin = join(root, "node_modules", ".bin");

const nodeDir = join(root, ".cache", "bench-node");
const RUNTIMES = {
  deno: (name) => [join(bin, "deno"), ["run", "-A", join(benchDir, `${name}.ts`)]],
  bun: (name) => [join(bin, "bun"), ["run", join(benchDir, `${name}.ts`)]],
  node: (name) => [process.execPath, [join(nodeDir, "bench", `${name}.mjs`)]],
};
const CONDITIONS = [
  { cpus: 1, cpuList: "0", label: "pinned" },
  { cpus: 2, cpuList: "0,1", label: "unpinned" },
];

function usage(msg) {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write(
    "usage: node bench/run.mjs [NAME...] [--runtime deno|bun|node] [--cpus 1|2]\n",
  );
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

/**
 * Node: builds the npm package (scripts/build_npm.mjs --no-tests), copies it
 * to .cache/bench-node/pkg/ (so that another build of npm/ cannot change it
 * under a running bench), and transpiles each bench to
 * .cache/bench-node/bench/NAME.mjs. A bench's imports of the library
 * (`../mod.ts`, `../src/…`, `../ffi/…`) become the package's compiled modules
 * (`../pkg/esm/….js`), which load the FFI through the package's `#platform`
 * import (node: koffi) exactly as in a user's project; bench/c, bench/bin and
 * bench/sources (page source modules) are symlinked beside them, so a bench
 * finds its C references and modules where it looks
 * (`new URL(".", import.meta.url)`). Returns a failure string, or null.
 */
async function prepareNode(names) {
  process.stderr.write("bench: node: building the npm package (scripts/build_npm.mjs)\n");
  const build = spawnSync(
    process.execPath,
    [join(root, "scripts", "build_npm.mjs"), "--no-tests"],
    {
      cwd: root,
      encoding: "utf8",
    },
  );
  if (build.status !== 0) {
    return `scripts/build_npm.mjs failed (${
      build.signal ?? build.status
    }):\n${build.stdout}${build.stderr}`;
  }
  const npmDir = join(root, "npm");
  if (!existsSync(join(npmDir, "package.json"))) {
    return `scripts/build_npm.mjs wrote no npm/package.json`;
  }
  const pkg = join(nodeDir, "pkg");
  try {
    rmSync(nodeDir, { recursive: true, force: true });
    mkdirSync(join(nodeDir, "bench"), { recursive: true });
    cpSync(npmDir, pkg, { recursive: true });
    mkdirSync(join(benchDir, "bin"), { recursive: true });
    for (const d of ["c", "bin", "sources"]) symlinkSync(join(benchDir, d), join(nodeDir, "bench", d));
  } catch (e) {
    // npm/ is rebuilt by every `npm run build:npm`: another one may have run meanwhile.
    return `copying npm/ to ${pkg} failed (was npm/ rebuilt meanwhile? run again): ${e.message}`;
  }
  let ts;
  try {
    ts = (await import("typescript")).default;
  } catch (e) {
    return `typescript is not installed (npm install): ${e.message}`;
  }
  // Relative specifiers in import/export-from/dynamic import() of the emitted JavaScript.
  const SPEC = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*)\2/g;
  for (const name of names) {
    const src = join(benchDir, `${name}.ts`);
    const out = ts.transpileModule(readFileSync(src, "utf8"), {
      fileName: src,
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        verbatimModuleSyntax: false,
      },
      reportDiagnostics: true,
    });
    if (out.diagnostics?.length) {
      return `transpiling bench/${name}.ts: ${
        ts.flattenDiagnosticMessageText(out.diagnostics[0].messageText, "\n")
      }`;
    }
    const missing = [];
    const js = out.outputText.replace(SPEC, (_m, lead, q, spec) => {
      const target = posix.normalize(posix.join("bench", spec)); // repo-relative
      if (target.startsWith("bench/")) {
        missing.push(`${spec} (another bench file: only library imports are rewritten)`);
        return _m;
      }
      const compiled = `esm/${target.replace(/\.ts$/, ".js")}`;
      if (!existsSync(join(pkg, compiled))) missing.push(`${spec} (no ${compiled} in the package)`);
      return `${lead}${q}../pkg/${compiled}${q}`;
    });
    if (missing.length) {
      return `bench/${name}.ts imports what Node cannot load: ${missing.join(", ")}`;
    }
    writeFileSync(join(nodeDir, "bench", `${name}.mjs`), js);
  }
  const version = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;
  process.stderr.write(`bench: node: ${process.version}, the package ${version} in ${pkg}\n`);
  return null;
}

/** Runs one bench in one runtime and condition; resolves to a failure string or null. */
function runOne(name, runtime, cond) {
  const [exe, args] = RUNTIMES[runtime](name);
  const tag = `${name} ${runtime} ${cond.label}`;
  if (!existsSync(exe)) return Promise.resolve(`${tag}: ${exe} is missing (npm install)`);
  if (runtime === "node" && nodeNotReady) return Promise.resolve(`${tag}: ${nodeNotReady}`);
  if (runtime === "node" && !existsSync(args[0])) {
    return Promise.resolve(`${tag}: ${args[0]} is missing`);
  }
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

const runtimes = Object.keys(RUNTIMES).filter((r) => !onlyRuntime || r === onlyRuntime);
const nodeNotReady = runtimes.includes("node") ? await prepareNode(names) : null;
if (nodeNotReady) process.stderr.write(`bench: node: ${nodeNotReady}\n`);

const failures = [];
let runs = 0;
for (const name of names) {
  for (const runtime of runtimes) {
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
