/**
 * `ummu doctor` against the facts of this machine, each read here
 * independently of the doctor (the kernel's userfaultfd features, the kernel
 * config, tracefs, the PMUs in sysfs), and in the states other machines are
 * in: tracefs unmounted (a fresh machine) and mounted, each in a private mount
 * namespace; an unprivileged user; Deno without permission to look.
 */
import { probeBranchTracing } from "../src/perf/branch_support.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import { UserfaultFd } from "../mod.ts";
import {
  doctor,
  DOCTOR_EXIT,
  DOCTOR_SCHEMA,
  type DoctorCheck,
  type DoctorReport,
  formatDoctorReport,
  VERSION,
} from "../src/doctor.ts";
import { PROJECT_URL, UmmuError } from "../src/errors.ts";
import * as pe from "../ffi/perf_event.ts";
import { runtime } from "../ffi/platform.ts";
import type { PerfEventAttr } from "../src/perf/attr.ts";
import { PerfEvent } from "../src/perf/event.ts";
import { paranoidMeaning } from "../src/perf/open.ts";
import { isSkip, runInMountNamespace, TRACEFS, tracefsMountPoints } from "./tracefs_mount.ts";

const isRoot = process.getuid?.() === 0;
const thisRuntime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const config = (() => {
  try {
    return gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
  } catch {
    return null;
  }
})();
/** The running kernel has user_events: its sysctl exists (independently of the doctor's code). */
const kernelHasUserEvents = existsSync("/proc/sys/kernel/user_events_max");
const byName = (checks: DoctorCheck[], name: string) => checks.find((c) => c.name === name)!;
const isUnknownFact = (x: unknown) =>
  typeof x === "object" && x !== null && typeof (x as { unknown?: unknown }).unknown === "string";

const bin = new URL("../bin/ummu.ts", import.meta.url).pathname;
/** argv running `ummu ARGS` on this runtime (Deno with `denoFlags`). */
function ummu(args: string[], denoFlags = ["-A"]): string[] {
  return thisRuntime === "deno"
    ? [process.execPath, "run", ...denoFlags, "--no-check", "--no-prompt", bin, ...args]
    : [process.execPath, bin, ...args];
}
/**
 * Runs Deno with exactly `denoFlags`: through Deno.Command, because a Deno
 * that Deno's node:child_process starts is given every permission (measured:
 * Deno 2.9, even through sh), whatever its flags say.
 */
