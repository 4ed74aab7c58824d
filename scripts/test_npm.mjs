#!/usr/bin/env node
// The npm package, tested as users get it (`npm run test:npm`), as dnt does:
//
// 1. builds npm/ (scripts/build_npm.mjs) unless --no-build;
// 2. lints it: publint, and @arethetypeswrong/cli (profile esm-only: the
//    package is ESM with top-level await, which require() cannot load);
// 3. `npm pack`s it and installs the tarball (and koffi) into a scratch project
//    outside the repo (under the system temp dir, readable by the
//    unprivileged test's user);
// 4. checks what a user meets there: the package's declarations compile in a
//    strict Node project (`"strict": true`, `"types": ["node"]`, `"lib":
//    ["es2022"]`; moduleResolution node16 and bundler) that imports every entry;
//    README.md's snippets compile there and run on Node (compiled), Bun and Deno;
//    README's sh blocks marked `in=package` run there (scripts/readme_blocks.mjs);
//    every example runs from node_modules/ummu/examples/ on each runtime and
//    prints what it must (user_events ones: in the test VM with --vm);
// 5. copies the compiled tests there (their imports already point at the
//    package) and runs them under Node (`node --test`), Bun (`bun test`) and
//    Deno (`deno test`, resolving the package from the scratch project's
//    node_modules as `npm:` packages are);
// 6. prints a table and one closing line "npm-package: N passed, M failed, K skipped"
//    (each lint and each check of 4 counts as one).
//
//   node scripts/test_npm.mjs [--no-build] [--keep] [--vm] [--no-suites]
//                             [--only types|node|bun|deno ...]
//
// --vm also runs the kernel tests (tests/kernel/) of the installed package, and
// the examples and snippets that need user_events, in the test VM
// (tests/vm/run.sh) under each runtime. --no-suites skips the test suites of 5.
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  readmeBlocks,
  shellCommands,
  SNIPPET_FILE_SIZE,
  snippetFileName,
  statedOutput,
} from "./readme_blocks.mjs";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = (name) => join(repo, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const only = args.includes("--only") ? args.slice(args.indexOf("--only") + 1) : null;
// No colours: NO_COLOR, and no FORCE_COLOR at all (Deno colours when it is set, even to "0").
const env = { ...process.env, NO_COLOR: "1" };
delete env.FORCE_COLOR;

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
      // fast-check: the property-based campaign (tests/campaign/) runs from the package too.
      // The OpenTelemetry packages: ummu/otel's optional peers, which its tests load.
      devDependencies: {
        "@types/node": versionOf("@types/node"),
        "fast-check": versionOf("fast-check"),
        ...Object.fromEntries(
          Object.keys(manifest.peerDependencies ?? {}).filter((p) =>
            p.startsWith("@opentelemetry/")
          )
            .map((p) => [p, versionOf(p)]),
        ),
      },
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

// The test VM (tests/vm/run.sh) running `cmd` in the scratch project.
const inVm = (cmd) => [
  join(repo, "tests", "vm", "run.sh"),
  "--timeout",
  "1200",
  "--",
  "sh",
  "-c",
  `cd '${scratch}' && export DENO_DIR=/tmp/deno-dir NO_COLOR=1 && ${cmd}`,
];
const wantVm = args.includes("--vm");
// Whether this kernel has user_events, as the installed package sees it (on Node).
let userEventsAvailable = null;
const userEventsHere = () =>
  userEventsAvailable ??= spawnSync(process.execPath, [
    "--input-type=module",
    "-e",
    `import { UserEvents } from "${manifest.name}/user_events"; process.exit(UserEvents.available() ? 0 : 1);`,
  ], { cwd: scratch }).status === 0;
const selected = (key) => !only || only.includes(key);

// 4. What a user of the package meets: its types in a strict project, the
// README's snippets and commands, and the examples, on each runtime.
/** One check: a row that passes if `fn` returns true (false or a throw: fails, with its output). */
async function check(key, name, fn) {
  if (!selected(key)) return;
  const t0 = Date.now();
  let ok = false, note = "";
  try {
    const r = await fn();
    ok = r === true;
    if (typeof r === "string") note = r; // a reason it did not run: a skip
  } catch (e) {
    note = `FAILED: ${e instanceof Error ? e.message : e}`;
  }
  const skipped = !ok && note !== "" && !note.startsWith("FAILED");
  rows.push({
    name,
    ok: ok || skipped,
    counts: { passed: ok ? 1 : 0, failed: ok || skipped ? 0 : 1, skipped: skipped ? 1 : 0 },
    note: ok ? "ok" : skipped ? `skipped: ${note}` : note || "FAILED",
    secs: ((Date.now() - t0) / 1000).toFixed(0),
  });
  console.log(`${ok ? "ok" : skipped ? "skipped" : "FAILED"}: ${name}${note ? ` (${note})` : ""}`);
}
/** Runs cmd (quietly); on an unexpected status, throws with its output. */
async function expectRun(cmd, cwd, { exit = [0], timeoutMs = 300_000 } = {}) {
  const r = await run(cmd, cwd, { quiet: true, timeoutMs });
  if (!exit.includes(r.code)) {
    throw new Error(`${cmd.join(" ")}: exit ${r.code} (expected ${exit.join(" or ")})\n${r.out}`);
  }
  return r.out;
}
const runtimeCmd = {
  node: (file) => [process.execPath, file],
  bun: (file) => [bin("bun"), file],
  deno: (file) => [bin("deno"), "run", "-A", file],
};
const entryNames = Object.keys(manifest.exports).filter((k) => k !== "./package.json")
  .map((k) => (k === "." ? manifest.name : `${manifest.name}/${k.slice(2)}`));
const tsc = [process.execPath, join(repo, "node_modules", "typescript", "bin", "tsc")];
const strictOptions = (module, moduleResolution) => ({
  strict: true,
  types: ["node"],
  lib: ["es2022"],
  target: "es2022",
  module,
  moduleResolution,
});

console.log("\n=== the package's types in a strict Node project (no DOM library)");
mkdirSync(join(scratch, "types"));
writeFileSync(
  join(scratch, "types", "index.ts"),
  entryNames.map((n, i) => `import * as entry${i} from "${n}";\n`).join("") +
    `export const entries = [${entryNames.map((_, i) => `entry${i}`).join(", ")}];\n`,
);
for (const [module, resolution] of [["node16", "node16"], ["es2022", "bundler"]]) {
  await check("types", `types: strict, moduleResolution ${resolution}`, async () => {
    const config = join(scratch, "types", `tsconfig.${resolution}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: { ...strictOptions(module, resolution), noEmit: true },
        files: ["index.ts"],
      }),
    );
    await expectRun([...tsc, "-p", config], scratch);
    return true;
  });
}

// The README's ts blocks, against the installed package: compiled by tsc in a
// strict project (node16) and run on Node; run as they are on Bun and Deno.
console.log("\n=== README.md: its snippets and commands, against the installed package");
const blocks = readmeBlocks(readFileSync(join(repo, "README.md"), "utf8"));
const snippets = blocks.filter((b) => b.lang === "ts" && b.error === null);
const readmeDir = join(scratch, "readme");
mkdirSync(readmeDir);
for (const b of snippets) writeFileSync(join(readmeDir, snippetFileName(b)), b.code);
writeFileSync(
  join(readmeDir, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: { ...strictOptions("node16", "node16"), outDir: "out", rootDir: "." },
    files: snippets.map(snippetFileName),
  }),
);
let compiled = false;
await check("node", "README snippets: tsc, strict, against the package", async () => {
  await expectRun([...tsc, "-p", join(readmeDir, "tsconfig.json")], scratch);
  return (compiled = true);
});
/** Runs one snippet on one runtime, in a folder with the files it names. */
async function runSnippet(b, rt) {
  const d = b.directive;
  if (d.runtimes !== null && !d.runtimes.includes(rt)) return `not on ${rt}: ${d.reason}`;
  if (rt === "node" && !compiled) throw new Error("tsc did not compile it (above)");
  const file = rt === "node"
    ? join(readmeDir, "out", snippetFileName(b).replace(/\.ts$/, ".js"))
    : join(readmeDir, snippetFileName(b));
  const cwd = mkdtempSync(join(scratch, "run-"));
  for (const f of d.files) {
    writeFileSync(join(cwd, f), "");
    truncateSync(join(cwd, f), SNIPPET_FILE_SIZE);
  }
  let out;
  if (d.vm && !userEventsHere()) {
    if (!wantVm) return "needs user_events: test:npm --vm runs it in the test VM";
    const r = await run(inVm(runtimeCmd[rt](file).map((a) => `'${a}'`).join(" ")), repo, {
      quiet: true,
    });
    if (r.code === 77) return `the test VM did not run: ${/not run: (.*)/.exec(r.out)?.[1]}`;
    if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.out}`);
    out = r.out;
  } else {
    out = await expectRun(runtimeCmd[rt](file), cwd);
  }
  rmSync(cwd, { recursive: true, force: true });
  const lines = clean(out).split("\n").map((l) => l.trim());
  let at = 0;
  for (const value of statedOutput(b.code)) {
    const found = lines.indexOf(value, at);
    if (found < 0) throw new Error(`it says it prints ${value}; it printed:\n${out}`);
    at = found + 1;
  }
  return true;
}
for (const b of snippets.filter((b) => b.directive.mode === "run")) {
  for (const rt of ["node", "bun", "deno"]) {
    await check(rt, `README line ${b.line} snippet, ${rt}`, () => runSnippet(b, rt));
  }
}
// The README's sh blocks meant for a project that installed the package.
const pathEnv = `${join(repo, "node_modules", ".bin")}:${process.env.PATH}`;
for (const b of blocks.filter((b) => b.lang === "sh" && b.directive?.in === "package")) {
  for (const c of shellCommands(b.code)) {
    const key = /^(bun|bunx)\b/.test(c) ? "bun" : /^deno\b/.test(c) ? "deno" : "node";
    await check(key, `README line ${b.line}: ${c}`, async () => {
      await expectRun(["env", `PATH=${pathEnv}`, "sh", "-c", c], scratch, {
        exit: b.directive.exit,
      });
      return true;
    });
  }
}

// The examples, from the installed package, on each runtime: what each must print.
console.log("\n=== the examples, from node_modules/ummu/examples/");
const examples = {
  lazy_file: /all correct: true/,
  live_snapshot: /snapshot matches the state at start: true/,
  dirty_tracking: /round 2 \(after reset\) wrote pages \[17, 1023\]/,
  registration_cache: /freed and reallocated at the same address: stale entry #\d+ caught/,
  perf_page_faults: /faulted in order: 11, 3, 7, 0, 15, 8;/,
  perf_watchpoint: /watchpoint: 5 writes by the Worker \(thread \d+\), value now 500/,
  demo: /^demo \((node|bun|deno)\): [4-7] passed, 0 failed, [0-3] skipped$/m,
  user_events_trace: /user_events: enabled before\/while\/after ftrace: false\/true\/false/,
  user_events_server: /served 3 requests/,
};
const needsUserEvents = new Set(["user_events_trace", "user_events_server"]);
for (const [name, want] of Object.entries(examples)) {
  for (const rt of ["node", "bun", "deno"]) {
    await check(rt, `example ${name}, ${rt}`, async () => {
      const file = join(scratch, "node_modules", manifest.name, "examples", `${name}.js`);
      if (!existsSync(file)) throw new Error(`the package has no examples/${name}.js`);
      let out;
      if (needsUserEvents.has(name) && !userEventsHere()) {
        if (!wantVm) return "needs user_events; test:npm --vm runs it in the test VM";
        const cmd = runtimeCmd[rt](file).map((a) => `'${a}'`).join(" ");
        const r = await run(inVm(`UMMU_DEMO_REQUESTS=3 ${cmd}`), repo, { quiet: true });
        if (r.code === 77) return `the test VM did not run: ${/not run: (.*)/.exec(r.out)?.[1]}`;
        if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.out}`);
        out = r.out;
      } else {
        out = await expectRun(runtimeCmd[rt](file), scratch);
      }
      if (!want.test(clean(out)) || /STALE ENTRY/.test(out)) {
        throw new Error(`output does not match ${want}:\n${out}`);
      }
      return true;
    });
  }
}

// 5. the suites
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
    cmd: [bin("bun"), "test", "--timeout", "120000", ...testFiles.map((f) => `./${f}`)],
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
if (wantVm) {
  const kernelTests = existsSync(join(scratch, "tests", "kernel"))
    ? readdirSync(join(scratch, "tests", "kernel")).filter((f) => f.endsWith(".test.js")).sort()
      .map((f) => `tests/kernel/${f}`)
    : [];
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
  if (args.includes("--no-suites")) continue;
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
const width = Math.max(30, ...rows.map((r) => r.name.length));
for (const r of rows) {
  const c = r.counts
    ? `${r.counts.passed} passed, ${r.counts.failed} failed, ${r.counts.skipped} skipped`
    : "";
  console.log(
    `${r.name.padEnd(width)} ${c.padEnd(40)} ${(r.secs ?? "").padStart(4)}${
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
