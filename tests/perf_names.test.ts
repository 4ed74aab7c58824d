/**
 * parseEvent against Debian's perf on this machine: for each name, the attr
 * perf prints (`perf stat -vv -e NAME true`: its perf_event_attr dump, printed
 * even when the kernel refuses the event) and ours agree on type, config,
 * config1/config2, bp_type and the modifier bits. perf adds exclude_guest to
 * every event on its own (event_attr_init); ummu does not, so exclude_guest is
 * compared only where a modifier sets it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  breakpoint,
  CACHE_OPS,
  CACHE_RESULTS,
  CACHE_TYPES,
  cacheEvents,
  HARDWARE_EVENTS,
  parseEvent,
  parseEventList,
  SOFTWARE_EVENTS,
} from "../src/perf/event_names.ts";
import type { PerfEventAttr } from "../src/perf/attr.ts";
import * as pe from "../ffi/perf_event.ts";
import { UmmuArgumentError, UmmuError } from "../src/errors.ts";
import { pmuNames } from "../src/perf/pmu.ts";
import { ensureTracefs, isSkip } from "./tracefs_mount.ts";
import { runtime } from "../ffi/platform.ts";

const argError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UmmuArgumentError, `expected UmmuArgumentError, got ${e}`);
  assert.match((e as Error).message, re);
  return true;
};

const tracefs = ensureTracefs();
const tracefsSkip = isSkip(tracefs) ? tracefs.skip : undefined;

const perfVersion = spawnSync("perf", ["version"], { encoding: "utf8" });
const noPerf = perfVersion.status === 0
  ? undefined
  : "Debian's perf is not installed (apt-get install linux-perf)";

/**
 * perf's attr dump of `name` (the first perf_event_attr block), field -> value
 * text; null when perf's own parser refuses the name (a syntax error).
 */
function perfAttr(name: string): Map<string, string> | null {
  const r = spawnSync("perf", ["stat", "-vv", "-e", name, "true"], { encoding: "utf8" });
  const text = r.stdout + r.stderr;
  if (text.includes("event syntax error")) return null;
  const block = /perf_event_attr:\n((?: {2}.*\n)+)/.exec(text);
  if (!block) throw new Error(`perf printed no attr for ${name}:\n${text}`);
  const out = new Map<string, string>();
  for (const line of block[1].split("\n")) {
    const mm = /^\s+(.+?)\s{2,}(\S+)$/.exec(line);
    if (mm) out.set(mm[1], mm[2]);
  }
  return out;
}

const FLAGS: [string, keyof PerfEventAttr][] = [
  ["exclude_user", "excludeUser"],
  ["exclude_kernel", "excludeKernel"],
  ["exclude_hv", "excludeHv"],
  ["exclude_host", "excludeHost"],
  ["exclude_idle", "excludeIdle"],
  ["pinned", "pinned"],
  ["exclusive", "exclusive"],
];

/** Names perf refused while ummu parsed them (perf 6.1's lexer takes fewer spellings than 6.12's). */
const perfRefused: string[] = [];

/** Asserts that ours and perf's attr for `name` agree. */
function agrees(name: string): void {
  const ours = parseEvent(name).attr;
  const theirs = perfAttr(name);
  if (theirs === null) {
    perfRefused.push(name);
    return;
  }
  const num = (k: string) => BigInt(theirs.get(k) ?? 0);
  assert.equal(num("type"), BigInt(ours.type ?? 0), `${name}: type`);
  assert.equal(num("config"), ours.config ?? 0n, `${name}: config`);
  assert.equal(num("{ bp_addr, config1 }"), ours.bpAddr ?? ours.config1 ?? 0n, `${name}: config1`);
  assert.equal(num("{ bp_len, config2 }"), ours.bpLen ?? ours.config2 ?? 0n, `${name}: config2`);
  assert.equal(num("bp_type"), BigInt(ours.bpType ?? 0), `${name}: bp_type`);
  assert.equal(num("precise_ip"), BigInt(ours.preciseIp ?? 0), `${name}: precise_ip`);
  for (const [k, f] of FLAGS) assert.equal(num(k) === 1n, ours[f] === true, `${name}: ${k}`);
  if (ours.excludeGuest) assert.equal(num("exclude_guest"), 1n, `${name}: exclude_guest`);
}