function runDeno(args: string[], denoFlags: string[]) {
  const D = (globalThis as {
    Deno: {
      execPath(): string;
      Command: new (cmd: string, o: Record<string, unknown>) => {
        outputSync(): { code: number; stdout: Uint8Array; stderr: Uint8Array };
      };
    };
  }).Deno;
  const out = new D.Command(D.execPath(), {
    args: ummu(args, denoFlags).slice(1),
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).outputSync();
  const text = new TextDecoder();
  return { status: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}
function run(argv: string[], env?: Record<string, string | undefined>) {
  return spawnSync(argv[0], argv.slice(1), {
    encoding: "utf8",
    env: { ...(env ?? process.env), NO_COLOR: "1" },
  });
}
function parseReport(stdout: string, stderr: string): DoctorReport {
  try {
    return JSON.parse(stdout);
  } catch {
    throw new Error(`no JSON report; stdout: ${stdout.slice(0, 500)}; stderr: ${stderr}`);
  }
}

/** Every path a fix or summary names is in the package or at the project's URL: no tests/vm, no kmod/. */
function assertNoRepositoryOnlyPaths(report: DoctorReport) {
  for (const c of report.checks) {
    for (const text of [c.summary, ...c.fixes, ...c.details]) {
      const outsideUrls = text.replaceAll(new RegExp(`${PROJECT_URL}\\S*`, "g"), "URL");
      assert.doesNotMatch(outsideUrls, /tests\/vm|kmod\//, `${c.name}: ${text}`);
    }
  }
}

test("doctor: the runtime's own adapter, the kernel, the user; schema and version", async () => {
  const r = await doctor();
  assert.equal(r.schema, DOCTOR_SCHEMA);
  assert.equal(r.schema, 1);
  assert.equal(r.version, VERSION);
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
  assertNoRepositoryOnlyPaths(r);
});

test("doctor: VERSION is the version of deno.json and package.json", {
  skip: existsSync(new URL("../deno.json", import.meta.url))
    ? false
    : "runs in the repository (the npm package has no deno.json)",
}, () => {
  const deno = JSON.parse(readFileSync(new URL("../deno.json", import.meta.url), "utf8"));
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(VERSION, deno.version);
  assert.equal(VERSION, pkg.version);
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
  assert.equal(u.facts.userModeOnly, "ok", "root may make a user-mode-only userfaultfd too");
  assert.equal(
    u.facts.unprivilegedSysctl,
    Number(readFileSync("/proc/sys/vm/unprivileged_userfaultfd", "utf8")),
  );
  if (existsSync("/dev/userfaultfd")) assert.equal(u.facts.deviceProbe, "ok");
  else assert.equal(u.facts.device, null);
  assert.equal(r.exitCode & DOCTOR_EXIT.USERFAULTFD, 0);
});

test(
  "doctor: ummunotify is what Ummunotify.open() picks: the device if it exists, else userfaultfd",
  {
    skip: isRoot ? false : "needs root (full userfaultfd)",
  },
  async () => {
    const r = await doctor();
    const n = byName(r.checks, "ummunotify");
    assert.equal(n.status, "ok");
    assert.equal(n.facts.backend, existsSync("/dev/ummunotify") ? "device" : "userfaultfd");
    if (!existsSync("/dev/ummunotify")) {
      assert.equal(n.facts.device, null);
      assert.ok(n.details.some((d) => /\/dev\/ummunotify: absent/.test(d)));
    }
    assert.equal(r.exitCode & DOCTOR_EXIT.UMMUNOTIFY, 0);
  },
);

/** What the user_events check must say, from the kernel's sysctl and the tracefs state. */
function assertUserEventsVerdict(e: DoctorCheck, tracefsMounted: boolean, exitCode: number) {
  if (!kernelHasUserEvents) {
    // The kernel comes first: a mount would not help, whatever the mount state.
    assert.equal(e.status, "unavailable");
    assert.equal(e.facts.kernelSupport, false);
    assert.equal(e.facts.cause, "no-kernel-support");
    assert.match(e.summary, /built without CONFIG_USER_EVENTS|has no user_events/);
    assert.doesNotMatch(e.summary, /not mounted/);
    assert.ok(e.fixes.every((f) => !/mount -t tracefs/.test(f)), e.fixes.join("\n"));
    assert.ok(e.fixes.some((f) => /CONFIG_USER_EVENTS=y/.test(f) && f.includes(PROJECT_URL)));
    assert.ok(exitCode & DOCTOR_EXIT.USER_EVENTS, "user_events sets its exit bit");
  } else if (!tracefsMounted) {
    assert.equal(e.status, "unavailable");
    assert.equal(e.facts.cause, "tracefs-not-mounted");
    assert.match(e.summary, /tracefs is not mounted/);
    assert.ok(e.fixes.some((f) => f.includes(`mount -t tracefs nodev ${TRACEFS}`)));
  } else if (isRoot) {
    assert.equal(e.status, "ok", e.summary);
    assert.equal(e.facts.cause, "usable");
    assert.equal(exitCode & DOCTOR_EXIT.USER_EVENTS, 0);
  }
}

test("doctor: user_events as this kernel has it, the kernel's lack named before tracefs", async () => {
  const before = tracefsMountPoints();
  const r = await doctor();
  const after = tracefsMountPoints();
  const e = byName(r.checks, "user_events");
  // Another test may mount tracefs meanwhile (never unmount it): either state is a fact.
  const seen = e.facts.tracefs as string[];
  assert.ok(
    JSON.stringify(seen) === JSON.stringify(before) ||
      JSON.stringify(seen) === JSON.stringify(after),
    `${seen} is neither ${before} nor ${after}`,
  );
  assert.equal(e.facts.kernelSupport, kernelHasUserEvents);
  if (config !== null) {
    const set = /^CONFIG_USER_EVENTS=y$/m.test(config);
    assert.equal(
      e.facts.config,
      set ? "y" : /^# CONFIG_USER_EVENTS is not set$/m.test(config) ? "n" : null,
    );
    if (!set) assert.equal(kernelHasUserEvents, false, "the sysctl agrees with the config");
  }
  assertUserEventsVerdict(e, seen.length > 0, r.exitCode);
});

for (const state of ["unmounted", "mounted"] as const) {
  test(`doctor: user_events with tracefs ${state} (a private mount namespace)`, (t) => {
    const out = runInMountNamespace(state, ummu(["doctor", "--json"]));
    if (isSkip(out)) return t.skip(out.skip);
    const r = parseReport(out.stdout, out.stderr);
    assert.equal(out.status, r.exitCode, out.stderr);
    const e = byName(r.checks, "user_events");
    assert.deepEqual(e.facts.tracefs, state === "mounted" ? [TRACEFS] : []);
    assert.equal(e.facts.root, state === "mounted" ? TRACEFS : null);
    assertUserEventsVerdict(e, state === "mounted", r.exitCode);
    assertNoRepositoryOnlyPaths(r);
  });
}

test("ensureTracefs() mounts tracefs once where a test needs it (checked in a mount namespace)", (t) => {
  const fixture = new URL("./fixtures/ensure_tracefs.ts", import.meta.url).pathname;
  const argv = thisRuntime === "deno"
    ? [process.execPath, "run", "-A", "--no-check", fixture]
    : [process.execPath, fixture];
  const out = runInMountNamespace("unmounted", argv);
  if (isSkip(out)) return t.skip(out.skip);
  assert.equal(out.status, 0, out.stderr);
  const r = JSON.parse(out.stdout.trim().split("\n").pop()!);
  assert.deepEqual(r.before, { usable: null, mounts: [] }, "the namespace starts without tracefs");
  assert.equal(r.result, TRACEFS);
  assert.equal(r.again, TRACEFS);
  assert.deepEqual(r.after, { usable: TRACEFS, mounts: [TRACEFS] }, "mounted once, not twice");
});

test("doctor: as an unprivileged user, user-mode-only userfaultfd is reported from its probe", {
  skip: !isRoot
    ? "needs root, to switch to an unprivileged user"
    : spawnSync("setpriv", ["--version"], { stdio: "ignore" }).status !== 0
    ? "needs setpriv (util-linux)"
    : false,
}, () => {
  const home = mkdtempSync(join(tmpdir(), "ummu-doctor-nobody-"));
  chmodSync(home, 0o777);
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    DENO_DIR: join(home, "deno"),
    TMPDIR: home,
  };
  const asNobody = (argv: string[]) =>
    run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", ...argv], env);
  try {
    const out = asNobody(ummu(["doctor", "--json"]));
    const r = parseReport(out.stdout, out.stderr);
    assert.equal(out.status, r.exitCode);
    assert.equal(r.user.uid, 65534);
    const u = byName(r.checks, "userfaultfd");
    // The library itself, as the same user: does a user-mode-only LazyMapping serve faults?
    const fixture = new URL("./fixtures/unprivileged.ts", import.meta.url).pathname;
    const lib = asNobody(
      thisRuntime === "deno"
        ? [process.execPath, "run", "-A", "--no-check", fixture]
        : [process.execPath, fixture],
    );
    const served = JSON.parse(lib.stdout.trim().split("\n").pop()!);
    const works = typeof served.userModeOnly === "object";
    assert.equal(
      u.facts.userModeOnly === "ok",
      works,
      `doctor ${u.facts.userModeOnly}, library ${lib.stdout}`,
    );
    const sysctl = Number(readFileSync("/proc/sys/vm/unprivileged_userfaultfd", "utf8"));
    if (sysctl === 0 && works) {
      assert.equal(u.status, "limited", u.summary);
      assert.match(u.summary, /user-mode-only/);
      assert.ok(u.details.some((d) => /user-mode-only .*: usable/.test(d)));
      assert.ok(u.fixes.some((f) => /userModeOnly: true/.test(f)));
      for (const text of [u.summary, ...u.details, ...u.fixes]) {
        assert.doesNotMatch(
          text,
          /needs the sysctl/,
          "user-mode-only needs no sysctl: it just worked",
        );
      }
      assert.ok(r.exitCode & DOCTOR_EXIT.USERFAULTFD);
    }
    const perf = byName(r.checks, "perf");
    assertParanoidFixesLower(perf);
    assertNoRepositoryOnlyPaths(r);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

/** A fix that sets perf_event_paranoid sets it lower than it is: never to the value it has. */
function assertParanoidFixesLower(perf: DoctorCheck) {
  for (const f of perf.fixes) {
    const m = /perf_event_paranoid=(\d+)/.exec(f);
    if (m) assert.ok(Number(m[1]) < (perf.facts.paranoid as number), f);
  }
}

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
    assert.ok(p.details.some((d) => /^LBR \(branch stacks\): unavailable \(E[A-Z]+\)/.test(d)));
  }
  // Branch tracing comes from the branch tracer's own probe: the same outcome per method.
  const probe = probeBranchTracing();
  assert.deepEqual(p.facts.branchTracing, {
    lbr: probe.lbr.outcome,
    bts: probe.bts.outcome,
    pt: probe.pt.outcome,
  });
  for (const [m, label] of [["bts", "BTS (intel_bts)"], ["pt", "Intel PT (intel_pt)"]] as const) {
    const line = p.details.find((d) => d.startsWith(label + ": "));
    assert.ok(line?.includes(probe[m].detail), `${label}: ${line}`);
  }
  assertParanoidFixesLower(p);
  assert.equal(
    r.exitCode & ~(DOCTOR_EXIT.USERFAULTFD | DOCTOR_EXIT.UMMUNOTIFY | DOCTOR_EXIT.USER_EVENTS),
    0,
    "perf sets no exit bit",
  );
});

test("doctor: perf verdicts are the library's (PerfEvent opens what the doctor says opens)", async () => {
  const r = await doctor();
  const p = byName(r.checks, "perf");
  /** What PerfEvent.open says of the same attr on this thread: "ok" or the errno name. */
  const library = (attr: PerfEventAttr) => {
    try {
      void PerfEvent.open({ ...attr, excludeKernel: true }).close();
      return "ok";
    } catch (e) {
      assert.ok(e instanceof UmmuError, `${e}`);
      return e.code;
    }
  };
  const sw = { type: pe.PERF_TYPE_SOFTWARE, config: BigInt(pe.PERF_COUNT_SW_TASK_CLOCK) };
  const hw = { type: pe.PERF_TYPE_HARDWARE, config: BigInt(pe.PERF_COUNT_HW_CPU_CYCLES) };
  const sab = new SharedArrayBuffer(8);
  const bp = {
    type: pe.PERF_TYPE_BREAKPOINT,
    bpType: pe.HW_BREAKPOINT_W,
    bpAddr: BigInt(runtime.addressOf(new Uint8Array(sab))),
    bpLen: 4n,
  };
  assert.equal(p.facts.softwareEvents, library(sw));
  assert.equal(p.facts.hardwareEvents, library(hw));
  assert.equal(p.facts.breakpointEvents, library(bp), "a new fact: hardware watchpoints");
  assert.ok(
    p.details.some((d) => /^hardware breakpoints \(watchpoints\): /.test(d)),
    p.details.join("\n"),
  );
  // The paranoid level in the library's own words (the same as its EACCES hint).
  const level = p.facts.paranoid as number;
  const meaning = paranoidMeaning(level);
  const flat = p.details.join(" ").replace(/\s+/g, " ");
  assert.ok(flat.includes(meaning), `the details say "${meaning}": ${flat}`);
});

/**
 * The fds of the kinds the doctor opens (userfaultfds, perf events, files under
 * /dev, /proc and /sys): the runtime's own (a Worker's event loop) are not counted.
 */
function doctorKindFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (/^anon_inode:\[(userfaultfd|perf_event)\]$|^\/(dev|proc|sys)\//.test(target)) {
        out.push(`${fd} ${target}`);
      }
    } catch { /* closed meanwhile (the listing's own fd) */ }
  }
  return out.sort();
}

