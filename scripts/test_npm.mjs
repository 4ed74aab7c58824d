#!/usr/bin/env node
// The npm package, tested as users get it (`npm run test:npm`), as dnt does:
//
// 1. builds npm/ (scripts/build_npm.mjs) unless --no-build;
// 2. lints it: publint, and @arethetypeswrong/cli (profile esm-only: the
//    package is ESM with top-level await, which require() cannot load);
// 3. `npm pack`s it, installs the tarball (and koffi) into a scratch project
//    outside the repo (under the system temp dir, readable by the
//    unprivileged test's user), copies the compiled tests there (their
//    imports already point at the package), and runs them under Node
//    (`node --test`), Bun (`bun test`) and Deno (`deno test`, resolving the
//    package from the scratch project's node_modules as `npm:` packages are);
// 4. prints a table and one closing line "npm-package: N passed, M failed, K skipped"
//    (the two lints count as one check each).
//
//   node scripts/test_npm.mjs [--no-build] [--keep] [--vm] [--only node|bun|deno ...]
//
// --vm also runs the kernel tests (tests/kernel/) of the installed package in
// the test VM (tests/vm/run.sh) under each runtime.
import { spawn } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = (name) => join(repo, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const only = args.includes("--only") ? args.slice(args.indexOf("--only") + 1) : null;
const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };

// A suite that hangs (a thread blocked in the kernel keeps Node from exiting)
// is killed, with its process group, after this long.
const SUITE_TIMEOUT_MS = Number(process.env.UMMU_NPM_SUITE_TIMEOUT_MS ?? 15 * 60_000);

function run(cmd, cwd, { quiet = false, timeoutMs = SUITE_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd[0], cmd.slice(1), {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env,
      detached: true,
    });
    const timer = setTimeout(() => {
      out += `\ntest:npm: killed after ${timeoutMs / 1000} s\n`;
      process.stdout.write(
        `\ntest:npm: ${cmd[0]} timed out after ${timeoutMs / 1000} s: killing it\n`,
      );
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch { /* already gone */ }
    }, timeoutMs);
    let out = "";
    const tee = (stream, sink) =>
      stream.on("data", (d) => {
        out += d;
        if (!quiet) sink.write(d);
      });
    tee(child.stdout, process.stdout);
    tee(child.stderr, process.stderr);
    child.on("error", (e) => resolve({ code: 127, out: out + String(e) }));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
  });
}
// deno-lint-ignore no-control-regex
const clean = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

function parseNode(out) {
  const n = (w) => +(new RegExp(`^(?:ℹ|#) ${w} (\\d+)$`, "m").exec(out)?.[1] ?? NaN);
  const r = {
    passed: n("pass"),
    failed: n("fail") + (n("cancelled") || 0),
    skipped: (n("skipped") || 0) + (n("todo") || 0),
  };
  return Number.isNaN(r.passed) ? null : r;
}
function parseBun(out) {
  const n = (w) => +(new RegExp(`^\\s*(\\d+) ${w}$`, "m").exec(out)?.[1] ?? 0);
  return /^\s*\d+ pass$/m.test(out)
    ? { passed: n("pass"), failed: n("fail"), skipped: n("skip") }
    : null;
}
function parseDeno(out) {
  const m =
    /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/.exec(
      out,
    );
  return m ? { passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) } : null;
}

const rows = [];
const row = (name, code, counts, note = "") => {
  const ok = code === 0 && counts !== null && counts.failed === 0;
  rows.push({
    name,
    ok,
    counts,
    note: note ||
      (ok ? "ok" : counts === null ? `FAILED (exit ${code}, no count)` : `FAILED (exit ${code})`),
  });
};

// 1. build
if (!args.includes("--no-build")) {
  console.log("\n=== build: node scripts/build_npm.mjs");
  const b = await run([process.execPath, join(repo, "scripts", "build_npm.mjs")], repo);
  if (b.code !== 0) {
    console.log("npm-package: 0 passed, 1 failed (the build failed)");
    process.exit(1);
  }
}
const npmDir = join(repo, "npm");
const manifest = JSON.parse(readFileSync(join(npmDir, "package.json"), "utf8"));

// 2. lints
console.log("\n=== publint npm/");
const pl = await run([bin("publint"), "run", "--strict", npmDir], repo);
row("publint (strict)", pl.code, {
  passed: pl.code === 0 ? 1 : 0,
  failed: pl.code === 0 ? 0 : 1,
  skipped: 0,
});
console.log("\n=== attw --pack npm/ --profile esm-only");
const at = await run(
  [bin("attw"), "--pack", npmDir, "--profile", "esm-only", "--format", "ascii"],
  repo,
);
row("arethetypeswrong (esm-only)", at.code, {
  passed: at.code === 0 ? 1 : 0,
  failed: at.code === 0 ? 0 : 1,
  skipped: 0,
});

// 3. pack, install into a scratch project outside the repo
const packDir = join(repo, ".cache", "npm-pack");
rmSync(packDir, { recursive: true, force: true });
mkdirSync(packDir, { recursive: true });
console.log("\n=== npm pack npm/");
const pk = await run(["npm", "pack", npmDir, "--pack-destination", packDir, "--silent"], repo);
const tarball = readdirSync(packDir).find((f) => f.endsWith(".tgz"));
if (pk.code !== 0 || !tarball) {
  console.log("npm-package: 0 passed, 1 failed (npm pack failed)");
  process.exit(1);
}
// /var/tmp rather than /tmp: the test VM sees the host's files, except /tmp.
const scratch = mkdtempSync(join(existsSync("/var/tmp") ? "/var/tmp" : tmpdir(), "ummu-npm-test-"));
chmodSync(scratch, 0o755); // the unprivileged test re-runs a fixture as nobody
const versionOf = (name) =>
  JSON.parse(readFileSync(join(repo, "node_modules", name, "package.json"), "utf8")).version;
