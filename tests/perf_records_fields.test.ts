/**
 * The SAMPLE fields after the branch stack against Debian's perf: user and
 * interrupt registers, the user stack (`--call-graph dwarf`), physical
 * addresses, data and code page sizes, cgroup ids, weight, data source and
 * transaction, in files recorded here by `perf record` and in a file ummu
 * recorded itself (fields perf record never asks for together, e.g. WEIGHT
 * rather than WEIGHT_STRUCT), each compared with `perf report -D` on every
 * sample (tests/fixtures/perf_compare.ts). cgroup ids, which `perf report -D`
 * does not print, are compared with `perf report --sort cgroup` and with the
 * cgroup directory's inode.
 *
 * What no event on this machine can record: PERF_SAMPLE_AUX (it needs a group
 * leader with an AUX area, a PMU such as intel_pt or arm_spe). Weight, data
 * source and transaction come only from PMUs too (PEBS, IBS); a software
 * event records them as the kernel's defaults (0, PERF_MEM_NA, 0), which is
 * what is compared here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pe from "../ffi/perf_event.ts";
import { perf, perfSkip } from "./fixtures/perf_dump.ts";
import { assertAgreesWithPerf } from "./fixtures/perf_compare.ts";
import { assertReusedMatchesFresh } from "./fixtures/perf_reused.ts";
import { cgroup2Mount } from "./fixtures/perf_common.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import { PerfDataWriter } from "../src/perf/perf_data/writer.ts";
import { PerfEvent } from "../src/perf/event.ts";
import { Mapping } from "../src/memory.ts";
import type { PerfRecord, SampledRegs, SampleRecord } from "../src/perf/records.ts";

const dir = mkdtempSync(join(tmpdir(), "ummu-perf-fields-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

/** Faults pages (ld.so's relocations write to pages it read first: present, copy-on-write). */
const WORKLOAD = ["sh", "-c", "ls -R /usr/lib >/dev/null 2>&1; cat /proc/self/maps >/dev/null"];

function record(name: string, args: string[], command = WORKLOAD): string {
  const out = join(dir, name);
  perf(["record", "-q", "-o", out, ...args, "--", ...command]);
  return out;
}

function samplesOf(entries: { record: { kind: string } }[]): SampleRecord[] {
  return entries.map((e) => e.record as PerfRecord).filter((r): r is SampleRecord =>
    r.kind === "sample"
  );
}

/** x86-64's PERF_REG_X86_IP is bit 8: its value's index is the mask's set bits below it. */
function regIp(regs: SampledRegs): bigint | undefined {
  if (regs.abi === pe.PERF_SAMPLE_REGS_ABI_NONE || !(regs.mask & (1n << 8n))) return undefined;
  let index = 0;
  for (let bit = 0n; bit < 8n; bit++) if (regs.mask & (1n << bit)) index++;
  return regs.values[index];
}

const x86Skip = perfSkip || (process.arch === "x64" ? false : "register bit numbers are x86-64's");

test(
  "page-faults with registers, a dwarf user stack, physical addresses and page sizes: every sample agrees with perf report -D",
  {
    skip: x86Skip,
  },
  () => {
    const f = record("fields.data", [
      "-e",
      "page-faults",
      "-c",
      "1",
      "-d",
      "--call-graph",
      "dwarf,1024",
      "--intr-regs=ip,sp,cx",
      "--phys-data",
      "--data-page-size",
      "--code-page-size",
    ]);
    const a = assertAgreesWithPerf(f);
    assert.ok(a.samples > 50, `samples: ${a.samples}`);
    for (const field of ["regsUser", "regsIntr", "stackUser", "physAddr", "dataPageSize"]) {
      assert.equal(a.sampleFields[field], a.samples, `${field} compared in every sample`);
    }
    assert.equal(a.sampleFields.codePageSize, a.samples);
    const samples = samplesOf(a.entries);
    // The registers are the sample's: user regs at a user-mode fault, interrupt regs at every one.
    const user = samples.filter((s) => s.cpumode === "user");
    assert.ok(user.length > 0, "user-mode faults");
    for (const s of user) {
      assert.equal(regIp(s.regsUser!), s.ip, "user regs' IP is the sample's ip");
    }
    for (const s of samples) {
      assert.equal(
        regIp(s.regsIntr!),
        s.ip,
        "intr regs' IP is the sample's ip",
      );
    }
    assert.ok(user.every((s) => s.stackUser!.size === 1024n), "a user fault dumps 1024 bytes");
    assert.ok(user.some((s) => s.stackUser!.dynSize > 0n), "of its user stack");
    // A fault on a present page (copy-on-write) has a physical address and a page size.
    const present = samples.filter((s) => s.physAddr !== 0n);
    assert.ok(present.length > 0, "a fault with a physical address");
    assert.ok(present.every((s) => s.dataPageSize! >= 4096n), "a present page has a page size");
    assert.ok(samples.some((s) => s.codePageSize === 4096n), "a 4K code page");
    assert.ok(assertReusedMatchesFresh(f) > a.samples);
  },
);

