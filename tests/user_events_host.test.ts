/**
 * user_events on the host (a kernel without user_events): the clear ENOENT,
 * field strings as the kernel parses them, payload encoding, the status-file
 * parser, the enable slab, the perf ring-buffer reader on a tracepoint the
 * host has (syscalls:sys_enter_getpid), and a hostile caller's arguments:
 * emits go through the library's own writev into a file standing in for
 * user_events_data (tests/fixtures/user_events_sink.ts), so the bytes the
 * kernel would get are checked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UmmuArgumentError, UmmuError } from "../src/errors.ts";
import { Tracepoint, type TracepointHandle } from "../src/user_events/tracepoint.ts";
import { UserEvents } from "../src/user_events/user_events_data.ts";
import { FieldError, formatFields, parseFields } from "../src/user_events/fields.ts";
import { Emitter } from "../src/user_events/emitter.ts";
import { GrowableBuffer } from "../src/user_events/buffer.ts";
import * as userEventsApi from "../src/user_events/mod.ts";
import { EventSink, SINK_WRITE_INDEX } from "./fixtures/user_events_sink.ts";
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
import { ensureTracefs, isSkip } from "./tracefs_mount.ts";
import process from "node:process";

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

// A fresh machine does not mount tracefs: mount it (as root) rather than skip.
const tracefs = ensureTracefs();
const perfSkip = isSkip(tracefs)
  ? tracefs.skip
  : !exists(`${tracefs}/events/syscalls/sys_enter_getpid/id`)
  ? "no syscalls:sys_enter_getpid tracepoint (CONFIG_FTRACE_SYSCALLS)"
  : process.getuid?.() !== 0
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

// ---- hostile callers: every argument checked, nothing read or written beyond what was asked ------

/** Asserts `fn` throws UmmuArgumentError whose message matches every pattern. */
function refuses(fn: () => unknown, ...patterns: RegExp[]): UmmuArgumentError {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof UmmuArgumentError, `expected UmmuArgumentError, got ${caught}`);
  for (const re of patterns) assert.match(caught.message, re);
  return caught;
}

test("Emitter is not exported, and writes only within its buffer: write(1 << 20) and write(-1) are refused", () => {
  assert.equal("Emitter" in userEventsApi, false, "the package does not export Emitter");
  const sink = new EventSink();
  try {
    const src = new GrowableBuffer(64);
    src.buf.fill(0xab);
    const e = new Emitter(sink.fd, SINK_WRITE_INDEX, src, "ummu_t");
    assert.equal(e.write(64), true);
    assert.deepEqual([...sink.takePayload()], new Array(64).fill(0xab));
    for (const len of [1 << 20, 65, -1, 1.5, NaN, Infinity, "8"]) {
      refuses(() => e.write(len as number), /ummu_t: payload length .* within the 64-byte/);
    }
    assert.equal(sink.take().length, 0, "a refused write writes nothing");
    // The buffer grows (a new array): the emitter follows it.
    src.ensure(5000);
    src.buf.fill(0xcd);
    assert.equal(e.write(5000), true);
    assert.equal(sink.takePayload().length, 5000);
    // A buffer swapped in without a generation change is followed too, and bounds its writes.
    src.buf = new Uint8Array(16).fill(7);
    refuses(() => e.write(17), /within the 16-byte/);
    assert.equal(e.write(16), true);
    assert.deepEqual([...sink.takePayload()], new Array(16).fill(7));
  } finally {
    sink.close();
  }
});

