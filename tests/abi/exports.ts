/**
 * What an ffi/ module exports, as the ABI tables name it: every number (plain
 * numbers and bigints, the numeric values of exported objects such as
 * UFFD_MSG_OFF, the entries of number -> name maps such as ERRNO_NAMES) by
 * its TS path, and the rule that each of them has a row in the module's table.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ModuleSpec } from "./spec.ts";

/** The repository root and its ffi/ folder (the sources the tables check). */
export const ROOT = decodeURIComponent(new URL("../..", import.meta.url).pathname).replace(
  /\/$/,
  "",
);
export const FFI = join(ROOT, "ffi");

/**
 * Why the ffi/ sources cannot be checked from here, or undefined when they
 * can: the npm build compiles the tests into a project that has the package,
 * not the repository's ffi/*.ts.
 */
export const ffiMissing: string | undefined = existsSync(join(FFI, "symbols.ts"))
  ? undefined
  : `${FFI}/*.ts not found: the ABI tests check the repository's ffi/ sources; run them from the repository`;

/** Every exported number of a module, by TS path. */
export function collectNumbers(mod: Record<string, unknown>): Map<string, number | bigint> {
  const out = new Map<string, number | bigint>();
  const walk = (path: string, v: unknown, depth: number) => {
    if (typeof v === "number" || typeof v === "bigint") out.set(path, v);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(`${path}[${i}]`, x, depth + 1));
    else if (v !== null && typeof v === "object" && depth < 4) {
      const entries = Object.entries(v);
      // number -> name maps (ERRNO_NAMES): the fact is "name is number".
      if (
        entries.length > 0 && entries.every(([k, x]) => /^-?\d+$/.test(k) && typeof x === "string")
      ) {
        for (const [k, x] of entries) out.set(`${path}[${x}]`, Number(k));
      } else for (const [k, x] of entries) walk(`${path}.${k}`, x, depth + 1);
    }
  };
  for (const [k, v] of Object.entries(mod)) walk(k, v, 0);
  return out;
}

/** The TS value of a table row: an exported number or string, or a call sample; undefined if not exported. */
export function tsValue(
  mod: Record<string, unknown>,
  nums: Map<string, number | bigint>,
  path: string,
): number | bigint | string | undefined {
  if (nums.has(path)) return nums.get(path);
  const call = /^(\w+)\(([^)]*)\)$/.exec(path);
  if (call) {
    const fn = mod[call[1]];
    if (typeof fn !== "function") return undefined;
    const args = call[2].split(",").map((a) => Number(a.trim()));
    return (fn as (...a: number[]) => number)(...args);
  }
  if (/^\w+$/.test(path) && typeof mod[path] === "string") return mod[path] as string;
  return undefined;
}

/** Imports ffi/<file> of the repository. */
export async function importFfi(file: string): Promise<Record<string, unknown>> {
  return await import(new URL(`../../ffi/${file}`, import.meta.url).href);
}

/** The rule's verdict for one module: what has no row, and allow entries that name nothing. */
export interface Coverage {
  nums: Map<string, number | bigint>;
  /** Exported numbers with no row in the table and no allow-list entry. */
  unchecked: string[];
  /** Allow-list entries for names the module does not export. */
  staleAllow: string[];
}

/** Holds a module's exports to its table: every exported number has a row or an allow entry. */
export function coverage(spec: ModuleSpec, mod: Record<string, unknown>): Coverage {
  const nums = collectNumbers(mod);
  const named = new Set(spec.units.flatMap((u) => u.checks.map(([ts]) => ts)));
  const allow = spec.allow ?? {};
  return {
    nums,
    unchecked: [...nums.keys()].filter((k) => !named.has(k) && !(k in allow)),
    staleAllow: Object.keys(allow).filter((k) => !nums.has(k)),
  };
}
