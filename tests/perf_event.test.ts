/**
 * PerfEvent on the real kernel, counting: software events move as the work
 * says, a group reads in one read(2), every ioctl does what the kernel says it
 * does, what would kill a JS runtime (sigtrap, O_ASYNC) is refused, bad
 * inputs are typed errors, and close() gives back every fd, mapping and Worker.
 * (Sampling: perf_event_sampling.test.ts; breakpoints, tracepoints and the
 * ring have files of their own.)
 */
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import * as pe from "../ffi/perf_event.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../src/errors.ts";
import { Mapping } from "../src/memory.ts";
import { PerfEvent } from "../src/perf/event.ts";
import * as perfEntry from "../src/perf/mod.ts";
import { pmuNames } from "../src/perf/pmu.ts";
import {
  drainRecords,
  owned,
  ownedBackTo,
  perfFds,
  samplesOf,
  sleepInKernel,
  software,
  spin,
  waitingShell,
} from "./fixtures/perf_common.ts";
import { onlineCpus } from "../src/perf/target.ts";
import { spawnWorker } from "../src/worker.ts";
import { quiescent } from "./helpers.ts";

const PAGE = 4096;
const GROUP_FORMAT = pe.PERF_FORMAT_GROUP | pe.PERF_FORMAT_ID | pe.PERF_FORMAT_TOTAL_TIME_ENABLED |
  pe.PERF_FORMAT_TOTAL_TIME_RUNNING;

/** Writes one byte into each of `pages` fresh pages: exactly one page fault each. */
function touchFresh(pages: number): Mapping {
  const m = Mapping.create(pages * PAGE);
  const u8 = new Uint8Array(m.buffer);
  for (let p = 0; p < pages; p++) u8[p * PAGE] = 1;
  return m;
}

test("page-faults: touching N fresh pages counts at least N; scaled = value (not multiplexed)", async () => {
  const ev = PerfEvent.open(software(pe.PERF_COUNT_SW_PAGE_FAULTS));
  try {
    const m0 = Mapping.create(64 * PAGE); // mapped before: its own faults come later
    ev.enable();
    const u8 = new Uint8Array(m0.buffer);
    for (let p = 0; p < 64; p++) u8[p * PAGE] = 1;
    ev.disable();
    const c = ev.read();
    assert.ok(c.value >= 64n, `page-faults ${c.value} < 64 pages touched`);
    assert.ok(c.value < 64n + 200n, `page-faults ${c.value}: far more than the 64 pages touched`);
    assert.ok(c.timeEnabled > 0n, "enabled time");
    assert.equal(c.timeRunning, c.timeEnabled, "a software event is never multiplexed");
    assert.equal(c.scaled, c.value);
    assert.equal(c.id, ev.ids()[0], "read() id = PERF_EVENT_IOC_ID");
    m0.close();
  } finally {
    await ev.close();
  }
});

test("context-switches: a sleep in the kernel is at least one; task-clock moves with work", async () => {
  const cs = PerfEvent.open(software(pe.PERF_COUNT_SW_CONTEXT_SWITCHES));
  const clock = PerfEvent.open(software(pe.PERF_COUNT_SW_TASK_CLOCK));
  try {
    cs.enable();
    clock.enable();
    sleepInKernel(20);
    spin(20);
    cs.disable();
    clock.disable();
    assert.ok(cs.read().value >= 1n, `context-switches ${cs.read().value} after a 20 ms sleep`);
    const t = clock.read();
    // task-clock counts nanoseconds on the CPU: the spin ran, the sleep did not count.
    assert.ok(t.value > 0n, "task-clock moved");
    assert.ok(t.value <= t.timeEnabled, `task-clock ${t.value} <= enabled ${t.timeEnabled}`);
  } finally {
    await cs.close();
    await clock.close();
  }
});

test(
  "cpu-migrations: a process moved from CPU 0 to CPU 1 (taskset) counts at least one",
  {
    skip: onlineCpus().length < 2
      ? "needs two online CPUs"
      : spawnSyncOk("taskset", ["-c", "0", "true"])
      ? undefined
      : "needs taskset (util-linux)",
  },
  async () => {
    const cpus = onlineCpus();
    const child = await waitingShell(
      `taskset -p -c ${cpus[1]} $$ >/dev/null; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done`,
    );
    // The child waits on CPU 0 only; it is moved to the second CPU by taskset -p.
    assert.equal(spawnSyncOk("taskset", ["-p", "-c", String(cpus[0]), String(child.pid)]), true);
    const ev = PerfEvent.open(software(pe.PERF_COUNT_SW_CPU_MIGRATIONS), {
      target: { process: child.pid },
    });
    try {
      ev.enable();
      const done = await child.go();
      assert.equal(done.code, 0);
      assert.ok(ev.read().value >= 1n, `cpu-migrations ${ev.read().value}`);
    } finally {
      await ev.close();
    }
  },
);

