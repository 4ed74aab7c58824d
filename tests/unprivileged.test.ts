/**
 * The unprivileged path, for real: this test re-runs a fixture as uid/gid
 * 65534 (nobody). Without privilege a full userfaultfd is refused with a
 * clear error naming the fixes; UFFD_USER_MODE_ONLY works and serves faults.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const isRoot = process.getuid?.() === 0;
const hasSetpriv = (() => {
  try {
    execFileSync("setpriv", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const skip = !isRoot
  ? "needs root, to switch to an unprivileged user"
  : !hasSetpriv
  ? "needs setpriv (util-linux)"
  : false;

test(
  "unprivileged: full userfaultfd refused with a clear error; user-mode-only works",
  { skip },
  () => {
    const home = mkdtempSync(join(tmpdir(), "ummu-nobody-"));
    chmodSync(home, 0o777);
    const fixture = new URL("./fixtures/unprivileged.ts", import.meta.url).pathname;
    const args = "Deno" in globalThis ? ["run", "-A", "--no-check", fixture] : [fixture]; // Bun and Node run it as is
    const stdout = execFileSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", "--", process.execPath, ...args],
      {
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: home,
          DENO_DIR: join(home, "deno"),
          TMPDIR: home,
          NO_COLOR: "1",
        },
        encoding: "utf8",
      },
    );
    rmSync(home, { recursive: true, force: true });
    const r = JSON.parse(stdout.trim().split("\n").pop()!);
    const sysctl = readFileSync("/proc/sys/vm/unprivileged_userfaultfd", "utf8").trim();
    if (sysctl === "0") {
      assert.equal(r.full.code, "EPERM");
      assert.equal(r.full.call, "userfaultfd");
      assert.match(r.full.message, /vm\.unprivileged_userfaultfd=1/);
      assert.match(r.full.message, /\/dev\/userfaultfd/, "also says the device fallback was tried");
      assert.match(r.full.message, /userModeOnly/);
    } else {
      assert.equal(r.full, "opened");
    }
    assert.deepEqual(r.userModeOnly, { value: 6, pages: 1 });
  },
);
