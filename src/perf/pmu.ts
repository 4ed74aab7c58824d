/**
 * The PMUs this kernel registers, from sysfs (`/sys/bus/event_source/devices/NAME/`):
 * the `type` number perf_event_open takes, the CPUs (`cpumask`/`cpus`), the
 * `format/` files that say which bits of config/config1/config2/config3 a term
 * sets, the `events/` aliases (`event=0x3c,umask=0x00`, with `.scale`/`.unit`),
 * `caps/` and `nr_addr_filters`. And the encoding of a term list
 * (`cyc=1,tsc`) into config words, as perf's parse-events does it
 * (tools/perf/util/pmu.c: pmu_format_value, pmu_format_max_value).
 *
 * Files are read through libc (as tracefs is); folders are listed with
 * node:fs (libc has no readdir here), as the doctor lists them.
 * @module
 */
import { readdirSync } from "node:fs";
import { cstring, errno, libc, readWholeFile } from "../libc.ts";
import { UmmuArgumentError } from "../errors.ts";
import * as m from "../../ffi/mman.ts";

/** Where the kernel lists its PMUs. */
export const PMU_ROOT = "/sys/bus/event_source/devices";

/** The attr word a format field lives in. */
export type ConfigWord = "config" | "config1" | "config2" | "config3";
const WORDS: readonly ConfigWord[] = ["config", "config1", "config2", "config3"];

/** One `format/NAME` file: the bits of a config word a term's value goes into. */
export interface PmuFormat {
  /** The term name (the file name), e.g. "mtc_period". */
  name: string;
  /** The attr word: config, config1, config2 or config3. */
  word: ConfigWord;
  /** The bit numbers, ascending: value bit i goes to bit bits[i] of the word. */
  bits: readonly number[];
  /** The file's text, trimmed, e.g. "config:14-17". */
  spec: string;
}

/** One `events/NAME` alias: a named term list, with perf's companion files. */
export interface PmuEventAlias {
  /** The alias, e.g. "cycles-t" or "tsc". */
  name: string;
  /** Its terms, e.g. "event=0x3c,in_tx=1" (a `?` value is a parameter the user supplies). */
  terms: string;
  /** `NAME.scale`: the factor to multiply counts by, as text (e.g. "2.3283064365386962890625e-10"). */
  scale?: string;
  /** `NAME.unit`: the unit of scaled counts, e.g. "Joules". */
  unit?: string;
  /** `NAME.per-pkg`: one count per package, not per CPU. */
  perPkg: boolean;
  /** `NAME.snapshot`: the counter is a snapshot, not a running total. */
  snapshot: boolean;
}

/** A PMU as sysfs describes it. */
export interface Pmu {
  /** The folder name, e.g. "software", "uprobe", "intel_pt". */
  name: string;
  /** The perf_event_attr.type of its events. */
  type: number;
  /** CPUs from `cpumask` (uncore) or `cpus` (hybrid/arm core PMUs); null when it has neither (any CPU). */
  cpus: number[] | null;
  /** `format/*` by term name. */
  formats: ReadonlyMap<string, PmuFormat>;
  /** `events/*` aliases by name. */
  events: ReadonlyMap<string, PmuEventAlias>;
  /** `caps/*` as text by file name (e.g. intel_pt's "psb_cyc": "1"). */
  caps: Readonly<Record<string, string>>;
  /** `nr_addr_filters` (address filters the PMU takes, for SET_FILTER); null when absent. */
  nrAddrFilters: number | null;
}

const decoder = new TextDecoder();
const ENOENT = 2;

/** The text of a sysfs file, or null when it does not exist. */
function readOptional(path: string): string | null {
  const fd = libc.open(cstring(path), m.O_RDONLY | m.O_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    if (e === ENOENT || e === 20 /* ENOTDIR */) return null;
  } else {
    libc.close(fd);
  }
  return decoder.decode(readWholeFile(path));
}

/** A folder's entries, sorted; null when it does not exist. */
function listOptional(dir: string): string[] | null {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw new UmmuArgumentError(
      `cannot list ${dir}: ${(e as Error).message} (Deno needs --allow-read for sysfs)`,
    );
  }
}

