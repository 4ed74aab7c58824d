/**
 * src/perf/pmu.ts on this machine's real sysfs and on a copy of Intel and AMD
 * PMU folders (format, events, caps files with the content the kernel
 * writes: arch/x86/events/intel/pt.c, intel/core.c, intel/bts.c, amd/core.c,
 * rapl.c of Debian's linux-source-6.12). Encodings are checked bit for bit,
 * and against Debian's perf itself, which reads the copy when it is
 * bind-mounted over /sys/bus/event_source/devices in a private mount
 * namespace (as root).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import process from "node:process";
import {
  encodeTerms,
  formatMax,
  listPmus,
  parseFormat,
  parseTerms,
  PMU_ROOT,
  pmuNames,
  readPmu,
} from "../src/perf/pmu.ts";
import { parseEvent } from "../src/perf/event_names.ts";
import { UmmuArgumentError } from "../src/errors.ts";

const argError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UmmuArgumentError, `expected UmmuArgumentError, got ${e}`);
  assert.match((e as Error).message, re);
  return true;
};

/** Folders and files of a PMU copy: path -> content. */
type Tree = Record<string, string>;

// Format strings as the kernel's PMU_FORMAT_ATTR lines write them (with "\n").
const INTEL_PT: Tree = {
  type: "10",
  nr_addr_filters: "2",
  "format/pt": "config:0",
  "format/cyc": "config:1",
  "format/pwr_evt": "config:4",
  "format/fup_on_ptw": "config:5",
  "format/mtc": "config:9",
  "format/tsc": "config:10",
  "format/noretcomp": "config:11",
  "format/ptw": "config:12",
  "format/branch": "config:13",
  "format/event": "config:31",
  "format/notnt": "config:55",
  "format/mtc_period": "config:14-17",
  "format/cyc_thresh": "config:19-22",
  "format/psb_period": "config:24-27",
  "caps/psb_cyc": "1",
  "caps/mtc": "1",
  "caps/mtc_periods": "249",
  "caps/num_address_ranges": "2",
};
const INTEL_BTS: Tree = { type: "11" };
const INTEL_CPU: Tree = {
  type: "4",
  "format/event": "config:0-7",
  "format/umask": "config:8-15",
  "format/edge": "config:18",
  "format/pc": "config:19",
  "format/any": "config:21",
  "format/inv": "config:23",
  "format/cmask": "config:24-31",
  "format/in_tx": "config:32",
  "format/in_tx_cp": "config:33",
  "format/offcore_rsp": "config1:0-63",
  "format/ldlat": "config1:0-15",
  "events/mem-loads": "event=0xcd,umask=0x1,ldlat=3",
  "events/mem-stores": "event=0xcd,umask=0x2",
  "events/topdown-total-slots": "event=0x3c,umask=0x0,any=1",
  "events/topdown-total-slots.scale": "2",
  "events/slots": "event=0x00,umask=0x4",
};
const AMD_CPU: Tree = {
  type: "4",
  "format/event": "config:0-7,32-35",
  "format/umask": "config:8-15",
  "format/edge": "config:18",
  "format/inv": "config:23",
  "format/cmask": "config:24-31",
};
const RAPL: Tree = {
  type: "12",
  cpumask: "0",
  "format/event": "config:0-7",
  "events/energy-pkg": "event=0x02",
  "events/energy-pkg.unit": "Joules",
  "events/energy-pkg.scale": "2.3283064365386962890625e-10",
};

function writeTree(root: string, pmus: Record<string, Tree>): void {
  for (const [pmu, tree] of Object.entries(pmus)) {
    mkdirSync(`${root}/${pmu}`, { recursive: true });
    for (const [path, content] of Object.entries(tree)) {
      const full = `${root}/${pmu}/${path}`;
      mkdirSync(full.slice(0, full.lastIndexOf("/")), { recursive: true });
      writeFileSync(full, content + "\n");
    }
  }
}

const fixture = mkdtempSync(`${tmpdir()}/ummu-pmu-`);
writeTree(fixture, {
  intel_pt: INTEL_PT,
  intel_bts: INTEL_BTS,
  cpu: INTEL_CPU,
  amd_cpu: AMD_CPU,
  power: RAPL,
});
after(() => rmSync(fixture, { recursive: true, force: true }));