test("raw tracepoint: two __data_loc fields where the first is 65,520 bytes: the second's offset would wrap, refused", () => {
  // __data_loc: b's data starts at record offset 8 (trace_entry) + 8 (two loc words) + |a|.
  const layout = parseFields("__data_loc u8[] a; __data_loc u8[] b");
  const p = new PayloadEncoder(layout, "ummu_big");
  refuses(
    () => p.encode([new Uint8Array(65520), new Uint8Array(4)]),
    /field "b" \(#1\) of tracepoint ummu_big/,
    /record offset 65536, beyond the 65535 .* __data_loc word/,
  );
  const fits = 0xffff - 16;
  let len = p.encode([new Uint8Array(fits).fill(1), new Uint8Array([9, 8, 7, 6])]);
  let d = decodePayload(layout, p.buf.slice(0, len));
  assert.deepEqual(d.b, new Uint8Array([9, 8, 7, 6]));
  assert.equal((d.a as Uint8Array).length, fits);
  assert.equal(new DataView(p.buf.buffer).getUint32(4, true), (4 << 16) | 0xffff);
  // __rel_loc counts from the end of the field's own loc word: b's data is c's loc word
  // (4 bytes) and |a| past the end of b's.
  const rel = parseFields("__rel_loc u8[] a; __rel_loc char[] b; __rel_loc u8[] c");
  const r = new PayloadEncoder(rel, "ummu_rel");
  refuses(
    () => r.encode([new Uint8Array(0xffff - 3), "x", new Uint8Array(0)]),
    /field "b" \(#1\) of tracepoint ummu_rel/,
    /offset 65536 from the end of its loc word, beyond the 65535 .* __rel_loc word/,
  );
  len = r.encode([new Uint8Array(0xffff - 4), "x", new Uint8Array(0)]);
  d = decodePayload(rel, r.buf.slice(0, len));
  assert.equal(d.b, "x");
  assert.equal(new DataView(r.buf.buffer).getUint32(4, true), (2 << 16) | 0xffff);
  // One field's data is at most 65535 bytes (16-bit length).
  const one = new PayloadEncoder(parseFields("__data_loc u8[] a; __data_loc char[] s"), "ummu_len");
  refuses(() => one.encode([new Uint8Array(0x10000), ""]), /field "a" \(#0\).*65535/);
  refuses(() => one.encode([new Uint8Array(0), "x".repeat(0xffff)]), /field "s" \(#1\).*65535/);
  refuses(() => one.encode([new Uint8Array(0), "é".repeat(0x8000)]), /field "s" \(#1\).*65535/);
  assert.ok(one.encode([new Uint8Array(0), "x".repeat(0xfffe)]) > 0xfffe, "65534 chars + NUL fit");
});

/** [type, values it takes, values it refuses (with what the message says of the expectation)]. */
const RAW_CASES: [string, unknown[], unknown[], RegExp][] = [
  [
    "u8",
    [0, 255],
    [256, -1, 1.5, NaN, "1", 1n, true, null],
    /an integer in 0\.\.255 \(a number; u8\)/,
  ],
  ["s8", [-128, 127], [128, -129, 0.5, "x"], /-128\.\.127/],
  ["char", [-128, 127], [200, "A"], /-128\.\.127.*char/],
  ["unsigned char", [0, 255], [256, -1], /0\.\.255/],
  ["u16", [0, 65535], [65536, -1, "x"], /0\.\.65535/],
  ["short", [-32768, 32767], [32768], /-32768\.\.32767/],
  ["u32", [0, 2 ** 32 - 1], [2 ** 32, -1, 1e10, 4294967295n, "7"], /0\.\.4294967295/],
  ["int", [-(2 ** 31), 2 ** 31 - 1], [2 ** 31], /-2147483648\.\.2147483647/],
  ["unsigned int", [4000000000], [-1], /0\.\.4294967295/],
  [
    "u64",
    [0, 2n ** 64n - 1n, 2 ** 53, 2 ** 60],
    [-1, 2n ** 64n, -1n, 1.5, 2 ** 64, "1"],
    /0\.\.18446744073709551615 \(a number or bigint/,
  ],
  [
    "s64",
    [-(2n ** 63n), 2n ** 63n - 1n, -(2 ** 63)],
    [2n ** 63n, 2 ** 63, NaN],
    /-9223372036854775808\.\.9223372036854775807/,
  ],
  [
    "char[4]",
    ["", "abcd", "é", "ab\u00e9"],
    ["abcde", "éééé"[0].repeat(3), 4, "a\0b", "\ud800"],
    /at most 4 bytes of UTF-8|does not fit char\[4\]/,
  ],
  [
    "unsigned char[3]",
    [new Uint8Array(0), new Uint8Array(3)],
    [new Uint8Array(4), [1, 2], "ab"],
    /a Uint8Array of at most 3 bytes/,
  ],
  [
    "__data_loc char[]",
    ["", "path", "😀"],
    [7, new Uint8Array(1), "a\0b", "x\udc00"],
    /a string without NUL|cannot be stored/,
  ],
  [
    "__rel_loc u8[]",
    [new Uint8Array(0), new Uint8Array(9)],
    ["ab", [1], null],
    /a Uint8Array \(__rel_loc u8\[\]\)/,
  ],
];

test("raw tracepoint: every field type refuses a wrong type or an out-of-range value, naming the field, the value and the type", () => {
  const sink = new EventSink();
  try {
    for (const [type, good, bad, expected] of RAW_CASES) {
      const tp = Tracepoint.fromHandle(sink.handle("ummu_vals", `u8 first; ${type} v`));
      for (const v of good) {
        assert.equal(tp.emit(1, v), true, `${type} takes ${String(v)}`);
        const got = decodePayload(tp.layout, sink.takePayload()).v;
        if (typeof v === "number" && tp.layout[1].size === 8) {
          assert.equal(BigInt(got as bigint), BigInt(v));
        } else if (v instanceof Uint8Array && type.startsWith("unsigned char[")) {
          assert.deepEqual(got, new Uint8Array(tp.layout[1].size).fill(0).map((_, i) => v[i] ?? 0));
        } else assert.deepEqual(got, v, `${type} ${String(v)}`);
      }
      for (const v of bad) {
        const e = refuses(() => tp.emit(1, v as never), /field "v" \(#1\) of tracepoint ummu_vals/);
        assert.ok(expected.test(e.message), `${type} ${String(v)}: ${e.message}`);
        assert.equal(sink.take().length, 0, `${type}: nothing written for ${String(v)}`);
      }
    }
    // struct: exactly its size.
    const st = Tracepoint.fromHandle(sink.handle("ummu_st", "struct pair p 8"));
    refuses(() => st.emit(new Uint8Array(7) as never), /exactly 8 bytes \(struct pair\)/);
    refuses(() => st.emit("12345678" as never), /exactly 8 bytes/);
    // The count of values.
    refuses(() => st.emit(), /expected 1 values \(p\), got 0/);
  } finally {
    sink.close();
  }
});

test("field specs and field strings are checked: no field named 'undefined', no size but a struct's", () => {
  refuses(
    () => parseFields([{ type: "u32" } as never]),
    /field spec #0: name must be a C identifier/,
    /undefined/,
  );
  refuses(() => parseFields([{ name: "a" } as never]), /field spec #0 \(a\): type must be/);
  refuses(() => parseFields([{ name: "a", type: "u32", size: 4 }]), /size is only for struct/);
  refuses(
    () => parseFields([{ name: "a", type: "struct s" }]),
    /needs size, an integer 1\.\.65535/,
  );
  refuses(() => parseFields([{ name: "a", type: "struct s", size: 0 }]), /needs size/);
  refuses(() => parseFields([{ name: "a", type: "u32; u8 b" }]), /type must be a kernel type/);
  refuses(() => parseFields([{ name: "a b", type: "u32" }]), /name must be a C identifier/);
  refuses(
    () => parseFields([{ name: "a", type: "u32", extra: 1 } as never]),
    /unknown property "extra"/,
  );
  refuses(() => parseFields([null as never]), /field spec #0 must be an object/);
  refuses(() => parseFields(42 as never), /fields must be a field string/);
  refuses(() => parseFields("__data_loc char[];u32 a"), /no field name|not __data_loc T\[\]/);
  refuses(() => parseFields("char[4]x a"), /not char\[N\]/);
  refuses(() => parseFields("struct a;b x 4"), /no field name|not "struct/);
  // FieldError is an UmmuArgumentError that keeps the declaration.
  const e = refuses(() => parseFields("u32 a; u33 b"), /unknown type "u33"/);
  assert.ok(e instanceof FieldError && e.field === "u33 b");
});

test("Tracepoint.fromHandle checks every member of the handle; emitRaw takes only bytes", () => {
  const sink = new EventSink();
  try {
    const good = sink.handle("ummu_h", "u32 a");
    const cases: [Partial<TracepointHandle>, RegExp][] = [
      [{ bit: 40 }, /bit must be an integer in 0\.\.31, got 40/],
      [{ bit: -1 }, /bit/],
      [{ word: 1 }, /word must be an integer in 0\.\.0 \(the slab has 1 words\)/],
      [{ fd: -1 }, /fd must be a file descriptor/],
      [{ fd: 1.5 }, /fd/],
      [{ writeIndex: 2 ** 32 }, /writeIndex/],
      [{ slab: new ArrayBuffer(4) as never }, /slab must be the SharedArrayBuffer/],
      [{ name: "a b" }, /name must be a tracepoint name/],
      [{ fields: 3 as never }, /fields must be a field string/],
      [{ flags: 8 }, /flags/],
    ];
    for (const [patch, re] of cases) {
      refuses(() => Tracepoint.fromHandle({ ...good, ...patch }), /tracepoint handle/, re);
    }
    refuses(() => Tracepoint.fromHandle(null as never), /must be the object handle\(\) returns/);
    const tp = Tracepoint.fromHandle(good);
    assert.equal(tp.emit(5), true);
    assert.deepEqual([...sink.takePayload()], [5, 0, 0, 0]);
    refuses(() => tp.emitRaw("abc" as never), /emitRaw takes a Uint8Array/);
    refuses(() => tp.emitRaw(new Uint8Array(0x20000)), /at most 131071 bytes/);
    assert.equal(tp.emitRaw(new Uint8Array([1, 2, 3, 4])), true);
    assert.deepEqual([...sink.takePayload()], [1, 2, 3, 4]);
  } finally {
    sink.close();
  }
});

test("emit() is typed by literal fields (checked by deno check); the same mistakes throw at run time", () => {
  // Compile-time: never called, type-checked only.
  const typed = (events: UserEvents) => {
    const tp = events.register("ummu_typed", "u32 status; __data_loc char[] path; u64 n");
    tp.emit(200, "/", 5n);
    // @ts-expect-error a string where the u32 goes
    tp.emit("200", "/", 5n);
    // @ts-expect-error a value missing
    tp.emit(200, "/");
    const specs = events.register("ummu_typed2", [{ name: "b", type: "unsigned char[4]" }]);
    specs.emit(new Uint8Array(4));
    // @ts-expect-error a number where bytes go
    specs.emit(4);
  };
  assert.equal(typeof typed, "function");
  const sink = new EventSink();
  try {
    const tp = Tracepoint.fromHandle(
      sink.handle("ummu_typed", "u32 status; __data_loc char[] path; u64 n"),
    );
    refuses(() => tp.emit("200", "/", 5n), /field "status" \(#0\).*got "200"/);
    refuses(() => tp.emit(200, "/"), /expected 3 values \(status, path, n\), got 2/);
  } finally {
    sink.close();
  }
});

test("the rest of the API refuses bad arguments with UmmuArgumentError: slabs, status text, layouts, payloads, perf options", () => {
  refuses(() => new EnableSlab(1.5), /an enable slab has 1\.\.65536 words/);
  refuses(() => new EnableSlab(0), /1\.\.65536 words/);
  refuses(() => new EnableSlab(-1), /1\.\.65536 words/);
  refuses(() => EnableSlab.fromBuffer(new ArrayBuffer(8) as never), /must be a SharedArrayBuffer/);
  refuses(() => EnableSlab.fromBuffer(new SharedArrayBuffer(6)), /whole 32-bit words/);
  refuses(() => EnableSlab.fromBuffer(undefined as never), /needs the slab's SharedArrayBuffer/);
  const slab = new EnableSlab(1);
  refuses(() => slab.allocate(0, 32), /outside the slab/);
  refuses(() => slab.release(1, 0), /enable word 1 bit 0 is outside the slab \(1 words/);
  refuses(() => slab.inUse(-1), /outside the slab/);
  refuses(
    () => parseStatus(42 as never),
    /parseStatus takes the text of user_events_status, got 42/,
  );
  refuses(() => formatFields(null as never), /formatFields takes the layout/);
  const layout = parseFields("u32 a; __data_loc char[] s");
  refuses(
    () => decodePayload(layout, new Uint8Array(7)),
    /payload of 7 bytes is shorter than the 8 bytes/,
  );
  const bad = new Uint8Array(8);
  new DataView(bad.buffer).setUint32(4, (4 << 16) | 100, true);
  refuses(
    () => decodePayload(layout, bad),
    /field "s": its loc word 0x40064 points at bytes 92\.\.96 of a 8-byte payload/,
  );
  refuses(() => decodePayload(layout, "abc" as never), /data must be a Uint8Array/);
  refuses(() => traceEntry(new Uint8Array(4)), /at least 8 bytes/);
  refuses(() => PerfTracepoint.open(1, { pages: 3 }), /pages must be a power of two/);
  refuses(() => PerfTracepoint.open(-1), /the tracepoint id must be an integer/);
  refuses(() => PerfTracepoint.open(1, { cpus: [0.5] }), /cpus must be an array of CPU numbers/);
  refuses(() => PerfTracepoint.open(1, { disabled: "no" as never }), /disabled must be a boolean/);
  refuses(() => UserEvents.open({ slab: {} as never }), /slab must be an EnableSlab/);
  refuses(() => UserEvents.open(null as never), /options must be an object/);
  refuses(() => UserEvents.delete("a b"), /UserEvents.delete: name must be/);
});
