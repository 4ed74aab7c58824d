/**
 * Tracepoint events on the real kernel (tracefs mounted first when it is
 * not: a fresh machine lacks it): opened by the id tracefs gives
 * (events/<system>/<name>/id), counted, sampled with their RAW data, and
 * filtered by an ftrace filter set with PERF_EVENT_IOC_SET_FILTER.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as pe from "../ffi/perf_event.ts";
import { runtime } from "../ffi/platform.ts";
import { libc } from "../src/libc.ts";
import { UmmuError } from "../src/errors.ts";
import { PerfEvent } from "../src/perf/event.ts";
import type { PerfEventAttr } from "../src/perf/attr.ts";
import { ensureTracefs, isSkip } from "./tracefs_mount.ts";
import { drainRecords, samplesOf, startPerfWorker } from "./fixtures/perf_common.ts";

const tracefs = ensureTracefs();
const idFile = isSkip(tracefs) ? "" : `${tracefs}/events/syscalls/sys_enter_getpid/id`;
const skip = isSkip(tracefs)
  ? tracefs.skip
  : !existsSync(idFile)
  ? "this kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)"
  : undefined;
const getpidId = skip ? 0 : Number(readFileSync(idFile, "utf8"));

function getpidTracepoint(extra: PerfEventAttr = {}): PerfEventAttr {
  return { type: pe.PERF_TYPE_TRACEPOINT, config: BigInt(getpidId), ...extra };
}

test("syscalls:sys_enter_getpid counted: each getpid(2) of this thread", { skip }, async () => {
  const ev = PerfEvent.open(getpidTracepoint());
  try {
    ev.enable();
    for (let i = 0; i < 25; i++) libc.getpid();
    ev.disable();
    const n = ev.read().value;
    assert.ok(n >= 25n && n < 25n + 10n, `${n} getpid calls counted for 25`);
    for (let i = 0; i < 5; i++) libc.getpid();
    assert.equal(ev.read().value, n, "disabled: no more");
  } finally {
    await ev.close();
  }
});

test("sampled with PERF_SAMPLE_RAW: the tracepoint's record (common_type = id, common_pid = tid)", {
  skip,
}, async () => {
  const ev = PerfEvent.open(
    getpidTracepoint({
      samplePeriod: 1n,
      sampleType: pe.PERF_SAMPLE_RAW | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_IP,
    }),
    { ring: { pages: 4 } },
  );
  try {
    ev.enable();
    for (let i = 0; i < 10; i++) libc.getpid();
    ev.disable();
    const samples = samplesOf(drainRecords(ev));
    assert.ok(samples.length >= 10, `${samples.length} samples`);
    const tid = libc.gettid();
    for (const s of samples) {
      assert.ok(s.raw && s.raw.length >= 12, "RAW data");
      const dv = new DataView(s.raw.buffer, s.raw.byteOffset, s.raw.length);
      assert.equal(dv.getUint16(0, true), getpidId, "common_type is the tracepoint's id");
      assert.equal(dv.getInt32(4, true), tid, "common_pid is the calling thread");
      const nr = runtime.arch === "x64" ? 39 : runtime.arch === "arm64" ? 172 : undefined;
      if (nr !== undefined) assert.equal(dv.getInt32(8, true), nr, "__syscall_nr of getpid");
      assert.equal(s.tid, tid);
    }
  } finally {
    await ev.close();
  }
});

test(
  'setFilter("common_pid == X"): only the Worker\'s calls count; once per event; a bad filter is EINVAL',
  {
    skip,
  },
  async () => {
    const worker = await startPerfWorker();
    const ev = PerfEvent.open(getpidTracepoint(), { target: { process: "self" } });
    try {
      ev.setFilter(`common_pid == ${worker.tid}`);
      ev.enable();
      for (let i = 0; i < 20; i++) libc.getpid(); // this thread: filtered out
      await worker.ask({ op: "getpid", count: 7 });
      ev.disable();
      assert.equal(ev.read().value, 7n, "the Worker's 7 calls, none of this thread's 20");
      // The kernel takes one filter per tracepoint event (ftrace_profile_set_filter: EEXIST).
      assert.throws(() => ev.setFilter("0"), (e: unknown) => {
        assert.ok(e instanceof UmmuError, `${e}`);
        assert.equal(e.code, "EEXIST");
        return true;
      });
      const fresh = PerfEvent.open(getpidTracepoint());
      try {
        assert.throws(() => fresh.setFilter("no_such_field == 1"), (e: unknown) => {
          assert.ok(e instanceof UmmuError, `${e}`);
          assert.equal(e.code, "EINVAL");
          assert.match(e.message, /SET_FILTER/);
          return true;
        });
        assert.throws(() => fresh.setFilter("a\0b"), /NUL/);
      } finally {
        await fresh.close();
      }
    } finally {
      await ev.close();
      await worker.stop();
    }
  },
);
