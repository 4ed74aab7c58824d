#!/usr/bin/env node
// Every test, on Deno and on Bun: `npm test` runs this.
//
// Suites: type-check; host tests (tests/*.test.ts) under Deno and Bun; the
// demo (`npm run demo`: every example on Deno, Bun and Node); tests
// that need a kernel feature the host lacks (tests/kernel/) inside the test VM
// under Deno and Bun; the ummunotify kernel module's own tests in the VM.
// Prints each suite's output, then a table and one closing line
// "tests: N passed, M failed, K skipped". A suite that could not run (exit 77:
// no qemu or no kernel) says why; with UMMU_REQUIRE_VM=1 (CI) that fails the run.
//
//   node tests/run.mjs [--only check|host|demo|kmod|vm|npm] ...
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = (name) => join(repo, "node_modules", ".bin", name);
const deno = bin("deno");
const bun = bin("bun");
const hostTests = readdirSync(join(repo, "tests")).filter((f) => f.endsWith(".test.ts")).sort()
  .map((f) => `tests/${f}`);
const examples = readdirSync(join(repo, "examples")).filter((f) => f.endsWith(".ts")).sort()
  .map((f) => `examples/${f}`);
const vm = join(repo, "tests", "vm", "run.sh");

// The VM suites load the ummunotify driver (built by the kmod suite, which runs
// first) so that the device-backend tests run too; without it they skip, saying why.
const ko = join(repo, ".cache", "ummunotify", "release", "ummunotify.ko");
const inVm = (...cmd) => () =>
  existsSync(ko)
    ? [vm, "--check-dmesg", "--", join(repo, "kmod/ummunotify/with-module.sh"), ...cmd]
    : [vm, "--check-dmesg", "--", ...cmd];

const suites = [
  {
    group: "check",
    name: "type-check (deno check)",
    // Whole folders: every Worker module, fixture and helper, imported or not.
    cmd: [deno, "check", "mod.ts", "src/", "ffi/", "tests/", "bin/", ...examples],
  },
  {
    group: "host",
    name: "host tests, Deno",
    cmd: [deno, "test", "-A", "--no-check", ...hostTests],
    parse: parseDeno,
  },
  {
    group: "host",
    name: "host tests, Bun",
    // bun test stops a test after 5 s by default; ours bound their own waits.
    cmd: [bun, "test", "--timeout", "120000", ...hostTests.map((f) => `./${f}`)],
    parse: parseBun,
  },
  // README's quick start: every example, on Deno and Bun from the sources and
  // on Node from the npm build (user_events in the test VM where this kernel lacks it).
  {
    group: "demo",
    name: "demo: npm run demo (Deno, Bun, Node)",
    cmd: ["npm", "run", "--silent", "demo"],
    parse: parseDemo,
  },
  {
    group: "kmod",
    name: "ummunotify kernel module (VM)",
    cmd: [join(repo, "kmod/ummunotify/test.sh")],
    parse: parsePlain,
  },
  {
    group: "vm",
    name: "kernel tests in the VM, Deno",
    cmd: inVm(deno, "test", "-A", "--no-check", "tests/kernel/"),
    parse: parseDeno,
  },
  {
    group: "vm",
    name: "kernel tests in the VM, Bun",
    cmd: inVm(bun, "test", "--timeout", "120000", "./tests/kernel/"),
    parse: parseBun,
  },
  // What dnt does: build npm/, lint it, pack it, install the tarball, run the tests against it.
  {
    group: "npm",
    name: "npm package: Node, Bun, Deno",
    cmd: ["node", join(repo, "scripts/test_npm.mjs")],
    parse: parsePlain,
  },
];

