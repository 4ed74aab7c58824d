/**
 * README.md works as written, in the repository: every ```ts block is a
 * complete program (or a module they import) that type-checks against the
 * package names (`ummu`, `ummu/user_events`: deno.json maps them to the
 * sources), and each one marked `run` runs under this runtime (Deno or Bun);
 * every ```sh block marked `run in=repo` runs here. What each block gets is its
 * `<!-- readme-test: ... -->` line (scripts/readme_blocks.mjs explains them);
 * scripts/test_npm.mjs does the same against the installed package, on Node too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  readmeBlocks,
  shellCommands,
  SNIPPET_FILE_SIZE,
  snippetFileName,
  statedOutput,
} from "../scripts/readme_blocks.mjs";
import { UserEvents } from "../src/user_events/mod.ts";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = join(repo, "node_modules", ".bin");
const deno = join(bin, "deno");
const runtime = "Deno" in globalThis ? "deno" : "bun";
const blocks = readmeBlocks(readFileSync(join(repo, "README.md"), "utf8"));
const env = { ...process.env, NO_COLOR: "1", PATH: `${bin}:${process.env.PATH}` };

test("README: every ts and sh block says what the tests do with it", () => {
  const labelled = blocks.filter((b) => b.lang === "ts" || b.lang === "sh");
  assert.ok(labelled.length >= 8, `only ${labelled.length} ts/sh blocks found in README.md`);
  const wrong = labelled.filter((b) => b.error !== null).map((b) => `line ${b.line}: ${b.error}`);
  assert.deepEqual(wrong, []);
});

// The snippets are written into a folder of the repository that deno.json
// does not exclude (.cache/ is excluded), so that its import map applies.
const tsBlocks = blocks.filter((b) => b.lang === "ts" && b.error === null);
const dir = join(repo, "tests", `.readme-${process.pid}`);
/** deno check of every snippet at once: the diagnostics, per snippet file. */
let checked: Map<string, string[]> | null = null;
function checkAll(): Map<string, string[]> {
  checked ??= (() => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const b of tsBlocks) writeFileSync(join(dir, snippetFileName(b)), b.code);
    const files = tsBlocks.map((b) => join(dir, snippetFileName(b)));
    const r = spawnSync(deno, ["check", ...files], { cwd: repo, env, encoding: "utf8" });
    const out = `${r.stdout}${r.stderr}`;
    // deno check says "Check <file>" for each file it checks (and exits 0 having
    // checked nothing if a config excludes the folder).
    const unchecked = tsBlocks.map(snippetFileName).filter((f) => !out.includes(`${f}\n`));
    if (unchecked.length > 0) throw new Error(`deno check did not check ${unchecked}:\n${out}`);
    // One diagnostic per "TSnnnn [ERROR]" paragraph; it names its file in an "at file://" line.
    const byFile = new Map<string, string[]>(files.map((f) => [f, []]));
    for (const diag of out.split(/\n(?=TS\d+ \[ERROR\])/)) {
      const at = /at (file:\/\/\S+?):\d+:\d+/.exec(diag);
      const file = at ? fileURLToPath(at[1]) : null;
      if (file !== null && byFile.has(file)) byFile.get(file)!.push(diag.trim());
    }
    if (r.status !== 0 && [...byFile.values()].every((d) => d.length === 0)) {
      // Failed, but on no snippet: the library itself (npm test's type-check suite says where).
      if (!/TS\d+ \[ERROR\]/.test(out)) throw new Error(`deno check failed:\n${out}`);
    }
    return byFile;
  })();
  return checked;
}

for (const b of tsBlocks) {
  const name = snippetFileName(b);
  test(`README line ${b.line}: ${name} type-checks (deno check, the package names)`, () => {
    const diagnostics = checkAll().get(join(dir, name));
    assert.deepEqual(diagnostics, [], `README.md line ${b.line}`);
  });
}

/** Runs one snippet (already written by checkAll) under this runtime, here or in the test VM. */
function runSnippet(file: string, files: string[], inVm: boolean) {
  const cwd = mkdtempSync(join(tmpdir(), "ummu-readme-"));
  try {
    for (const f of files) {
      writeFileSync(join(cwd, f), "");
      truncateSync(join(cwd, f), SNIPPET_FILE_SIZE);
    }
    const cmd = runtime === "deno"
      ? [process.execPath, "run", "-A", file]
      : [process.execPath, file];
    const argv = inVm ? [join(repo, "tests", "vm", "run.sh"), "--", ...cmd] : cmd;
    return spawnSync(argv[0], argv.slice(1), {
      cwd: inVm ? repo : cwd,
      env,
      encoding: "utf8",
      timeout: 180_000,
    });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

for (const b of tsBlocks.filter((b) => b.directive!.mode === "run")) {
  const d = b.directive!;
  const name = `README line ${b.line}: runs on ${runtime}${d.vm ? " (user_events)" : ""}`;
  const inVm = d.vm && !UserEvents.available();
  if (d.runtimes !== null && !d.runtimes.includes(runtime)) {
    test(name, { skip: `not on ${runtime}: ${d.reason}` }, () => {});
    continue;
  }
  test(name, { timeout: 240_000 }, (t) => {
    const diagnostics = checkAll().get(join(dir, snippetFileName(b)));
    assert.deepEqual(diagnostics, [], "it must type-check first");
    const r = runSnippet(join(dir, snippetFileName(b)), d.files, inVm);
    if (inVm && r.status === 77 && process.env.UMMU_REQUIRE_VM !== "1") {
      // The VM could not start (no qemu or kernel): say so (Deno's node:test counts it passed).
      console.log(`skipped: the test VM did not run: ${r.stderr.trim()}`);
      t.skip(`needs user_events: the test VM did not run (${/not run: (.*)/.exec(r.stderr)?.[1]})`);
      return;
    }
    assert.equal(
      r.status,
      0,
      `README.md line ${b.line} exited ${r.status}:\n${r.stdout}${r.stderr}`,
    );
    // What its comments say it prints (`console.log(x); // 0`), in order.
    const lines = r.stdout.split("\n").map((l) => l.trim());
    let at = 0;
    for (const value of statedOutput(b.code)) {
      const found = lines.indexOf(value, at);
      assert.ok(
        found >= 0,
        `README.md line ${b.line} says it prints ${value}; it printed:\n${r.stdout}`,
      );
      at = found + 1;
    }
  });
}

for (const b of blocks.filter((b) => b.lang === "sh" && b.error === null)) {
  const d = b.directive!;
  const commands = shellCommands(b.code);
  const name = `README line ${b.line}: ${commands.join("; ")}`;
  if (d.mode === "not-run") {
    test(name, { skip: `not run: ${d.reason}` }, () => {});
  } else if (d.in === "package") {
    test(
      name,
      { skip: "run in a project that installed the package, by scripts/test_npm.mjs" },
      () => {},
    );
  } else {
    test(name, { timeout: 120_000 }, () => {
      for (const c of commands) {
        const r = spawnSync("sh", ["-c", c], { cwd: repo, env, encoding: "utf8" });
        assert.ok(
          d.exit.includes(r.status ?? -1),
          `${c}: exit ${r.status}, expected ${d.exit.join(" or ")}\n${r.stdout}${r.stderr}`,
        );
      }
    });
  }
}

test("README snippets: the folder they were written to is removed", () => {
  if (tsBlocks.length > 0) checkAll();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(existsSync(dir), false, `${dir} still exists`);
});
