/**
 * Sampling on the real kernel: cpu-clock and page-faults with
 * IP|TID|TIME|ADDR|CALLCHAIN|PERIOD|CPU, on this thread, on the whole process
 * (a Worker's faults come with the Worker's tid), system-wide, on a cgroup,
 * and on another process. Records decoded by the library's RecordDecoder.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import * as pe from "../ffi/perf_event.ts";
import { libc } from "../src/libc.ts";
import { Mapping } from "../src/memory.ts";
import { PerfEvent } from "../src/perf/event.ts";
import { onlineCpus } from "../src/perf/target.ts";
import type { SampleRecord } from "../src/perf/records.ts";
import {
  cgroup2Mount,
  drainRecords,
  owned,
  ownedBackTo,
  samplesOf,
  software,
  spin,
  startPerfWorker,
  waitingShell,
} from "./fixtures/perf_common.ts";

const PAGE = 4096;
const ALL = pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_TIME | pe.PERF_SAMPLE_ADDR |
  pe.PERF_SAMPLE_CALLCHAIN | pe.PERF_SAMPLE_PERIOD | pe.PERF_SAMPLE_CPU;
const MARKERS = new Set([
  pe.PERF_CONTEXT_HV,
  pe.PERF_CONTEXT_KERNEL,
  pe.PERF_CONTEXT_USER,
  pe.PERF_CONTEXT_GUEST,
  pe.PERF_CONTEXT_GUEST_KERNEL,
  pe.PERF_CONTEXT_GUEST_USER,
]);
const isRoot = process.getuid?.() === 0;

function inRange(addr: bigint | undefined, m: Mapping): boolean {
  return addr !== undefined && addr >= m.address && addr < m.address + BigInt(m.length);
}

/** A callchain as the kernel writes it: a PERF_CONTEXT_* marker first, frames after each. */
function assertCallchain(s: SampleRecord, context: "user" | "kernel") {
  const chain = s.callchain;
  assert.ok(chain, "PERF_SAMPLE_CALLCHAIN");
  assert.ok(chain.ips.length >= 2, `callchain of ${chain.ips.length}`);
  assert.ok(MARKERS.has(chain.ips[0]), `starts with a marker: 0x${chain.ips[0].toString(16)}`);
  const seg = chain.segments.find((g) => g.context === context);
  assert.ok(seg, `a ${context} segment: ${chain.segments.map((g) => g.context)}`);
  assert.ok(seg.ips.length >= 1, "with frames");
  for (const ip of seg.ips) assert.ok(ip < pe.PERF_CONTEXT_MAX, "frames are not markers");
}

test("cpu-clock sampled on this thread: its tid, its CPU, the period, a user callchain", async () => {
  const before = owned();
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_CPU_CLOCK, { samplePeriod: 200_000n, sampleType: ALL }),
    { ring: { pages: 16 } },
  );
  try {
    ev.enable();
    spin(60); // at one sample per 200 µs of CPU: many samples
    ev.disable();
    const samples = samplesOf(drainRecords(ev));
    assert.ok(samples.length >= 5, `${samples.length} samples`);
    const cpus = onlineCpus();
    let prev = 0n;
    for (const s of samples) {
      assert.equal(s.pid, process.pid);
      assert.equal(s.tid, libc.gettid());
      assert.ok(cpus.includes(s.cpu!), `cpu ${s.cpu}`);
      assert.equal(s.period, 200_000n);
      assert.ok(s.time! >= prev, "times in order");
      prev = s.time!;
      assert.ok(s.ip! > 0n);
    }
    // Most samples interrupt JS code (user space): a user callchain after its marker.
    const user = samples.filter((s) => s.cpumode === "user");
    assert.ok(user.length >= 1, "samples in user space");
    for (const s of user) assertCallchain(s, "user");
  } finally {
    await ev.close();
  }
  assert.deepEqual(await ownedBackTo(before), before);
});

test("page-faults sampled on this thread: each touched page's address, in order, with a callchain", async () => {
  const m = Mapping.create(32 * PAGE);
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_PAGE_FAULTS, { samplePeriod: 1n, sampleType: ALL }),
    { ring: { pages: 16 } },
  );
  try {
    const u8 = new Uint8Array(m.buffer);
    ev.enable();
    for (let p = 0; p < 32; p++) u8[p * PAGE + 100] = 1;
    ev.disable();
    const ours = samplesOf(drainRecords(ev)).filter((s) => inRange(s.addr, m));
    assert.deepEqual(
      ours.map((s) => s.addr),
      Array.from({ length: 32 }, (_, p) => m.address + BigInt(p * PAGE + 100)),
      "one sample per page, at the byte written, in the order touched",
    );
    for (const s of ours) {
      assert.equal(s.tid, libc.gettid());
      assert.equal(s.period, 1n);
      assert.equal(s.cpumode, "user", "the faulting instruction is in user space");
      assertCallchain(s, "user");
    }
  } finally {
    await ev.close();
    m.close();
  }
});

