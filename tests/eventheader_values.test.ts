/**
 * EventHeader against a hostile caller, on the host: every attribute of an
 * event definition and every property of a field checked, every emitted value
 * checked against its field's type (an UmmuArgumentError naming the field,
 * the value and the type, and nothing written), the charset each string and
 * char type means (Latin-1, UTF-16, UTF-32, UTF-8), and constant-length
 * arrays of structs in the layout Microsoft's decoders read. Events go
 * through the library's own writev into a file standing in for
 * user_events_data (tests/fixtures/user_events_sink.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UmmuArgumentError } from "../src/errors.ts";
import {
  type EventField,
  EventHeaderEncoder,
  EventHeaderEvent,
  EventHeaderProvider,
  FIELD_TYPES,
  FieldEncoding as E,
  FieldFormat as F,
  type FieldTypeName,
  tracepointName,
} from "../src/user_events/eventheader.ts";
import { decodeEventHeader, fieldValues } from "../src/user_events/eventheader_decode.ts";
import { EventSink } from "./fixtures/user_events_sink.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

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

/** The payload bytes of a one-field event (after header and extensions). */
function payloadOf(enc: EventHeaderEncoder, values: unknown[]): Uint8Array {
  return enc.bytes(values).subarray(enc.prefixLength);
}

test("an event definition: every attribute is checked (opcode 300 and id 70000 are refused, not wrapped)", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ opcode: 300 }, /opcode must be an integer in 0\.\.255, got 300/],
    [{ opcode: -1 }, /opcode/],
    [{ id: 70000 }, /id must be an integer in 0\.\.65535, got 70000/],
    [{ version: 256 }, /version must be an integer in 0\.\.255/],
    [{ tag: 0x10000 }, /tag must be an integer in 0\.\.65535/],
    [{ tag: 1.5 }, /tag/],
    [{ level: 0 }, /level must be an integer in 1\.\.255/],
    [{ level: 256 }, /level/],
    [{ level: "4" }, /level.*got "4"/],
    [{ keyword: -1 }, /keyword must be a bigint in 0\.\.0xffffffffffffffff/],
    [{ keyword: 2n ** 64n }, /keyword/],
    [{ keyword: 2 ** 60 }, /keyword.*use a bigint beyond/],
    [{ activity: "both" }, /activity must be "id" or "related"/],
    [{ levle: 4 }, /unknown property "levle"/],
    [{ name: "" }, /name must be a non-empty string/],
    [{ name: "a\0b" }, /without ';' or NUL/],
    [{ name: 5 }, /got 5/],
    [{ attributes: { "a=b": "x" } }, /attribute name "a=b"/],
    [{ attributes: { k: 5 } }, /attribute k must be a string/],
    [{ attributes: "k=v" }, /attributes must be an object/],
    [{ fields: "u32 a" }, /fields must be an array/],
    [{ fields: new Array(256).fill({ name: "f", type: "u8" }) }, /at most 255 EventField/],
  ];
  for (const [patch, re] of cases) {
    refuses(() => new EventHeaderEncoder({ name: "E", ...patch } as never), re);
  }
  refuses(() => new EventHeaderEncoder(null as never), /an event definition must be an object/);
  // The limits themselves are accepted.
  const ok = new EventHeaderEncoder({
    name: "E",
    level: 255,
    keyword: 2n ** 64n - 1n,
    opcode: 255,
    id: 65535,
    version: 255,
    tag: 65535,
    fields: new Array(255).fill({ name: "f", type: "u8" }),
  });
  const d = decodeEventHeader(ok.bytes(new Array(255).fill(1)));
  assert.deepEqual([d.level, d.opcode, d.id, d.version, d.tag, d.fields.length], [
    255,
    255,
    65535,
    255,
    65535,
    255,
  ]);
});

