/**
 * Reading an event's records the three ways the library offers, on the real
 * kernel: readRecords() (the decoder's reused objects), for-await records()
 * (owning objects, waiting in a Worker-backed poll, ending when the watched
 * process exits), and startReader() (a Worker drains the rings into a shared
 * queue while the main thread is busy; what overflows is reported by the
 * kernel's LOST records, never dropped silently). One reader per ring.
 * And `ummu perf record`, whose file Debian's perf reads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pe from "../ffi/perf_event.ts";
import { ClosedError, UmmuArgumentError } from "../src/errors.ts";
import { Mapping } from "../src/memory.ts";
import { PerfEvent } from "../src/perf/event.ts";
import type { PerfRecord } from "../src/perf/records.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import { owned, ownedBackTo, waitingShell } from "./fixtures/perf_common.ts";

const PAGE = 4096;
const FAULT_SAMPLES = pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_TIME |
  pe.PERF_SAMPLE_ADDR;

/** page-faults sampled at every fault, with a ring. */
function faultEvent(pages = 8, extra = {}): PerfEvent {
  return PerfEvent.open("page-faults", {
    attr: { samplePeriod: 1n, sampleType: FAULT_SAMPLES, ...extra },
    ring: { pages },
  });
}

function touch(m: Mapping, pages: number): void {
  const u8 = new Uint8Array(m.buffer);
  for (let p = 0; p < pages; p++) u8[p * PAGE] = 1;
}

test("readRecords: each fresh page's fault, in order, with its address, from reused objects", async () => {
  const before = owned();
  const m = Mapping.create(32 * PAGE);
  const ev = faultEvent();
  try {
    ev.enable();
    touch(m, 32);
    ev.disable();
    const pages: number[] = [];
    let reused: PerfRecord | null = null;
    let sameObject = true;
    ev.readRecords((r) => {
      if (reused !== null && r.kind === "sample" && reused !== r) sameObject = false;
      if (r.kind !== "sample") return;
      reused = r;
      const a = r.addr!;
      if (a >= m.address && a < m.address + BigInt(32 * PAGE)) {
        pages.push(Number(a - m.address) / PAGE);
      }
    });
    assert.deepEqual(pages, Array.from({ length: 32 }, (_, i) => i), "every page, in order");
    assert.ok(sameObject, "the hot path hands out one reused SampleView");
    assert.equal(ev.lost, 0);
    assert.equal(ev.readRecords(() => {}), 0, "drained: nothing twice");
  } finally {
    await ev.close();
    m.close();
  }
  await ownedBackTo(before);
});

test("records(): owning objects; the iteration ends when the watched command exits", async () => {
  const before = owned();
  const child = await waitingShell("i=0; while [ $i -lt 3 ]; do ls / >/dev/null; i=$((i+1)); done");
  const ev = PerfEvent.open("page-faults", {
    target: { process: child.pid },
    attr: {
      samplePeriod: 1n,
      sampleType: FAULT_SAMPLES,
      task: true,
      comm: true,
      sampleIdAll: true,
      disabled: false,
    },
    ring: { pages: 64 },
  });
  const kept: PerfRecord[] = [];
  let done: Promise<unknown> = Promise.resolve();
  try {
    done = child.go();
    for await (const r of ev.records()) kept.push(r);
    const kinds = new Set(kept.map((r) => r.kind));
    assert.ok(kinds.has("sample") && kinds.has("fork") && kinds.has("exit"), [...kinds].join());
    const samples = kept.filter((r) => r.kind === "sample");
    // Owning objects: distinct, and their values stay after the rings moved on.
    assert.equal(new Set(samples).size, samples.length);
    assert.ok(samples.every((s) => s.kind === "sample" && typeof s.addr === "bigint"));
    const pids = new Set(samples.map((s) => s.kind === "sample" ? s.pid : 0));
    assert.ok(pids.has(child.pid), "the command's own faults");
    assert.ok(pids.size >= 2, "and its children's (inherit)");
  } finally {
    await ev.close();
    await done;
  }
  await ownedBackTo(before);
});

test("records() ends at close(); every reading call after close is ClosedError", async () => {
  const before = owned();
  const ev = faultEvent();
  const it = ev.records();
  const next = it.next();
  await new Promise((r) => setTimeout(r, 50));
  await ev.close();
  assert.deepEqual(await next, { value: undefined, done: true });
  assert.throws(() => ev.readRecords(() => {}), ClosedError);
  await assert.rejects(ev.readable(), ClosedError);
  await assert.rejects(ev.startReader(), ClosedError);
  await ownedBackTo(before);
});

