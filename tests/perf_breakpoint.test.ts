/**
 * Breakpoint events on the real kernel: a watchpoint on a word of a
 * SharedArrayBuffer that a Worker writes names the Worker's thread and the
 * instruction; read and execute breakpoints; MODIFY_ATTRIBUTES moves a
 * watchpoint without reopening it; what the debug registers cannot watch is
 * refused. The SAB's address comes from the runtime adapter (addressOf).
 */
import { test } from "node:test";
import process from "node:process";
import assert from "node:assert/strict";
import * as pe from "../ffi/perf_event.ts";
import { runtime } from "../ffi/platform.ts";
import { libc } from "../src/libc.ts";
import { UmmuError } from "../src/errors.ts";
import { PerfEvent } from "../src/perf/event.ts";
import type { PerfEventAttr } from "../src/perf/attr.ts";
import {
  drainRecords,
  libcFunctionAddress,
  owned,
  ownedBackTo,
  samplesOf,
  startPerfWorker,
} from "./fixtures/perf_common.ts";

const WRITES = 50;

function watch(address: number, len: 4 | 8, bpType = pe.HW_BREAKPOINT_W): PerfEventAttr {
  return {
    type: pe.PERF_TYPE_BREAKPOINT,
    bpType,
    bpAddr: BigInt(address),
    bpLen: BigInt(len),
    samplePeriod: 1n,
    sampleType: pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_ADDR,
  };
}

/** A SharedArrayBuffer and the address of its bytes. */
function sharedWords(bytes = 64): { sab: SharedArrayBuffer; address: number } {
  const sab = new SharedArrayBuffer(bytes);
  return { sab, address: runtime.addressOf(new Uint8Array(sab)) };
}

for (const len of [4, 8] as const) {
  test(`write watchpoint (len ${len}) on a SAB word a Worker writes: its tid and the ip of each write`, async () => {
    const before = owned();
    const { sab, address } = sharedWords();
    const worker = await startPerfWorker();
    const ev = PerfEvent.open(watch(address + 16, len), {
      target: { thread: worker.tid },
      ring: { pages: 4 },
    });
    try {
      ev.enable();
      // A write to the word next to the watched one (outside [addr, addr+len)) does not count.
      await worker.ask({ op: "write", sab, index: (16 + len) / 4, count: WRITES });
      await worker.ask({ op: "write", sab, index: 4, count: WRITES });
      ev.disable();
      const count = ev.read().value;
      const samples = samplesOf(drainRecords(ev));
      assert.equal(count, BigInt(WRITES), `writes counted: ${count}`);
      assert.equal(samples.length, WRITES);
      for (const s of samples) {
        assert.equal(s.tid, worker.tid, "the Worker's thread wrote");
        assert.equal(s.pid, process.pid);
        assert.equal(s.addr, BigInt(address + 16), "the watched address");
        assert.ok(s.ip !== undefined && s.ip > 0n, "the ip of the writing instruction");
        assert.equal(s.cpumode, "user");
      }
      assert.equal(new Int32Array(sab)[4], WRITES, "the Worker's last write");
    } finally {
      await ev.close();
      await worker.stop();
    }
    assert.deepEqual(await ownedBackTo(before), before);
  });
}

test("read watchpoint: HW_BREAKPOINT_R where the CPU has one, else RW counts the Worker's reads", async () => {
  const { sab, address } = sharedWords();
  const worker = await startPerfWorker();
  let bpType = pe.HW_BREAKPOINT_R;
  let ev: PerfEvent;
  try {
    ev = PerfEvent.open(watch(address + 8, 4, bpType), { target: { thread: worker.tid } });
  } catch (e) {
    // x86 debug registers watch writes or reads-and-writes, never reads alone.
    assert.ok(e instanceof UmmuError && e.code === "EINVAL", `${e}`);
    assert.equal(runtime.arch, "x64", `read-only watchpoint refused on ${runtime.arch}`);
    bpType = pe.HW_BREAKPOINT_RW;
    ev = PerfEvent.open(watch(address + 8, 4, bpType), { target: { thread: worker.tid } });
  }
  try {
    ev.enable();
    const { sum } = await worker.ask({ op: "read", sab, index: 2, count: WRITES });
    ev.disable();
    assert.equal(sum, 0);
    assert.ok(ev.read().value >= BigInt(WRITES), `${ev.read().value} reads counted`);
    ev.reset();
    ev.enable();
    await worker.ask({ op: "read", sab, index: 3, count: WRITES }); // the next word
    ev.disable();
    assert.equal(ev.read().value, 0n, "reads of another word do not count");
  } finally {
    await ev.close();
    await worker.stop();
  }
});

const getpid = libcFunctionAddress("getpid");
test("execute breakpoint on libc's getpid: each call from this thread counts", {
  skip: typeof getpid === "string" ? getpid : undefined,
}, async () => {
  const ev = PerfEvent.open({
    type: pe.PERF_TYPE_BREAKPOINT,
    bpType: pe.HW_BREAKPOINT_X,
    bpAddr: getpid as bigint,
    bpLen: 8n, // an execute breakpoint's length is sizeof(long)
    samplePeriod: 1n,
    sampleType: pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID,
  }, { ring: { pages: 2 } });
  try {
    ev.enable();
    for (let i = 0; i < 20; i++) libc.getpid();
    ev.disable();
    assert.ok(ev.read().value >= 20n, `${ev.read().value} calls counted`);
    const samples = samplesOf(drainRecords(ev));
    assert.ok(samples.length >= 20);
    for (const s of samples) {
      assert.equal(s.ip, getpid, "the sample's ip is the breakpoint's address");
      assert.equal(s.tid, libc.gettid());
    }
  } finally {
    await ev.close();
  }
});

test("modifyAttributes({ bpAddr }) moves the watchpoint: only the new word's writes count", async () => {
  const { sab, address } = sharedWords();
  const worker = await startPerfWorker();
  const ev = PerfEvent.open(watch(address, 4), {
    target: { thread: worker.tid },
    ring: { pages: 4 },
  });
  try {
    ev.enable();
    await worker.ask({ op: "write", sab, index: 0, count: 10 });
    ev.disable();
    assert.equal(ev.read().value, 10n);
    drainRecords(ev);
    ev.modifyAttributes({ bpAddr: BigInt(address + 32) });
    assert.equal(ev.attr.bpAddr, BigInt(address + 32), "attr follows the change");
    ev.enable();
    await worker.ask({ op: "write", sab, index: 0, count: 10 }); // the old word: no longer watched
    await worker.ask({ op: "write", sab, index: 8, count: 7 }); // the new one
    ev.disable();
    assert.equal(ev.read().value, 17n, "10 before the move + 7 on the new word");
    const samples = samplesOf(drainRecords(ev));
    assert.equal(samples.length, 7);
    for (const s of samples) assert.equal(s.addr, BigInt(address + 32));
  } finally {
    await ev.close();
    await worker.stop();
  }
});

test("what the debug registers cannot watch is refused: a misaligned word, length 3", () => {
  const { address } = sharedWords();
  for (
    const attr of [
      watch(address + 2, 4), // not aligned to its length
      { ...watch(address, 4), bpLen: 3n }, // not 1, 2, 4 or 8
    ]
  ) {
    assert.throws(() => PerfEvent.open(attr), (e: unknown) => {
      assert.ok(e instanceof UmmuError, `${e}`);
      assert.equal(e.code, "EINVAL");
      assert.ok(e.hint.length > 0, "the error says something");
      assert.match(e.message, /perf_event_open/);
      return true;
    });
  }
});