test(
  "cpu-clock system-wide with a dwarf stack: kernel threads' samples have no user registers or stack",
  {
    skip: x86Skip,
  },
  () => {
    const f = record("idle.data", [
      "-a",
      "-e",
      "cpu-clock",
      "-c",
      "1000000",
      "--call-graph",
      "dwarf,256",
      "--intr-regs=ip,sp",
    ], ["sleep", "0.3"]);
    const a = assertAgreesWithPerf(f);
    const samples = samplesOf(a.entries);
    assert.equal(a.sampleFields.regsUser, a.samples);
    assert.equal(a.sampleFields.stackUser, a.samples);
    // The idle task (and every kernel thread) has no user context: ABI NONE, an empty stack.
    const kthread = samples.filter((s) => s.regsUser!.abi === pe.PERF_SAMPLE_REGS_ABI_NONE);
    // On a machine whose CPUs are all busy (a CI run) no kernel thread or idle task may run
    // in 0.3 s: then there is nothing of theirs to check, and the test says so.
    if (kthread.length === 0) {
      console.log(`note: no kernel-thread sample among ${samples.length}: every CPU was busy`);
    }
    for (const s of kthread) {
      assert.equal(s.regsUser!.values.length, 0);
      assert.deepEqual([s.stackUser!.size, s.stackUser!.dynSize], [0n, 0n]);
    }
    assert.ok(
      samples.some((s) => s.regsUser!.abi === pe.PERF_SAMPLE_REGS_ABI_64),
      "samples of a user task",
    );
    assertReusedMatchesFresh(f);
  },
);

test(
  "-W --transaction -d: weight struct, data source and transaction agree (a software event's defaults)",
  {
    skip: perfSkip,
  },
  () => {
    const f = record("weight.data", ["-e", "page-faults", "-c", "1", "-W", "--transaction", "-d"]);
    const a = assertAgreesWithPerf(f);
    assert.ok(a.samples > 20, `samples: ${a.samples}`);
    for (const field of ["weight", "dataSrc", "transaction"]) {
      assert.equal(a.sampleFields[field], a.samples, `${field} compared in every sample`);
    }
    for (const s of samplesOf(a.entries)) {
      // perf_prepare_sample: PERF_MEM_NA, whose every level is "not available".
      const d = s.dataSrc!;
      assert.deepEqual(
        [d.memOp, d.memLvl, d.memSnoop, d.memLock, d.memDtlb, d.memLvlNum],
        [1, 1, 1, 1, 1, 0xf],
        `data_src 0x${d.raw.toString(16)}`,
      );
      assert.equal(s.transaction, 0n);
    }
    assertReusedMatchesFresh(f);
  },
);

/** The cgroup v2 directory `name`, made for the test, and removed after `fn`. */
function withCgroup<T>(name: string, fn: (path: string, rel: string) => T): T {
  const root = cgroup2Mount()!;
  const path = join(root, name);
  mkdirSync(path);
  try {
    return fn(path, "/" + name);
  } finally {
    rmdirSync(path);
  }
}

const cgroupSkip = perfSkip ||
  (cgroup2Mount() === null
    ? "no cgroup v2 mount"
    : process.getuid?.() !== 0
    ? "needs root (to make a cgroup)"
    : false);

test(
  "--all-cgroups: each sample's cgroup id is its cgroup's (the directory inode), and perf report names it",
  {
    skip: cgroupSkip,
  },
  () => {
    withCgroup(`ummu-perf-fields-${process.pid}`, (path, rel) => {
      const f = record("cgroup.data", ["--all-cgroups", "-e", "page-faults", "-c", "1"], [
        "sh",
        "-c",
        `echo $$ > ${path}/cgroup.procs; ls -R /usr/lib >/dev/null 2>&1`,
      ]);
      const a = assertAgreesWithPerf(f);
      const paths = new Map<bigint, string>();
      for (const e of a.entries) {
        if (e.record.kind === "cgroup") paths.set(e.record.id, e.record.path);
      }
      assert.equal(
        paths.get(BigInt(statSync(path).ino)),
        rel,
        "the CGROUP record of the new cgroup",
      );
      const mine = new Map<string, number>();
      for (const s of samplesOf(a.entries)) {
        const p = paths.get(s.cgroup!) ?? "unknown";
        mine.set(p, (mine.get(p) ?? 0) + 1);
      }
      assert.ok((mine.get(rel) ?? 0) > 10, `samples in ${rel}: ${JSON.stringify([...mine])}`);
      const theirs = new Map<string, number>();
      const out = perf(["report", "-i", f, "--stdio", "--sort", "cgroup", "-F", "sample,cgroup"])
        .stdout;
      for (const line of out.split("\n")) {
        const m = /^\s+(\d+)\s+(\S+)\s*$/.exec(line);
        if (m) theirs.set(m[2], Number(m[1]));
      }
      assert.deepEqual(
        [...mine].sort(),
        [...theirs].sort(),
        "samples per cgroup: ummu's ids vs perf report --sort cgroup",
      );
      assertReusedMatchesFresh(f);
    });
  },
);