/** The PMU names this machine has (the folders of `root`), sorted. */
export function pmuNames(root: string = PMU_ROOT): string[] {
  return listOptional(root) ?? [];
}

/**
 * Parses a format file's text (`config:0-7,32-35`, `config1:0`, `config2:0-63`):
 * the word and the bits, ascending. Throws UmmuArgumentError naming the file.
 */
export function parseFormat(name: string, text: string): PmuFormat {
  const spec = text.trim();
  const bad = (why: string): never => {
    throw new UmmuArgumentError(
      `PMU format ${JSON.stringify(name)} must be "configN:BITS" (e.g. "config:0-7,32-35"), got ${
        JSON.stringify(spec)
      }: ${why}`,
    );
  };
  const mm = /^(config[0-9]*)\s*:\s*([0-9,\s-]+)$/.exec(spec);
  if (!mm) return bad("not of that form");
  const word = mm[1] as ConfigWord;
  if (!WORDS.includes(word)) return bad(`${mm[1]} is not a perf_event_attr word ummu knows`);
  const bits = new Set<number>();
  for (const part of mm[2].split(",")) {
    const r = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!r) return bad(`${JSON.stringify(part)} is not a bit or a range`);
    const lo = Number(r[1]), hi = r[2] === undefined ? lo : Number(r[2]);
    if (lo > hi || hi > 63) return bad(`range ${lo}-${hi} is not within 0..63`);
    for (let b = lo; b <= hi; b++) bits.add(b);
  }
  return { name, word, bits: [...bits].sort((a, b) => a - b), spec };
}

/** Parses a CPU list ("0-3,6"); null for empty text. */
export function parseCpuList(text: string): number[] | null {
  const t = text.trim();
  if (t === "") return null;
  const out: number[] = [];
  for (const part of t.split(",")) {
    const [a, b] = part.split("-").map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

const COMPANION = /\.(scale|unit|per-pkg|snapshot)$/;

/**
 * The PMU `name` as sysfs describes it (under `root`, default the real sysfs;
 * tests point it at a copy). Throws UmmuArgumentError when there is no such
 * PMU here, listing the ones there are.
 */
export function readPmu(name: string, root: string = PMU_ROOT): Pmu {
  if (typeof name !== "string" || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new UmmuArgumentError(
      `PMU name must be a sysfs folder name (letters, digits, _ . -), got ${JSON.stringify(name)}`,
    );
  }
  const dir = `${root}/${name}`;
  const typeText = readOptional(`${dir}/type`);
  if (typeText === null) throw noSuchPmu(name, root);
  const type = Number(typeText.trim());
  if (!Number.isInteger(type) || type < 0 || type > 0xffffffff) {
    throw new UmmuArgumentError(`${dir}/type must hold a u32, got ${JSON.stringify(typeText)}`);
  }
  const formats = new Map<string, PmuFormat>();
  for (const f of listOptional(`${dir}/format`) ?? []) {
    formats.set(f, parseFormat(f, readOptional(`${dir}/format/${f}`) ?? ""));
  }
  const events = new Map<string, PmuEventAlias>();
  const eventFiles = listOptional(`${dir}/events`) ?? [];
  const has = new Set(eventFiles);
  for (const e of eventFiles) {
    if (COMPANION.test(e)) continue;
    const text = (readOptional(`${dir}/events/${e}`) ?? "").trim();
    const alias: PmuEventAlias = {
      name: e,
      terms: text,
      perPkg: has.has(`${e}.per-pkg`),
      snapshot: has.has(`${e}.snapshot`),
    };
    if (has.has(`${e}.scale`)) alias.scale = readOptional(`${dir}/events/${e}.scale`)?.trim();
    if (has.has(`${e}.unit`)) alias.unit = readOptional(`${dir}/events/${e}.unit`)?.trim();
    events.set(e, alias);
  }
  const caps: Record<string, string> = {};
  for (const c of listOptional(`${dir}/caps`) ?? []) {
    caps[c] = (readOptional(`${dir}/caps/${c}`) ?? "").trim();
  }
  const cpuText = readOptional(`${dir}/cpumask`) ?? readOptional(`${dir}/cpus`);
  const nr = readOptional(`${dir}/nr_addr_filters`);
  return {
    name,
    type,
    cpus: cpuText === null ? null : parseCpuList(cpuText),
    formats,
    events,
    caps,
    nrAddrFilters: nr === null ? null : Number(nr.trim()),
  };
}

/** Every PMU under `root`, by name. */
export function listPmus(root: string = PMU_ROOT): Pmu[] {
  return pmuNames(root).map((n) => readPmu(n, root));
}

/** Names in `candidates` close to `name` (edit distance, prefixes), best first. */
export function closeMatches(name: string, candidates: Iterable<string>, max = 5): string[] {
  const scored: [number, string][] = [];
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const cl = c.toLowerCase();
    const d = editDistance(lower, cl);
    const related = cl.includes(lower) || lower.includes(cl);
    if (d <= Math.max(2, Math.floor(name.length / 3)) || (related && lower.length >= 2)) {
      scored.push([related ? Math.min(d, 1) : d, c]);
    }
  }
  return scored.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1])).slice(0, max).map((
    s,
  ) => s[1]);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The error for a PMU this machine lacks: close names and what sysfs has. */
