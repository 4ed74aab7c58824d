/**
 * Event names as `perf list` and `perf stat -e` take them, to attr fields:
 * hardware (`cycles`), hardware cache (`L1-dcache-load-misses`), software
 * (`page-faults`), tracepoints (`sched:sched_switch`), breakpoints
 * (`mem:0x1000/8:w`), raw (`r1a8`) and dynamic PMUs (`intel_pt/cyc=1,tsc/`,
 * `msr/tsc/`), each with perf's modifiers (`:u`, `:k`, `:h`, `:ppp`, `:G`, `:H`, `:I`,
 * `:D`, `:e`). The tables and rules are perf's (tools/perf/util/parse-events.l,
 * parse-events.c, evsel.c of Linux 6.12); tests compare with Debian's perf.
 *
 * What perf the tool adds on its own is not added here: `exclude_guest` on
 * every event (event_attr_init), sample_period 1 for tracepoints and
 * breakpoints, intel_pt's default config (tsc,mtc,...) when a term list is
 * empty. The attr holds what the name means; the caller adds how to count.
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { UmmuArgumentError } from "../errors.ts";
import type { PerfEventAttr } from "./attr.ts";
import { closeMatches, encodeTerms, PMU_ROOT, pmuNames, readPmu } from "./pmu.ts";
import { tracepointId } from "./tracepoint_id.ts";
import { applyModifiers } from "./event_modifiers.ts";
import { parseBreakpoint } from "./breakpoint.ts";

export { applyModifiers } from "./event_modifiers.ts";
export { breakpoint, type BreakpointAccess } from "./breakpoint.ts";

/** An event name parsed: the attr fields it sets, a display name, and what must stay alive. */
export interface ParsedEvent {
  /** The attr fields the name sets (type, config words, bp fields, exclude bits, preciseIp). */
  attr: PerfEventAttr;
  /** perf's name for it ("cycles:u", "L1-dcache-load-misses", "sched:sched_switch"). */
  name: string;
  /**
   * Buffers the attr points into (a uprobe's path, a kprobe's function name):
   * hold them until perf_event_open returns.
   */
  keep?: Uint8Array[];
}

/** Where parseEvent looks (tests point `pmuRoot` at a copy of a PMU's sysfs folder). */
export interface ParseEventOptions {
  /** The PMU folder (default /sys/bus/event_source/devices). */
  pmuRoot?: string;
}

/** Hardware events: perf's names and aliases (parse-events.l) to PERF_COUNT_HW_*. */
export const HARDWARE_EVENTS: Readonly<Record<string, number>> = {
  "cpu-cycles": pe.PERF_COUNT_HW_CPU_CYCLES,
  "cycles": pe.PERF_COUNT_HW_CPU_CYCLES,
  "stalled-cycles-frontend": pe.PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
  "idle-cycles-frontend": pe.PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
  "stalled-cycles-backend": pe.PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
  "idle-cycles-backend": pe.PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
  "instructions": pe.PERF_COUNT_HW_INSTRUCTIONS,
  "cache-references": pe.PERF_COUNT_HW_CACHE_REFERENCES,
  "cache-misses": pe.PERF_COUNT_HW_CACHE_MISSES,
  "branch-instructions": pe.PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
  "branches": pe.PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
  "branch-misses": pe.PERF_COUNT_HW_BRANCH_MISSES,
  "bus-cycles": pe.PERF_COUNT_HW_BUS_CYCLES,
  "ref-cycles": pe.PERF_COUNT_HW_REF_CPU_CYCLES,
};
/** perf's display name of each PERF_COUNT_HW_* (evsel__hw_names). */
const HARDWARE_NAMES = [
  "cycles",
  "instructions",
  "cache-references",
  "cache-misses",
  "branches",
  "branch-misses",
  "bus-cycles",
  "stalled-cycles-frontend",
  "stalled-cycles-backend",
  "ref-cycles",
];

