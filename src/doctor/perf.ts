/**
 * The doctor's perf check (informational: it sets no exit bit):
 * perf_event_paranoid, the PMUs in sysfs, and perf_event_open on this thread
 * of a software counter, a hardware counter and a hardware watchpoint (closed
 * at once), through the library's own code (src/perf/open.ts: rawOpen, the
 * attr encoder, what each paranoid level allows). A fix is offered only where
 * it would change something: never "lower the paranoid level" to the value it
 * already has.
 *
 * The facts (the paranoid level, the PMU list) are read through the doctor's
 * SystemFacts, not perfEventParanoid()/pmuNames(): those say null and [] for
 * a file this process may not read, where the doctor must say "unknown".
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { type DoctorContext, notProbed, privileged } from "./context.ts";
import type { Library } from "./library.ts";
import type { DoctorCheck, DoctorStatus } from "./report.ts";
import { configFact, type Fact, isUnknown, readFact, readNumber, showFact } from "./system.ts";

const HW_PMUS =
  /^(cpu|cpu_core|cpu_atom|armv8_.*|arm_cortex_.*|arm_neoverse_.*|armv7_.*|apple_.*)$/;
const PMU_DIR = "/sys/bus/event_source/devices";

/** What the doctor opens: every one on this thread, user space only, disabled. */
type Probe = Parameters<Library["perf"]["encodeAttr"]>[0];

/**
 * perf_event_open of `attr` on this thread, user space only (the library's
 * openOutcome: no hint probing), closed at once: "ok" or the errno name.
 */
export function perfOpenOutcome(lib: Library, attr: Probe): string {
  return lib.perf.openOutcome({ ...attr, excludeKernel: true });
}

/** The paranoid level's meaning: the library's words, or "no restriction" when privileged. */
function paranoidText(
  lib: Library | null,
  paranoid: number | null,
  isPrivileged: boolean,
): string {
  if (paranoid === null) return "absent: a kernel without perf events";
  const meaning = lib ? lib.perf.paranoidMeaning(paranoid) : null;
  if (isPrivileged) {
    return `no restriction for this privileged process${
      meaning ? `; unprivileged: ${meaning}` : ""
    }`;
  }
  return meaning ?? "its meaning is the library's, which did not load";
}