describe("names perf knows, compared with Debian's perf", { skip: noPerf }, () => {
  test("every hardware name and alias", () => {
    for (const name of Object.keys(HARDWARE_EVENTS)) agrees(name);
  });

  test("every software name and alias", () => {
    for (const name of Object.keys(SOFTWARE_EVENTS)) {
      // cgroup-switches came in perf 5.13; Debian's perf of an older base would not know it.
      agrees(name);
    }
  });

  test("every hardware-cache event by perf's name, and every spelling of each part", () => {
    const names = [...cacheEvents().keys()];
    assert.equal(names.length, 32, "7 caches x their valid operations x 2 results");
    for (const n of names) agrees(n);
    // Each cache alias alone (read accesses), and with a result; each op and result alias.
    for (const aliases of CACHE_TYPES) {
      for (const a of aliases) {
        agrees(a);
        agrees(`${a}-misses`);
      }
    }
    for (const ops of CACHE_OPS) for (const o of ops) agrees(`LLC-${o}-miss`);
    for (const res of CACHE_RESULTS) for (const r of res) agrees(`L1-dcache-${r}-store`);
    // perf 6.12's lexer takes the longest name ("branches-misses" is a cache event); 6.1 stops
    // at the hardware name "branches". Only such spellings may be refused, and only by a 6.1.
    for (const n of perfRefused) {
      assert.match(n, /^branches-/, `perf ${perfVersion.stdout.trim()} refused ${n}`);
    }
  });

  test("modifiers", () => {
    for (
      const m of [
        "u",
        "k",
        "h",
        "uk",
        "ku",
        "kh",
        "G",
        "H",
        "GH",
        "p",
        "pp",
        "ppp",
        "up",
        "I",
        "D",
        "e",
        "uI",
      ]
    ) {
      agrees(`cpu-clock:${m}`);
    }
    agrees("instructions:ppp");
    agrees("L1-dcache-load-misses:u");
  });

  test("raw events and breakpoints", () => {
    for (const n of ["r0", "r1a8", "rc0:u", "r1234567890abcdef"]) agrees(n);
    for (
      const n of [
        "mem:0x1000",
        "mem:0x1000/8",
        "mem:0x1000/1:w",
        "mem:4096/2:rw",
        "mem:0x1000:x",
        "mem:0x1000/8:x:u",
        "mem:0x2000/4:w:k",
      ]
    ) {
      agrees(n);
    }
  });

  test("a PMU alias by its PMU and bare", {
    skip: pmuNames().includes("msr") ? undefined : "no msr PMU here",
  }, () => {
    agrees("msr/tsc/");
    agrees("msr/event=0x0/u");
    agrees("tsc");
  });

  test("a tracepoint: its id from tracefs", { skip: tracefsSkip }, () => {
    agrees("sched:sched_switch");
    agrees("sched:sched_process_exec:u");
  });
});