test("startReader: a Worker drains a one-page ring while the main thread is busy; overflow is LOST records, counted", async () => {
  const before = owned();
  const ev = faultEvent(1);
  const reader = await ev.startReader({ queueBytes: 1 << 20 });
  try {
    assert.throws(() => ev.readRecords(() => {}), UmmuArgumentError, "one reader per ring");
    assert.throws(() => ev.drain(() => {}), UmmuArgumentError);
    await assert.rejects(ev.startReader(), UmmuArgumentError);
    const m = Mapping.create(2000 * PAGE, { kind: "memfd" }); // shared memory: no huge pages
    ev.enable();
    touch(m, 2000); // 2000 samples of 40 bytes: 20 one-page rings' worth, on a busy main thread
    ev.disable();
    const counted = ev.read().value; // every fault the event counted made a sample (period 1)
    let samples = 0, inRange = 0, lostRecords = 0n, quiet = 0;
    // Take what the Worker queues; flush() makes it drain what sits below the watermark.
    while (quiet < 2) {
      await reader.flush();
      const n = reader.readRecords((r) => {
        if (r.kind === "sample") {
          samples++;
          if (r.addr! >= m.address && r.addr! < m.address + BigInt(2000 * PAGE)) inRange++;
        } else if (r.kind === "lost") lostRecords += r.lost;
      });
      quiet = n === 0 ? quiet + 1 : 0;
    }
    m.close();
    assert.ok(counted >= 2000n, `${counted} faults counted for 2000 pages`);
    assert.ok(inRange > 0, "samples of the touched pages arrived");
    // Nothing is silent: each counted fault is a sample that arrived or one the kernel
    // counted lost (read().lost, PERF_FORMAT_LOST); LOST records report those losses (all
    // but the last ones, which wait for a record that fits).
    const c = ev.read();
    assert.equal(BigInt(samples) + c.lost, counted, `${samples} samples + ${c.lost} lost`);
    assert.ok(lostRecords <= c.lost, `LOST records ${lostRecords} > the kernel's count ${c.lost}`);
    // (Whether anything is lost depends on how fast the Worker is: on Node it often keeps up.)
    assert.equal(Number(lostRecords), reader.lost, "the reader's count is the LOST records' sum");
  } finally {
    await ev.close();
  }
  await ownedBackTo(before);
});

test("startReader: records() of the reader ends when the watched process exits; close releases the Worker", async () => {
  const before = owned();
  const child = await waitingShell("ls / >/dev/null; ls /usr >/dev/null");
  const ev = PerfEvent.open("page-faults", {
    target: { process: child.pid },
    attr: { samplePeriod: 1n, sampleType: FAULT_SAMPLES, disabled: false },
    ring: { pages: 16 },
  });
  const reader = await ev.startReader();
  let done: Promise<unknown> = Promise.resolve();
  try {
    done = child.go();
    let n = 0;
    for await (const r of reader.records()) if (r.kind === "sample") n++;
    assert.ok(n > 0, "samples of the command");
  } finally {
    await reader.close();
    await reader.close(); // idempotent
    await ev.close();
    await done;
  }
  await ownedBackTo(before);
});

test("an overwrite ring refuses a Worker reader; queueBytes is checked", async () => {
  const ev = PerfEvent.open("page-faults", {
    attr: { samplePeriod: 1n, sampleType: FAULT_SAMPLES },
    ring: { pages: 1, overwrite: true },
  });
  try {
    await assert.rejects(ev.startReader(), /overwrite ring/);
  } finally {
    await ev.close();
  }
  const ev2 = faultEvent();
  try {
    await assert.rejects(ev2.startReader({ queueBytes: 1000 }), UmmuArgumentError);
    await assert.rejects(ev2.startReader({ queueBytes: "x" as never }), UmmuArgumentError);
    const noRing = PerfEvent.open("page-faults");
    await assert.rejects(noRing.startReader(), /no ring/);
    await noRing.close();
  } finally {
    await ev2.close();
  }
});

const perfBin = spawnSync("perf", ["--version"], { encoding: "utf8" }).status === 0;

