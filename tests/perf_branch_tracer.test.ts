/**
 * The branch tracer and its probe. This project's machines have no PMU (no
 * LBR, no intel_bts, no intel_pt), so here every method ends in the kernel's
 * refusal or the PMU's absence, and the tests check that end exactly: the
 * probe's outcome per method, and the typed error that lists the PMUs and
 * says what to do, with nothing left behind (perf fds, rings, the spawned
 * command). On a machine that has a method, the same tests trace a short
 * command with it and check the branches come out.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as pe from "../ffi/perf_event.ts";
import { BranchTracer, BranchTracingUnavailableError } from "../src/perf/branch_tracer.ts";
import { pmuType, probeBranchTracing } from "../src/perf/branch_support.ts";
import {
  branchFilterNames,
  branchPrivName,
  branchSampleType,
  branchSpecName,
  branchTypeName,
} from "../src/perf/branch_filter.ts";
import { pmuNames } from "../src/perf/pmu.ts";
import { UmmuArgumentError } from "../src/errors.ts";
import { owned, ownedBackTo } from "./fixtures/perf_common.ts";

const support = probeBranchTracing();

/** Child processes of this process (the tracer's command must not outlive it). */
function children(): number[] {
  const me = process.pid;
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === me) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

test("the probe: each method's outcome is the kernel's answer or the PMU's absence", () => {
  assert.deepEqual(support.pmus, pmuNames());
  for (const m of ["bts", "pt"] as const) {
    const pmu = m === "bts" ? "intel_bts" : "intel_pt";
    const s = support[m];
    assert.equal(s.method, m);
    if (!support.pmus.includes(pmu)) {
      assert.equal(s.outcome, "absent");
      assert.equal(s.available, false);
      assert.match(s.detail, new RegExp(`no ${pmu} PMU`));
      assert.equal(pmuType(pmu), null);
    } else {
      assert.ok(pmuType(pmu)! > pe.PERF_TYPE_BREAKPOINT, "a dynamic PMU type");
      assert.equal(s.available, s.outcome === "ok");
    }
  }
  assert.equal(support.lbr.available, support.lbr.outcome === "ok");
  if (!support.lbr.available) assert.match(support.lbr.outcome, /^E[A-Z]+$/);
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  assert.equal(support.hypervisor, /\bhypervisor\b/.test(cpuinfo));
});

for (const via of ["lbr", "bts", "pt", "auto"] as const) {
  const available = via === "auto"
    ? support.pt.available || support.lbr.available || support.bts.available
    : support[via].available;
  test(`BranchTracer via ${via}: ${available ? "traces a command" : "the typed error, nothing left"}`, async () => {
    const before = owned();
    const kids = children().length;
    if (!available) {
      let err: unknown;
      try {
        BranchTracer.open({ via, target: { command: ["/bin/true"] } });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof BranchTracingUnavailableError, String(err));
      const e = err as BranchTracingUnavailableError;
      const methods = via === "auto" ? ["pt", "lbr", "bts"] as const : [via];
      for (const m of methods) {
        assert.ok(e.message.includes(`${m}: ${support[m].detail}`), e.message);
      }
      assert.ok(e.message.includes(`PMUs here: ${support.pmus.join(" ")}`), e.message);
      assert.match(e.message, /perf_event_paranoid = /);
      if (support.hypervisor) {
        assert.match(e.message, /virtual machine: hypervisors usually hide the PMU/);
      }
      assert.deepEqual(e.support.pmus, support.pmus);
      const outcomes = methods.map((m) => support[m].outcome);
      assert.equal(
        e.code,
        outcomes.some((o) => o === "EACCES" || o === "EPERM")
          ? "EACCES"
          : outcomes.includes("EBUSY")
          ? "EBUSY"
          : "ENOENT",
      );
      assert.equal(children().length, kids, "no command was started");
      assert.deepEqual(await ownedBackTo(before), before);
      return;
    }
    // A machine with the method: trace a short command to its exit.
    const t = BranchTracer.open({ via, target: { command: ["/bin/true"] } });
    let branches = 0, packets = 0;
    for await (const ev of t.events()) {
      if (ev.kind === "branch") branches++;
      if (ev.kind === "pt") packets++;
    }
    await t.close();
    assert.ok(branches + packets > 0, `${t.via}: ${branches} branches, ${packets} packets`);
    assert.deepEqual(await ownedBackTo(before), before);
  });
}