/** Software events: perf's names and aliases to PERF_COUNT_SW_*. */
export const SOFTWARE_EVENTS: Readonly<Record<string, number>> = {
  "cpu-clock": pe.PERF_COUNT_SW_CPU_CLOCK,
  "task-clock": pe.PERF_COUNT_SW_TASK_CLOCK,
  "page-faults": pe.PERF_COUNT_SW_PAGE_FAULTS,
  "faults": pe.PERF_COUNT_SW_PAGE_FAULTS,
  "minor-faults": pe.PERF_COUNT_SW_PAGE_FAULTS_MIN,
  "major-faults": pe.PERF_COUNT_SW_PAGE_FAULTS_MAJ,
  "context-switches": pe.PERF_COUNT_SW_CONTEXT_SWITCHES,
  "cs": pe.PERF_COUNT_SW_CONTEXT_SWITCHES,
  "cpu-migrations": pe.PERF_COUNT_SW_CPU_MIGRATIONS,
  "migrations": pe.PERF_COUNT_SW_CPU_MIGRATIONS,
  "alignment-faults": pe.PERF_COUNT_SW_ALIGNMENT_FAULTS,
  "emulation-faults": pe.PERF_COUNT_SW_EMULATION_FAULTS,
  "dummy": pe.PERF_COUNT_SW_DUMMY,
  "bpf-output": pe.PERF_COUNT_SW_BPF_OUTPUT,
  "cgroup-switches": pe.PERF_COUNT_SW_CGROUP_SWITCHES,
};
/** perf's display name of each PERF_COUNT_SW_* (evsel__sw_names). */
const SOFTWARE_NAMES = [
  "cpu-clock",
  "task-clock",
  "page-faults",
  "context-switches",
  "cpu-migrations",
  "minor-faults",
  "major-faults",
  "alignment-faults",
  "emulation-faults",
  "dummy",
  "bpf-output",
  "cgroup-switches",
];

/** perf's tool events: counted by perf itself, not by the kernel. */
const TOOL_EVENTS = ["duration_time", "user_time", "system_time"];

/** Cache names (evsel__hw_cache), by PERF_COUNT_HW_CACHE_* index; the first is perf's. */
export const CACHE_TYPES: readonly (readonly string[])[] = [
  ["L1-dcache", "l1-d", "l1d", "L1-data"],
  ["L1-icache", "l1-i", "l1i", "L1-instruction"],
  ["LLC", "L2"],
  ["dTLB", "d-tlb", "Data-TLB"],
  ["iTLB", "i-tlb", "Instruction-TLB"],
  ["branch", "branches", "bpu", "btb", "bpc"],
  ["node"],
];
/** Cache operations (evsel__hw_cache_op), by PERF_COUNT_HW_CACHE_OP_*. */
export const CACHE_OPS: readonly (readonly string[])[] = [
  ["load", "loads", "read"],
  ["store", "stores", "write"],
  ["prefetch", "prefetches", "speculative-read", "speculative-load"],
];
/** Cache results (evsel__hw_cache_result), by PERF_COUNT_HW_CACHE_RESULT_*. */
export const CACHE_RESULTS: readonly (readonly string[])[] = [
  ["refs", "Reference", "ops", "access"],
  ["misses", "miss"],
];
/** The operations each cache supports (evsel__hw_cache_stat): bit op. */
const CACHE_VALID_OPS = [0b111, 0b101, 0b111, 0b111, 0b001, 0b001, 0b111];

const alt = (xs: readonly (readonly string[])[]) =>
  xs.flat().sort((a, b) => b.length - a.length).map((s) => s.replace(/-/g, "\\-")).join("|");
// perf's lexer: {lc_type}(-{lc_op_result}){0,2}, case-sensitive, longest alternative first.
const CACHE_RE = new RegExp(
  `^(${alt(CACHE_TYPES)})(?:-(${alt([...CACHE_OPS, ...CACHE_RESULTS])}))?(?:-(${
    alt([...CACHE_OPS, ...CACHE_RESULTS])
  }))?$`,
);
const indexIn = (table: readonly (readonly string[])[], s: string) =>
  table.findIndex((names) => names.includes(s));