export function noSuchPmu(name: string, root: string = PMU_ROOT): UmmuArgumentError {
  const here = pmuNames(root);
  const close = closeMatches(name, here);
  const hardware = here.some((p) => /^(cpu|cpu_core|cpu_atom|armv[78].*|arm_.*|apple_.*)$/.test(p));
  return new UmmuArgumentError(
    `${name}: no such PMU here${close.length ? ` (did you mean ${close.join(", ")}?)` : ""} ` +
      `(this machine's PMUs: ${here.length ? here.join(", ") : "none"}, in ${root})` +
      (hardware ? "" : "; virtual machines usually have no hardware PMU"),
  );
}

/** One term of a PMU term list: `name=value`, or a bare `name` (value null). */
export interface PmuTerm {
  /** The term's name: a format field, an alias, or one of perf's (config, period, name...). */
  name: string;
  /** A number, a string (for `name=` and `?` parameters), or null for a bare term. */
  value: bigint | string | null;
}

const U64_MAX = (1n << 64n) - 1n;

/** Parses a number as perf's lexer does: decimal, or 0x hexadecimal; null if not one. */
export function parseNumber(text: string): bigint | null {
  if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text)) return null;
  return BigInt(text);
}

/**
 * Parses `cyc=1,tsc,mtc_period=3` into terms. `what` names the spec in errors.
 * Values are numbers (decimal or 0x), or strings for `name=` (quotes allowed)
 * and `?` (an alias's parameter).
 */
