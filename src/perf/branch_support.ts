/**
 * Which ways of recording branches this machine allows, found by asking
 * the kernel: each method's perf_event_open on this thread (disabled, user
 * space only, closed at once), so that the answer includes what the PMU, the
 * hypervisor, perf_event_paranoid and any seccomp filter say. One probe for
 * the branch tracer's "auto" and for `ummu doctor`.
 *
 *   lbr  branch stacks in samples: the cycles counter sampling with
 *        PERF_SAMPLE_BRANCH_STACK (Intel LBR, AMD BRS/LbrExtV2, Arm BRBE)
 *   bts  the intel_bts PMU: every taken branch, 24 bytes each, into an AUX area
 *   pt   the intel_pt PMU: a compressed trace of every branch into an AUX area
 * @module
 */
import { readFileSync } from "node:fs";
import * as pe from "../../ffi/perf_event.ts";
import type { PerfEventAttr } from "./attr.ts";
import { openOutcome, paranoidMeaning, perfEventParanoid } from "./open.ts";
import { PMU_ROOT, pmuNames } from "./pmu.ts";

/** A way of recording branches. */
export type BranchMethod = "lbr" | "bts" | "pt";

/** The probe's answer for one method. */
export interface BranchMethodSupport {
  /** The method probed. */
  method: BranchMethod;
  /** perf_event_open accepted it. */
  available: boolean;
  /** "ok", the errno name perf_event_open gave, "absent" when the PMU is not in sysfs, "unknown" when sysfs could not be read. */
  outcome: string;
  /** One sentence: why not, or what it gives. */
  detail: string;
}

/** What the probe found. */
export interface BranchSupport {
  /** Branch stacks in samples. */
  lbr: BranchMethodSupport;
  /** Intel BTS. */
  bts: BranchMethodSupport;
  /** Intel PT. */
  pt: BranchMethodSupport;
  /** The PMUs in sysfs (empty when the list could not be read: see `pmusUnknown`). */
  pmus: string[];
  /** Why the PMU list could not be read (e.g. Deno without --allow-read), or null. */
  pmusUnknown: string | null;
  /** kernel.perf_event_paranoid (null: unreadable or no perf events). */
  paranoid: number | null;
  /** /proc/cpuinfo says the CPU runs under a hypervisor (which usually hides the PMU). */
  hypervisor: boolean;
}

/** A PMU's dynamic type number (its sysfs `type` file), or null when it has none. */
export function pmuType(name: string, root: string = PMU_ROOT): number | null {
  try {
    const t = Number(readFileSync(`${root}/${name}/type`, "utf8").trim());
    return Number.isSafeInteger(t) ? t : null;
  } catch {
    return null;
  }
}

/** The attr each method opens (user space only). `period`/`filter` for LBR. */
export function branchMethodAttr(
  method: BranchMethod,
  pmuTypeOf: (name: string) => number | null = pmuType,
  lbr: { period?: number; branchSampleType?: number } = {},
): PerfEventAttr | null {
  if (method === "lbr") {
    return {
      type: pe.PERF_TYPE_HARDWARE,
      config: BigInt(pe.PERF_COUNT_HW_CPU_CYCLES),
      samplePeriod: BigInt(lbr.period ?? 100_003),
      sampleType: pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_TIME |
        pe.PERF_SAMPLE_BRANCH_STACK,
      branchSampleType: lbr.branchSampleType ??
        (pe.PERF_SAMPLE_BRANCH_ANY | pe.PERF_SAMPLE_BRANCH_USER),
      excludeKernel: true,
      excludeHv: true,
    };
  }
  const type = pmuTypeOf(method === "bts" ? "intel_bts" : "intel_pt");
  if (type === null) return null;
  return { type, config: 0n, excludeKernel: true, excludeHv: true };
}

const GIVES: Record<BranchMethod, string> = {
  lbr: "branch stacks in samples (the last 8-32 taken branches before each sample)",
  bts: "every taken branch (slow: the CPU stores 24 bytes per branch)",
  pt:
    "a compressed trace of every branch (packets; addresses of indirect branches, taken bits of conditional ones)",
};

function refusal(method: BranchMethod, outcome: string, paranoid: number | null): string {
  switch (outcome) {
    case "ENOENT":
    case "EOPNOTSUPP":
    case "ENODEV":
      return method === "lbr"
        ? "no hardware PMU with branch stacks (the cycles counter or its branch stack is refused)"
        : `the ${method === "bts" ? "intel_bts" : "intel_pt"} PMU refused this event (${outcome})`;
    case "EACCES":
    case "EPERM":
      return `not permitted: kernel.perf_event_paranoid = ${paranoid ?? "?"} (${
        paranoid === null ? "unknown" : paranoidMeaning(paranoid)
      }); run as root or with CAP_PERFMON`;
    case "EBUSY":
      return "the PMU is in use (another tracer, or a hypervisor holding it)";
    default:
      return `perf_event_open refused it (${outcome})`;
  }
}

/** Probes the three methods on this thread. Never throws for a refusal: it reports it. */
export function probeBranchTracing(root: string = PMU_ROOT): BranchSupport {
  let pmus: string[] = [];
  let pmusUnknown: string | null = null;
  try {
    pmus = pmuNames(root);
  } catch (e) {
    pmusUnknown = (e as Error).message;
  }
  const paranoid = perfEventParanoid();
  let hypervisor = false;
  try {
    hypervisor = /^flags\s*:.*\bhypervisor\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch { /* no /proc/cpuinfo: unknown, said as false */ }
  const one = (method: BranchMethod): BranchMethodSupport => {
    const attr = branchMethodAttr(method, (n) => pmus.includes(n) ? pmuType(n, root) : null);
    if (attr === null && pmusUnknown !== null) {
      return {
        method,
        available: false,
        outcome: "unknown",
        detail: `the PMU list could not be read: ${pmusUnknown}`,
      };
    }
    if (attr === null) {
      const pmu = method === "bts" ? "intel_bts" : "intel_pt";
      return {
        method,
        available: false,
        outcome: "absent",
        detail: `no ${pmu} PMU in ${root} (${
          method === "bts" ? "BTS" : "Intel PT"
        } is on Intel CPUs only, and virtual machines usually hide it)`,
      };
    }
    const outcome = openOutcome(attr);
    return {
      method,
      available: outcome === "ok",
      outcome,
      detail: outcome === "ok" ? GIVES[method] : refusal(method, outcome, paranoid),
    };
  };
  return {
    lbr: one("lbr"),
    bts: one("bts"),
    pt: one("pt"),
    pmus,
    pmusUnknown,
    paranoid,
    hypervisor,
  };
}
