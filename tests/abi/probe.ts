/**
 * The C probe: compares ABI tables with the kernel's own headers.
 *
 * For each module of a table, `checkAgainstHeaders` imports it from ffi/,
 * generates one C program per header group (`Unit`) that prints the C value of
 * each row whose TS name the module exports, compiles it with `cc`, runs it,
 * and registers one test per group that fails when an exported number differs
 * from the header's. Rows whose TS name the module does not export are not
 * compiled, so a table may name more than a module has today.
 *
 * Headers: the Linux 6.12 UAPI headers of uapi-6.12.tar.xz, from
 * ../shared/vm/ or else from the test kernel that tests/vm/kernel/build.sh
 * built into .cache/vm-kernel/, extracted once into .cache/uapi-6.12/
 * (gitignored), on top of the system's glibc headers. Without a tarball (or
 * with UMMU_ABI_HEADERS=system) the system's /usr/include is used: what it
 * lacks is skipped with a reason. With the 6.12 headers a missing kernel
 * macro is a failure. `$CC` overrides `cc`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { arch, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { collectNumbers, ffiMissing, importFfi, ROOT, tsValue } from "./exports.ts";
import type { ModuleSpec, Unit } from "./spec.ts";

const CC = process.env.CC || "cc";
const FORCE_SYSTEM = process.env.UMMU_ABI_HEADERS === "system";
/** Where a uapi-6.12 tarball may be, in order: the prebuilt one, the locally built one. */
const UAPI_TARBALLS = [
  join(ROOT, "..", "shared", "vm", "uapi-6.12.tar.xz"),
  join(ROOT, ".cache", "vm-kernel", "uapi-6.12.tar.xz"),
];

const hex = (v: bigint) => (v < 0n ? `${v}` : `${v} (0x${v.toString(16)})`);

function toBig(v: number | bigint): bigint | undefined {
  if (typeof v === "bigint") return v;
  return Number.isSafeInteger(v) ? BigInt(v) : undefined;
}

interface Headers {
  /** -I directory, or undefined for the system's. */
  inc?: string;
  label: string;
  preferred: boolean;
  why?: string;
}

function uapiHeaders(): Headers {
  const system = (why: string): Headers => ({
    label: "system /usr/include",
    preferred: false,
    why,
  });
  if (FORCE_SYSTEM) return system("UMMU_ABI_HEADERS=system");
  if (arch() !== "x64") {
    return system(`the uapi-6.12 tarball holds x86_64 headers, this is ${arch()}`);
  }
  const dest = join(ROOT, ".cache", "uapi-6.12");
  const inc = join(dest, "include");
  const marker = join(inc, "linux", "userfaultfd.h");
  const ok: Headers = { inc, label: `uapi-6.12 (${inc})`, preferred: true };
  if (existsSync(marker)) return ok;
  const tarball = UAPI_TARBALLS.find((t) => existsSync(t));
  if (!tarball) {
    return system(
      `no uapi-6.12.tar.xz (looked for ${UAPI_TARBALLS.join(", ")}; ` +
        `tests/vm/kernel/build.sh makes the second)`,
    );
  }
  mkdirSync(join(ROOT, ".cache"), { recursive: true });
  const tmp = mkdtempSync(join(ROOT, ".cache", "uapi-6.12.tmp-"));
  try {
    const r = spawnSync("tar", ["-xJf", tarball, "-C", tmp], { encoding: "utf8" });
    if (r.status !== 0) return system(`tar -xJf ${tarball}: ${r.stderr || r.error}`);
    if (existsSync(dest) && !existsSync(marker)) rmSync(dest, { recursive: true, force: true });
    try {
      renameSync(join(tmp, "uapi-6.12"), dest);
    } catch (e) {
      if (!existsSync(marker)) return system(`extracting into ${dest}: ${e}`); // else: a concurrent run won
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return existsSync(marker)
    ? ok
    : system(`${tarball} has no uapi-6.12/include/linux/userfaultfd.h`);
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { encoding: "utf8", maxBuffer: 1 << 24 },
      (e, out, err) =>
        resolve({ ok: !e, out: String(out), err: String(err || (e && e.message) || "") }),
    );
  });
}

const isIdent = (s: string) => /^[A-Za-z_]\w*$/.test(s);

interface Row {
  ts: string;
  c: string;
  guard: string;
  tsv: number | bigint | string;
  expect?: number | bigint;
}

