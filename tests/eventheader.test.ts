/**
 * EventHeader encoder and decoder on the host: byte layouts derived by hand
 * from the specification (eventheader.h of microsoft/LinuxTracepoints), the
 * spec's tracepoint-name examples, and round trips of every field type.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EVENTHEADER_COMMAND_TYPES,
  EventHeaderEncoder,
  FIELD_TYPES,
  FieldEncoding,
  FieldFormat,
  type FieldTypeName,
  Opcode,
  tracepointName,
} from "../src/user_events/eventheader.ts";
import {
  decodeEventHeader,
  fieldValues,
  parseTracepointName,
} from "../src/user_events/eventheader_decode.ts";
import { parseFields } from "../src/user_events/fields.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
const bytes = (s: string) => new Uint8Array(s.trim().split(/\s+/).map((x) => parseInt(x, 16)));

test("tracepoint names: the spec's examples", () => {
  assert.equal(tracepointName("MyProvider", 3, 0x2an), "MyProvider_L3K2a");
  assert.equal(tracepointName("OtherProvider", 5, 0, "Gperf"), "OtherProvider_L5K0Gperf");
  assert.equal(tracepointName("P", 0xff, 0xffffffffffffffffn), "P_LffKffffffffffffffff");
  assert.deepEqual(parseTracepointName("MyProvider_L3K2a"), {
    provider: "MyProvider",
    level: 3,
    keyword: 0x2an,
    options: "",
  });
  assert.deepEqual(parseTracepointName("My_Org_Provider_L5K0Gperf"), {
    provider: "My_Org_Provider",
    level: 5,
    keyword: 0n,
    options: "Gperf",
    group: "perf",
  });
  assert.throws(() => parseTracepointName("NoLevel"));
});

test("the command types are the spec's, and parse as the kernel lays them out (8 bytes)", () => {
  assert.equal(
    EVENTHEADER_COMMAND_TYPES,
    "u8 eventheader_flags;u8 version;u16 id;u16 tag;u8 opcode;u8 level",
  );
  const l = parseFields(EVENTHEADER_COMMAND_TYPES);
  assert.deepEqual(l.map((f) => [f.name, f.offset, f.size]), [
    ["eventheader_flags", 0, 1],
    ["version", 1, 1],
    ["id", 2, 2],
    ["tag", 4, 2],
    ["opcode", 6, 1],
    ["level", 7, 1],
  ]);
});

test("byte layout: one u32 field (hand-derived)", () => {
  const enc = new EventHeaderEncoder({
    name: "Hello",
    level: 4,
    keyword: 1,
    fields: [{ name: "n", type: "u32" }],
  });
  const expected = bytes(`
    07 00 00 00 00 00 00 04
    09 00 01 00
    48 65 6c 6c 6f 00 6e 00 04
    05 00 00 00`);
  assert.equal(hex(enc.bytes([5])), hex(expected));
});

test("byte layout: header fields, ActivityId, format, tag, constant and variable arrays (hand-derived)", () => {
  const enc = new EventHeaderEncoder({
    name: "E",
    level: 5,
    keyword: 0x2a,
    opcode: Opcode.ActivityStart,
    id: 0x1234,
    version: 2,
    tag: 0xbeef,
    activity: "id",
    fields: [
      { name: "s", type: "i32" },
      { name: "t", type: "u16", tag: 0x0102 },
      { name: "c", type: "u8", array: 2 },
      { name: "v", type: "string", array: "variable" },
    ],
  });
  enc.setActivity(new Uint8Array(16).fill(0x11));
  const expected = bytes(`
    07 02 34 12 ef be 01 05
    10 00 02 80 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11
    14 00 01 00
    45 00
    73 00 84 02
    74 00 83 80 02 01
    63 00 22 02 00
    76 00 4a
    ff ff ff ff
    07 00
    01 02
    02 00 01 00 61 02 00 62 63`);
  const got = enc.bytes([-1, 7, [1, 2], ["a", "bc"]]);
  assert.equal(hex(got), hex(expected));
  const d = decodeEventHeader(got);
  assert.equal(d.name, "E");
  assert.deepEqual([d.flags, d.version, d.id, d.tag, d.opcode, d.level], [
    7,
    2,
    0x1234,
    0xbeef,
    1,
    5,
  ]);
  assert.equal(hex(d.activityId!), hex(new Uint8Array(16).fill(0x11)));
  assert.deepEqual(fieldValues(d.fields), { s: -1, t: 7, c: [1, 2], v: ["a", "bc"] });
  assert.equal(d.fields[1].tag, 0x0102);
  assert.equal(d.fields[2].array, 2);
  assert.equal(d.fields[3].array, "variable");
});

test("byte layout: struct (format = member count) and zstring (hand-derived)", () => {
  const enc = new EventHeaderEncoder({
    name: "S",
    fields: [{
      name: "p",
      type: "struct",
      fields: [{ name: "x", type: "u8" }, { name: "y", type: "zstring" }],
    }],
  });
  const expected = bytes(`
    07 00 00 00 00 00 00 05
    0c 00 01 00
    53 00 70 00 81 02 78 00 02 79 00 07
    09 68 69 00`);
  assert.equal(hex(enc.bytes([[9, "hi"]])), hex(expected));
  assert.deepEqual(fieldValues(decodeEventHeader(enc.bytes([{ x: 9, y: "hi" }])).fields), {
    p: { x: 9, y: "hi" },
  });
});

test("byte layout: related activity id (32 bytes) and attributes with escaped ';'", () => {
  const enc = new EventHeaderEncoder({
    name: "A",
    attributes: { k: "a;b" },
    activity: "related",
    fields: [{ name: "f", type: "u8", attributes: { u: "x" } }],
  });
  enc.setActivity(new Uint8Array(16).fill(1), new Uint8Array(16).fill(2));
  const b = enc.bytes([3]);
  assert.equal(hex(b.subarray(8, 12)), "20 00 02 80");
  const meta = new TextEncoder().encode("A;k=a;;b\0f;u=x\0");
  assert.equal(hex(b.subarray(44, 48)), hex(new Uint8Array([meta.length + 1, 0, 1, 0])));
  assert.equal(hex(b.subarray(48, 48 + meta.length)), hex(meta));
  const d = decodeEventHeader(b);
  assert.deepEqual(d.attributes, { k: "a;b" });
  assert.deepEqual(d.fields[0].attributes, { u: "x" });
  assert.equal(hex(d.relatedId!), hex(new Uint8Array(16).fill(2)));
});

const SAMPLES: Record<FieldTypeName, [unknown, unknown]> = {
  u8: [200, 200],
  i8: [-5, -5],
  u16: [65000, 65000],
  i16: [-300, -300],
  u32: [4000000000, 4000000000],
  i32: [-7, -7],
  u64: [2n ** 63n + 5n, 2n ** 63n + 5n],
  i64: [-(2n ** 40n), -(2n ** 40n)],
  hex8: [0xab, 0xab],
  hex16: [0xabcd, 0xabcd],
  hex32: [0xdeadbeef, 0xdeadbeef],
  hex64: [0x1234n, 0x1234n],
  bool8: [true, true],
  bool32: [false, false],
  f32: [1.5, 1.5],
  f64: [Math.PI, Math.PI],
  errno: [2, 2],
  pid: [4242, 4242],
  time32: [1700000000, 1700000000],
  time64: [1700000000n, 1700000000n],
  char8: ["A", "A"],
  char16: ["é", "é"],
  char32: ["😀", "😀"],
  port: [443, 443],
  ipv4: ["192.168.1.2", "192.168.1.2"],
  ipv6: [new Uint8Array(16).fill(0xfe), new Uint8Array(16).fill(0xfe)],
  uuid: ["00112233-4455-6677-8899-aabbccddeeff", "00112233-4455-6677-8899-aabbccddeeff"],
  hex128: [new Uint8Array(16).fill(7), new Uint8Array(16).fill(7)],
  zstring: ["zé", "zé"],
  zstring16: ["z16é", "z16é"],
  zstring32: ["z32😀", "z32😀"],
  string: ["counted", "counted"],
  string8: ["s8", "s8"],
  string16: ["s16é", "s16é"],
  string32: ["s32😀", "s32😀"],
  json: ['{"a":1}', '{"a":1}'],
  xml: ["<a/>", "<a/>"],
  binary: [new Uint8Array([0, 1, 2, 255]), new Uint8Array([0, 1, 2, 255])],
  struct: [[1], { m: 1 }],
};

test("round trip: every field type, alone, as a constant array and as a variable array", () => {
  for (
    const [type, [value, expected]] of Object.entries(SAMPLES) as [
      FieldTypeName,
      [unknown, unknown],
    ][]
  ) {
    const field = type === "struct"
      ? { name: "f", type, fields: [{ name: "m", type: "u8" as const }] }
      : { name: "f", type };
    const one = new EventHeaderEncoder({ name: `T_${type}`, fields: [field] });
    const d = decodeEventHeader(one.bytes([value]));
    assert.equal(d.name, `T_${type}`);
    assert.deepEqual(fieldValues(d.fields).f, expected, type);
    const [enc, fmt] = FIELD_TYPES[type];
    assert.equal(d.fields[0].encoding, enc, type);
    assert.equal(d.fields[0].format, type === "struct" ? 1 : fmt, type);
    const arr = new EventHeaderEncoder({
      name: "A",
      fields: [{ ...field, array: 3 }, { ...field, name: "g", array: "variable" }],
    });
    const da = fieldValues(
      decodeEventHeader(arr.bytes([[value, value, value], [value, value]])).fields,
    );
    assert.deepEqual(da.f, [expected, expected, expected], `${type}[3]`);
    assert.deepEqual(da.g, [expected, expected], `${type}[]`);
  }
});

test("explicit encoding/format: binary with a fixed-size format (nullable) and port in network order", () => {
  const enc = new EventHeaderEncoder({
    name: "X",
    fields: [
      { name: "n", encoding: FieldEncoding.BinaryLength16Char8, format: FieldFormat.HexBytes },
      { name: "p", type: "port" },
    ],
  });
  const b = enc.bytes([new Uint8Array(0), 0x1234]);
  assert.equal(hex(b.subarray(b.length - 4)), "00 00 12 34");
});

test("the decoder ignores trailing padding (perf pads raw records) and reports it", () => {
  const enc = new EventHeaderEncoder({ name: "P", fields: [{ name: "a", type: "u8" }] });
  const b = enc.bytes([1]);
  const padded = new Uint8Array(b.length + 3);
  padded.set(b);
  const d = decodeEventHeader(padded);
  assert.equal(d.trailing, 3);
  assert.deepEqual(fieldValues(d.fields), { a: 1 });
});

test("bad definitions are refused before any kernel call", () => {
  assert.throws(() => new EventHeaderEncoder({ name: "a;b" }), /without ';'/);
  assert.throws(
    () =>
      new EventHeaderEncoder({ name: "s", fields: [{ name: "x", type: "struct", fields: [] }] }),
    /1\.\.127/,
  );
  assert.throws(
    () => new EventHeaderEncoder({ name: "s", fields: [{ name: "x", type: "u8", array: 0 }] }),
    /1\.\.65535/,
  );
  assert.throws(() => new EventHeaderEncoder({ name: "s", level: 0 }), /level/);
  const enc = new EventHeaderEncoder({ name: "v", fields: [{ name: "x", type: "u8" }] });
  assert.throws(() => enc.encode([]), /expected 1 values/);
});