test(
  "ummu perf record -- CMD: a file Debian's perf reads, the same samples ummu perf decode reads",
  {
    skip: perfBin
      ? false
      : "needs Debian's perf (apt-get install linux-perf): it is the judge of the file",
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "ummu-record-"));
    try {
      const file = join(dir, "perf.data");
      const { recordCommand } = await import("../src/perf/record_command.ts");
      const rc = await recordCommand([
        "-e",
        "page-faults,context-switches",
        "-g",
        "-o",
        file,
        "--",
        "ls",
        "-d",
        "/usr/lib",
      ]);
      assert.equal(rc, 0);
      const script = spawnSync("perf", ["script", "-i", file, "-F", "comm,pid,event,ip"], {
        encoding: "utf8",
      });
      assert.equal(script.status, 0, script.stderr);
      const perfLines = script.stdout.trim().split("\n").filter((l) => l.includes("page-faults"));
      assert.ok(perfLines.length > 10, `perf script saw ${perfLines.length} page-fault samples`);
      assert.ok(
        perfLines.every((l) => /^\s*ls\s/.test(l)),
        "named by the command's comm (COMM records)",
      );
      // ummu reads the same samples back.
      const reader = PerfDataReader.open(file);
      let ours = 0;
      try {
        for (const e of reader.entries()) {
          if (e.record.kind === "sample" && reader.eventName(e.attrIndex) === "page-faults") ours++;
        }
      } finally {
        reader.close();
      }
      assert.equal(ours, perfLines.length, "ummu and perf count the same samples");
      const report = spawnSync("perf", ["report", "-i", file, "--stdio", "--sort", "dso"], {
        encoding: "utf8",
      });
      assert.equal(report.status, 0, report.stderr);
      assert.match(
        report.stdout,
        /ld-linux|libc/,
        "perf resolves the command's libraries (MMAP2 records)",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("ummu perf record refuses bad command lines with exit 2 and unknown events with exit 1", async () => {
  const { recordCommand } = await import("../src/perf/record_command.ts");
  assert.equal(await recordCommand([]), 2, "no target");
  assert.equal(await recordCommand(["-a", "-p", "1"]), 2, "two targets");
  assert.equal(await recordCommand(["-c", "0", "-a"]), 2, "period 0");
  assert.equal(await recordCommand(["-c", "1", "-F", "10", "-a"]), 2, "-c and -F");
  assert.equal(await recordCommand(["-e", "no-such-event", "--", "true"]), 1);
});

test("PerfEventBuilder: the same event as PerfEvent.open, each setter checked where it is written", async () => {
  const { PerfEventBuilder } = await import("../src/perf/builder.ts");
  const before = owned();
  const m = Mapping.create(8 * PAGE);
  const ev = new PerfEventBuilder("page-faults")
    .observeSelf()
    .sampleEvery(1)
    .sample(pe.PERF_SAMPLE_TID)
    .sample(pe.PERF_SAMPLE_ADDR)
    .userOnly()
    .ring(8)
    .build();
  try {
    assert.equal(ev.attr.sampleType, pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_ADDR);
    assert.equal(ev.attr.excludeKernel, true);
    ev.enable();
    touch(m, 8);
    ev.disable();
    const pages = new Set<number>();
    ev.readRecords((r) => {
      if (r.kind === "sample" && r.addr! >= m.address && r.addr! < m.address + BigInt(8 * PAGE)) {
        pages.add(Number(r.addr! - m.address) / PAGE);
      }
    });
    assert.equal(pages.size, 8);
  } finally {
    await ev.close();
    m.close();
  }
  assert.throws(() => new PerfEventBuilder("page-faults").sampleEvery(0), UmmuArgumentError);
  assert.throws(() => new PerfEventBuilder("page-faults").sampleFrequency(1.5), UmmuArgumentError);
  assert.throws(() => new PerfEventBuilder("page-faults").wakeupEvents(-1), UmmuArgumentError);
  assert.throws(() => new PerfEventBuilder("page-faults").sample(1 << 30), UmmuArgumentError);
  assert.throws(
    () => new PerfEventBuilder("page-faults").sampleEvery(1).sampleFrequency(10),
    /not both/,
  );
  assert.throws(() => new PerfEventBuilder(null as never), UmmuArgumentError);
  await ownedBackTo(before);
});

test("output: two events write into one ring (SET_OUTPUT) and are told apart by id; closing the owner closes both", async () => {
  const before = owned();
  const m = Mapping.create(16 * PAGE);
  const sampleType = pe.PERF_SAMPLE_IDENTIFIER | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_ADDR;
  const faults = PerfEvent.open("page-faults", {
    attr: { samplePeriod: 1n, sampleType },
    ring: { pages: 16 },
  });
  // A different software event: two of the same share the kernel's sample data (Linux 6.18).
  const minor = PerfEvent.open("minor-faults", {
    output: faults,
    attr: { samplePeriod: 1n, sampleType: sampleType | pe.PERF_SAMPLE_TIME },
  });
  try {
    assert.equal(minor.rings.length, 0, "it has no ring of its own");
    assert.throws(
      () => PerfEvent.open("page-faults", { output: faults, ring: {} }),
      UmmuArgumentError,
    );
    assert.throws(() => PerfEvent.open("page-faults", { output: minor }), /ring/);
    faults.enable();
    minor.enable();
    touch(m, 16);
    faults.disable();
    minor.disable();
    const [fid] = faults.ids(), [mid] = minor.ids();
    const byId = new Map<bigint, number>();
    let timed = 0;
    faults.readRecords((r) => {
      if (r.kind !== "sample") return;
      if (r.addr! < m.address || r.addr! >= m.address + BigInt(16 * PAGE)) return;
      byId.set(r.identifier!, (byId.get(r.identifier!) ?? 0) + 1);
      if (r.identifier === mid && typeof r.time === "bigint") timed++; // its own layout
    });
    assert.equal(byId.get(fid), 16, "page-faults: every page");
    assert.equal(byId.get(mid), 16, "minor-faults, through the same ring: every page");
    assert.equal(timed, 16, "minor-faults samples decoded with minor-faults' layout (TIME)");
  } finally {
    await faults.close();
    m.close();
  }
  assert.equal(minor.closed, true, "closing the owner closed the event writing into it");
  await ownedBackTo(before);
});
