/**
 * `ummu perf decode`: one JSON line per record of a file Debian's perf
 * recorded, the same records (offsets, kinds, sample fields) the reader
 * gives, bigints as decimal or hex strings; usage errors exit 2, unreadable
 * files exit 1 with the reason.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { perf, perfSkip, UMMU_PERF_MAIN, ummuPerf } from "./fixtures/perf_dump.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";

const dir = mkdtempSync(join(tmpdir(), "ummu-perf-cli-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

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
  const notPerf = ummuPerf(["decode", UMMU_PERF_MAIN]);
  assert.equal(notPerf.status, 1);
  assert.match(notPerf.stderr, /not a perf\.data file/);
});

const GOLDEN = new URL("./fixtures/perf-golden/", import.meta.url).pathname;

test(
  "ummu perf decode on Intel PT from real hardware: every packet line says what perf report -D says",
  {
    skip: perfSkip ||
      (!existsSync(GOLDEN + "perf.data.intel_pt-4.14") && "no tests/fixtures/perf-golden"),
  },
  () => {
    const f = GOLDEN + "perf.data.intel_pt-4.14";
    const out = ummuPerf(["decode", "--hex", f]);
    assert.equal(out.status, 0, out.stderr);
    const lines = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
    // perf's packet lines: ".  OFFSET:  BYTES  TEXT" inside each "Intel Processor Trace data" dump.
    const theirs = [
      ...perf(["report", "-D", "-i", f]).stdout.matchAll(
        /^\.\s+([0-9a-f]{8}):\s+(?:[0-9a-f]{2} )+\s*(.*?)\s*$/gm,
      ),
    ].map((m) => `${parseInt(m[1], 16)} ${m[2]}`);
    const mine = lines.filter((l) => l.kind === "ptPacket").map((l) => `${l.offset} ${l.packet}`);
    assert.ok(mine.length > 10000, `${mine.length} packets`);
    assert.deepEqual(mine, theirs);
    // The AUXTRACE lines carry no hex payload (decoded instead) unless --raw-aux.
    const aux = lines.filter((l) => l.kind === "auxtrace");
    assert.equal(aux.length, 2);
    for (const a of aux) assert.equal(a.payload, undefined);
    const tip = lines.find((l) => l.kind === "ptPacket" && l.packet === "TIP.PGE 0xffffb960d302");
    assert.equal(tip?.ip, "0xffffffffb960d302", "the full IP, sign-extended from 48 bits");
    const raw = ummuPerf(["decode", "--raw-aux", f]).stdout.trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(raw.filter((l) => l.kind === "ptPacket").length, 0);
    assert.match(raw.find((l) => l.kind === "auxtrace").payload, /^02820282/);
  },
);

test(
  "ummu perf decode prints the branch stack entries perf script -F brstack prints",
  {
    skip: perfSkip ||
      (!existsSync(GOLDEN + "perf.data.branch-4.14") && "no tests/fixtures/perf-golden"),
  },
  () => {
    const f = GOLDEN + "perf.data.branch-4.14";
    const out = ummuPerf(["decode", "--hex", f]);
    assert.equal(out.status, 0, out.stderr);
    const samples = out.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .filter((l) => l.kind === "sample")
      .sort((a, b) => Number(BigInt(a.time) - BigInt(b.time)));
    const theirs = perf(["script", "-i", f, "-F", "brstack"]).stdout.trim().split("\n")
      .map((l) => l.trim().split(/\s+/).map((e) => e.split("/").slice(0, 2).join("/")));
    assert.equal(samples.length, theirs.length);
    samples.forEach((s, i) => {
      assert.deepEqual(
        s.branchStack.entries.map((e: { from: string; to: string }) => `${e.from}/${e.to}`),
        theirs[i],
        `sample ${i}`,
      );
    });
  },
);