function parseDeno(out) {
  const m =
    /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/.exec(
      out,
    );
  return m ? { passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) } : null;
}
function parseBun(out) {
  const n = (w) => +(new RegExp(`^\\s*(\\d+) ${w}$`, "m").exec(out)?.[1] ?? 0);
  return /^\s*\d+ pass$/m.test(out)
    ? { passed: n("pass"), failed: n("fail"), skipped: n("skip") }
    : null;
}
function parseDemo(out) {
  // One closing line per runtime: "demo (deno): 5 passed, 0 failed, 0 skipped".
  const lines = [...out.matchAll(/^demo \((\w+)\): (\d+) passed, (\d+) failed, (\d+) skipped$/gm)];
  if (lines.length === 0) return null;
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const m of lines) {
    total.passed += +m[2];
    total.failed += +m[3];
    total.skipped += +m[4];
  }
  // A runtime that printed no closing line (it crashed first) failed.
  total.failed += Math.max(0, 3 - lines.length);
  return total;
}
function parsePlain(out) {
  // A suite's own closing line ("npm-package: N passed, ...") is its total;
  // without one, add up the plain lines (the driver's test prints one per kernel).
  const count = (m) => ({ passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) });
  const closing = [...out.matchAll(/^[\w-]+: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/gm)];
  if (closing.length > 0) return count(closing.at(-1));
  const all = [...out.matchAll(/(\d+) passed, (\d+) failed(?:, (\d+) skipped)?/g)].map(count);
  if (all.length === 0) return null;
  return all.reduce((a, c) => ({
    passed: a.passed + c.passed,
    failed: a.failed + c.failed,
    skipped: a.skipped + c.skipped,
  }));
}

// No colours in any suite's output, nor in what its tests spawn: NO_COLOR, and
// no FORCE_COLOR at all (Deno colours when FORCE_COLOR is set, even to "0").
const suiteEnv = { ...process.env, NO_COLOR: "1" };
delete suiteEnv.FORCE_COLOR;

function run(cmd) {
  return new Promise((resolve) => {
    const child = spawn(cmd[0], cmd.slice(1), {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"],
      env: suiteEnv,
    });
    let out = "";
    const tee = (stream, sink) =>
      stream.on("data", (d) => {
        out += d;
        sink.write(d);
      });
    tee(child.stdout, process.stdout);
    tee(child.stderr, process.stderr);
    child.on("error", (e) => {
      out += String(e);
      resolve({ code: 127, out });
    });
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

const only = process.argv.includes("--only")
  ? process.argv.slice(process.argv.indexOf("--only") + 1)
  : null;
const requireVm = process.env.UMMU_REQUIRE_VM === "1";
const rows = [];
let failed = false;
for (const suite of suites) {
  if (only && !only.includes(suite.group)) continue;
  const cmd = typeof suite.cmd === "function" ? suite.cmd() : suite.cmd;
  console.log(`\n=== ${suite.name}: ${cmd.map((a) => a.replace(repo + "/", "")).join(" ")}`);
  const t0 = Date.now();
  let { code, out } = await run(cmd);
  // A guest that died (a panic under TCG on a loaded host, no output at all) is
  // the machine failing, not a test: run that suite once more, and say so.
  if (suite.group === "vm" && code !== 0 && /ummu-vm: the guest died/.test(out)) {
    console.log(`\n=== ${suite.name}: the guest died (not a test failure); running it once more`);
    ({ code, out } = await run(cmd));
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  // deno-lint-ignore no-control-regex
  const counts = suite.parse?.(out.replace(/\x1b\[[0-9;]*m/g, "")) ?? null;
  let verdict;
  if (code === 77) {
    const why = /not run: (.*)/.exec(out)?.[1] ?? "the test VM could not start";
    verdict = `NOT RUN: ${why}`;
    if (requireVm) failed = true;
  } else if (code !== 0 || (counts && counts.failed > 0)) {
    verdict = `FAILED (exit ${code})`;
    failed = true;
  } else if (suite.parse && !counts) {
    verdict = "FAILED (no test count in its output)";
    failed = true;
  } else verdict = "ok";
  rows.push({ suite: suite.name, verdict, counts, secs });
}

const total = { passed: 0, failed: 0, skipped: 0 };
console.log("\n=== summary");
for (const r of rows) {
  const c = r.counts
    ? `${r.counts.passed} passed, ${r.counts.failed} failed, ${r.counts.skipped} skipped`
    : "";
  console.log(`${r.suite.padEnd(36)} ${c.padEnd(40)} ${r.secs.padStart(4)}s  ${r.verdict}`);
  if (r.counts) { for (const k of Object.keys(total)) total[k] += r.counts[k]; }
  if (!r.counts && r.verdict === "ok") total.passed += 1;
  if (!r.counts && r.verdict.startsWith("FAILED")) total.failed += 1;
}
if (total.failed === 0 && failed) total.failed = 1; // a suite failed without counting tests (or did not run in CI)
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(failed ? 1 : 0);
