/**
 * Branch stacks by name: the `branch_sample_type` filter (what the LBR, or
 * AMD's branch sampling, records with each sample) written as perf's `-j`
 * words, and the PERF_BR_* type of a decoded entry as a word.
 *
 * The words are perf's (`perf record -j any,u`), so a filter that works
 * with perf works here, plus the bits perf sets by itself (`no_flags`,
 * `no_cycles`, `hw_index`, `counters`) under the names of their
 * PERF_SAMPLE_BRANCH_* constants.
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { invalid } from "../validate.ts";
import type { BranchEntry } from "./records.ts";

/** Each `branch_sample_type` bit by its word (perf's `-j` words where perf has one). */
export const BRANCH_FILTERS = {
  u: pe.PERF_SAMPLE_BRANCH_USER,
  k: pe.PERF_SAMPLE_BRANCH_KERNEL,
  hv: pe.PERF_SAMPLE_BRANCH_HV,
  any: pe.PERF_SAMPLE_BRANCH_ANY,
  any_call: pe.PERF_SAMPLE_BRANCH_ANY_CALL,
  any_ret: pe.PERF_SAMPLE_BRANCH_ANY_RETURN,
  ind_call: pe.PERF_SAMPLE_BRANCH_IND_CALL,
  abort_tx: pe.PERF_SAMPLE_BRANCH_ABORT_TX,
  in_tx: pe.PERF_SAMPLE_BRANCH_IN_TX,
  no_tx: pe.PERF_SAMPLE_BRANCH_NO_TX,
  cond: pe.PERF_SAMPLE_BRANCH_COND,
  call_stack: pe.PERF_SAMPLE_BRANCH_CALL_STACK,
  ind_jmp: pe.PERF_SAMPLE_BRANCH_IND_JUMP,
  call: pe.PERF_SAMPLE_BRANCH_CALL,
  no_flags: pe.PERF_SAMPLE_BRANCH_NO_FLAGS,
  no_cycles: pe.PERF_SAMPLE_BRANCH_NO_CYCLES,
  save_type: pe.PERF_SAMPLE_BRANCH_TYPE_SAVE,
  hw_index: pe.PERF_SAMPLE_BRANCH_HW_INDEX,
  priv: pe.PERF_SAMPLE_BRANCH_PRIV_SAVE,
  counters: pe.PERF_SAMPLE_BRANCH_COUNTERS,
} as const;

/** A word of the branch filter. */
export type BranchFilterName = keyof typeof BRANCH_FILTERS;

/** The filter bits that choose which branches (the kernel wants at least one, or "any"). */
const TYPE_BITS = pe.PERF_SAMPLE_BRANCH_ANY | pe.PERF_SAMPLE_BRANCH_ANY_CALL |
  pe.PERF_SAMPLE_BRANCH_ANY_RETURN | pe.PERF_SAMPLE_BRANCH_IND_CALL |
  pe.PERF_SAMPLE_BRANCH_COND | pe.PERF_SAMPLE_BRANCH_CALL_STACK |
  pe.PERF_SAMPLE_BRANCH_IND_JUMP | pe.PERF_SAMPLE_BRANCH_CALL |
  pe.PERF_SAMPLE_BRANCH_ABORT_TX | pe.PERF_SAMPLE_BRANCH_IN_TX | pe.PERF_SAMPLE_BRANCH_NO_TX;

/**
 * The `branchSampleType` of a filter given as words: `"any,u"`,
 * `["any_call", "u", "save_type"]`. Unknown words are an error that lists
 * the known ones. A filter that names no branch type means "any" (perf's
 * rule, so `"u"` alone is any user-space branch).
 */
export function branchSampleType(filter: string | readonly string[]): number {
  const words = typeof filter === "string"
    ? filter.split(",").map((w) => w.trim()).filter((w) => w !== "")
    : Array.isArray(filter)
    ? filter
    : invalid("branchSampleType filter", filter, 'a string like "any,u" or an array of words');
  let bits = 0;
  for (const w of words) {
    if (typeof w !== "string" || !Object.hasOwn(BRANCH_FILTERS, w)) {
      invalid(
        "branchSampleType filter",
        w,
        `one of ${Object.keys(BRANCH_FILTERS).join(", ")}`,
      );
    }
    bits |= BRANCH_FILTERS[w as BranchFilterName];
  }
  if ((bits & TYPE_BITS) === 0) bits |= pe.PERF_SAMPLE_BRANCH_ANY;
  return bits;
}

/** The words of a `branchSampleType` (the inverse of branchSampleType(); unknown bits as hex). */
export function branchFilterNames(bits: number): string[] {
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) {
    invalid("branchFilterNames bits", bits, "a branch_sample_type (an integer in 0..2^32-1)");
  }
  const out: string[] = [];
  let rest = bits;
  for (const [name, bit] of Object.entries(BRANCH_FILTERS)) {
    if (bits & bit) {
      out.push(name);
      rest &= ~bit;
    }
  }
  if (rest) out.push("0x" + (rest >>> 0).toString(16));
  return out;
}

const TYPE_NAMES = [
  "unknown",
  "cond",
  "uncond",
  "ind",
  "call",
  "ind_call",
  "ret",
  "syscall",
  "sysret",
  "cond_call",
  "cond_ret",
  "eret",
  "irq",
  "serror",
  "no_tx",
  "extend_abi",
] as const;
const NEW_TYPE_NAMES = [
  "fault_algn",
  "fault_data",
  "fault_inst",
  "arch_1",
  "arch_2",
  "arch_3",
  "arch_4",
  "arch_5",
] as const;

/**
 * A branch entry's type as a word: PERF_BR_* lower-cased ("call", "ret",
 * "cond", ...), or PERF_BR_NEW_* when the type is PERF_BR_EXTEND_ABI. Only
 * meaningful when the filter had `save_type` (otherwise "unknown").
 */
export function branchTypeName(entry: Pick<BranchEntry, "type" | "newType">): string {
  if (entry.type === pe.PERF_BR_EXTEND_ABI) {
    return NEW_TYPE_NAMES[entry.newType] ?? `new_type_${entry.newType}`;
  }
  return TYPE_NAMES[entry.type] ?? `type_${entry.type}`;
}

/** A branch entry's privilege level (with the `priv` filter): "user", "kernel", "hv" or "unknown". */
export function branchPrivName(entry: Pick<BranchEntry, "priv">): string {
  return ["unknown", "user", "kernel", "hv"][entry.priv] ?? `priv_${entry.priv}`;
}

/** A branch entry's speculation outcome (AMD): perf's words. */
export function branchSpecName(entry: Pick<BranchEntry, "spec">): string {
  return ["na", "spec_wrong_path", "non_spec_correct_path", "spec_correct_path"][entry.spec] ??
    `spec_${entry.spec}`;
}
