/**
 * ummunotify and the process around it: a program that forgets close() (or
 * exits, or dies of an uncaught exception) still ends, on every runtime; and
 * without privilege, open() works through a user-mode-only userfaultfd, and
 * what it cannot do says what to do, once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { runChild } from "./helpers.ts";

// Literal URLs: the npm build rewrites them to the compiled fixtures.
const exitFixture = new URL("./fixtures/ummunotify_exit.ts", import.meta.url);
const unprivilegedFixture = new URL("./fixtures/ummunotify_unprivileged.ts", import.meta.url);

for (const what of ["open", "watching", "reading"]) {
  for (const how of ["forget", "exit", "throw"]) {
    // A read left pending is awaited by the program: it keeps the process alive, as it should.
    if (what === "reading" && how === "forget") continue;
    const label = what === "open"
      ? "a notifier it just opened"
      : what === "watching"
      ? "a notifier watching memory"
      : "a notifier with a read pending";
    const verb = how === "forget"
      ? "forgets close() on"
      : how === "exit"
      ? "calls process.exit() with"
      : "throws past";
    test(`a program that ${verb} ${label} ends on its own`, async () => {
      const r = await runChild(exitFixture, [what, how], 30_000);
      assert.equal(r.hung, false, `the process hung: ${r.stderr.slice(-400)}`);
      assert.match(r.stdout, /opened (device|userfaultfd) \d+/, `it ran: ${r.stderr.slice(-400)}`);
      if (what !== "open") assert.match(r.stdout, /events 2/, "the unmap was seen (INVAL, LAST)");
      assert.equal(r.signal, null, `it was killed by ${r.signal}: ${r.stderr.slice(-400)}`);
      assert.equal(r.code, how === "throw" ? 1 : 0, r.stderr.slice(-400));
    });
  }
}

const isRoot = process.getuid?.() === 0;
const hasSetpriv = (() => {
  try {
    execFileSync("setpriv", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const unprivilegedSkip = !isRoot
  ? "needs root, to switch to an unprivileged user"
  : !hasSetpriv
  ? "needs setpriv (util-linux)"
  : false;

test(
  "unprivileged: open() watches through a user-mode-only userfaultfd; a refusal names the real fixes, once",
  { skip: unprivilegedSkip },
  () => {
    const home = mkdtempSync(join(tmpdir(), "ummu-nobody-"));
    chmodSync(home, 0o777);
    const path = unprivilegedFixture.pathname;
    const args = "Deno" in globalThis ? ["run", "-A", "--no-check", path] : [path];
    let stdout: string;
    try {
      stdout = execFileSync(
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
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    const r = JSON.parse(stdout.trim().split("\n").pop()!);
    const sysctl = readFileSync("/proc/sys/vm/unprivileged_userfaultfd", "utf8").trim();
    // Without the driver, auto is the userfaultfd backend; with vm.unprivileged_userfaultfd=0
    // only a user-mode-only userfaultfd opens, and it sees the same events.
    assert.deepEqual(r.auto, {
      backend: "userfaultfd",
      userModeOnly: sysctl === "0",
      changed: true,
      events: ["invalidate", "last"],
    });
    if (sysctl === "0") {
      const m: string = r.fullOnly.message;
      assert.equal(r.fullOnly.code, "EPERM");
      assert.match(m, /vm\.unprivileged_userfaultfd=1/);
      assert.match(m, /leave userModeOnly unset/);
      assert.doesNotMatch(m, /userModeOnly: true/, "no option this API lacks");
      assert.equal(m.split("CAP_SYS_PTRACE").length - 1, 1, `the hint once: ${m}`);
    } else {
      assert.equal(r.fullOnly, "opened (userfaultfd)");
    }
    assert.equal(r.device.code, "ENOENT", JSON.stringify(r.device));
    assert.match(r.device.message, /ummunotify driver is not loaded/);
  },
);