/**
 * Every hardware-cache event perf accepts, by its canonical name
 * ("L1-dcache-load-misses", "LLC-loads"...), with its config.
 */
export function cacheEvents(): Map<string, bigint> {
  const out = new Map<string, bigint>();
  CACHE_TYPES.forEach((_, type) => {
    CACHE_OPS.forEach((_, op) => {
      if (!(CACHE_VALID_OPS[type] & (1 << op))) return;
      CACHE_RESULTS.forEach((_, result) => {
        out.set(cacheName(type, op, result), BigInt(type | (op << 8) | (result << 16)));
      });
    });
  });
  return out;
}

/** perf's name of a cache event (__evsel__hw_cache_type_op_res_name). */
function cacheName(type: number, op: number, result: number): string {
  return result
    ? `${CACHE_TYPES[type][0]}-${CACHE_OPS[op][0]}-${CACHE_RESULTS[result][0]}`
    : `${CACHE_TYPES[type][0]}-${CACHE_OPS[op][1]}`;
}

function parseCache(base: string, spec: string): bigint | null {
  const mm = CACHE_RE.exec(base);
  if (!mm) return null;
  const type = indexIn(CACHE_TYPES, mm[1]);
  let op = -1, result = -1;
  for (const tok of [mm[2], mm[3]]) {
    if (tok === undefined) continue;
    const o = indexIn(CACHE_OPS, tok), r = indexIn(CACHE_RESULTS, tok);
    if (o >= 0 && op < 0) op = o;
    else if (r >= 0 && result < 0) result = r;
    else {
      // perf ignores the repeated part; a name that says two operations is a mistake.
      throw new UmmuArgumentError(
        `event ${JSON.stringify(spec)}: a cache event names one operation and one result ` +
          `(e.g. L1-dcache-load-misses), got ${JSON.stringify(tok)} twice over`,
      );
    }
  }
  if (op < 0) op = pe.PERF_COUNT_HW_CACHE_OP_READ;
  if (result < 0) result = pe.PERF_COUNT_HW_CACHE_RESULT_ACCESS;
  if (!(CACHE_VALID_OPS[type] & (1 << op))) {
    const ok = CACHE_OPS.filter((_, i) => CACHE_VALID_OPS[type] & (1 << i)).map((o) => o[0]);
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: ${CACHE_TYPES[type][0]} has no ${CACHE_OPS[op][0]} ` +
        `events (perf's ${CACHE_TYPES[type][0]} takes ${ok.join(", ")})`,
    );
  }
  return BigInt(type | (op << 8) | (result << 16));
}

/** Every name parseEvent knows without sysfs or tracefs (for suggestions and tests). */
export function knownEventNames(): string[] {
  return [
    ...Object.keys(HARDWARE_EVENTS),
    ...Object.keys(SOFTWARE_EVENTS),
    ...cacheEvents().keys(),
  ];
}

const PMU_SPEC = /^([A-Za-z0-9_.-]+)\/([^/]*)\/(?::?([A-Za-z]+))?$/;
const NAME_MODS = /^([A-Za-z0-9_.-]+)(?::([A-Za-z]*))?$/;
const TRACEPOINT = /^([A-Za-z0-9_.-]+):([A-Za-z0-9_.*?-]+)(?::([A-Za-z]*))?$/;

/**
 * Parses one event name as `perf stat -e` takes it. Throws UmmuArgumentError
 * for a name this machine does not have (with close matches and what sysfs
 * has), UmmuError when tracefs is needed and not mounted (saying how).
 *
 * @example
 * ```ts
 * import { parseEvent } from "./event_names.ts";
 * parseEvent("page-faults:u").attr; // { type: 1, config: 2n, excludeKernel: true, ... }
 * parseEvent("sched:sched_switch").attr.config; // the id from tracefs
 * ```
 */