test("doctor: the table names every feature and the exit status; nothing leaks", async () => {
  const before = doctorKindFds();
  const r = await doctor();
  assert.deepEqual(doctorKindFds(), before, "every fd the doctor opened is closed");
  const text = formatDoctorReport(r);
  assert.match(text, new RegExp(`^ummu ${VERSION.replaceAll(".", "\\.")} doctor: `));
  for (const c of r.checks) assert.match(text, new RegExp(`^${c.name} +${c.status} +`, "m"));
  assert.match(text, new RegExp(`^exit status ${r.exitCode}: `, "m"));
});

test("ummu doctor: --json carries schema and version; its exit status is the report's", async () => {
  const r = await doctor();
  const out = run(ummu(["doctor", "--json"]));
  const json = parseReport(out.stdout, out.stderr);
  assert.equal(out.status, json.exitCode, out.stderr);
  assert.equal(json.schema, DOCTOR_SCHEMA);
  assert.equal(json.version, VERSION);
  assert.equal(json.runtime.name, thisRuntime);
  assert.deepEqual(
    json.checks.map((c: DoctorCheck) => [c.name, c.status]),
    r.checks.map((c) => [c.name, c.status]),
  );
});

test("ummu: --help, --version, and usage errors (exit 2)", () => {
  for (const flag of ["--help", "-h"]) {
    const help = run(ummu([flag]));
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: ummu doctor \[--json\]/);
    for (const word of ["--json", "--version", "--help", "exit status"]) {
      assert.ok(help.stdout.includes(word), word);
    }
  }
  const version = run(ummu(["--version"]));
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), VERSION);
  const cases: [string[], RegExp][] = [
    [["doctor", "--frobnicate"], /unknown option --frobnicate/],
    [["frobnicate"], /unknown command frobnicate/],
    [[], /no command given/],
    [["doctor", "extra"], /unexpected argument extra/],
    [["doctor", "--json=yes"], /--json/],
  ];
  for (const [args, message] of cases) {
    const bad = run(ummu(args));
    assert.equal(bad.status, DOCTOR_EXIT.USAGE, `ummu ${args.join(" ")}`);
    assert.match(bad.stderr, message);
    assert.match(bad.stderr, /usage: ummu doctor/);
  }
});