const PRELUDE = `#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/version.h>
#ifndef KERNEL_VERSION
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))
#endif
static unsigned long long bitfield_word(const void *p, size_t off)
{
	unsigned long long w;
	memcpy(&w, (const char *)p + off, sizeof w);
	return w;
}
/* The bits that setting a one-bit bitfield sets in the 64-bit word at byte off. */
#define BITFIELD_MASK(T, field, off) __extension__({ T a_; memset(&a_, 0, sizeof a_); \\
	a_.field = 1; bitfield_word(&a_, (off)); })
`;

function probeSource(unit: Unit, rows: Row[]): string {
  const lines: string[] = [];
  for (const d of unit.defines ?? []) lines.push(`#define ${d} 1`);
  lines.push(PRELUDE);
  for (const h of unit.includes) {
    lines.push(h.startsWith("<") ? `#include ${h}` : `#include "${join(ROOT, h)}"`);
  }
  lines.push("int main(void)", "{");
  rows.forEach((r, i) => {
    lines.push(`#if ${r.guard}`);
    lines.push(
      typeof r.tsv === "string"
        ? `\tprintf("${i} s%s\\n", ${r.c});`
        : `\tprintf("${i} %llu\\n", (unsigned long long)(${r.c}));`,
    );
    lines.push("#else", `\tprintf("${i} ?\\n");`, "#endif");
  });
  lines.push("\treturn 0;", "}", "");
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// The toolchain, found once per process (Bun runs every test file in one).
// ---------------------------------------------------------------------------

interface Toolchain {
  headers: Headers;
  incArgs: string[];
  noCompiler?: string;
  kernelLabel: string;
  libcLabel: string;
  checkedAgainst: string;
}

let toolchain: Promise<Toolchain> | undefined;

function findToolchain(): Promise<Toolchain> {
  toolchain ??= (async () => {
    const headers = uapiHeaders();
    const incArgs = headers.inc ? ["-I", headers.inc] : [];
    const ccVersion = await run(CC, ["--version"]);
    let noCompiler: string | undefined = ccVersion.ok
      ? undefined
      : `no C compiler: ${CC} --version failed (${ccVersion.err.trim().split("\n")[0]})`;
    let linuxVersion = "?";
    let glibcVersion = "?";
    if (!noCompiler) {
      const work = mkdtempSync(join(tmpdir(), "ummu-abi-meta-"));
      try {
        const src = join(work, "meta.c");
        writeFileSync(
          src,
          `#include <stdio.h>\n#include <linux/version.h>\nint main(void)\n{\n` +
            `\tprintf("%d.%d.%d\\n", LINUX_VERSION_CODE >> 16, (LINUX_VERSION_CODE >> 8) & 255, LINUX_VERSION_CODE & 255);\n` +
            `#ifdef __GLIBC__\n\tprintf("%d.%d\\n", __GLIBC__, __GLIBC_MINOR__);\n#else\n\tprintf("none\\n");\n#endif\n` +
            `\treturn 0;\n}\n`,
        );
        const bin = join(work, "meta");
        const c = await run(CC, [...incArgs, "-o", bin, src]);
        const r = c.ok ? await run(bin, []) : c;
        if (!r.ok) noCompiler = `${CC} cannot build a probe: ${r.err.trim()}`;
        else [linuxVersion, glibcVersion] = r.out.trim().split("\n");
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
    const kernelLabel = `${headers.label}, Linux ${linuxVersion}`;
    const libcLabel = `glibc ${glibcVersion} (/usr/include)`;
    const checkedAgainst = noCompiler
      ? `nothing (${noCompiler})`
      : `${kernelLabel} + ${libcLabel}` + (headers.why ? ` (not uapi-6.12: ${headers.why})` : "");
    return { headers, incArgs, noCompiler, kernelLabel, libcLabel, checkedAgainst };
  })();
  return toolchain;
}

function sourceLabel(tc: Toolchain, u: Unit): string {
  return u.source === "libc"
    ? tc.libcLabel
    : u.source === "local"
    ? join(ROOT, u.includes[0])
    : tc.kernelLabel;
}

// ---------------------------------------------------------------------------
// One unit: compile its probe, run it, read the values.
// ---------------------------------------------------------------------------

type UnitResult =
  | { kind: "skip"; reason: string }
  | { kind: "compile-error"; error: string }
  | {
    kind: "ran";
    compared: { row: Row; c: string }[];
    missing: Row[];
  };

async function runUnit(
  tc: Toolchain,
  work: string,
  unit: Unit,
  rows: Row[],
  id: string,
): Promise<UnitResult> {
  if (tc.noCompiler) return { kind: "skip", reason: tc.noCompiler };
  if (unit.arch && unit.arch !== arch()) {
    return { kind: "skip", reason: `${unit.header} is ${unit.arch}'s table, this is ${arch()}` };
  }
  for (const h of unit.includes) {
    if (!h.startsWith("<") && !existsSync(join(ROOT, h))) {
      return { kind: "skip", reason: `${h} not present` };
    }
  }
  // A missing kernel header (e.g. <linux/user_events.h> before 6.4): skip, with the version.
  const check = join(work, `${id}-has.c`);
  writeFileSync(
    check,
    (unit.defines ?? []).map((d) => `#define ${d} 1\n`).join("") +
      unit.includes.filter((h) => h.startsWith("<")).map((h) =>
        `#if !__has_include(${h})\n#error missing ${h}\n#endif\n`
      ).join("") + "int main(void) { return 0; }\n",
  );
  const has = await run(CC, [...tc.incArgs, "-fsyntax-only", check]);
  if (!has.ok) {
    const missing = [...new Set([...has.err.matchAll(/missing (<[^>]+>)/g)].map((x) => x[1]))];
    if (
      missing.length > 0 && unit.source !== "local" &&
      !(tc.headers.preferred && unit.source === "uapi")
    ) {
      return { kind: "skip", reason: `${missing.join(" ")} not in ${sourceLabel(tc, unit)}` };
    }
    return { kind: "compile-error", error: has.err };
  }
  const src = join(work, `${id}.c`);
  const bin = join(work, id);
  writeFileSync(src, probeSource(unit, rows));
  const c = await run(CC, [
    "-std=gnu11",
    "-Werror=implicit-function-declaration",
    ...tc.incArgs,
    "-o",
    bin,
    src,
  ]);
  if (!c.ok) return { kind: "compile-error", error: c.err };
  const r = await run(bin, []);
  if (!r.ok) return { kind: "compile-error", error: `probe failed: ${r.err}` };
  const byId = new Map<number, string>();
  for (const line of r.out.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) byId.set(Number(line.slice(0, sp)), line.slice(sp + 1));
  }
  const compared: { row: Row; c: string }[] = [];
  const missing: Row[] = [];
  rows.forEach((row, i) => {
    const v = byId.get(i);
    if (v === undefined) throw new Error(`probe ${id} printed nothing for ${row.ts}`);
    if (v === "?") missing.push(row);
    else compared.push({ row, c: v });
  });
  return { kind: "ran", compared, missing };
}

// ---------------------------------------------------------------------------
// The tests of one group of tables.
// ---------------------------------------------------------------------------

interface ModuleResult {
  spec: ModuleSpec;
  present: boolean;
  importError?: string;
  nums: Map<string, number | bigint>;
  units: { unit: Unit; rows: Row[]; result?: UnitResult }[];
}

/**
 * Compiles and runs the probes of these tables, then registers the tests:
 * one per header group, comparing every value, and a summary naming the
 * headers. Call it at the top level of a test file (`await`).
 */
export async function checkAgainstHeaders(specs: ModuleSpec[]): Promise<void> {
  const files = specs.map((s) => `ffi/${s.file}`).join(", ");
  if (ffiMissing) {
    test(`${files}: checked against the kernel headers`, { skip: ffiMissing }, () => {});
    return;
  }
  const tc = await findToolchain();
  const modules: ModuleResult[] = [];
  for (const spec of specs) {
    const m: ModuleResult = {
      spec,
      present: existsSync(join(ROOT, "ffi", spec.file)),
      nums: new Map(),
      units: [],
    };
    modules.push(m);
    if (!m.present) continue;
    let mod: Record<string, unknown>;
    try {
      mod = await importFfi(spec.file);
    } catch (e) {
      m.importError = String(e);
      continue;
    }
    m.nums = collectNumbers(mod);
    for (const unit of spec.units) {
      const rows: Row[] = [];
      for (const [ts, c, opts] of unit.checks) {
        const tsv = tsValue(mod, m.nums, ts);
        if (tsv === undefined) continue;
        rows.push({
          ts,
          c,
          tsv,
          guard: opts?.guard ?? (isIdent(c) ? `defined(${c})` : "1"),
          expect: opts?.expect,
        });
      }
      m.units.push({ unit, rows });
    }
  }

  const work = mkdtempSync(join(tmpdir(), "ummu-abi-"));
  try {
    await Promise.all(modules.flatMap((m, mi) =>
      m.units.map(async (u, ui) => {
        if (u.rows.length > 0) u.result = await runUnit(tc, work, u.unit, u.rows, `m${mi}u${ui}`);
      })
    ));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  let nCompared = 0;
  let nSkipped = 0;
  const covered = new Set<string>();
  for (const m of modules) {
    for (const u of m.units) {
      if (u.result?.kind === "ran") {
        nCompared += u.result.compared.length;
        for (const { row } of u.result.compared) {
          if (m.nums.has(row.ts)) covered.add(`${m.spec.file}:${row.ts}`);
        }
        nSkipped += u.result.missing.length;
      } else if (u.result?.kind === "skip") nSkipped += u.rows.length;
    }
  }
  const nExported = modules.reduce((n, m) => n + m.nums.size, 0);
  const summary = `${files}: ${nCompared} comparisons, ${covered.size} of ${nExported} ` +
    `exported numbers checked against ${tc.checkedAgainst}`;
  console.log(
    `abi: ${summary}` + (nSkipped ? ` (${nSkipped} rows not compared, see the skipped tests)` : ""),
  );

  test(summary, tc.noCompiler ? { skip: tc.noCompiler } : {}, () => {
    assert.ok(tc.headers.inc ?? "/usr/include");
  });

  for (const m of modules) {
    const f = `ffi/${m.spec.file}`;
    if (!m.present) {
      test(`${f}: not present, nothing to check`, { skip: `${f} does not exist` }, () => {});
      continue;
    }
    if (m.importError !== undefined) {
      test(`${f}: imports`, () => assert.fail(`importing ${f}: ${m.importError}`));
      continue;
    }
    for (const { unit, rows, result } of m.units) {
      if (rows.length === 0 || !result) continue;
      registerUnit(tc, f, unit, rows, result);
    }
  }
}

function registerUnit(tc: Toolchain, f: string, unit: Unit, rows: Row[], result: UnitResult) {
  const name = `${f} = ${unit.header}`;
  if (result.kind === "skip") {
    test(
      `${name}: ${rows.length} not checked: ${result.reason}`,
      { skip: result.reason },
      () => {},
    );
    return;
  }
  if (result.kind === "compile-error") {
    test(`${name}: the probe compiles`, () => {
      assert.fail(`${CC} failed against ${sourceLabel(tc, unit)}:\n${result.error}`);
    });
    return;
  }
  // Our own header, and the 6.12 UAPI headers, must define every name ffi/ uses;
  // older system headers and glibc may lack some (skipped, with the reason).
  const mustHaveAll = unit.source === "local" || (tc.headers.preferred && unit.source === "uapi");
  if (result.compared.length > 0 || mustHaveAll) {
    test(`${name}: ${result.compared.length} values`, () => {
      const actual: Record<string, string> = {};
      const expected: Record<string, string> = {};
      const seen = new Set<string>();
      for (const { row, c } of result.compared) {
        const key = seen.has(row.ts) ? `${row.ts} (${row.c})` : row.ts;
        seen.add(row.ts);
        if (typeof row.tsv === "string") {
          assert.ok(c.startsWith("s"), `${row.ts}: the header's ${row.c} is not a string`);
          actual[key] = JSON.stringify(row.tsv);
          expected[key] = JSON.stringify(c.slice(1));
          continue;
        }
        const ts = toBig(row.tsv);
        let cv = BigInt(c);
        if (ts !== undefined && ts < 0n) cv = BigInt.asIntN(64, cv);
        actual[key] = ts === undefined ? `not an integer: ${row.tsv}` : hex(ts);
        expected[key] = hex(cv);
        if (row.expect !== undefined) {
          actual[`${key} (pinned)`] = hex(cv);
          expected[`${key} (pinned)`] = hex(BigInt(row.expect));
        }
      }
      assert.deepEqual(actual, expected, `${f} (left) vs ${sourceLabel(tc, unit)} (right)`);
      if (mustHaveAll) {
        assert.deepEqual(
          result.missing.map((r) => r.ts),
          [],
          `not defined by ${
            sourceLabel(tc, unit)
          }: with the 6.12 UAPI headers (or our own header) ` +
            `every kernel name ffi/ uses must be there`,
        );
      }
    });
  }
  const skippedHere = mustHaveAll ? [] : result.missing;
  if (skippedHere.length > 0) {
    const reason = `not in ${sourceLabel(tc, unit)}` +
      (unit.source === "uapi" ? ": newer than these headers (the 6.12 UAPI tarball has them)" : "");
    test(
      `${name}: ${skippedHere.length} not checked (${
        skippedHere.map((r) => r.ts).join(", ")
      }): ${reason}`,
      { skip: reason },
      () => {},
    );
  }
}