writeFileSync(
  join(scratch, "package.json"),
  JSON.stringify(
    {
      name: "ummu-npm-test",
      private: true,
      type: "module",
      // koffi: the optional peer dependency Node needs. @types/node: `deno test`
      // type-checks the package's declarations, and with a node_modules folder
      // Deno takes the node: modules' types from there.
      dependencies: {
        [manifest.name]: `file:${join(packDir, tarball)}`,
        koffi: versionOf("koffi"),
      },
      devDependencies: { "@types/node": versionOf("@types/node") },
    },
    null,
    2,
  ) + "\n",
);
console.log(`\n=== npm install ${tarball} koffi@${versionOf("koffi")} in ${scratch}`);
const ins = await run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], scratch);
if (ins.code !== 0) {
  console.log("npm-package: 0 passed, 1 failed (npm install of the tarball failed)");
  process.exit(1);
}
cpSync(join(repo, ".cache", "npm-build", "tests"), join(scratch, "tests"), { recursive: true });
const testFiles = readdirSync(join(scratch, "tests")).filter((f) => f.endsWith(".test.js")).sort()
  .map((f) => `tests/${f}`);

// 4. the suites
const suites = [
  {
    key: "node",
    name: "installed package, Node",
    cmd: [process.execPath, "--test", "--test-reporter=spec", ...testFiles],
    parse: parseNode,
  },
  {
    key: "bun",
    name: "installed package, Bun",
    cmd: [bin("bun"), "test", ...testFiles.map((f) => `./${f}`)],
    parse: parseBun,
  },
  {
    key: "deno",
    name: "installed package, Deno",
    cmd: [bin("deno"), "test", "-A", ...testFiles],
    parse: parseDeno,
  },
];
// --vm: the kernel tests (tests/kernel/) of the installed package inside the
// test VM (tests/vm/run.sh), under each runtime. Exit 77 (no qemu or kernel)
// is reported as not run; with UMMU_REQUIRE_VM=1 that fails the run.
if (args.includes("--vm")) {
  const kernelTests = existsSync(join(scratch, "tests", "kernel"))
    ? readdirSync(join(scratch, "tests", "kernel")).filter((f) => f.endsWith(".test.js")).sort()
      .map((f) => `tests/kernel/${f}`)
    : [];
  const inVm = (
    cmd,
  ) => [
    join(repo, "tests", "vm", "run.sh"),
    "--timeout",
    "1200",
    "--",
    "sh",
    "-c",
    `cd '${scratch}' && export DENO_DIR=/tmp/deno-dir NO_COLOR=1 && ${cmd}`,
  ];
  suites.push(
    {
      key: "node",
      name: "kernel tests in the VM, Node",
      cmd: inVm(`node --test --test-reporter=spec ${kernelTests.join(" ")}`),
      parse: parseNode,
      vm: true,
    },
    {
      key: "bun",
      name: "kernel tests in the VM, Bun",
      cmd: inVm(`'${bin("bun")}' test ${kernelTests.map((f) => `./${f}`).join(" ")}`),
      parse: parseBun,
      vm: true,
    },
    {
      key: "deno",
      name: "kernel tests in the VM, Deno",
      cmd: inVm(`'${bin("deno")}' test -A --no-check ${kernelTests.join(" ")}`),
      parse: parseDeno,
      vm: true,
    },
  );
}
for (const s of suites) {
  if (only && !only.includes(s.key)) continue;
  console.log(`\n=== ${s.name}: ${s.cmd.map((a) => a.replace(repo + "/", "")).join(" ")}`);
  const t0 = Date.now();
  const r = await run(s.cmd, s.vm ? repo : scratch);
  const counts = s.parse(clean(r.out));
  if (s.vm && r.code === 77) {
    const why = /not run: (.*)/.exec(r.out)?.[1] ?? "the test VM could not start";
    rows.push({
      name: s.name,
      ok: process.env.UMMU_REQUIRE_VM !== "1",
      counts: { passed: 0, failed: 0, skipped: 0 },
      note: `NOT RUN: ${why}`,
    });
  } else row(s.name, r.code, counts, "");
  rows.at(-1).secs = ((Date.now() - t0) / 1000).toFixed(0);
}

if (!args.includes("--keep")) rmSync(scratch, { recursive: true, force: true });
else console.log(`\nscratch project kept: ${scratch}`);

const total = { passed: 0, failed: 0, skipped: 0 };
console.log(
  "\n=== summary (tests/abi*.test.ts check the ffi/ sources against kernel headers: npm test runs them)",
);
for (const r of rows) {
  const c = r.counts
    ? `${r.counts.passed} passed, ${r.counts.failed} failed, ${r.counts.skipped} skipped`
    : "";
  console.log(
    `${r.name.padEnd(30)} ${c.padEnd(40)} ${(r.secs ?? "").padStart(4)}${
      r.secs ? "s" : " "
    }  ${r.note}`,
  );
  if (r.counts) { for (const k of Object.keys(total)) total[k] += r.counts[k]; }
  else total.failed += 1;
}
console.log(
  `npm-package: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`,
);
process.exit(rows.every((r) => r.ok) ? 0 : 1);