describe("names without perf", () => {
  test("canonical names, as perf prints them", () => {
    assert.equal(parseEvent("cpu-cycles").name, "cycles");
    assert.equal(parseEvent("branch-instructions:u").name, "branches:u");
    assert.equal(parseEvent("cs").name, "context-switches");
    assert.equal(parseEvent("l1d-miss").name, "L1-dcache-load-misses");
    assert.equal(parseEvent("dTLB-stores").name, "dTLB-stores");
    assert.deepEqual(parseEvent("LLC-prefetch-misses").attr, {
      type: pe.PERF_TYPE_HW_CACHE,
      config: BigInt(
        pe.PERF_COUNT_HW_CACHE_LL | (pe.PERF_COUNT_HW_CACHE_OP_PREFETCH << 8) |
          (pe.PERF_COUNT_HW_CACHE_RESULT_MISS << 16),
      ),
    });
    assert.deepEqual(parseEvent("bpf-output").attr, {
      type: pe.PERF_TYPE_SOFTWARE,
      config: BigInt(pe.PERF_COUNT_SW_BPF_OUTPUT),
    });
    assert.deepEqual(parseEvent("cgroup-switches").attr.config, 11n);
  });

  test("lists split on commas outside a PMU's terms", () => {
    const list = parseEventList("cycles,software/config=2/,page-faults:u");
    assert.deepEqual(list.map((e) => e.name), ["cycles", "software/config=2/", "page-faults:u"]);
    assert.equal(list[1].attr.config, 2n);
  });

  test("breakpoint(): the structured form", () => {
    assert.deepEqual(breakpoint(0x1008n, { len: 8, access: "w" }), {
      type: pe.PERF_TYPE_BREAKPOINT,
      bpType: pe.HW_BREAKPOINT_W,
      bpAddr: 0x1008n,
      bpLen: 8n,
    });
    assert.equal(breakpoint(0x1000).bpType, pe.HW_BREAKPOINT_RW);
    assert.equal(breakpoint(0x1003, { access: "x" }).bpLen, 8n);
    assert.throws(() => breakpoint(0x1002, { len: 4 }), argError(/aligned to len 4.*0x1000/));
    assert.throws(() => breakpoint(0x1000, { len: 3 as 4 }), argError(/len must be 1, 2, 4 or 8/));
    assert.throws(() => breakpoint(0x1000, { access: "x", len: 4 }), argError(/len 8/));
    assert.throws(() => breakpoint(-1), argError(/unsigned 64-bit/));
    assert.throws(
      () => breakpoint(0x1000, { access: "q" as "r" }),
      argError(/"r", "w", "rw" or "x"/),
    );
    if (runtime.arch === "x64") {
      assert.throws(() => breakpoint(0x1000, { access: "r" }), argError(/reads alone/));
    }
  });

  test("hostile specs: typed errors that say what was wrong", () => {
    const cases: [unknown, RegExp][] = [
      ["", /non-empty string/],
      ["   ", /non-empty string/],
      [undefined, /non-empty string/],
      [42, /non-empty string/],
      ["no_such_pmu/x=1/", /no_such_pmu: no such PMU here \(.*this machine's PMUs: /],
      ["cycle", /did you mean .*cycles/],
      ["cycles:q", /modifier "q" must be letters of u k h/],
      ["cycles:S", /perf tool modifier ummu does not map: S/],
      ["cycles:", /modifier ""/],
      ["cycles:pppp", /more than ppp/],
      ["mem:0x1001/4:w", /aligned to len 4/],
      ["mem:0x1000/3", /len must be 1, 2, 4 or 8/],
      ["mem:0x1000/4:rww", /repeats w/],
      ["mem:0x1000/8:rx", /mixes x with r\/w/],
      ["mem:zzz", /mem:ADDR/],
      ["L1-icache-stores", /L1-icache has no store events/],
      ["L1-dcache-load-store", /one operation and one result/],
      ["duration_time", /perf tool event/],
      ["software/config/", /needs a value/],
      ["software/bogus=1/", /unknown term "bogus" for PMU software/],
      ["cycles,instructions", /one event per parseEvent/],
      ["r12345678901234567", /no event/],
      ["sched:sched_*", /globs|one tracepoint/],
      ["software", /is a PMU: write it with its terms/],
    ];
    for (const [spec, re] of cases) {
      assert.throws(() => parseEvent(spec as string), argError(re), String(spec));
    }
  });

  test("unknown tracepoints: close names from tracefs", { skip: tracefsSkip }, () => {
    assert.throws(
      () => parseEvent("sched:sched_swich"),
      argError(/did you mean sched:sched_switch/),
    );
    assert.throws(
      () => parseEvent("schde:sched_switch"),
      argError(/no tracepoint system "schde".*sched/),
    );
  });
});

test("mutated names never throw anything but the library's errors", () => {
  const alphabet = "abcmr:/=,0x19-_ukhpGH.*?'\"{}@ LsdtTf";
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const seeds = ["cycles:u", "mem:0x1000/8:w", "software/config=2/", "L1-dcache-loads", "r1a8"];
  let parsed = 0;
  for (let i = 0; i < 2000; i++) {
    let s = seeds[Math.floor(rnd() * seeds.length)];
    for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) {
      const pos = Math.floor(rnd() * (s.length + 1));
      const ch = alphabet[Math.floor(rnd() * alphabet.length)];
      s = rnd() < 0.5 ? s.slice(0, pos) + ch + s.slice(pos) : s.slice(0, pos) + s.slice(pos + 1);
    }
    try {
      parseEvent(s);
      parsed++;
    } catch (e) {
      assert.ok(
        e instanceof UmmuArgumentError || e instanceof UmmuError,
        `${JSON.stringify(s)}: ${e}`,
      );
    }
  }
  assert.ok(parsed > 0 && parsed < 2000, `${parsed} of 2000 parsed`);
});
