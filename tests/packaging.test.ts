/**
 * The manifests and what the registries' own tools say about them: package.json
 * and deno.json describe one package, `npm install` in a fresh clone leaves
 * package-lock.json as committed, `deno publish --dry-run` passes, and the
 * CHANGELOG has the version. (scripts/test_npm.mjs tests the built npm package.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
const denoJson = JSON.parse(readFileSync(join(repo, "deno.json"), "utf8"));
const env = { ...process.env, NO_COLOR: "1" };
const PROJECT = "https://github.com/ummu-dev/ummu";

test("package.json and deno.json: one version, the same entries, the package names mapped", () => {
  assert.equal(pkg.version, denoJson.version);
  assert.deepEqual(pkg.exports, denoJson.exports, "package.json exports (Bun) = deno.json exports");
  for (const [sub, file] of Object.entries(denoJson.exports as Record<string, string>)) {
    assert.ok(existsSync(join(repo, file)), `deno.json exports ${sub}: ${file} does not exist`);
    // The examples and the README import the npm names; in the repo they resolve to the sources.
    const name = sub === "." ? pkg.name : `${pkg.name}/${sub.slice(2)}`;
    assert.equal(denoJson.imports[name], file, `deno.json imports["${name}"]`);
  }
});

test("package.json: where the project lives (repository, homepage, bugs)", () => {
  assert.match(pkg.repository?.url ?? "", /github\.com\/ummu-dev\/ummu(\.git)?$/);
  assert.ok(String(pkg.homepage).startsWith(PROJECT), `homepage ${pkg.homepage}`);
  assert.ok(String(pkg.bugs?.url).startsWith(PROJECT), `bugs ${JSON.stringify(pkg.bugs)}`);
  assert.match(pkg.description, /Deno, Bun and Node/);
});

test("CHANGELOG.md: an Unreleased section and one for the current version", () => {
  const log = readFileSync(join(repo, "CHANGELOG.md"), "utf8");
  assert.match(log, /^## Unreleased$/m);
  assert.match(log, new RegExp(`^## ${pkg.version.replaceAll(".", "\\.")} `, "m"));
});

test("npm install in a fresh clone leaves package-lock.json as committed", () => {
  // The lock as npm writes it for this package.json: a copy of the two files,
  // the lock recomputed from them (no download: --offline, --package-lock-only).
  const dir = mkdtempSync(join(tmpdir(), "ummu-lock-"));
  try {
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(repo, f), join(dir, f));
    const r = spawnSync(
      "npm",
      [
        "install",
        "--package-lock-only",
        "--ignore-scripts",
        "--offline",
        "--no-audit",
        "--no-fund",
      ],
      { cwd: dir, env, encoding: "utf8" },
    );
    assert.equal(r.status, 0, `npm install --package-lock-only: ${r.stdout}${r.stderr}`);
    assert.equal(
      readFileSync(join(dir, "package-lock.json"), "utf8"),
      readFileSync(join(repo, "package-lock.json"), "utf8"),
      "npm rewrote package-lock.json: run npm install and commit the lock it writes",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("deno publish --dry-run passes, and publishes the library with its README, CHANGELOG and LICENSE", () => {
  // --allow-dirty: other changes in this working tree are not the package's
  // concern here (a clean clone's tree stays clean: the test above).
  const r = spawnSync(
    join(repo, "node_modules", ".bin", "deno"),
    ["publish", "--dry-run", "--allow-dirty"],
    { cwd: repo, env, encoding: "utf8" },
  );
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(out, /Success Dry run complete/);
  for (const f of ["mod.ts", "README.md", "CHANGELOG.md", "LICENSE", "deno.json"]) {
    assert.ok(out.includes(`file://${join(repo, f)} `), `${f} is not published:\n${out}`);
  }
  assert.doesNotMatch(out, /\.test\.ts/, "tests are published");
});