test("a field definition: every property is checked", () => {
  const cases: [unknown, RegExp][] = [
    [{ name: "f", type: "u33" }, /unknown type "u33"/],
    [{ name: "f", type: "toString" }, /unknown type "toString"/],
    [{ name: "f" }, /give a type or an encoding/],
    [{ name: "f", type: "u8", encoding: E.Value8 }, /not both/],
    [
      { name: "f", encoding: E.Value32 | E.CArrayFlag },
      /encoding must be a FieldEncoding value in 1\.\.13/,
    ],
    [{ name: "f", encoding: 0 }, /encoding/],
    [{ name: "f", encoding: 14 }, /encoding/],
    [{ name: "f", type: "u32", format: 200 }, /format must be a FieldFormat value in 0\.\.127/],
    [
      { name: "f", type: "u32", format: F.Uuid },
      /format Uuid \(15\) is not usable with encoding Value32/,
    ],
    [{ name: "f", type: "u32", format: F.IPAddressObsolete }, /not usable/],
    [{ name: "f", type: "u8", format: F.Float }, /not usable with encoding Value8/],
    [
      { name: "f", type: "struct", fields: [{ name: "m", type: "u8" }], format: 1 },
      /a struct takes no format/,
    ],
    [{ name: "f", type: "u8", fields: [] }, /only a struct has fields/],
    [{ name: "f", type: "struct", fields: [] }, /a struct has 1\.\.127 fields/],
    [{ name: "f", type: "struct" }, /a struct has 1\.\.127 fields/],
    [{ name: "f", type: "u8", tag: 70000 }, /tag must be an integer in 0\.\.65535/],
    [
      { name: "f", type: "u8", array: 0 },
      /array must be "variable" or a constant length 1\.\.65535, got 0/,
    ],
    [{ name: "f", type: "u8", array: 70000 }, /array/],
    [{ name: "f", type: "u8", array: "var" }, /array/],
    [{ name: "f", type: "u8", size: 4 }, /unknown property "size"/],
    [{ name: "", type: "u8" }, /name must be a non-empty string/],
    [{ name: "a;b", type: "u8" }, /without ';'/],
    [{ name: "f", type: "u8", attributes: { "": "x" } }, /attribute name ""/],
    ["u8 f", /must be an object/],
  ];
  for (const [field, re] of cases) {
    refuses(() => new EventHeaderEncoder({ name: "E", fields: [field as EventField] }), re);
  }
  // Inside a struct, the message gives the member's path and index.
  refuses(
    () =>
      new EventHeaderEncoder({
        name: "E",
        fields: [{ name: "u8", type: "u8" }, {
          name: "s",
          type: "struct",
          fields: [{ name: "m", type: "bogus" as FieldTypeName }],
        }],
      }),
    /field "s\.m" \(#1\.0\) of event E: unknown type "bogus"/,
  );
  // Microsoft's decoders keep 8 nested structs: a 9th is refused.
  const nest = (depth: number): EventField =>
    depth === 0
      ? { name: "leaf", type: "u8" }
      : { name: `s${depth}`, type: "struct", fields: [nest(depth - 1)] };
  new EventHeaderEncoder({ name: "E", fields: [nest(8)] });
  refuses(() => new EventHeaderEncoder({ name: "E", fields: [nest(9)] }), /nest at most 8 deep/);
});

/**
 * Every short type: values it takes (with the payload bytes they make) and
 * values it refuses, with what the message says of the expectation.
 */
const TYPE_CASES: Record<
  FieldTypeName,
  { good: [unknown, string][]; bad: unknown[]; want: RegExp }
> = {
  u8: {
    good: [[0, "00"], [255, "ff"]],
    bad: [256, -1, 1.5, "x", 1n, true, null],
    want: /an integer in 0\.\.255 \(a number; u8\)/,
  },
  i8: { good: [[-128, "80"], [127, "7f"]], bad: [128, -129], want: /-128\.\.127/ },
  u16: { good: [[65535, "ff ff"]], bad: [65536, "1"], want: /0\.\.65535/ },
  i16: { good: [[-2, "fe ff"]], bad: [32768], want: /-32768\.\.32767/ },
  u32: {
    good: [[4294967295, "ff ff ff ff"]],
    bad: [2 ** 32, -1, "x", 7n],
    want: /0\.\.4294967295 \(a number; u32\)/,
  },
  i32: { good: [[-1, "ff ff ff ff"]], bad: [2 ** 31], want: /-2147483648\.\.2147483647/ },
  u64: {
    good: [[2n ** 64n - 1n, "ff ff ff ff ff ff ff ff"], [2 ** 53, "00 00 00 00 00 00 20 00"]],
    bad: [-1, 2n ** 64n, 2 ** 64, 0.5, "1"],
    want: /0\.\.18446744073709551615 \(a number or bigint; u64\)/,
  },
  i64: {
    good: [[-1n, "ff ff ff ff ff ff ff ff"], [-2, "fe ff ff ff ff ff ff ff"]],
    bad: [2n ** 63n, -(2n ** 63n) - 1n],
    want: /-9223372036854775808\.\.9223372036854775807/,
  },
  hex8: { good: [[0xab, "ab"]], bad: [-1], want: /0\.\.255 \(a number; hex8\)/ },
  hex16: { good: [[0xabcd, "cd ab"]], bad: [0x10000], want: /hex16/ },
  hex32: { good: [[0xdeadbeef, "ef be ad de"]], bad: [-1], want: /hex32/ },
  hex64: { good: [[0x1234n, "34 12 00 00 00 00 00 00"]], bad: [-1n], want: /hex64/ },
  bool8: {
    good: [[true, "01"], [false, "00"]],
    bad: [1, "true", null],
    want: /a boolean \(bool8\)/,
  },
  bool32: { good: [[true, "01 00 00 00"]], bad: [0], want: /a boolean \(bool32\)/ },
  f32: {
    good: [[1.5, "00 00 c0 3f"]],
    bad: ["1.5", 1n, null],
    want: /a number \(f32, stored as a 32-bit float\)/,
  },
  f64: { good: [[-0, "00 00 00 00 00 00 00 80"]], bad: [1n], want: /a number \(f64\)/ },
  errno: { good: [[2, "02 00 00 00"], [-1, "ff ff ff ff"]], bad: [2 ** 31], want: /errno/ },
  pid: { good: [[4242, "92 10 00 00"]], bad: [2 ** 31, "1"], want: /pid/ },
  time32: { good: [[-1, "ff ff ff ff"]], bad: [2 ** 31], want: /time32/ },
  time64: { good: [[1700000000n, "00 f1 53 65 00 00 00 00"]], bad: [2n ** 63n], want: /time64/ },
  char8: {
    good: [["A", "41"], ["é", "e9"], ["ÿ", "ff"]],
    bad: ["Ω", "AB", "", 65, "😀"],
    want: /one Latin-1 character, U\+0000\.\.U\+00FF \(char8\)/,
  },
  char16: {
    good: [["é", "e9 00"], ["Ω", "a9 03"]],
    bad: ["😀", "\ud800", "ab", 0x41],
    want: /one UTF-16 code unit, U\+0000\.\.U\+FFFF and not a surrogate \(char16\)/,
  },
  char32: {
    good: [["😀", "00 f6 01 00"], ["A", "41 00 00 00"]],
    bad: ["\ud83d", "ab", "😀😀"],
    want: /one character \(one code point; char32\)/,
  },
  port: { good: [[443, "01 bb"]], bad: [65536, -1], want: /written in network byte order/ },
  ipv4: {
    good: [["192.168.1.2", "c0 a8 01 02"], [0x7f000001, "7f 00 00 01"], [
      new Uint8Array([10, 0, 0, 1]),
      "0a 00 00 01",
    ]],
    bad: ["256.0.0.1", "1.2.3", "01.2.3.4", "a.b.c.d", new Uint8Array(3), -1],
    want: /an IPv4 address/,
  },
  ipv6: {
    good: [
      ["::1", "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"],
      ["fe80::1:2", "fe 80 00 00 00 00 00 00 00 00 00 00 00 01 00 02"],
      ["::ffff:10.0.0.1", "00 00 00 00 00 00 00 00 00 00 ff ff 0a 00 00 01"],
      ["1::", "00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00"],
    ],
    bad: [
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7:8:9",
      "00112233-4455-6677-8899-aabbccddeeff",
      new Uint8Array(15),
    ],
    want: /an IPv6 address/,
  },
  uuid: {
    good: [[
      "00112233-4455-6677-8899-aabbccddeeff",
      "00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff",
    ], ["{00112233445566778899AABBCCDDEEFF}", "00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff"]],
    bad: ["0011-2233", "g0112233-4455-6677-8899-aabbccddeeff", new Uint8Array(16).subarray(1)],
    want: /a UUID/,
  },
  hex128: {
    good: [[new Uint8Array(16).fill(7), "07 07 07 07 07 07 07 07 07 07 07 07 07 07 07 07"]],
    bad: ["00112233-4455-6677-8899-aabbccddeeff", new Uint8Array(17)],
    want: /exactly 16 bytes \(hex128\)/,
  },
  zstring: {
    good: [["zé", "7a c3 a9 00"], ["", "00"]],
    bad: ["a\0b", "\udc00", 5],
    want: /a string \(zstring: UTF-8, NUL-terminated\)|cannot be stored as zstring/,
  },
  zstring16: {
    good: [["é😀", "e9 00 3d d8 00 de 00 00"]],
    bad: ["a\0", "x\ud800y"],
    want: /zstring16/,
  },
  zstring32: {
    good: [["é😀", "e9 00 00 00 00 f6 01 00 00 00 00 00"]],
    bad: ["\0", "\ude00"],
    want: /zstring32/,
  },
  string: {
    good: [["café", "05 00 63 61 66 c3 a9"], [new Uint8Array([1, 2]), "02 00 01 02"]],
    bad: [5, "\ud800", "x".repeat(0x10000)],
    want: /string/,
  },
  string8: {
    good: [["café", "04 00 63 61 66 e9"], [new Uint8Array([0xe9]), "01 00 e9"]],
    bad: ["Ω", "😀", 5],
    want: /string8/,
  },
  string16: {
    good: [["é😀", "03 00 e9 00 3d d8 00 de"]],
    bad: ["\ud800", new Uint8Array(2)],
    want: /string16/,
  },
  string32: {
    good: [["é😀", "02 00 e9 00 00 00 00 f6 01 00"]],
    bad: ["\udfff", 1],
    want: /string32/,
  },
  json: { good: [['{"a":1}', "07 00 7b 22 61 22 3a 31 7d"]], bad: [{ a: 1 }], want: /json/ },
  xml: { good: [["<a/>", "04 00 3c 61 2f 3e"]], bad: [null], want: /xml/ },
  binary: {
    good: [[new Uint8Array([0, 255]), "02 00 00 ff"]],
    bad: ["ab", [1, 2], new Uint8Array(0x10000)],
    want: /a Uint8Array of at most 65535 bytes \(binary\)/,
  },
  struct: {
    good: [[[1], "01"], [{ m: 2 }, "02"]],
    bad: [1, "x", [1, 2], [], new Uint8Array(1)],
    want: /the struct's 1 member values/,
  },
};

test("emit: every field type takes exactly its values (bytes checked) and refuses the rest, naming field, index, value and type", () => {
  const sink = new EventSink();
  try {
    for (
      const [type, { good, bad, want }] of Object.entries(TYPE_CASES) as [
        FieldTypeName,
        (typeof TYPE_CASES)["u8"],
      ][]
    ) {
      const field: EventField = type === "struct"
        ? { name: "v", type, fields: [{ name: "m", type: "u8" }] }
        : { name: "v", type };
      const def = {
        name: "Vals",
        level: 4,
        fields: [{ name: "first", type: "u8" as const }, field],
      };
      const enc = new EventHeaderEncoder(def);
      const ev = EventHeaderEvent.fromHandle({
        tracepoint: sink.eventHeaderHandle("P", 4, 1n),
        def,
      });
      for (const [v, bytes] of good) {
        assert.equal(hex(payloadOf(enc, [9, v]).subarray(1)), bytes, `${type} ${String(v)}`);
        assert.equal(ev.emit(9, v), true);
        assert.equal(
          hex(sink.takePayload().subarray(enc.prefixLength + 1)),
          bytes,
          `${type} written`,
        );
      }
      for (const v of bad) {
        const e = refuses(() => ev.emit(9, v), /field "v" \(#1\) of event Vals: /);
        assert.match(e.message, want, `${type} ${String(v)}`);
        assert.equal(sink.take().length, 0, `${type} ${String(v)}: nothing written`);
      }
    }
    assert.deepEqual(Object.keys(TYPE_CASES).sort(), Object.keys(FIELD_TYPES).sort(), "every type");
    // The message shows the value: a bigint, a string, a code point.
    const enc = new EventHeaderEncoder({
      name: "M",
      fields: [{ name: "c", type: "char8" }, { name: "n", type: "u32" }],
    });
    refuses(
      () => enc.encode(["Ω", 1]),
      /field "c" \(#0\) of event M: expected .*, got "Ω" \(U\+03A9\)/,
    );
    refuses(() => enc.encode(["A", 7n]), /field "n" \(#1\).*got 7n \(a bigint\)/);
    refuses(() => enc.encode(["A"]), /event M: expected 2 values \(c, n\), got 1/);
  } finally {
    sink.close();
  }
});

test("emit: explicit encodings and formats take what the pair means (hex bytes, nullable fixed-size formats, Latin-1 zstring)", () => {
  const cases: [EventField, unknown, string, unknown][] = [
    [{ name: "v", encoding: E.Value8, format: F.HexBytes }, new Uint8Array([0xab]), "ab", 0xab],
    [
      { name: "v", encoding: E.Value32, format: F.HexBytes },
      new Uint8Array(4).fill(1),
      "01 01 01 01",
      1,
    ],
    [{ name: "v", encoding: E.Value16, format: F.Boolean }, true, "01 00", 1],
    [{ name: "v", encoding: E.ZStringChar8, format: F.String8 }, "é", "e9 00", "Ω"],
    [
      { name: "v", encoding: E.ZStringChar8, format: F.HexBytes },
      new Uint8Array([1, 2]),
      "01 02 00",
      new Uint8Array([1, 0]),
    ],
    [
      { name: "v", encoding: E.BinaryLength16Char8, format: F.SignedInt },
      new Uint8Array(0),
      "00 00",
      -1,
    ],
    [{ name: "v", encoding: E.BinaryLength16Char8, format: F.StringUtf }, "é", "02 00 c3 a9", 5],
    [
      { name: "v", encoding: E.StringLength16Char8, format: F.HexBytes },
      new Uint8Array([7]),
      "01 00 07",
      "7",
    ],
    [
      { name: "v", encoding: E.ZStringChar16, format: F.StringJson },
      "{}",
      "7b 00 7d 00 00 00",
      new Uint8Array(2),
    ],
    [{ name: "v", encoding: E.Value128 }, new Uint8Array(16), "00 ".repeat(16).trim(), "::1"],
  ];
  for (const [field, good, bytes, bad] of cases) {
    const enc = new EventHeaderEncoder({ name: "X", fields: [field] });
    assert.equal(hex(payloadOf(enc, [good])), bytes, JSON.stringify(field));
    refuses(() => enc.encode([bad]), /field "v" \(#0\) of event X/);
  }
});

test('charsets: string8 and char8 are Latin-1 ("café" is 63 61 66 e9), char16 one UTF-16 unit, char32 one code point', () => {
  const enc = new EventHeaderEncoder({
    name: "C",
    fields: [
      { name: "s8", type: "string8" },
      { name: "c8", type: "char8" },
      { name: "c16", type: "char16" },
      { name: "c32", type: "char32" },
      { name: "z", type: "zstring" },
    ],
  });
  const b = payloadOf(enc, ["café", "é", "Ω", "😀", "café"]);
  assert.equal(hex(b), "04 00 63 61 66 e9 e9 a9 03 00 f6 01 00 63 61 66 c3 a9 00");
  assert.deepEqual(
    fieldValues(decodeEventHeader(enc.bytes(["café", "é", "Ω", "😀", "café"])).fields),
    {
      s8: "café",
      c8: "é",
      c16: "Ω",
      c32: "😀",
      z: "café",
    },
  );
  // What a charset cannot hold is refused, never cut or replaced.
  refuses(
    () => enc.encode(["Ωmega", "é", "Ω", "😀", ""]),
    /field "s8" \(#0\).*U\+03A9 'Ω' at index 0 is outside Latin-1/,
  );
  refuses(() => enc.encode(["", "Ω", "Ω", "😀", ""]), /field "c8" \(#1\).*got "Ω" \(U\+03A9\)/);
  refuses(() => enc.encode(["", "é", "😀", "😀", ""]), /field "c16" \(#2\).*got "😀" \(U\+1F600\)/);
  refuses(
    () => enc.encode(["", "é", "Ω", "😀", "a\ud800"]),
    /field "z" \(#4\).*U\+D800 at index 1 is a lone surrogate/,
  );
  refuses(
    () => enc.encode(["", "é", "Ω", "😀", "a\0"]),
    /field "z" \(#4\).*NUL \(U\+0000\) at index 1/,
  );
  // Counted strings: 65535 bytes (UTF-8), characters (Latin-1), units (UTF-16), code points (UTF-32).
  const long = new EventHeaderEncoder({
    name: "L",
    fields: [
      { name: "s", type: "string" },
      { name: "s8", type: "string8" },
      { name: "s16", type: "string16" },
      { name: "s32", type: "string32" },
    ],
  });
  long.encode(["é".repeat(32767), "é".repeat(65535), "😀".repeat(32767), "😀".repeat(65535)]);
  refuses(() => long.encode(["é".repeat(32768), "", "", ""]), /field "s" \(#0\).*65535 bytes/);
  refuses(() => long.encode(["", "é".repeat(65536), "", ""]), /field "s8" \(#1\)/);
  refuses(() => long.encode(["", "", "😀".repeat(32768), ""]), /field "s16" \(#2\)/);
  refuses(() => long.encode(["", "", "", "😀".repeat(65536)]), /field "s32" \(#3\)/);
});

test("a constant-length array of structs is written as Microsoft's encoders write it: variable-length, the count in the payload", () => {
  const enc = new EventHeaderEncoder({
    name: "S",
    fields: [{
      name: "pts",
      type: "struct",
      array: 2,
      fields: [{ name: "x", type: "u8" }, { name: "y", type: "u8" }],
    }],
  });
  const b = enc.bytes([[{ x: 1, y: 2 }, [3, 4]]]);
  // Metadata: "S\0" "pts\0" enc=Struct|VArray|Chain (0xc1) format=2, then x (Value8) and y.
  const meta = b.subarray(12, enc.prefixLength);
  assert.equal(hex(meta), "53 00 70 74 73 00 c1 02 78 00 02 79 00 02");
  assert.equal(hex(b.subarray(enc.prefixLength)), "02 00 01 02 03 04");
  const d = decodeEventHeader(b);
  assert.equal(d.fields[0].array, "variable");
  assert.deepEqual(fieldValues(d.fields), { pts: [{ x: 1, y: 2 }, { x: 3, y: 4 }] });
  // Still exactly 2 elements, as defined.
  refuses(
    () => enc.encode([[[1, 2]]]),
    /field "pts" \(#0\).*exactly 2 elements, got an array of 1/,
  );
  refuses(() => enc.encode([[[1, 2], [3, 256]]]), /field "pts\.y" \(#0\.1\).*got 256/);
  // Arrays of other types keep the constant-length layout (the array length in the metadata).
  const u8s = new EventHeaderEncoder({ name: "A", fields: [{ name: "a", type: "u8", array: 2 }] });
  assert.equal(hex(u8s.bytes([[5, 6]]).subarray(12)), "41 00 61 00 22 02 00 05 06");
  refuses(
    () => u8s.encode([[5, 256]]),
    /field "a" \(#0\) of event A, element \[1\]: expected an integer in 0\.\.255/,
  );
  refuses(
    () => u8s.encode(["ab"]),
    /field "a" \(#0\).*an array \(or typed array\) of exactly 2 elements, got "ab"/,
  );
  assert.equal(hex(u8s.bytes([new Uint8Array([7, 8])]).subarray(u8s.prefixLength)), "07 08");
});

test("tracepoint names, providers and activity ids are checked", () => {
  refuses(() => tracepointName("P", 300, 1), /level must be an integer in 1\.\.255 .*, got 300/);
  refuses(() => tracepointName("P", 4, 2n ** 64n), /keyword/);
  refuses(() => tracepointName("P", 4, -1), /keyword/);
  refuses(() => tracepointName("a b", 4, 1), /provider name must be/);
  refuses(() => tracepointName("a:b", 4, 1), /provider name/);
  refuses(() => tracepointName("P", 4, 1, "g"), /options must be options such as "Gmygroup"/);
  refuses(() => tracepointName("P", 4, 1, "GaAb"), /must be sorted/);
  refuses(() => tracepointName("P".repeat(251), 4, 1), /is 256 characters; EventHeader allows 255/);
  assert.equal(tracepointName("P".repeat(250), 4, 1).length, 255);
  assert.equal(tracepointName("P", 4, 1, "AxGy"), "P_L4K1AxGy");
  refuses(() => new EventHeaderProvider("a b"), /provider name must be/);
  refuses(
    () => new EventHeaderProvider("P", { group: "Upper" }),
    /group must be lowercase letters and digits/,
  );
  refuses(() => new EventHeaderProvider("P", { groop: "x" } as never), /unknown option "groop"/);
  refuses(
    () => new EventHeaderProvider("P", { userEvents: {} as never }),
    /userEvents must be an open UserEvents/,
  );
  const id = new EventHeaderEncoder({ name: "A", activity: "id" });
  refuses(
    () => id.setActivity("not-a-uuid"),
    /the activity id must be 16 bytes \(a Uint8Array\) or a UUID string/,
  );
  refuses(() => id.setActivity(new Uint8Array(15)), /activity id/);
  refuses(
    () => id.setActivity(new Uint8Array(16), new Uint8Array(16)),
    /carries only an activity id/,
  );
  const rel = new EventHeaderEncoder({ name: "R", activity: "related" });
  rel.setActivity("00112233-4455-6677-8899-aabbccddeeff");
  refuses(() => rel.setActivity(new Uint8Array(16), "xyz"), /the related id must be/);
  refuses(
    () => new EventHeaderEncoder({ name: "N" }).setActivity(new Uint8Array(16)),
    /has no activity extension/,
  );
});

test("EventHeaderEvent.fromHandle: the definition is checked and must belong on its tracepoint", () => {
  const sink = new EventSink();
  try {
    const def = { name: "H", level: 4, keyword: 2n, fields: [{ name: "n", type: "u8" as const }] };
    const ev = EventHeaderEvent.fromHandle({ tracepoint: sink.eventHeaderHandle("P", 4, 2n), def });
    assert.equal(ev.emit(3), true);
    assert.equal(sink.takePayload().at(-1), 3);
    refuses(
      () => EventHeaderEvent.fromHandle({ tracepoint: sink.eventHeaderHandle("P", 5, 2n), def }),
      /event H \(level 4, keyword 0x2\) does not belong on tracepoint P_L5K2/,
    );
    refuses(
      () => EventHeaderEvent.fromHandle({ tracepoint: sink.handle("P_L4K2", "u32 x"), def }),
      /does not belong on tracepoint P_L4K2 \(u32 x\)/,
    );
    refuses(
      () =>
        EventHeaderEvent.fromHandle({
          tracepoint: sink.eventHeaderHandle("P", 4, 2n),
          def: { ...def, opcode: 300 },
        }),
      /opcode/,
    );
    refuses(
      () => EventHeaderEvent.fromHandle(null as never),
      /must be the object handle\(\) returns/,
    );
  } finally {
    sink.close();
  }
});

test("defineEvent types emit() from a literal definition (checked by deno check); the same mistakes throw at run time", () => {
  // Compile-time: never called, type-checked only.
  const typed = (provider: EventHeaderProvider) => {
    const ev = provider.defineEvent({
      name: "Typed",
      fields: [
        { name: "status", type: "u32" },
        { name: "path", type: "string" },
        { name: "ports", type: "port", array: "variable" },
        {
          name: "who",
          type: "struct",
          fields: [{ name: "uid", type: "u32" }, { name: "name", type: "zstring" }],
        },
        { name: "n", type: "u64" },
      ],
    });
    ev.emit(200, "/", [80], { uid: 0, name: "root" }, 5n);
    ev.emit(200, new Uint8Array(1), new Uint16Array(1), [0, "root"], 5);
    // @ts-expect-error a string where the u32 goes
    ev.emit("x", "/", [80], { uid: 0, name: "root" }, 5n);
    // @ts-expect-error a struct member of the wrong type
    ev.emit(200, "/", [80], { uid: "0", name: "root" }, 5n);
    // @ts-expect-error a value missing
    ev.emit(200, "/", [80], { uid: 0, name: "root" });
    const none = provider.defineEvent({ name: "None" });
    none.emit();
    // @ts-expect-error no fields, no values
    none.emit(1);
  };
  assert.equal(typeof typed, "function");
  const enc = new EventHeaderEncoder({ name: "Typed", fields: [{ name: "status", type: "u32" }] });
  refuses(
    () => enc.encode(["x"]),
    /field "status" \(#0\) of event Typed: expected an integer in 0\.\.4294967295 \(a number; u32\), got "x"/,
  );
});
