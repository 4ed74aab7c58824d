/**
 * Smoke test of the VM harness: the guest runs the test kernel (6.12 with
 * user_events), tracefs is mounted, and the harness's folders are writable.
 *
 * Run: tests/vm/run.sh -- deno test -A tests/kernel/smoke.test.ts
 *      tests/vm/run.sh -- bun test ./tests/kernel/smoke.test.ts
 * Outside the VM every test skips.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { accessSync, constants, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";

const skip = process.env.UMMU_IN_VM === "1" ? false : "runs inside the test VM: tests/vm/run.sh";
const tracing = "/sys/kernel/tracing";

test("the guest kernel is the 6.12 test kernel", { skip }, () => {
  const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  assert.ok(release.startsWith("6.12"), `kernel release ${release}, expected 6.12.*`);
});

test("tracefs is mounted and has user_events", { skip }, () => {
  assert.ok(existsSync(`${tracing}/trace`), `tracefs is not mounted on ${tracing}`);
  assert.ok(existsSync(`${tracing}/user_events_data`), `no ${tracing}/user_events_data`);
  accessSync(`${tracing}/user_events_data`, constants.R_OK | constants.W_OK);
  const status = readFileSync(`${tracing}/user_events_status`, "utf8");
  assert.match(status, /Active: \d+/, `unexpected user_events_status:\n${status}`);
});

test("the harness's writable folders", { skip }, () => {
  const out = process.env.UMMU_VM_OUT;
  assert.ok(out, "UMMU_VM_OUT is not set");
  for (const dir of [out, process.env.HOME ?? "/tmp/home", "/tmp", "/dev/shm"]) {
    const file = `${dir}/ummu-smoke-${process.pid}`;
    writeFileSync(file, "ok");
    assert.equal(readFileSync(file, "utf8"), "ok");
    rmSync(file);
  }
});
