/**
 * The perf examples, run on the runtime under test as a user runs them:
 * from the repository on Deno and Bun, and from the installed package
 * (node_modules/ummu/examples/*.js) when these tests are the npm build's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runChild } from "./helpers.ts";

// Compiled by the npm build, this file is tests/perf_examples.test.js beside the
// project that installed the package: the examples are the package's.
const compiled = import.meta.url.endsWith(".js");
const examples = compiled
  ? new URL("../node_modules/ummu/examples/", import.meta.url)
  : new URL("../examples/", import.meta.url);

function example(name: string): URL {
  return new URL(`${name}${compiled ? ".js" : ".ts"}`, examples);
}

function missing(name: string): string | undefined {
  return existsSync(fileURLToPath(example(name)))
    ? undefined
    : `${fileURLToPath(example(name))} is missing`;
}

test("examples/perf_page_faults: the pages read, faulted once each, in order, by the main thread", {
  skip: missing("perf_page_faults"),
}, async () => {
  const r = await runChild(example("perf_page_faults"), [], 60_000);
  assert.equal(r.hung, false, `hung:\n${r.stdout}${r.stderr}`);
  assert.equal(r.code, 0, `exit ${r.code}:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /faulted in order: 11, 3, 7, 0, 15, 8;/);
  assert.match(r.stdout, /values 11, 3, 7, 3, 0, 15, 7, 8/, "the lazily served bytes");
  assert.match(r.stdout, /6 pages served by the fault handler, 0 samples lost/);
  const lines = r.stdout.split("\n").filter((l) => /^page /.test(l));
  assert.deepEqual(
    lines.map((l) => Number(/^page\s+(\d+)/.exec(l)![1])),
    [11, 3, 7, 0, 15, 8],
  );
  for (const l of lines) assert.match(l, /thread \d+ \(main\), ip 0x[0-9a-f]+$/);
});

test("examples/perf_watchpoint: each of the Worker's writes, with its tid and the ip", {
  skip: missing("perf_watchpoint"),
}, async () => {
  const r = await runChild(example("perf_watchpoint"), [], 60_000);
  assert.equal(r.hung, false, `hung:\n${r.stdout}${r.stderr}`);
  assert.equal(r.code, 0, `exit ${r.code}:\n${r.stdout}${r.stderr}`);
  const summary = /watchpoint: 5 writes by the Worker \(thread (\d+)\), value now 500/.exec(
    r.stdout,
  );
  assert.ok(summary, r.stdout);
  const writes = r.stdout.split("\n").filter((l) => /^write #/.test(l));
  assert.equal(writes.length, 5);
  writes.forEach((l, i) => {
    const m = /^write #(\d+) to 0x([0-9a-f]+): thread (\d+), ip 0x([0-9a-f]+)$/.exec(l);
    assert.ok(m, l);
    assert.equal(Number(m[1]), i + 1);
    assert.equal(m[3], summary[1], "the Worker's thread wrote");
    assert.notEqual(BigInt("0x" + m[4]), 0n);
  });
});
