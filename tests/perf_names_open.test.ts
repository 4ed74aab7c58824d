/**
 * Names opened on the real kernel: the attr parseEvent makes is one the
 * kernel takes and counts with. Tracepoints by name (ids from tracefs,
 * mounted first when it is not), a watchpoint by `mem:` name on a word this
 * thread writes, software events by name and alias. Every perf fd is counted.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { parseEvent } from "../src/perf/event_names.ts";
import { PerfEvent } from "../src/perf/event.ts";
import { pmuNames } from "../src/perf/pmu.ts";
import { runtime } from "../ffi/platform.ts";
import { mmap, munmap, PAGE_SIZE } from "../src/libc.ts";
import * as mm from "../ffi/mman.ts";
import { ensureTracefs, isSkip, runInMountNamespace } from "./tracefs_mount.ts";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { countOnThisThread, perfFds } from "./fixtures/perf_common.ts";

const count = countOnThisThread;

const CALLS = 40;
const getpids = () => {
  for (let i = 0; i < CALLS; i++) runtime.libc.getpid();
};
/** Blocks this thread a few times: each block is a context switch. */
const sleeps = () => {
  const word = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 5; i++) Atomics.wait(word, 0, 0, 5);
};

const PAGES = 64;
/** Writes the first byte of each page of a fresh anonymous mapping: one fault each. */
const touchFreshPages = () => {
  const len = PAGES * PAGE_SIZE;
  const addr = mmap(len, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_PRIVATE | mm.MAP_ANONYMOUS);
  const ab = runtime.view(addr, len);
  const bytes = new Uint8Array(ab);
  for (let i = 0; i < len; i += PAGE_SIZE) bytes[i] = 1;
  runtime.detach(ab);
  munmap(addr, len);
};

const tracefs = ensureTracefs();
const tracefsSkip = isSkip(tracefs) ? tracefs.skip : undefined;
const hasEvent = (sysEvent: string) =>
  !isSkip(tracefs) && existsSync(`${tracefs}/events/${sysEvent.replace(":", "/")}/id`);

describe("tracepoints by name", { skip: tracefsSkip }, () => {
  test("sched:sched_switch counts this thread's context switches", async () => {
    const before = perfFds();
    const { attr, name } = parseEvent("sched:sched_switch");
    assert.equal(name, "sched:sched_switch");
    const n = await count(attr, sleeps);
    assert.ok(n >= 1n, `counted ${n} switches over 5 sleeps`);
    assert.equal(perfFds(), before);
  });

  const syscall = ["syscalls:sys_enter_getpid", "raw_syscalls:sys_enter"].find(hasEvent);
  test(`${syscall ?? "a syscall tracepoint"} counts getpid calls`, {
    skip: syscall ? undefined : "neither syscalls:sys_enter_getpid nor raw_syscalls:sys_enter here",
  }, async () => {
    const before = perfFds();
    const n = await count(parseEvent(syscall!).attr, getpids);
    assert.ok(n >= BigInt(CALLS), `counted ${n} of ${CALLS}`);
    assert.equal(perfFds(), before);
  });
});

describe("software events by name", () => {
  test("page-faults:u and its alias faults count the first touches of fresh pages", async () => {
    const before = perfFds();
    for (const spec of ["page-faults:u", "faults:u", "minor-faults"]) {
      const n = await count(parseEvent(spec).attr, touchFreshPages);
      assert.ok(n >= BigInt(PAGES), `${spec}: ${n} faults for ${PAGES} fresh pages`);
    }
    for (const spec of ["task-clock", "cpu-clock:u", "cs", "cpu-migrations", "dummy"]) {
      const ev = PerfEvent.open(parseEvent(spec).attr);
      ev.enable();
      sleeps();
      ev.disable();
      assert.equal(typeof ev.read().value, "bigint", spec);
      await ev.close();
    }
    assert.ok(await count(parseEvent("task-clock").attr, sleeps) > 0n);
    assert.equal(perfFds(), before);
  });
});

describe("a watchpoint by mem: name", {
  skip: pmuNames().includes("breakpoint") ? undefined : "no breakpoint PMU here",
}, () => {
  test("mem:ADDR/8:w counts this thread's writes to a word", async () => {
    const before = perfFds();
    const words = new BigInt64Array(new SharedArrayBuffer(64));
    const address = runtime.addressOf(words) + 8; // the second word: 8-aligned
    const { attr } = parseEvent(`mem:0x${address.toString(16)}/8:w`);
    const n = await count(attr, () => {
      for (let i = 0; i < CALLS; i++) Atomics.store(words, 1, BigInt(i));
    });
    assert.ok(n >= BigInt(CALLS), `counted ${n} of ${CALLS} writes`);
    const reads = await count(attr, () => {
      for (let i = 0; i < CALLS; i++) Atomics.load(words, 1);
    });
    assert.equal(reads, 0n, "a write watchpoint does not fire on reads");
    assert.equal(perfFds(), before);
  });
});

/** A child of this runtime that parses a tracepoint name and prints what happened as JSON. */
function childArgv(): string[] | string {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  const url = new URL("../src/perf/event_names.ts", import.meta.url).href;
  const code = `const { parseEvent } = await import(${JSON.stringify(url)});
try { console.log(JSON.stringify({ id: String(parseEvent("sched:sched_switch").attr.config) })); }
catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`;
  if (g.Deno !== undefined) return [process.execPath, "eval", code];
  if (g.Bun !== undefined) return [process.execPath, "-e", code];
  return "the child evaluates TypeScript source (Deno or Bun)";
}

describe("a fresh machine: tracefs not mounted", () => {
  const argv = childArgv();
  const hostId = isSkip(tracefs) ? null : String(parseEvent("sched:sched_switch").attr.config);
  const skip = typeof argv === "string"
    ? argv
    : process.getuid?.() !== 0
    ? "needs root (a private mount namespace with tracefs unmounted)"
    : tracefsSkip;
  const lastJson = (out: string) => JSON.parse(out.trim().split("\n").at(-1) ?? "{}");

  test("as root, naming a tracepoint mounts tracefs and finds its id", { skip }, (t) => {
    const r = runInMountNamespace("unmounted", argv as string[]);
    // No private mount namespace here (a chroot, a container without the capability).
    if (isSkip(r)) return t.skip(r.skip);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(lastJson(r.stdout), { id: hostId });
  });

  const setpriv = spawnSync("setpriv", ["--version"], { encoding: "utf8" }).status === 0;
  test("without privilege: an UmmuError whose hint gives the mount command", {
    skip: skip ?? (setpriv ? undefined : "setpriv (util-linux) is not installed"),
  }, (t) => {
    // The runtime's cache must be writable by the unprivileged user.
    const home = mkdtempSync(`${tmpdir()}/ummu-nobody-`);
    chmodSync(home, 0o777);
    try {
      const r = runInMountNamespace(
        "unmounted",
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...(argv as string[])],
        {
          env: {
            ...process.env,
            HOME: home,
            DENO_DIR: `${home}/deno`,
            BUN_INSTALL_CACHE_DIR: `${home}/bun`,
          },
        },
      );
      if (isSkip(r)) return t.skip(r.skip);
      const out = lastJson(r.stdout);
      assert.equal(out.name, "UmmuError", r.stdout + r.stderr);
      assert.equal(out.code, "EPERM");
      assert.match(out.message, /mount -t tracefs nodev \/sys\/kernel\/tracing/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
