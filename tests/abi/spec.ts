/**
 * The shape of an ABI table and the helpers that write its rows.
 *
 * A table lists, per ffi module, (TS export, C expression) pairs grouped by the
 * headers that define them (one `Unit` per group of headers: one C probe).
 * tests/abi/probe.ts compiles and runs the probes; tests/abi_coverage.test.ts
 * holds every module to the rule that each exported number has a row.
 */

export interface CheckOpts {
  /**
   * C preprocessor condition under which the header has the value. Default:
   * `defined(X)` when the C expression is a bare identifier X, else `1`. Enum
   * constants need `guard: "1"` (see `enums`).
   */
  guard?: string;
  /** A value pinned by the test itself (our own headers: both sides must equal it). */
  expect?: number | bigint;
}
/** [TS path, C expression, options]. TS paths: `NAME`, `OBJ.key`, `MAP[value]`, `fn(1,2)`. */
export type Check = readonly [ts: string, c: string, opts?: CheckOpts];

export interface Unit {
  /** How the test names this header group. */
  header: string;
  /** uapi: kernel UAPI headers; libc: glibc's; local: a header of this repo. */
  source: "uapi" | "libc" | "local";
  /** `<x.h>`, or a repo-relative path (the unit is skipped while it doesn't exist). */
  includes: string[];
  defines?: string[];
  /** Only on this os.arch(): the syscall tables are per architecture. */
  arch?: string;
  checks: Check[];
}

export interface ModuleSpec {
  /** The ffi/ file, e.g. `userfaultfd.ts`. */
  file: string;
  units: Unit[];
  /** Exported numbers no header can check, each with the reason. */
  allow?: Record<string, string>;
}

/** Whitespace-separated names. */
export const w = (s: TemplateStringsArray): string[] => s.raw[0].trim().split(/\s+/);
/** Rows whose TS name is the C name. */
export const same = (...names: string[]): Check[] => names.map((n) => [n, n] as const);
/** Rows for enum constants: `#ifdef` cannot see them, so they are always compiled. */
export const enums = (...names: string[]): Check[] =>
  names.map((n) => [n, n, { guard: "1" }] as const);
/** Rows `OBJ.key` = `offsetof(type, field)`; fields as a list (key = field) or key -> field. */
export const offsets = (
  obj: string,
  type: string,
  fields: Record<string, string> | string[],
  opts?: CheckOpts,
): Check[] =>
  (Array.isArray(fields) ? fields.map((f) => [f, f]) : Object.entries(fields)).map((
    [k, f],
  ) => [`${obj}.${k}`, `offsetof(${type}, ${f})`, opts] as const);
/** A guard: the headers are of Linux a.b or later. */
export const since = (a: number, b: number): string =>
  `LINUX_VERSION_CODE >= KERNEL_VERSION(${a},${b},0)`;

/** The syscall-number units: x86_64 <asm/unistd_64.h>, arm64 = <asm-generic/unistd.h>. */
export const syscallUnits = (x64: Check[], arm64: Check[]): Unit[] => [
  {
    header: "<asm/unistd_64.h> (x86_64)",
    source: "uapi",
    arch: "x64",
    includes: ["<asm/unistd_64.h>"],
    checks: x64,
  },
  {
    header: "<asm-generic/unistd.h> (arm64's table)",
    source: "uapi",
    includes: ["<asm-generic/unistd.h>"],
    checks: arm64,
  },
];