function spawnSyncOk(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  return r.status === 0;
}

test("a counting group: task-clock leads page-faults and context-switches, one readGroup()", async () => {
  const leader = PerfEvent.open(
    software(pe.PERF_COUNT_SW_TASK_CLOCK, { readFormat: GROUP_FORMAT }),
  );
  const faults = PerfEvent.open(software(pe.PERF_COUNT_SW_PAGE_FAULTS), { group: leader });
  const switches = PerfEvent.open(software(pe.PERF_COUNT_SW_CONTEXT_SWITCHES), { group: leader });
  try {
    assert.equal(faults.leader, leader);
    assert.equal(faults.attr.disabled, false, "a member follows its leader (opened enabled)");
    const m = Mapping.create(32 * PAGE);
    leader.enable(true);
    const u8 = new Uint8Array(m.buffer);
    for (let p = 0; p < 32; p++) u8[p * PAGE] = 1;
    sleepInKernel(10);
    leader.disable(true);
    m.close();
    const g = leader.readGroup();
    assert.equal(g.values.length, 3, "leader and two members");
    assert.deepEqual(
      g.values.map((v) => v.id),
      [leader.ids()[0], faults.ids()[0], switches.ids()[0]],
      "ids in group order match PERF_EVENT_IOC_ID",
    );
    assert.ok(g.values[0].value > 0n, "task-clock");
    assert.ok(g.values[1].value >= 32n, `page-faults ${g.values[1].value}`);
    assert.ok(g.values[2].value >= 1n, `context-switches ${g.values[2].value}`);
    assert.ok(g.timeEnabled > 0n && g.timeRunning === g.timeEnabled);
    for (const v of g.values) assert.equal(v.scaled, v.value);
    assert.throws(() => leader.read(), UmmuArgumentError, "a group leader reads with readGroup()");
    assert.throws(
      () => faults.readGroup(),
      UmmuArgumentError,
      "a member is read through its leader",
    );
  } finally {
    await leader.close();
  }
  assert.equal(faults.closed, true, "closing the leader closes its members");
  assert.equal(switches.closed, true);
});

test("enable, disable and reset: nothing counts while disabled, reset zeroes the value", async () => {
  const ev = PerfEvent.open(software(pe.PERF_COUNT_SW_PAGE_FAULTS));
  try {
    assert.equal(ev.attr.disabled, true, "a lone event opens disabled");
    touchFresh(16).close();
    assert.equal(ev.read().value, 0n, "disabled since open: nothing counted");
    ev.enable();
    touchFresh(16).close();
    ev.disable();
    const after = ev.read().value;
    assert.ok(after >= 16n, `${after}`);
    touchFresh(16).close();
    assert.equal(ev.read().value, after, "disabled again: the value stays");
    ev.reset();
    assert.equal(ev.read().value, 0n, "reset");
    ev.enable();
    touchFresh(8).close();
    ev.disable();
    const v = ev.read().value;
    assert.ok(v >= 8n && v < after, `after reset: ${v} counts only the 8 new pages' faults`);
  } finally {
    await ev.close();
  }
});

test("refresh(n): a sampling event enabled for n overflows, then off; a counting one is refused", async () => {
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_PAGE_FAULTS, {
      samplePeriod: 1n,
      sampleType: pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_ADDR,
    }),
    { ring: { pages: 4 } },
  );
  const counting = PerfEvent.open(software(pe.PERF_COUNT_SW_PAGE_FAULTS));
  try {
    ev.refresh(3);
    touchFresh(64).close();
    const samples = samplesOf(drainRecords(ev));
    // The kernel disables the event from irq_work after the 3rd overflow: a fault or two
    // may still land before it runs, never the 64.
    assert.ok(samples.length >= 3, `${samples.length} samples after refresh(3)`);
    assert.ok(samples.length < 64, `${samples.length} samples: refresh(3) did not stop it`);
    const value = ev.read().value;
    touchFresh(16).close();
    assert.equal(ev.read().value, value, "after its overflows the event is disabled");
    assert.throws(() => counting.refresh(1), (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "EINVAL", "the kernel refreshes sampling events only");
      return true;
    });
    assert.throws(() => ev.refresh(0), UmmuArgumentError);
  } finally {
    await ev.close();
    await counting.close();
  }
});

