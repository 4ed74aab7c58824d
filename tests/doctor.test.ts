/**
 * `ummu doctor` against the facts of this machine, each read here
 * independently of the doctor: the kernel's userfaultfd features (UFFDIO_API),
 * the kernel config, tracefs, the PMUs in sysfs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import { UserfaultFd } from "../mod.ts";
import { doctor, DOCTOR_EXIT, type DoctorCheck, formatDoctorReport } from "../src/doctor.ts";
import { resources } from "./helpers.ts";

const isRoot = process.getuid?.() === 0;
const thisRuntime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const config = (() => {
  try {
    return gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
  } catch {
    return null;
  }
})();
const byName = (checks: DoctorCheck[], name: string) => checks.find((c) => c.name === name)!;

test("doctor: the runtime's own adapter, the kernel, the user", async () => {
  const r = await doctor();
  assert.equal(r.runtime.name, thisRuntime, "each runtime loads its own FFI adapter");
  assert.equal(r.runtime.ffiError, null);
  assert.equal(r.kernel, readFileSync("/proc/sys/kernel/osrelease", "utf8").trim());
  assert.equal(r.user.uid, process.getuid?.());
  assert.deepEqual(r.checks.map((c) => c.name), [
    "userfaultfd",
    "ummunotify",
    "user_events",
    "perf",
  ]);
});

test("doctor: userfaultfd features are the kernel's (MOVE among them), through the syscall", {
  skip: isRoot ? false : "needs root (full userfaultfd)",
}, async () => {
  const r = await doctor();
  const u = byName(r.checks, "userfaultfd");
  const caps = UserfaultFd.probe();
  assert.equal(u.status, "ok");
  assert.deepEqual(new Set(u.facts.features as string[]), caps.features);
  assert.equal(u.facts.featureMask, caps.featureMask);
  assert.ok((u.facts.features as string[]).includes("MOVE"), "Linux 6.8+ has UFFDIO_MOVE");
  assert.ok(caps.featureMask & (1 << 16), "UFFD_FEATURE_MOVE is bit 16 of the mask");
  assert.equal(u.facts.syscall, "ok");
  assert.equal(
    u.facts.unprivilegedSysctl,
    Number(readFileSync("/proc/sys/vm/unprivileged_userfaultfd", "utf8")),
  );
  if (existsSync("/dev/userfaultfd")) assert.equal(u.facts.deviceProbe, "ok");
  assert.equal(r.exitCode & DOCTOR_EXIT.USERFAULTFD, 0);
});

test("doctor: ummunotify picks the device when it exists, else the userfaultfd backend", {
  skip: isRoot ? false : "needs root (full userfaultfd)",
}, async () => {
  const r = await doctor();
  const n = byName(r.checks, "ummunotify");
  assert.equal(n.status, "ok");
  assert.equal(n.facts.backend, existsSync("/dev/ummunotify") ? "device" : "userfaultfd");
  assert.equal(r.exitCode & DOCTOR_EXIT.UMMUNOTIFY, 0);
});

test("doctor: user_events as this kernel has it (absent here: CONFIG_USER_EVENTS is not set)", async () => {
  const r = await doctor();
  const e = byName(r.checks, "user_events");
  const mounted = readFileSync("/proc/self/mounts", "utf8").split("\n").filter((l) =>
    l.split(" ")[2] === "tracefs"
  )
    .map((l) => l.split(" ")[1]);
  assert.deepEqual(e.facts.tracefs, mounted);
  const root = e.facts.root as string | null;
  const hasData = root !== null && existsSync(`${root}/user_events_data`);
  if (config !== null) {
    const set = /^CONFIG_USER_EVENTS=y$/m.test(config);
    assert.equal(
      e.facts.config,
      set ? "y" : /^# CONFIG_USER_EVENTS is not set$/m.test(config) ? "n" : null,
    );
    if (!set) {
      assert.equal(e.status, "unavailable");
      assert.equal(hasData, false);
      assert.match(e.summary, /built without CONFIG_USER_EVENTS/);
      assert.ok(
        e.fixes.some((f) => f.includes("CONFIG_USER_EVENTS=y") && f.includes("tests/vm/run.sh")),
      );
    }
  }
  if (!hasData) {
    assert.equal(e.status, "unavailable");
    assert.ok(r.exitCode & DOCTOR_EXIT.USER_EVENTS, "user_events sets its exit bit");
  } else if (isRoot) {
    assert.equal(e.status, "ok");
  }
});

test("doctor: perf without a hardware PMU says so (no cycles, BTS or LBR)", async () => {
  const r = await doctor();
  const p = byName(r.checks, "perf");
  const pmus = readdirSync("/sys/bus/event_source/devices").sort();
  assert.deepEqual(p.facts.pmus, pmus);
  assert.equal(
    p.facts.paranoid,
    Number(readFileSync("/proc/sys/kernel/perf_event_paranoid", "utf8")),
  );
  assert.equal(p.facts.bts, pmus.includes("intel_bts"));
  if (!pmus.some((d) => /^(cpu|cpu_core|cpu_atom|armv8_.*)$/.test(d))) {
    assert.deepEqual(p.facts.hardwarePmu, []);
    assert.equal(p.facts.lbr, null);
    assert.notEqual(p.facts.hardwareEvents, "ok");
    if (isRoot) {
      assert.equal(p.facts.softwareEvents, "ok");
      assert.equal(p.status, "limited");
    }
    assert.ok(p.details.some((d) => /hardware PMU: none/.test(d)));
    assert.ok(p.details.some((d) => /LBR: unavailable/.test(d)));
  }
  assert.equal(
    r.exitCode & ~(DOCTOR_EXIT.USERFAULTFD | DOCTOR_EXIT.UMMUNOTIFY | DOCTOR_EXIT.USER_EVENTS),
    0,
    "perf sets no exit bit",
  );
});

test("doctor: the table names every feature and the exit status; nothing leaks", async () => {
  const before = resources();
  const r = await doctor();
  assert.equal(resources().fds, before.fds, "every fd the doctor opened is closed");
  const text = formatDoctorReport(r);
  for (const c of r.checks) assert.match(text, new RegExp(`^${c.name} +${c.status} +`, "m"));
  assert.match(text, new RegExp(`^exit status ${r.exitCode}: `, "m"));
});

test("ummu doctor: the command's --json and exit status; a usage error is 2", async () => {
  const bin = new URL("../bin/ummu.ts", import.meta.url).pathname;
  const pre = thisRuntime === "deno" ? ["run", "-A", "--no-check", bin] : [bin];
  const r = await doctor();
  const out = spawnSync(process.execPath, [...pre, "doctor", "--json"], { encoding: "utf8" });
  assert.equal(out.status, r.exitCode, out.stderr);
  const json = JSON.parse(out.stdout);
  assert.equal(json.runtime.name, thisRuntime);
  assert.deepEqual(
    json.checks.map((c: DoctorCheck) => [c.name, c.status]),
    r.checks.map((c) => [c.name, c.status]),
  );
  const bad = spawnSync(process.execPath, [...pre, "doctor", "--frobnicate"], { encoding: "utf8" });
  assert.equal(bad.status, DOCTOR_EXIT.USAGE);
  assert.match(bad.stderr, /unknown argument --frobnicate/);
});