describe("PMUs of this machine's sysfs", () => {
  const names = pmuNames();
  test("every PMU folder reads: type as in its file, formats parse", {
    skip: names.length ? undefined : `no PMU in ${PMU_ROOT}`,
  }, () => {
    const pmus = listPmus();
    assert.deepEqual(pmus.map((p) => p.name), readdirSync(PMU_ROOT).sort());
    for (const p of pmus) {
      assert.equal(p.type, Number(readFileSync(`${PMU_ROOT}/${p.name}/type`, "utf8")), p.name);
      for (const f of p.formats.values()) {
        const text = readFileSync(`${PMU_ROOT}/${p.name}/format/${f.name}`, "utf8").trim();
        assert.equal(f.spec, text);
        assert.ok(f.bits.length > 0 && f.bits.every((b) => b >= 0 && b < 64), f.spec);
      }
    }
    // The kernel's fixed types (enum perf_type_id) for its own PMUs.
    const fixed: Record<string, number> = { software: 1, tracepoint: 2, breakpoint: 5 };
    for (const [n, t] of Object.entries(fixed)) {
      if (names.includes(n)) assert.equal(readPmu(n).type, t, n);
    }
  });

  test("uprobe: format/retprobe is config:0 and ref_ctr_offset config:32-63", {
    skip: names.includes("uprobe") ? undefined : "no uprobe PMU (CONFIG_UPROBE_EVENTS)",
  }, () => {
    const u = readPmu("uprobe");
    assert.deepEqual(u.formats.get("retprobe")?.bits, [0]);
    const ref = u.formats.get("ref_ctr_offset");
    if (ref) assert.deepEqual(ref.bits, Array.from({ length: 32 }, (_, i) => 32 + i));
    assert.equal(encodeTerms(u, "retprobe").config, 1n);
  });

  test("kprobe: format/retprobe is config:0", {
    skip: names.includes("kprobe") ? undefined : "no kprobe PMU here (CONFIG_KPROBE_EVENTS)",
  }, () => {
    assert.deepEqual(readPmu("kprobe").formats.get("retprobe")?.bits, [0]);
  });

  test("msr: the tsc alias encodes to its events/ file", {
    skip: names.includes("msr") ? undefined : "no msr PMU here",
  }, () => {
    const msr = readPmu("msr");
    const alias = msr.events.get("tsc");
    assert.ok(alias, "msr/events/tsc");
    const want = BigInt(/event=(0x[0-9a-f]+)/.exec(alias.terms)![1]);
    assert.equal(encodeTerms(msr, "tsc").config, want);
    assert.equal(parseEvent("msr/tsc/").attr.type, msr.type);
  });

  test("an unknown PMU: the error lists this machine's PMUs and names the likely cause", () => {
    assert.throws(
      () => parseEvent("intel_pt/cyc=1/"),
      argError(
        names.includes("intel_pt")
          ? /./
          : new RegExp(`intel_pt: no such PMU here .*this machine's PMUs: ${names.join(", ")}`),
      ),
    );
    assert.throws(() => readPmu("sofware"), argError(/did you mean software/));
  });
});

describe("format files", () => {
  test("single bits, ranges, multi-range fields", () => {
    assert.deepEqual(parseFormat("cyc", "config:1\n").bits, [1]);
    assert.deepEqual(parseFormat("m", "config:14-17").bits, [14, 15, 16, 17]);
    const amd = parseFormat("event", "config:0-7,32-35");
    assert.equal(amd.word, "config");
    assert.deepEqual(amd.bits, [0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35]);
    assert.equal(formatMax(amd), 0xfffn);
    assert.equal(parseFormat("o", "config1:0-63").word, "config1");
    assert.equal(formatMax(parseFormat("o", "config1:0-63")), (1n << 64n) - 1n);
    assert.equal(parseFormat("x", "config2:3").word, "config2");
    assert.equal(parseFormat("y", "config3:0-1").word, "config3");
  });

  test("malformed format text is an argument error naming the file", () => {
    for (const bad of ["", "config", "config:", "config:8-3", "config:64", "config4:0", "cfg:1"]) {
      assert.throws(() => parseFormat("f", bad), argError(/PMU format "f"/), bad);
    }
  });

  test("terms: bare, decimal, hex, quoted names; junk refused", () => {
    assert.deepEqual(parseTerms("cyc=1,tsc,mtc_period=0x3,name='x,y'"), [
      { name: "cyc", value: 1n },
      { name: "tsc", value: null },
      { name: "mtc_period", value: 3n },
      { name: "name", value: "x,y" },
    ]);
    assert.throws(() => parseTerms("=1"), argError(/NAME or NAME=VALUE/));
    assert.throws(() => parseTerms("a="), argError(/no value/));
    assert.throws(() => parseTerms("a=0x1ffffffffffffffff"), argError(/at most 64 bits/));
  });
});

