/**
 * No ABI number lands unchecked: every ffi/*.ts is either an ABI module with a
 * table (tests/abi/tables.ts) or listed in NOT_ABI, and every number an ABI
 * module exports (plain numbers and bigints, the numeric values of exported
 * objects such as UFFD_MSG_OFF, the entries of number -> name maps such as
 * ERRNO_NAMES) has a row in its table, or an allow-list entry with the reason
 * no header can check it. The rows themselves are compared with the headers
 * by tests/abi_<table>.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { coverage, FFI, ffiMissing, importFfi } from "./abi/exports.ts";
import type { ModuleSpec } from "./abi/spec.ts";
import { NOT_ABI, TABLES } from "./abi/tables.ts";

const skip = ffiMissing ? { skip: ffiMissing } : {};

test("every ffi/*.ts is in an ABI table (tests/abi/tables.ts TABLES) or NOT_ABI", skip, () => {
  const ffiFiles = readdirSync(FFI).filter((f) => f.endsWith(".ts")).sort();
  const unclassified = ffiFiles.filter((f) => !(f in NOT_ABI) && !TABLES.some((s) => s.file === f));
  assert.deepEqual(
    unclassified,
    [],
    `add these to tests/abi/tables.ts: TABLES (ABI numbers, with a table) or NOT_ABI`,
  );
});

for (const spec of TABLES) {
  const f = `ffi/${spec.file}`;
  if (!ffiMissing && !existsSync(join(FFI, spec.file))) {
    test(`${f}: not present, nothing to check`, { skip: `${f} does not exist` }, () => {});
    continue;
  }
  let mod: Record<string, unknown> | undefined;
  let importError: string | undefined;
  if (!ffiMissing) {
    try {
      mod = await importFfi(spec.file);
    } catch (e) {
      importError = String(e);
    }
  }
  const cov = mod ? coverage(spec, mod) : undefined;
  const count = cov ? ` (${cov.nums.size})` : "";
  test(`${f}: every exported number has a row in the ABI table${count}`, skip, () => {
    assert.equal(importError, undefined, `importing ${f}`);
    assert.ok(cov);
    assert.deepEqual(
      cov.unchecked,
      [],
      `${f} exports numbers that no ABI test checks: add a row to its table ` +
        `(the ModuleSpec with file "${spec.file}" in tests/abi/, see tests/abi/tables.ts) ` +
        `(or, if no header can check it, to its allow list with the reason)`,
    );
    assert.deepEqual(cov.staleAllow, [], `${f}: allow-list entries for names it doesn't export`);
  });
}

// The rule itself: a number a module exports beyond its table is reported,
// whatever its shape (a constant, an object's field, a number -> name map).
test("the coverage rule reports an exported number that no row names", () => {
  const spec: ModuleSpec = {
    file: "example.ts",
    units: [{
      header: "<example.h>",
      source: "uapi",
      includes: ["<example.h>"],
      checks: [["EX_A", "EX_A"], ["EX_OFF.a", "offsetof(struct ex, a)"], ["NAMES[EX_E]", "EX_E"]],
    }],
    allow: { EX_LIMIT: "in no header", EX_GONE: "no longer exported" },
  };
  const mod = {
    EX_A: 1,
    EX_NEW: 2n,
    EX_LIMIT: 3,
    EX_OFF: { a: 0, b: 8 },
    NAMES: { 5: "EX_E", 6: "EX_F" },
    describe: "not a number",
  };
  const cov = coverage(spec, mod);
  assert.deepEqual(cov.unchecked.sort(), ["EX_NEW", "EX_OFF.b", "NAMES[EX_F]"]);
  assert.deepEqual(cov.staleAllow, ["EX_GONE"]);
  assert.equal(cov.nums.size, 7);
});