const denoOnly = thisRuntime === "deno" ? false : "Deno's permissions: runs under Deno";

test(
  "ummu doctor under Deno without permissions: unknown, never a guess",
  { skip: denoOnly },
  () => {
    for (const flags of [[], ["--allow-read"]]) {
      const out = runDeno(["doctor", "--json"], flags);
      const r = parseReport(out.stdout, out.stderr);
      assert.equal(out.status, DOCTOR_EXIT.NO_FFI, `flags [${flags}]`);
      assert.match(r.runtime.ffiError ?? "", /--allow-ffi/);
      for (const c of r.checks) {
        assert.equal(c.status, "unknown", `${c.name} with [${flags}]: ${c.summary}`);
        assert.match(c.summary, /deno run -A/);
        assert.deepEqual(c.fixes, [], "no fix for a problem nobody has seen");
        for (const d of c.details) assert.doesNotMatch(d, /: absent|: none|: not mounted/, d);
      }
      assert.ok(isUnknownFact(r.kernel));
      assert.ok(isUnknownFact(r.user.uid));
      const u = byName(r.checks, "userfaultfd");
      assert.ok(isUnknownFact(u.facts.unprivilegedSysctl));
      assert.ok(isUnknownFact((u.facts.device as { mode: unknown }).mode));
      const p = byName(r.checks, "perf");
      assert.ok(isUnknownFact(p.facts.pmus), "the PMU list is unknown, not empty");
      assert.ok(isUnknownFact(p.facts.paranoid));
      const text = runDeno(["doctor"], flags);
      assert.match(text.stdout, /unknown \(Deno did not allow [^)]*run\s+with\s+-A\)/);
      assert.doesNotMatch(
        text.stdout,
        /PMUs: none|\/dev\/userfaultfd: absent|perf_event_paranoid=/,
      );
    }
  },
);