describe("Intel and AMD PMU copies (fixture)", () => {
  const opt = { pmuRoot: fixture };
  test("the copy reads: types, caps, nr_addr_filters, cpumask, aliases with scale and unit", () => {
    const pt = readPmu("intel_pt", fixture);
    assert.equal(pt.type, 10);
    assert.equal(pt.nrAddrFilters, 2);
    assert.equal(pt.caps.psb_cyc, "1");
    assert.equal(pt.formats.size, 14);
    assert.equal(pt.cpus, null);
    const rapl = readPmu("power", fixture);
    assert.deepEqual(rapl.cpus, [0]);
    const pkg = rapl.events.get("energy-pkg")!;
    assert.equal(pkg.terms, "event=0x02");
    assert.equal(pkg.unit, "Joules");
    assert.equal(pkg.scale, "2.3283064365386962890625e-10");
    assert.ok(!rapl.events.has("energy-pkg.unit"), "companion files are not aliases");
    assert.equal(readPmu("cpu", fixture).events.get("topdown-total-slots")?.scale, "2");
  });

  test("intel_pt/cyc=1,tsc/ sets bits 1 and 10 of config, nothing else", () => {
    const e = parseEvent("intel_pt/cyc=1,tsc/", opt);
    assert.deepEqual(e.attr, { type: 10, config: (1n << 1n) | (1n << 10n) });
    assert.equal(e.attr.config, 0x402n);
  });

  test("multi-bit fields: values scattered into their bits", () => {
    const e = parseEvent("intel_pt/mtc_period=3,cyc_thresh=0xf,psb_period=5,notnt/", opt);
    assert.equal(e.attr.config, (3n << 14n) | (0xfn << 19n) | (5n << 24n) | (1n << 55n));
    // AMD's event is 12 bits in two pieces: 0x1c0 -> 0xc0 in bits 0-7, 0x1 in bits 32-35.
    assert.equal(parseEvent("amd_cpu/event=0x1c0,umask=3/", opt).attr.config, 0x1000003c0n);
    assert.equal(parseEvent("amd_cpu/event=0xfff/", opt).attr.config, 0xf000000ffn);
  });

  test("config1, aliases (OR-ed with the user's terms, as perf), raw, period/freq/name terms", () => {
    const loads = parseEvent("cpu/mem-loads/", opt);
    assert.equal(loads.attr.config, 0x1cdn);
    assert.equal(loads.attr.config1, 3n);
    // perf ORs an alias's terms with the user's: ldlat 3 | 50.
    assert.equal(parseEvent("cpu/mem-loads,ldlat=50/", opt).attr.config1, 51n);
    assert.equal(
      parseEvent("cpu/offcore_rsp=0xffffffffffffffff/", opt).attr.config1,
      (1n << 64n) - 1n,
    );
    assert.equal(parseEvent("cpu/r1a8/", opt).attr.config, 0x1a8n);
    assert.equal(parseEvent("cpu/config=0x3c,config1=7/", opt).attr.config1, 7n);
    const named = parseEvent("cpu/event=0x3c,period=1000,name=mycycles/u", opt);
    assert.equal(named.name, "mycycles");
    assert.equal(named.attr.samplePeriod, 1000n);
    assert.equal(named.attr.excludeKernel, true);
    assert.equal(parseEvent("energy-pkg", opt).attr.config, 2n, "a bare alias of one PMU");
  });

  test("intel_bts// has only its type", () => {
    assert.deepEqual(parseEvent("intel_bts//", opt).attr, { type: 11, config: 0n });
  });

  test("a value that does not fit names the term and its width", () => {
    assert.throws(
      () => parseEvent("intel_pt/mtc_period=16/", opt),
      argError(
        /mtc_period=16 does not fit: mtc_period is 4 bits wide \(config:14-17\), at most 15/,
      ),
    );
    assert.throws(
      () => parseEvent("amd_cpu/event=0x1000/", opt),
      argError(/event is 12 bits wide \(config:0-7,32-35\)/),
    );
    assert.throws(() => parseEvent("intel_pt/cyc=2/", opt), argError(/cyc is 1 bit wide/));
  });

  test("bare multi-bit terms, unknown terms, twice-given terms, tool terms: errors", () => {
    assert.throws(() => parseEvent("intel_pt/mtc_period/", opt), argError(/needs a value/));
    assert.throws(
      () => parseEvent("intel_pt/cyk=1/", opt),
      argError(/unknown term "cyk" for PMU intel_pt \(did you mean cyc/),
    );
    assert.throws(() => parseEvent("intel_pt/cyc,cyc/", opt), argError(/given twice/));
    assert.throws(() => parseEvent("intel_pt/call-graph=dwarf/", opt), argError(/perf tool/));
    assert.throws(() => parseEvent("intel_pt/tsc=abc/", opt), argError(/numeric value/));
  });
});

/** perf's attr dumps for `events`, with the fixture bind-mounted as the PMU folder. */
function perfWithFixture(events: string[]): Map<string, string>[] | string {
  if (process.getuid?.() !== 0) return "needs root (a private mount namespace and a bind mount)";
  if (spawnSync("perf", ["version"], { encoding: "utf8" }).status !== 0) {
    return "Debian's perf is not installed (apt-get install linux-perf)";
  }
  const out: Map<string, string>[] = [];
  for (const ev of events) {
    const r = spawnSync("unshare", [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `mount --bind "$0" ${PMU_ROOT} && exec perf stat -vv -e "$1" true`,
      fixture,
      ev,
    ], { encoding: "utf8" });
    const text = r.stdout + r.stderr;
    const block = /perf_event_attr:\n((?: {2}.*\n)+)/.exec(text);
    if (!block) {
      if (/unshare|mount/.test(text) && !text.includes("perf_event_attr")) {
        return `cannot bind-mount in a private namespace here: ${text.trim().slice(0, 200)}`;
      }
      throw new Error(`perf printed no attr for ${ev}:\n${text}`);
    }
    const fields = new Map<string, string>();
    for (const line of block[1].split("\n")) {
      const mm = /^\s+(.+?)\s{2,}(\S+)$/.exec(line);
      if (mm) fields.set(mm[1], mm[2]);
    }
    out.push(fields);
  }
  return out;
}

describe("the same PMU copies through Debian's perf", () => {
  // intel_pt's own name makes perf add its default config (tsc, mtc, ...): copies under other
  // names show the pure term encoding.
  writeTree(fixture, { ummu_pt: INTEL_PT, ummu_amd: AMD_CPU, ummu_cpu: INTEL_CPU });
  const specs = [
    "ummu_pt/cyc=1,tsc/",
    "ummu_pt/mtc_period=3,cyc_thresh=0xf,psb_period=5,notnt/",
    "ummu_pt/pt,branch,noretcomp,event/",
    "ummu_amd/event=0x1c0,umask=3/",
    "ummu_amd/event=0xfff,inv,cmask=0xff,edge/",
    "ummu_cpu/mem-loads/",
    "ummu_cpu/mem-loads,ldlat=50/",
    "ummu_cpu/event=0x3c,in_tx=1,in_tx_cp=1,any/",
    "ummu_cpu/offcore_rsp=0x10001/",
  ];
  const perf = perfWithFixture(specs);
  test("config and config1 as perf encodes them", {
    skip: typeof perf === "string" ? perf : undefined,
  }, () => {
    const dumps = perf as Map<string, string>[];
    specs.forEach((spec, i) => {
      const ours = parseEvent(spec, { pmuRoot: fixture }).attr;
      const theirs = dumps[i];
      assert.equal(BigInt(theirs.get("type") ?? 0), BigInt(ours.type!), `${spec}: type`);
      assert.equal(BigInt(theirs.get("config") ?? 0), ours.config ?? 0n, `${spec}: config`);
      assert.equal(
        BigInt(theirs.get("{ bp_addr, config1 }") ?? 0),
        ours.config1 ?? 0n,
        `${spec}: config1`,
      );
    });
  });
});