export function parseEvent(spec: string, options: ParseEventOptions = {}): ParsedEvent {
  if (typeof spec !== "string" || spec.trim() === "") {
    throw new UmmuArgumentError(
      `event must be a non-empty string such as "cycles", "page-faults:u", "sched:sched_switch", ` +
        `"mem:0x1000/8:w" or "pmu/term=v/", got ${JSON.stringify(spec)}`,
    );
  }
  const root = options.pmuRoot ?? PMU_ROOT;
  const s = spec.trim();
  if (s.includes(",") && !PMU_SPEC.test(s)) {
    throw new UmmuArgumentError(
      `event ${
        JSON.stringify(spec)
      }: one event per parseEvent (use parseEventList for a comma-separated list)`,
    );
  }
  if (s.startsWith("mem:")) return parseBreakpoint(s.slice(4), s);

  const pmuSpec = PMU_SPEC.exec(s);
  if (pmuSpec) return parsePmuEvent(pmuSpec[1], pmuSpec[2], pmuSpec[3], s, root);

  const nm = NAME_MODS.exec(s);
  if (nm) {
    const [, base, mods] = nm;
    const simple = parseSimple(base, s);
    if (simple !== null) {
      if (mods !== undefined) applyModifiers(simple.attr, mods, s);
      return simple;
    }
    if (mods === undefined || !/^[ukhpGHIDePSWbR]+$/.test(mods)) {
      // "sys:name" is a tracepoint when "name" is not a modifier list.
      if (mods !== undefined && mods !== "") return parseTracepoint(base, mods, undefined, s);
    }
    return parseAlias(base, mods, s, root);
  }
  const tp = TRACEPOINT.exec(s);
  if (tp) return parseTracepoint(tp[1], tp[2], tp[3], s);
  throw new UmmuArgumentError(
    `event ${JSON.stringify(spec)} is not an event name: expected NAME[:modifiers], ` +
      `SYSTEM:TRACEPOINT, mem:ADDR[/LEN][:rwx], rHEX or PMU/terms/[modifiers]`,
  );
}

/**
 * Parses a comma-separated list of events (`cycles,page-faults:u,msr/tsc/`);
 * commas inside a PMU's `/.../` belong to its terms.
 */