test(
  "a file ummu records (WEIGHT, DATA_SRC, TRANSACTION, PHYS_ADDR, CGROUP, page sizes; registers and a user stack): perf reads every field as ummu",
  {
    skip: x86Skip,
  },
  async () => {
    const common = pe.PERF_SAMPLE_IDENTIFIER | pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID |
      pe.PERF_SAMPLE_TIME | pe.PERF_SAMPLE_ADDR;
    const eightByteFields = common | pe.PERF_SAMPLE_WEIGHT | pe.PERF_SAMPLE_DATA_SRC |
      pe.PERF_SAMPLE_TRANSACTION | pe.PERF_SAMPLE_PHYS_ADDR | pe.PERF_SAMPLE_CGROUP |
      pe.PERF_SAMPLE_DATA_PAGE_SIZE | pe.PERF_SAMPLE_CODE_PAGE_SIZE;
    const withRegs = common | pe.PERF_SAMPLE_REGS_USER | pe.PERF_SAMPLE_STACK_USER |
      pe.PERF_SAMPLE_WEIGHT_STRUCT | pe.PERF_SAMPLE_REGS_INTR | pe.PERF_SAMPLE_PHYS_ADDR;
    const open = (event: string, sampleType: number, extra = {}) =>
      PerfEvent.open(event, {
        ring: { pages: 16 },
        attr: {
          samplePeriod: 1n,
          sampleType,
          sampleIdAll: true,
          mmap: sampleType === eightByteFields,
          mmap2: sampleType === eightByteFields,
          comm: sampleType === eightByteFields,
          ...extra,
        },
      });
    // Two events of one software event on one task share the kernel's perf_sample_data (Linux
    // 6.18, do_perf_sw_event): the second gets the first's id and record size. So one is
    // page-faults, the other minor-faults (a separate perf_sw_event call at each fault).
    const plain = open("page-faults", eightByteFields);
    const regs = open("minor-faults", withRegs, {
      sampleRegsUser: 0xff0fffn,
      sampleStackUser: 256,
      sampleRegsIntr: 0x1ffn,
    });
    const memory = Mapping.create(32 * 4096);
    try {
      const bytes = new Uint8Array(memory.buffer);
      plain.enable(), regs.enable();
      for (let page = 0; page < 32; page++) bytes[page * 4096] = page;
      plain.disable(), regs.disable();
      const f = join(dir, "ummu.data");
      const w = PerfDataWriter.create(f, [
        { attr: plain.attr, ids: plain.ids(), name: "page-faults" },
        { attr: regs.attr, ids: regs.ids(), name: "minor-faults" },
      ]);
      for (const ev of [plain, regs]) {
        ev.drain((b, off, size) => w.writeRecord(b.slice(off, off + size)));
      }
      w.close();
      const a = assertAgreesWithPerf(f);
      assert.ok(a.samples >= 2 * 32, `samples: ${a.samples}`);
      const perAttr = [0, 0];
      for (const e of a.entries) if (e.record.kind === "sample") perAttr[e.attrIndex]++;
      assert.ok(perAttr[0] >= 32 && perAttr[1] >= 32, `samples per attr: ${perAttr}`);
      for (const field of ["dataPageSize", "codePageSize", "transaction", "dataSrc"]) {
        assert.equal(a.sampleFields[field], perAttr[0], field);
      }
      assert.equal(a.sampleFields.weight, a.samples);
      assert.equal(a.sampleFields.physAddr, a.samples);
      assert.equal(a.sampleFields.regsIntr, perAttr[1]);
      const samples = samplesOf(a.entries);
      // Our own writes' faults: each page's address, in this thread's cgroup.
      const ours = samples.filter((s) =>
        s.addr! >= BigInt(memory.address) && s.addr! < BigInt(memory.address) + 32n * 4096n
      );
      assert.ok(ours.length >= 2 * 32, `faults on the mapping: ${ours.length}`);
      const cg = cgroup2Mount();
      const own = /^0::(\/.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))?.[1];
      if (cg !== null && own !== undefined) {
        const ino = BigInt(statSync(join(cg, own)).ino);
        for (const s of ours) if (s.cgroup !== undefined) assert.equal(s.cgroup, ino, "cgroup id");
      }
      for (const s of ours) {
        if (s.regsIntr) assert.equal(regIp(s.regsIntr), s.ip, "intr regs' IP is the sample's ip");
      }
      const r = PerfDataReader.open(f);
      assert.equal(r.attrs.length, 2);
      r.close();
      assertReusedMatchesFresh(f);
    } finally {
      await plain.close();
      await regs.close();
      memory.close();
    }
  },
);
