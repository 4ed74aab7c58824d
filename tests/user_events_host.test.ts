/**
 * user_events on the host (a kernel without user_events): the clear ENOENT,
 * field strings as the kernel parses them, payload encoding, the status-file
 * parser, the enable slab, and the perf ring-buffer reader on a tracepoint the
 * host has (syscalls:sys_enter_getpid).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UmmuError } from "../src/errors.ts";
import { UserEvents } from "../src/user_events/tracepoint.ts";
import { formatFields, parseFields } from "../src/user_events/fields.ts";
import { decodePayload, PayloadEncoder } from "../src/user_events/payload.ts";
import { parseStatus } from "../src/user_events/status.ts";
import { EnableSlab } from "../src/user_events/slab.ts";
import { PerfTracepoint, traceEntry } from "../src/user_events/perf.ts";
import {
  eventFormatFields,
  exists,
  findTracefs,
  tracepointId,
} from "../src/user_events/tracefs.ts";
import { libc } from "../src/libc.ts";
import { readFileSync } from "node:fs";
import { resources } from "./helpers.ts";

const perfMaps = () =>
  readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => l.includes("perf_event"))
    .length;

const hasUserEvents = UserEvents.available();

test(
  "opening user_events_data on a kernel without user_events: ENOENT that says which is missing",
  {
    skip: hasUserEvents ? "this kernel has user_events" : false,
  },
  () => {
    const before = resources();
    const err = (() => {
      try {
        UserEvents.open();
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(err instanceof UmmuError, String(err));
    assert.equal(err.code, "ENOENT");
    assert.match(err.call, /user_events_data/);
    // The kernel's lack of the feature comes first: mounting tracefs would not help then.
    if (!exists("/proc/sys/kernel/user_events_max")) {
      assert.match(err.message, /this kernel has no user_events/);
      assert.match(err.message, /CONFIG_USER_EVENTS/);
    } else if (findTracefs() === null) {
      assert.match(err.message, /tracefs is not mounted/);
    }
    assert.equal(resources().fds, before.fds);
  },
);

test("field strings: canonical '; ' joins, kernel types, offsets packed without padding", () => {
  const l = parseFields(
    "u32 a;char[8] b;  __data_loc char[] c; __rel_loc u8[] d; struct my_s e 12; unsigned int f; s64 g",
  );
  assert.equal(
    formatFields(l),
    "u32 a; char[8] b; __data_loc char[] c; __rel_loc u8[] d; struct my_s e 12; unsigned int f; s64 g",
  );
  assert.deepEqual(l.map((f) => [f.name, f.kind, f.offset, f.size]), [
    ["a", "int", 0, 4],
    ["b", "fixed_string", 4, 8],
    ["c", "string", 12, 4],
    ["d", "bytes", 16, 4],
    ["e", "struct", 20, 12],
    ["f", "int", 32, 4],
    ["g", "int", 36, 8],
  ]);
  assert.equal(l[3].rel, true);
  assert.equal(l[2].nul, true);
  assert.equal(l[3].nul, false);
  assert.equal(l[6].signed, true);
  assert.equal(l[5].signed, false);
  // The same from objects.
  const o = parseFields([{ name: "a", type: "u32" }, { name: "e", type: "struct my_s", size: 12 }]);
  assert.equal(formatFields(o), "u32 a; struct my_s e 12");
  // Array sizes as kstrtouint(.., 0) reads them.
  assert.equal(parseFields("char[0x10] h")[0].size, 16);
});

test("field strings the kernel rejects name the offending field", () => {
  const bad: [string, RegExp][] = [
    ["u32 a; u33 b", /field "u33 b": unknown type "u33"/],
    ["u32  a", /field "u32 {2}a"/],
    ["u32", /no field name/],
    ["struct s x", /needs its size/],
    ["u32 a 4", /only struct fields take a size/],
    ["char[2000] x", /exceeds the kernel's 1024/],
    ["char[] x", /not a number/],
    ["u8 a; u8 a", /duplicate field name "a"/],
  ];
  for (const [s, re] of bad) assert.throws(() => parseFields(s), re, s);
});

test("payload encoding: fixed fields in place, __data_loc offsets from the record start (+8), __rel_loc from the loc word's end", () => {
  const l = parseFields("u16 a; __data_loc char[] s; __rel_loc u8[] r; char[4] c; s64 n");
  const p = new PayloadEncoder(l);
  const len = p.encode([0x1234, "hey", new Uint8Array([9, 8]), "abcd", -2n]);
  const b = p.buf.slice(0, len);
  // fixed part: 2 + 4 + 4 + 4 + 8 = 22, then "hey\0" at 22, then [9,8] at 26.
  assert.equal(len, 28);
  const dv = new DataView(b.buffer);
  assert.equal(dv.getUint16(0, true), 0x1234);
  assert.equal(dv.getUint32(2, true), (4 << 16) | (22 + 8)); // __data_loc: record offset (trace_entry is 8 bytes)
  assert.equal(dv.getUint32(6, true), (2 << 16) | (26 - (6 + 4))); // __rel_loc: after the loc word
  assert.deepEqual([...b.subarray(10, 14)], [0x61, 0x62, 0x63, 0x64]); // all 4 bytes, no NUL
  assert.equal(dv.getBigInt64(14, true), -2n);
  assert.deepEqual([...b.subarray(22, 28)], [0x68, 0x65, 0x79, 0, 9, 8]);
  assert.deepEqual(decodePayload(l, b), {
    a: 0x1234,
    s: "hey",
    r: new Uint8Array([9, 8]),
    c: "abcd",
    n: -2n,
  });
  // Non-ASCII strings and growth past the initial buffer.
  const big = "é".repeat(5000);
  const len2 = p.encode([1, big, new Uint8Array(0), "", 0]);
  assert.equal(decodePayload(l, p.buf.slice(0, len2)).s, big);
  assert.ok(p.generation > 0);
  assert.throws(() => p.encode([1, "x", new Uint8Array(70000), "", 0]), /65535/);
  assert.throws(
    () => p.encode([1, 2, new Uint8Array(0), "", 0]),
    /field "s" \(#1\).*expected a string/,
  );
});

test("user_events_status: parsed from a sample", () => {
  const sample =
    "ummu_a # Used by ftrace perf\nummu_b\nmulti.1f # Used by other\n\nActive: 3\nBusy: 2\n";
  assert.deepEqual(parseStatus(sample), {
    events: [
      { name: "ummu_a", usedBy: ["ftrace", "perf"] },
      { name: "ummu_b", usedBy: [] },
      { name: "multi.1f", usedBy: ["other"] },
    ],
    active: 3,
    busy: 2,
  });
  assert.deepEqual(parseStatus("\nActive: 0\nBusy: 0\n"), { events: [], active: 0, busy: 0 });
});

test("enable slab: bits allocated per word, explicit bits, the word's address aligned", () => {
  const s = new EnableSlab(2);
  assert.equal(s.address % 4, 0);
  assert.deepEqual(s.allocate(), { word: 0, bit: 0 });
  assert.deepEqual(s.allocate(), { word: 0, bit: 1 });
  assert.deepEqual(s.allocate(1, 31), { word: 1, bit: 31 });
  assert.throws(() => s.allocate(1, 31), /already in use/);
  assert.throws(() => s.allocate(2, 0), /outside the slab/);
  s.release(0, 0);
  assert.deepEqual(s.allocate(), { word: 0, bit: 0 });
  assert.equal(s.inUse(0), 3);
  const other = EnableSlab.fromBuffer(s.buffer);
  Atomics.store(s.words, 1, 1 << 31);
  assert.equal(Atomics.load(other.words, 1) & (1 << 31), 1 << 31);
});

const tracefs = findTracefs();
const getpidDir = tracefs && `${tracefs}/events/syscalls/sys_enter_getpid`;
const perfSkip = tracefs === null
  ? "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"
  : !exists(`${getpidDir}/id`)
  ? "no syscalls:sys_enter_getpid tracepoint (CONFIG_FTRACE_SYSCALLS)"
  : libc.getpid() >= 0 && typeof process !== "undefined" && process.getuid?.() !== 0
  ? "perf_event_open on a tracepoint needs root or CAP_PERFMON"
  : false;

test("perf ring buffer: reads PERF_SAMPLE_RAW records of a host tracepoint (sys_enter_getpid)", {
  skip: perfSkip,
}, () => {
  const before = resources();
  const id = tracepointId("syscalls", "sys_enter_getpid");
  const nrField = eventFormatFields("syscalls", "sys_enter_getpid").find((f) =>
    f.decl.includes("__syscall_nr")
  )!;
  const p = PerfTracepoint.open(id, { pages: 4 });
  assert.equal(resources().fds, before.fds + p.fds.length);
  assert.equal(perfMaps(), p.fds.length);
  try {
    const me = libc.getpid();
    const tid = libc.gettid(); // the runtime's other threads may call getpid too
    const ours = (x: { pid: number; tid: number }) => x.pid === me && x.tid === tid;
    for (let i = 0; i < 10; i++) libc.getpid();
    const mine = p.read().filter(ours);
    assert.equal(mine.length, 11); // the getpid above, then 10
    for (const s of mine) {
      const e = traceEntry(s.raw);
      assert.equal(e.type, id);
      assert.equal(e.pid, s.tid); // common_pid is the thread id
      assert.equal(s.raw.length % 8, 4); // u32 size + data are padded to 8 bytes
      const nr = new DataView(s.raw.buffer, s.raw.byteOffset).getInt32(nrField.offset, true);
      assert.equal(nr, process.arch === "arm64" ? 172 : 39); // __NR_getpid
    }
    assert.ok(mine.every((s, i) => i === 0 || s.time >= mine[i - 1].time));
    assert.deepEqual(p.read().filter(ours), []); // drained
    // Many records: the ring wraps (4 pages), nothing is lost while we keep up.
    let seen = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 100; i++) libc.getpid();
      seen += p.read().filter(ours).length;
    }
    // The runtime may call getpid on this thread itself now and then (Deno does, rarely).
    assert.ok(seen >= 2000 && seen <= 2010, `saw ${seen} of 2000`);
    assert.equal(p.lost, 0);
    p.disable();
    libc.getpid();
    assert.equal(p.read().filter(ours).length, 0);
    p.enable();
    for (let i = 0; i < 5; i++) libc.getpid();
    assert.ok(p.read().filter(ours).length >= 5);
  } finally {
    p.close();
  }
  assert.equal(resources().fds, before.fds);
  assert.equal(perfMaps(), 0);
});