test("BranchTracer.open: bad options are argument errors before anything is opened", () => {
  const before = owned();
  const kids = children().length;
  assert.throws(
    () => BranchTracer.open({ via: "lbx" as never }),
    /via.*"lbr", "bts", "pt" or "auto"/,
  );
  assert.throws(() => BranchTracer.open({ filter: "any,sideways" }), UmmuArgumentError);
  assert.throws(() => BranchTracer.open({ target: { command: [] } }), /target\.command/);
  assert.throws(() => BranchTracer.open({ target: { command: [1] as never } }), UmmuArgumentError);
  assert.throws(() => BranchTracer.open(null as never), UmmuArgumentError);
  // Checked before the probe: a fractional period is an argument error, never an engine RangeError.
  for (const period of [1.5, 0, -1, "100" as never, 2 ** 60]) {
    assert.throws(
      () => BranchTracer.open({ period }),
      (e) => e instanceof UmmuArgumentError && /period/.test(e.message),
      String(period),
    );
  }
  assert.throws(() => BranchTracer.open({ ptConfig: 1 as never }), /ptConfig/);
  assert.throws(() => BranchTracer.open({ addressFilter: {} as never }), /addressFilter/);
  assert.deepEqual(owned(), before);
  assert.equal(children().length, kids);
});

test("branch filters are perf's -j words; a filter without a branch type means any", () => {
  assert.equal(branchSampleType("any,u"), pe.PERF_SAMPLE_BRANCH_ANY | pe.PERF_SAMPLE_BRANCH_USER);
  assert.equal(branchSampleType("u"), pe.PERF_SAMPLE_BRANCH_ANY | pe.PERF_SAMPLE_BRANCH_USER);
  assert.equal(
    branchSampleType(["any_call", "any_ret", "k", "save_type", "hw_index"]),
    pe.PERF_SAMPLE_BRANCH_ANY_CALL | pe.PERF_SAMPLE_BRANCH_ANY_RETURN |
      pe.PERF_SAMPLE_BRANCH_KERNEL | pe.PERF_SAMPLE_BRANCH_TYPE_SAVE |
      pe.PERF_SAMPLE_BRANCH_HW_INDEX,
  );
  assert.equal(branchSampleType("call_stack,u"), pe.PERF_SAMPLE_BRANCH_CALL_STACK | 1);
  // Every PERF_SAMPLE_BRANCH_* bit below MAX has a word, and the words round-trip.
  const all = pe.PERF_SAMPLE_BRANCH_MAX - 1;
  const names = branchFilterNames(all);
  assert.equal(names.length, Math.log2(pe.PERF_SAMPLE_BRANCH_MAX));
  assert.equal(branchSampleType(names), all);
  assert.deepEqual(branchFilterNames(pe.PERF_SAMPLE_BRANCH_MAX), ["0x100000"]);
  assert.throws(() => branchFilterNames(1n as never), UmmuArgumentError);
  assert.throws(() => branchFilterNames(-1), UmmuArgumentError);
  assert.throws(() => branchSampleType("any,sideways"), /one of u, k, hv, any.*got "sideways"/s);
  assert.throws(() => branchSampleType(42 as never), UmmuArgumentError);
  assert.equal(branchTypeName({ type: pe.PERF_BR_CALL, newType: 0 }), "call");
  assert.equal(branchTypeName({ type: pe.PERF_BR_RET, newType: 0 }), "ret");
  assert.equal(
    branchTypeName({ type: pe.PERF_BR_EXTEND_ABI, newType: pe.PERF_BR_NEW_FAULT_DATA }),
    "fault_data",
  );
  assert.equal(branchPrivName({ priv: pe.PERF_BR_PRIV_KERNEL }), "kernel");
  assert.equal(branchSpecName({ spec: pe.PERF_BR_SPEC_WRONG_PATH }), "spec_wrong_path");
});