test('{ process: "self" }: a Worker that faults pages shows up with its own tid', async () => {
  const before = owned();
  const worker = await startPerfWorker(); // a thread before the event opens
  const m = Mapping.create(16 * PAGE);
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_PAGE_FAULTS, {
      samplePeriod: 1n,
      sampleType: pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_ADDR | pe.PERF_SAMPLE_IP,
    }),
    { target: { process: "self" }, ring: { pages: 8 } },
  );
  try {
    assert.match(ev.target, new RegExp(`process ${process.pid}`));
    assert.equal(ev.attr.inherit, true, "a process target follows new threads");
    ev.enable();
    await worker.ask({ op: "touch", address: m.base, pages: 16, pageSize: PAGE });
    new Uint8Array(m.buffer)[0] = 2; // present already: no fault
    ev.disable();
    const ours = samplesOf(drainRecords(ev)).filter((s) => inRange(s.addr, m));
    assert.equal(ours.length, 16, "each page faulted once, by the Worker");
    for (const s of ours) {
      assert.equal(s.tid, worker.tid, "the Worker's tid");
      assert.equal(s.pid, process.pid);
    }
    assert.notEqual(worker.tid, libc.gettid());
  } finally {
    await ev.close();
    await worker.stop();
    m.close();
  }
  assert.deepEqual(await ownedBackTo(before), before);
});

test('{ cpu: "all" }: system-wide sampling sees this thread\'s faults, per-CPU rings', {
  skip: isRoot ? undefined : "a CPU-wide event needs CAP_PERFMON or perf_event_paranoid <= 0",
}, async () => {
  const m = Mapping.create(16 * PAGE);
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_PAGE_FAULTS, {
      samplePeriod: 1n,
      sampleType: pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_ADDR | pe.PERF_SAMPLE_CPU,
    }),
    { target: { cpu: "all" }, ring: { pages: 16 } },
  );
  try {
    assert.equal(ev.rings.length, onlineCpus().length, "one ring per CPU");
    ev.enable();
    const u8 = new Uint8Array(m.buffer);
    for (let p = 0; p < 16; p++) u8[p * PAGE] = 1;
    ev.disable();
    const all = samplesOf(drainRecords(ev));
    const ours = all.filter((s) => inRange(s.addr, m));
    assert.equal(ours.length, 16);
    for (const s of ours) {
      assert.equal(s.pid, process.pid);
      assert.equal(s.tid, libc.gettid());
      assert.ok(onlineCpus().includes(s.cpu!));
    }
  } finally {
    await ev.close();
    m.close();
  }
});

const cgroupRoot = cgroup2Mount();
test("a cgroup target: a child moved into a new cgroup v2 directory is sampled, by its pid", {
  skip: !isRoot
    ? "creating a cgroup and a cgroup-wide event need root"
    : cgroupRoot === null
    ? "cgroup2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup)"
    : undefined,
}, async () => {
  const dir = `${cgroupRoot}/ummu-perf-test-${process.pid}`;
  mkdirSync(dir);
  const child = await waitingShell("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done");
  try {
    writeFileSync(`${dir}/cgroup.procs`, String(child.pid));
    const ev = PerfEvent.open(
      software(pe.PERF_COUNT_SW_CPU_CLOCK, {
        samplePeriod: 100_000n,
        sampleType: pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_IP,
      }),
      { target: { cgroup: dir }, ring: { pages: 16 } },
    );
    try {
      assert.match(ev.target, /cgroup/);
      ev.enable();
      spin(20); // this process is not in the cgroup: none of its samples
      const done = await child.go();
      assert.equal(done.code, 0);
      ev.disable();
      const samples = samplesOf(drainRecords(ev));
      assert.ok(samples.length >= 1, "samples of the child");
      assert.deepEqual([...new Set(samples.map((s) => s.pid))], [child.pid], "only the child's");
    } finally {
      await ev.close();
    }
  } finally {
    child.child.kill();
    await new Promise((r) => setTimeout(r, 50));
    try {
      rmdirSync(dir);
    } catch { /* the child is still leaving it: it goes when the runtime exits */ }
  }
});

test("another process (a spawned child): its samples carry its pid", async () => {
  const child = await waitingShell("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done");
  const ev = PerfEvent.open(
    software(pe.PERF_COUNT_SW_TASK_CLOCK, {
      samplePeriod: 100_000n,
      sampleType: pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_IP,
    }),
    { target: { process: child.pid }, ring: { pages: 8 } },
  );
  try {
    ev.enable();
    const done = await child.go();
    assert.equal(done.code, 0);
    const samples = samplesOf(drainRecords(ev));
    assert.ok(samples.length >= 1, `${samples.length} samples`);
    for (const s of samples) assert.equal(s.pid, child.pid);
    assert.ok(ev.read().value > 0n, "task-clock of the child");
  } finally {
    await ev.close();
  }
});
