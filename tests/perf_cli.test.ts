/**
 * `ummu perf decode`: one JSON line per record of a file Debian's perf
 * recorded, the same records (offsets, kinds, sample fields) the reader
 * gives, bigints as decimal or hex strings; usage errors exit 2, unreadable
 * files exit 1 with the reason.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { perf, perfSkip } from "./fixtures/perf_dump.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";

const script = new URL("./fixtures/perf_cli_main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ummu-perf-cli-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function ummuPerf(args: string[]) {
  const argv = "Deno" in globalThis
    ? ["run", "-A", "--no-check", script, ...args]
    : [script, ...args];
  const r = spawnSync(process.execPath, argv, { maxBuffer: 1 << 30 });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test(
  "ummu perf decode: a JSON line per record, equal to the reader's records",
  { skip: perfSkip },
  () => {
    const f = join(dir, "cli.data");
    perf(["record", "-q", "-o", f, "-e", "page-faults", "-c", "5", "-d", "--", "ls", "/"]);
    const out = ummuPerf(["decode", f]);
    assert.equal(out.status, 0, out.stderr);
    const lines = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const r = PerfDataReader.open(f);
    const entries = [...r.entries()];
    r.close();
    assert.equal(lines.length, entries.length);
    entries.forEach((e, i) => {
      assert.equal(lines[i].offset, e.offset);
      assert.equal(lines[i].kind, e.record.kind);
      if (e.record.kind === "sample") {
        assert.equal(lines[i].event, "page-faults");
        assert.equal(lines[i].ip, String(e.record.ip));
        assert.equal(lines[i].addr, String(e.record.addr));
        assert.equal(lines[i].pid, e.record.pid);
      }
    });
    assert.ok(lines.some((l) => l.kind === "sample"));
    const hex = ummuPerf(["decode", "--hex", f]).stdout.trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    const s = hex.find((l) => l.kind === "sample");
    assert.match(s.ip, /^0x[0-9a-f]+$/);
  },
);

test("ummu perf: usage errors exit 2, an unreadable file exits 1 with the reason", () => {
  const help = ummuPerf(["--help"]);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: ummu perf decode/);
  assert.equal(ummuPerf(["bogus"]).status, 2);
  assert.equal(ummuPerf(["decode"]).status, 2);
  const missing = ummuPerf(["decode", join(dir, "nope.data")]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /ENOENT/);
  const notPerf = ummuPerf(["decode", script]);
  assert.equal(notPerf.status, 1);
  assert.match(notPerf.stderr, /not a perf\.data file/);
});