test("setPeriod: after it, one sample per N events instead of one per event", async () => {
  // No PERF_SAMPLE_PERIOD here: with it the kernel samples a software event at every
  // occurrence whatever the period (perf_swevent_event: "data->period = nr").
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_PAGE_FAULTS, { samplePeriod: 1n, sampleType: pe.PERF_SAMPLE_ADDR }),
    { ring: { pages: 16 } },
  );
  try {
    ev.enable();
    touchFresh(16).close();
    ev.disable();
    const counted1 = Number(ev.read().value);
    const before = samplesOf(drainRecords(ev));
    assert.equal(before.length, counted1, "period 1: a sample per fault");
    ev.setPeriod(8);
    ev.enable();
    touchFresh(64).close();
    ev.disable();
    const counted8 = Number(ev.read().value) - counted1;
    const after = samplesOf(drainRecords(ev));
    assert.ok(counted8 >= 64);
    assert.ok(
      after.length >= Math.floor(counted8 / 8) - 1 && after.length <= Math.ceil(counted8 / 8) + 1,
      `${after.length} samples for ${counted8} faults at period 8`,
    );
    assert.throws(() => ev.setPeriod(0), UmmuArgumentError);
    assert.throws(() => ev.setPeriod(1n << 63n), UmmuArgumentError);
  } finally {
    await ev.close();
  }
});

test("sigtrap is refused before any fd exists, saying why", () => {
  const before = perfFds();
  assert.throws(
    () => PerfEvent.open(software(pe.PERF_COUNT_SW_PAGE_FAULTS, { sigtrap: true })),
    (e: unknown) => {
      assert.ok(e instanceof UmmuArgumentError);
      assert.match(e.message, /sigtrap/);
      assert.match(e.message, /SIGTRAP/);
      assert.match(e.message, /JS runtime/);
      return true;
    },
  );
  assert.equal(perfFds(), before, "no perf fd was opened");
});

test("no API sets O_ASYNC (the kernel would send SIGIO to the runtime)", async () => {
  // Functions and classes of ummu/perf (constants such as PERF_TXN_ASYNC are ABI names).
  const api = Object.entries(perfEntry).filter(([, v]) => typeof v === "function")
    .flatMap(([k, v]) => [k, ...Object.getOwnPropertyNames(v)]).map((k) => k.toLowerCase());
  for (const name of api) assert.doesNotMatch(name, /o_async|sigio|fasync|setown|fcntl/, name);
  const ev = PerfEvent.open(software(pe.PERF_COUNT_SW_PAGE_FAULTS), { ring: { pages: 1 } });
  try {
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(ev)).map((k) =>
      k.toLowerCase()
    );
    for (const m of methods) assert.doesNotMatch(m, /async|sigio|setown|fcntl/, m);
    // And the fds the event made have no O_ASYNC (fdinfo flags, octal; FASYNC is 020000).
    for (const fd of ev.fds) {
      const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1];
      assert.equal(parseInt(flags, 8) & 0o20000, 0, `fd ${fd} flags ${flags}`);
      assert.notEqual(parseInt(flags, 8) & 0o2000000, 0, `fd ${fd} is O_CLOEXEC`);
    }
  } finally {
    await ev.close();
  }
});

test("bad inputs are typed errors naming what was wrong, before any fd", async () => {
  const before = perfFds();
  const arg = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof UmmuArgumentError, `${e}`);
      assert.match(e.message, re);
      return true;
    });
  const sw = software(pe.PERF_COUNT_SW_TASK_CLOCK);
  arg(() => PerfEvent.open({ ...sw, sampelPeriod: 1n } as never), /sampelPeriod/);
  arg(() => PerfEvent.open({ ...sw, sampleType: 1 << 30 }), /sampleType.*0\.\.\d+, got 1073741824/);
  arg(() => PerfEvent.open({ ...sw, samplePeriod: -1n }), /samplePeriod/);
  arg(() => PerfEvent.open({ ...sw, disabled: 1 } as never), /disabled.*boolean/);
  arg(() => PerfEvent.open(sw, { ring: { pages: 3 } }), /pages.*power of two/);
  arg(() => PerfEvent.open(sw, { ring: { pages: 0 } }), /pages/);
  arg(() => PerfEvent.open(sw, null as never), /options/);
  arg(() => PerfEvent.open(sw, { target: { thread: -1 } }), /thread/);
  arg(() => PerfEvent.open(sw, { target: { pid: 1 } as never }), /target/);
  arg(() => PerfEvent.open(sw, { target: { thread: 0, cpu: 0 } as never }), /unexpected: cpu/);
  arg(() => PerfEvent.open(sw, { target: { process: "other" } as never }), /process/);
  arg(() => PerfEvent.open(sw, { target: { cpu: 9999 } }), /online CPU/);
  arg(() => PerfEvent.open(sw, { target: { cgroup: "/nonexistent" } }), /cgroup directory/);
  arg(() => PerfEvent.open(sw, { target: "self" as never }), /target/);
  arg(() => PerfEvent.open(sw, { group: {} as never }), /leader/);
  assert.equal(perfFds(), before, "no fd after refused arguments");

  const leader = PerfEvent.open(
    software(pe.PERF_COUNT_SW_TASK_CLOCK, { readFormat: GROUP_FORMAT }),
  );
  const member = PerfEvent.open(software(pe.PERF_COUNT_SW_PAGE_FAULTS), { group: leader });
  try {
    arg(
      () => PerfEvent.open(sw, { group: leader, target: { thread: 0 } }),
      /target.*group member/,
    );
    arg(() => PerfEvent.open(sw, { group: member }), /member cannot lead/);
  } finally {
    await leader.close();
  }
  assert.throws(() => member.read(), ClosedError);
  assert.throws(() => PerfEvent.open(sw, { group: leader }), ClosedError);
  for (const use of [() => leader.enable(), () => leader.readGroup(), () => leader.ids()]) {
    assert.throws(use, ClosedError);
  }
  await assert.rejects(() => leader.readable(), ClosedError);
  await leader.close(); // idempotent
  assert.equal(perfFds(), before);
});