export function parseEventList(specs: string, options: ParseEventOptions = {}): ParsedEvent[] {
  if (typeof specs !== "string" || specs.trim() === "") {
    throw new UmmuArgumentError(
      `event list must be a non-empty comma-separated string, got ${JSON.stringify(specs)}`,
    );
  }
  const out: string[] = [];
  let cur = "", slashes = 0;
  for (const ch of specs) {
    if (ch === "/") slashes++;
    if (ch === "," && slashes % 2 === 0) {
      out.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out.map((e) => parseEvent(e, options));
}

/** Hardware, software, cache and raw names; null when `base` is none of these. */
function parseSimple(base: string, spec: string): ParsedEvent | null {
  const mods = spec.slice(base.length);
  if (base in HARDWARE_EVENTS) {
    const id = HARDWARE_EVENTS[base];
    return {
      attr: { type: pe.PERF_TYPE_HARDWARE, config: BigInt(id) },
      name: HARDWARE_NAMES[id] + mods,
    };
  }
  if (base in SOFTWARE_EVENTS) {
    const id = SOFTWARE_EVENTS[base];
    return {
      attr: { type: pe.PERF_TYPE_SOFTWARE, config: BigInt(id) },
      name: SOFTWARE_NAMES[id] + mods,
    };
  }
  const cache = parseCache(base, spec);
  if (cache !== null) {
    const type = Number(cache & 0xffn), op = Number((cache >> 8n) & 0xffn);
    return {
      attr: { type: pe.PERF_TYPE_HW_CACHE, config: cache },
      name: cacheName(type, op, Number(cache >> 16n)) + mods,
    };
  }
  const raw = /^r([0-9a-fA-F]{1,16})$/.exec(base);
  if (raw) return { attr: { type: pe.PERF_TYPE_RAW, config: BigInt("0x" + raw[1]) }, name: spec };
  if (TOOL_EVENTS.includes(base)) {
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: ${base} is a perf tool event (perf measures it itself, ` +
        `not through perf_event_open); use task-clock or your runtime's clock`,
    );
  }
  return null;
}

function parseTracepoint(
  system: string,
  event: string,
  mods: string | undefined,
  spec: string,
): ParsedEvent {
  if (/[*?]/.test(event)) {
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: globs name many tracepoints; give one (system:event)`,
    );
  }
  const attr: PerfEventAttr = {
    type: pe.PERF_TYPE_TRACEPOINT,
    config: BigInt(tracepointId(system, event)),
  };
  if (mods !== undefined) applyModifiers(attr, mods, spec);
  return { attr, name: `${system}:${event}${mods !== undefined ? `:${mods}` : ""}` };
}

function parsePmuEvent(
  pmuName: string,
  terms: string,
  mods: string | undefined,
  spec: string,
  root: string,
): ParsedEvent {
  if (pmuName === "uprobe" || pmuName === "kprobe") {
    const here = pmuNames(root).includes(pmuName);
    if (here) {
      throw new UmmuArgumentError(
        `event ${JSON.stringify(spec)}: a ${pmuName} needs a ${
          pmuName === "uprobe" ? "file and offset or symbol" : "kernel function or address"
        } that terms cannot carry: use ${pmuName}() of src/perf/probes.ts`,
      );
    }
  }
  const pmu = readPmu(pmuName, root);
  const enc = encodeTerms(pmu, terms, spec);
  const attr: PerfEventAttr = { type: pmu.type, config: enc.config };
  if (enc.config1 || enc.words.has("config1")) attr.config1 = enc.config1;
  if (enc.config2 || enc.words.has("config2")) attr.config2 = enc.config2;
  if (enc.config3 || enc.words.has("config3")) attr.config3 = enc.config3;
  const st = enc.settings;
  if (st.samplePeriod !== undefined) attr.samplePeriod = st.samplePeriod;
  if (st.sampleFreq !== undefined) attr.sampleFreq = st.sampleFreq;
  if (st.inherit !== undefined) attr.inherit = st.inherit;
  if (st.auxOutput !== undefined) attr.auxOutput = st.auxOutput;
  if (st.auxSampleSize !== undefined) attr.auxSampleSize = st.auxSampleSize;
  if (mods !== undefined) applyModifiers(attr, mods, spec);
  return { attr, name: st.name ?? spec };
}

/** A bare name that is no built-in event: a PMU's `events/` alias (`tsc` is `msr/tsc/`), else an error. */
function parseAlias(
  base: string,
  mods: string | undefined,
  spec: string,
  root: string,
): ParsedEvent {
  const names = pmuNames(root);
  const owners = names.filter((p) => {
    try {
      return readPmu(p, root).events.has(base);
    } catch {
      return false;
    }
  });
  if (owners.length === 1) {
    const r = parsePmuEvent(owners[0], base, mods, `${owners[0]}/${base}/`, root);
    return { ...r, name: spec };
  }
  if (owners.length > 1) {
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: ${base} is an event of several PMUs (${
        owners.join(", ")
      }): ` +
        `name one, e.g. ${owners[0]}/${base}/`,
    );
  }
  if (names.includes(base)) {
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: ${base} is a PMU: write it with its terms, ${base}/.../ ` +
        `(e.g. ${base}// for its defaults)`,
    );
  }
  const aliases = names.flatMap((p) => {
    try {
      return [...readPmu(p, root).events.keys()].map((e) => `${p}/${e}/`);
    } catch {
      return [];
    }
  });
  const close = closeMatches(base, [...knownEventNames(), ...aliases.map((a) => a)]);
  throw new UmmuArgumentError(
    `event ${JSON.stringify(spec)}: no event ${JSON.stringify(base)}` +
      (close.length ? ` (did you mean ${close.join(", ")}?)` : "") +
      ` (this machine's PMUs: ${names.join(", ") || "none"}` +
      (names.some((p) => /^(cpu|cpu_core|cpu_atom|armv[78].*|arm_.*)$/.test(p))
        ? ""
        : "; no hardware PMU: virtual machines usually have none") +
      `); tracepoints are SYSTEM:EVENT`,
  );
}