/** Runs the perf check. */
export function checkPerf(ctx: DoctorContext): DoctorCheck {
  const { sys, lib, who } = ctx;
  const paranoid = readNumber(sys, "/proc/sys/kernel/perf_event_paranoid");
  const pmus = sys.list(PMU_DIR);
  const pmuList = isUnknown(pmus) || pmus === null ? null : pmus;
  const hw = pmuList?.filter((p) => HW_PMUS.test(p)) ?? null;
  const branches = hw === null ? null : hw.map((p) => {
    const b = readFact(sys, `${PMU_DIR}/${p}/caps/branches`);
    return typeof b === "string" && b ? Number(b) : null;
  }).find((b) => b !== null) ?? null;
  const cpuinfo = readFact(sys, "/proc/cpuinfo");
  const archLbr = typeof cpuinfo === "string"
    ? (/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/).includes("arch_lbr")
    : false;
  const isPrivileged = privileged(who, ["CAP_PERFMON", "CAP_SYS_ADMIN"]);
  const unknownPmus = isUnknown(pmus) ? pmus : null;
  const facts: Record<string, unknown> = {
    paranoid,
    privileged: isPrivileged,
    pmus: pmus ?? [],
    hardwarePmu: unknownPmus ?? hw ?? [],
    bts: unknownPmus ?? pmuList?.includes("intel_bts") ?? false,
    intelPt: unknownPmus ?? pmuList?.includes("intel_pt") ?? false,
    lbr: unknownPmus ?? branches,
    config: configFact(ctx.config, "CONFIG_PERF_EVENTS"),
  };
  const details = [
    `kernel.perf_event_paranoid = ${
      showFact(paranoid, (p) => `${p ?? "?"} (${paranoidText(lib, p, isPrivileged)})`)
    }`,
    `PMUs: ${showFact(pmus, (l) => l === null ? `none (no ${PMU_DIR})` : l.join(" ") || "none")}`,
  ];
  if (lib === null) {
    return notProbed(ctx, "perf", details, facts);
  }
  const software = perfOpenOutcome(lib, {
    type: pe.PERF_TYPE_SOFTWARE,
    config: BigInt(pe.PERF_COUNT_SW_TASK_CLOCK),
  });
  const hardware = perfOpenOutcome(lib, {
    type: pe.PERF_TYPE_HARDWARE,
    config: BigInt(pe.PERF_COUNT_HW_CPU_CYCLES),
  });
  // A write watchpoint on a word of this module's own memory: the debug registers
  // (the breakpoint PMU) that watch a SharedArrayBuffer's word for writers.
  const word = new Uint8Array(8);
  const breakpoint = perfOpenOutcome(lib, {
    type: pe.PERF_TYPE_BREAKPOINT,
    bpType: pe.HW_BREAKPOINT_W,
    bpAddr: BigInt(lib.runtime.addressOf(word)),
    bpLen: 4n,
  });
  facts.softwareEvents = software;
  facts.hardwareEvents = hardware;
  facts.breakpointEvents = breakpoint;
  // The kernel's answer for a counter no PMU provides (ENOENT; EOPNOTSUPP, ENODEV on some arches).
  const noHwCounter = ["ENOENT", "EOPNOTSUPP", "ENODEV"].includes(hardware);
  details.push(
    `hardware PMU: ${
      hw === null
        ? "unknown (the PMU list could not be read)"
        : hw.length
        ? hw.join(" ")
        : "none: this machine exposes no CPU PMU (a VM without a virtual PMU?)"
    }; cycles counter: ${hardware}`,
    `software events (task-clock) and tracepoints: ${software === "ok" ? "usable" : software}`,
    `hardware breakpoints (watchpoints): ${breakpoint === "ok" ? "usable" : breakpoint}`,
  );
  // Branch tracing: the branch tracer's own probe (src/perf/branch_support.ts), so that the
  // doctor says "usable" exactly when BranchTracer.open({ via }) would open.
  const branch = lib.perf.probeBranchTracing();
  facts.branchTracing = {
    lbr: branch.lbr.outcome,
    bts: branch.bts.outcome,
    pt: branch.pt.outcome,
  };
  const said = (m: "lbr" | "bts" | "pt") =>
    branch[m].available
      ? `usable: ${branch[m].detail}`
      : `unavailable (${branch[m].outcome}): ${branch[m].detail}`;
  details.push(
    `LBR (branch stacks): ${said("lbr")}${
      branches !== null ? `; ${branches} entries (caps/branches)` : ""
    }${archLbr ? "; CPU flag arch_lbr" : ""}`,
    `BTS (intel_bts): ${said("bts")}`,
    `Intel PT (intel_pt): ${said("pt")}`,
  );
  const fixes: string[] = [];
  let status: DoctorStatus = "ok";
  let summary = "hardware and software events usable";
  if (software !== "ok") {
    status = "unavailable";
    summary = `perf_event_open refused (${software})`;
    const fix = softwareFix(software, paranoid, isPrivileged, who.seccomp);
    if (fix) fixes.push(`perf: ${fix}`);
  } else if (hardware !== "ok") {
    status = "limited";
    summary = noHwCounter
      ? "software events and tracepoints only: no hardware PMU (no cycles, BTS or LBR)"
      : `software events and tracepoints only: the cycles counter is refused (${hardware})`;
    fixes.push(
      noHwCounter
        ? "perf: hardware counters, BTS and LBR need a CPU PMU: on a VM, enable the virtual PMU (e.g. qemu -cpu host with KVM, or a cloud instance type that exposes it); BTS is Intel-only (intel_bts)"
        : `perf: the cycles counter is refused (${hardware})${
          isPrivileged ? "" : ": try as root or with CAP_PERFMON"
        }`,
    );
  }
  return { name: "perf", status, summary, details, fixes, facts };
}

/** What would let perf_event_open of this process's own task-clock through, from the facts. */
function softwareFix(
  code: string,
  paranoid: Fact<number | null>,
  isPrivileged: boolean,
  seccomp: Fact<number | null>,
): string {
  if (code === "ENOSYS" || paranoid === null) {
    return "this kernel has no perf events (or a filter hides perf_event_open): use a kernel built with CONFIG_PERF_EVENTS";
  }
  if (code !== "EACCES" && code !== "EPERM") return "";
  const filter = seccomp === 2
    ? "this process's seccomp filter refuses perf_event_open"
    : "a security module or seccomp filter refuses perf_event_open";
  if (isPrivileged) return `refused although this process is privileged: ${filter}`;
  if (isUnknown(paranoid)) {
    return `run as root or with CAP_PERFMON, or lower kernel.perf_event_paranoid (its value is unknown: ${paranoid.unknown})`;
  }
  if (paranoid > 2) {
    return `run as root or with CAP_PERFMON, or lower the paranoid level from ${paranoid}: \`sysctl -w kernel.perf_event_paranoid=2\``;
  }
  return `refused although kernel.perf_event_paranoid = ${paranoid} allows measuring one's own process: ${filter}`;
}