test("ENOENT for a hardware event on a machine without a PMU: the hint names the PMUs", {
  skip: pmuNames().some((p) => /^(cpu|cpu_core|cpu_atom|armv\d.*)$/.test(p))
    ? "this machine has a hardware PMU: the cycles counter opens"
    : undefined,
}, () => {
  assert.throws(
    () =>
      PerfEvent.open({ type: pe.PERF_TYPE_HARDWARE, config: BigInt(pe.PERF_COUNT_HW_CPU_CYCLES) }),
    (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "ENOENT");
      for (const p of pmuNames()) assert.ok(e.hint.includes(p), `the hint names ${p}: ${e.hint}`);
      assert.match(e.hint, /software event/);
      return true;
    },
  );
});

test("leaks: fds, ring mappings and the readiness Worker all go back after close()", async () => {
  const before = owned();
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_PAGE_FAULTS, {
      samplePeriod: 1n,
      sampleType: pe.PERF_SAMPLE_IP,
      wakeupEvents: 1,
    }),
    { ring: { pages: 2 }, target: { process: "self" } },
  );
  const during = owned();
  assert.ok(during.fds > before.fds, "perf fds while open");
  assert.ok(during.maps > before.maps, "ring mappings while open");
  ev.enable();
  const waiting = ev.readable();
  touchFresh(8).close();
  // readable() does not keep the process alive by itself (what makes the ring readable does).
  const alive = setInterval(() => {}, 50);
  await waiting.finally(() => clearInterval(alive)); // the readiness Worker polled and woke
  assert.ok(owned().workers > before.workers, "the readiness Worker while open");
  ev.disable();
  await ev.close();
  const after = await ownedBackTo(before);
  assert.deepEqual(after, before, "all back after close()");
});

test("leaks: a group whose second member fails to open leaves only what the test still owns", async () => {
  await quiescent(); // earlier tests' Worker threads gone: see "a thread that exits" below
  const before = owned();
  const leader = PerfEvent.open(
    software(pe.PERF_COUNT_SW_TASK_CLOCK, { readFormat: GROUP_FORMAT }),
    { target: { process: "self" } },
  );
  const withLeader = owned();
  assert.throws(
    () =>
      PerfEvent.open(
        { type: pe.PERF_TYPE_HARDWARE, config: BigInt(pe.PERF_COUNT_HW_CPU_CYCLES) },
        { group: leader },
      ),
    UmmuError,
  );
  assert.deepEqual(owned(), withLeader, "the failed member left no fd (of its many slots)");
  await leader.close();
  assert.deepEqual(await ownedBackTo(before), before);
});

test("a process target: a thread that exits while the event opens is left out, never ESRCH", async () => {
  // The threads are listed from /proc/PID/task, then opened one by one: a thread that ends
  // in between (here: Workers being terminated) is gone, not an error of the whole open.
  const failures: string[] = [];
  for (let round = 0; round < 20 && failures.length === 0; round++) {
    const w = await spawnWorker(new URL("./fixtures/perf_worker.ts", import.meta.url));
    const ending = w.terminate();
    for (let k = 0; k < 20; k++) {
      try {
        await PerfEvent.open(software(pe.PERF_COUNT_SW_TASK_CLOCK), {
          target: { process: "self" },
        }).close();
      } catch (e) {
        failures.push(String(e));
      }
    }
    await ending;
  }
  assert.deepEqual(failures, []);
});