test(
  "ummu doctor under Deno with --allow-ffi only: the same verdicts, unknown what it cannot see",
  {
    skip: denoOnly,
  },
  async () => {
    const full = await doctor();
    const out = runDeno(["doctor", "--json"], ["--allow-ffi"]);
    const r = parseReport(out.stdout, out.stderr);
    assert.equal(out.status, r.exitCode);
    assert.equal(r.runtime.ffiError, null);
    assert.equal(r.kernel, full.kernel, "read through libc, which --allow-ffi lets through");
    for (const name of ["userfaultfd", "user_events"]) {
      assert.equal(byName(r.checks, name).status, byName(full.checks, name).status, name);
      assert.equal(byName(r.checks, name).summary, byName(full.checks, name).summary, name);
    }
    // Ummunotify's userfaultfd backend runs a Worker, whose module Deno reads only with --allow-read.
    const n = byName(r.checks, "ummunotify");
    if (n.status !== byName(full.checks, "ummunotify").status) {
      assert.equal(n.status, "unknown");
      assert.match(n.summary, /run with -A/);
      assert.ok(r.exitCode & DOCTOR_EXIT.UNKNOWN);
    }
    const p = byName(r.checks, "perf");
    assert.equal(p.facts.softwareEvents, byName(full.checks, "perf").facts.softwareEvents);
    assert.ok(isUnknownFact(p.facts.pmus), "node:fs may not list /sys: unknown, not none");
    assert.doesNotMatch(JSON.stringify(p.details), /PMUs: none/);
  },
);