export function parseTerms(text: string, what = "PMU terms"): PmuTerm[] {
  const out: PmuTerm[] = [];
  if (text.trim() === "") return out;
  for (const raw of splitTerms(text)) {
    const t = raw.trim();
    const eq = t.indexOf("=");
    const name = (eq < 0 ? t : t.slice(0, eq)).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new UmmuArgumentError(
        `${what}: term ${
          JSON.stringify(t)
        } must be NAME or NAME=VALUE (NAME of letters, digits, _ . -)`,
      );
    }
    if (eq < 0) {
      out.push({ name, value: null });
      continue;
    }
    let v = t.slice(eq + 1).trim();
    if (/^(['"]).*\1$/.test(v) && v.length >= 2) v = v.slice(1, -1);
    const n = parseNumber(v);
    if (n !== null && n > U64_MAX) {
      throw new UmmuArgumentError(
        `${what}: term ${name}=${v} must be at most 64 bits (0x${U64_MAX.toString(16)})`,
      );
    }
    if (v === "") {
      throw new UmmuArgumentError(`${what}: term ${JSON.stringify(t)} has no value after "="`);
    }
    out.push({ name, value: n ?? v });
  }
  return out;
}

/** Splits on commas outside quotes. */
function splitTerms(text: string): string[] {
  const out: string[] = [];
  let cur = "", quote = "";
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = "";
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === ",") {
      out.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}

/** What a term list sets besides config words (perf's hardcoded terms). */
export interface TermSettings {
  /** `name=`: the event's display name. */
  name?: string;
  /** `period=`: sample period. */
  samplePeriod?: bigint;
  /** `freq=`: sample frequency. */
  sampleFreq?: bigint;
  /** `inherit` / `no-inherit`. */
  inherit?: boolean;
  /** `aux-output`. */
  auxOutput?: boolean;
  /** `aux-sample-size=`. */
  auxSampleSize?: number;
}

/** A term list encoded: the four config words (zero when untouched) and the other settings. */
export interface EncodedTerms {
  /** perf_event_attr.config. */
  config: bigint;
  /** perf_event_attr.config1. */
  config1: bigint;
  /** perf_event_attr.config2. */
  config2: bigint;
  /** perf_event_attr.config3. */
  config3: bigint;
  /** The words a term set (even to zero). */
  words: Set<ConfigWord>;
  /** What perf's non-format terms set (name, period, freq, inherit, aux-output, aux-sample-size). */
  settings: TermSettings;
}

/** perf's terms that are not format fields (parse-events.l, config state) that ummu does not map. */
const UNSUPPORTED_HARDCODED = new Set([
  "branch_type",
  "time",
  "call-graph",
  "stack-size",
  "max-stack",
  "nr",
  "overwrite",
  "no-overwrite",
  "percore",
  "metric-id",
  "driver-config",
  "legacy-cache",
  "hardware",
  "cpu",
  "aux-action",
]);

/** The largest value a format field holds (perf's pmu_format_max_value). */
export function formatMax(f: PmuFormat): bigint {
  return f.bits.length >= 64 ? U64_MAX : (1n << BigInt(f.bits.length)) - 1n;
}

/** Scatters `value`'s low bits into the format's bits (perf's pmu_format_value, without zeroing). */
export function scatter(f: PmuFormat, value: bigint): bigint {
  let out = 0n;
  f.bits.forEach((bit, i) => {
    if ((value >> BigInt(i)) & 1n) out |= 1n << BigInt(bit);
  });
  return out;
}

/**
 * Encodes a term list for `pmu` as perf's parse-events does: `config=`,
 * `config1=`.. set a word; a format term's value is scattered into its bits
 * and OR-ed in (a bare term means 1, allowed only for one-bit fields, as perf
 * 6.12 says "no value assigned for term"); an `events/` alias expands to its
 * terms in place, OR-ed like any term (`cpu/mem-loads,ldlat=50/` with the
 * alias's `ldlat=3` gives ldlat 51, as perf 6.1 and 6.12 do). A value wider
 * than its field, an unknown term or a term the user gives twice (perf would
 * OR the two) is an UmmuArgumentError naming the term (`what` names the spec).
 */
export function encodeTerms(pmu: Pmu, terms: string | PmuTerm[], what?: string): EncodedTerms {
  const spec = what ?? `${pmu.name}/${typeof terms === "string" ? terms : "..."}/`;
  const list = typeof terms === "string" ? parseTerms(terms, spec) : terms;
  const out: EncodedTerms = {
    config: 0n,
    config1: 0n,
    config2: 0n,
    config3: 0n,
    words: new Set(),
    settings: {},
  };
  const seen = new Set<string>();
  // Aliases expand in place (perf_pmu__check_alias); their terms are OR-ed like the user's.
  const all: { t: PmuTerm; fromAlias: boolean }[] = [];
  const params = new Set<string>();
  for (const t of list) {
    if (
      !pmu.formats.has(t.name) && pmu.events.has(t.name) && (t.value === null || t.value === 1n)
    ) {
      const alias = pmu.events.get(t.name)!;
      for (const at of parseTerms(alias.terms, `${pmu.name}/events/${alias.name}`)) {
        if (at.value === "?") params.add(at.name);
        const term = at.value === "?" ? paramTerm(at.name, list, spec, alias.name) : at;
        all.push({ t: term, fromAlias: true });
      }
    } else {
      all.push({ t, fromAlias: false });
    }
  }
  for (const { t, fromAlias } of all) {
    // A user's term that supplies an alias's `?` parameter is used up there (perf marks it used).
    if (!fromAlias && params.has(t.name)) continue;
    const once = (name: string) => {
      if (fromAlias) return;
      if (seen.has(name)) {
        throw new UmmuArgumentError(`${spec}: term ${JSON.stringify(name)} is given twice`);
      }
      seen.add(name);
    };
    const num = (): bigint => {
      if (typeof t.value === "bigint") return t.value;
      if (t.value === null) return 1n;
      throw new UmmuArgumentError(
        `${spec}: term ${t.name}=${t.value} must have a numeric value (decimal or 0x hex)`,
      );
    };
    if ((WORDS as readonly string[]).includes(t.name)) {
      once(t.name);
      if (t.value === null) {
        throw new UmmuArgumentError(`${spec}: term ${t.name} needs a value (${t.name}=N)`);
      }
      out[t.name as ConfigWord] |= num();
      out.words.add(t.name as ConfigWord);
      continue;
    }
    const f = pmu.formats.get(t.name);
    if (f !== undefined) {
      once(t.name);
      if (t.value === null && f.bits.length > 1) {
        throw new UmmuArgumentError(
          `${spec}: term ${t.name} needs a value: it is ${f.bits.length} bits wide (${f.spec}), ` +
            `so a bare ${t.name} does not say which (give ${t.name}=N)`,
        );
      }
      const v = num();
      const max = formatMax(f);
      if (v > max) {
        throw new UmmuArgumentError(
          `${spec}: term ${t.name}=${t.value} does not fit: ${t.name} is ${f.bits.length} bit${
            f.bits.length === 1 ? "" : "s"
          } wide (${f.spec}), at most ${max} (0x${max.toString(16)})`,
        );
      }
      out[f.word] |= scatter(f, v);
      out.words.add(f.word);
      continue;
    }
    const raw = /^r(?:0x)?([0-9a-fA-F]{1,16})$/.exec(t.name);
    if (raw && t.value === null) {
      once("config");
      out.config |= BigInt("0x" + raw[1]);
      out.words.add("config");
      continue;
    }
    switch (t.name) {
      case "name":
        once(t.name);
        if (t.value === null) throw new UmmuArgumentError(`${spec}: term name needs a value`);
        out.settings.name = String(t.value);
        continue;
      case "period":
        once(t.name);
        out.settings.samplePeriod = num();
        continue;
      case "freq":
        once(t.name);
        out.settings.sampleFreq = num();
        continue;
      case "inherit":
      case "no-inherit":
        once("inherit");
        out.settings.inherit = t.name === "inherit";
        continue;
      case "aux-output":
        once(t.name);
        out.settings.auxOutput = num() !== 0n;
        continue;
      case "aux-sample-size": {
        once(t.name);
        const v = num();
        if (v > 0xffffffffn) {
          throw new UmmuArgumentError(`${spec}: aux-sample-size=${v} must fit in 32 bits`);
        }
        out.settings.auxSampleSize = Number(v);
        continue;
      }
    }
    if (UNSUPPORTED_HARDCODED.has(t.name)) {
      throw new UmmuArgumentError(
        `${spec}: term ${
          JSON.stringify(t.name)
        } is a perf tool setting ummu's parser does not map; ` +
          `set the attr field (or the tool option) yourself`,
      );
    }
    const known = [...pmu.formats.keys(), ...pmu.events.keys()];
    const close = closeMatches(t.name, known);
    throw new UmmuArgumentError(
      `${spec}: unknown term ${JSON.stringify(t.name)} for PMU ${pmu.name}` +
        (close.length ? ` (did you mean ${close.join(", ")}?)` : "") +
        `; its format terms: ${pmu.formats.size ? [...pmu.formats.keys()].join(", ") : "none"}` +
        (pmu.events.size ? `; its events: ${[...pmu.events.keys()].join(", ")}` : "") +
        "; and config, config1, config2, config3, name, period, freq",
    );
  }
  return out;
}

/** An alias term `x=?`: its value comes from the user's `x=N` term. */
function paramTerm(name: string, list: PmuTerm[], spec: string, alias: string): PmuTerm {
  const given = list.find((t) => t.name === name);
  if (given === undefined || typeof given.value !== "bigint") {
    throw new UmmuArgumentError(
      `${spec}: event ${alias} has a parameter ${name}=?: give ${name}=N as a term`,
    );
  }
  return { name, value: given.value };
}
