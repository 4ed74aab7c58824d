/**
 * The EventHeader decoder against short and malformed events: every prefix of
 * valid events, seeded random corruption, and each malformation the spec
 * names end in an EventHeaderDecodeError (an UmmuArgumentError) that says
 * what was short or wrong and where, never an engine TypeError/RangeError.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { UmmuArgumentError } from "../src/errors.ts";
import {
  EventHeaderEncoder,
  FieldEncoding as E,
  FieldFormat as F,
} from "../src/user_events/eventheader.ts";
import {
  decodeEventHeader,
  EventHeaderDecodeError,
  fieldValues,
  parseTracepointName,
} from "../src/user_events/eventheader_decode.ts";

const bytes = (s: string) => new Uint8Array(s.trim().split(/\s+/).map((x) => parseInt(x, 16)));

/** Asserts decoding throws EventHeaderDecodeError matching `re`; returns it. */
function malformed(data: unknown, re: RegExp): EventHeaderDecodeError {
  let caught: unknown = null;
  try {
    decodeEventHeader(data as Uint8Array);
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught instanceof EventHeaderDecodeError,
    `expected EventHeaderDecodeError, got ${caught}`,
  );
  assert.ok(caught instanceof UmmuArgumentError);
  assert.match(caught.message, re);
  return caught;
}

/** Events with every kind of field: scalars, strings of each charset, arrays, structs, activity ids. */
function sampleEvents(): Uint8Array[] {
  const all = new EventHeaderEncoder({
    name: "All",
    attributes: { k: "v;w" },
    activity: "related",
    fields: [
      { name: "u8", type: "u8" },
      { name: "i64", type: "i64" },
      { name: "f64", type: "f64" },
      { name: "c32", type: "char32" },
      { name: "ip6", type: "ipv6" },
      { name: "uuid", type: "uuid" },
      { name: "z", type: "zstring" },
      { name: "z16", type: "zstring16" },
      { name: "z32", type: "zstring32" },
      { name: "s", type: "string" },
      { name: "s8", type: "string8" },
      { name: "s16", type: "string16" },
      { name: "s32", type: "string32" },
      { name: "bin", type: "binary" },
      { name: "ca", type: "u16", array: 3 },
      { name: "va", type: "string", array: "variable" },
      {
        name: "st",
        type: "struct",
        array: 2,
        fields: [{ name: "x", type: "u32" }, {
          name: "inner",
          type: "struct",
          fields: [{ name: "y", type: "zstring" }],
        }],
      },
    ],
  });
  all.setActivity(new Uint8Array(16).fill(1), new Uint8Array(16).fill(2));
  const one = new EventHeaderEncoder({ name: "One", fields: [{ name: "n", type: "u32", tag: 7 }] });
  return [
    all.bytes([
      1,
      -2n,
      0.5,
      "😀",
      "::1",
      "00112233-4455-6677-8899-aabbccddeeff",
      "zé",
      "z16",
      "z32",
      "s",
      "café",
      "s16",
      "s32",
      new Uint8Array([1, 2]),
      [1, 2, 3],
      ["a", "bc"],
      [[1, ["p"]], { x: 2, inner: { y: "q" } }],
    ]),
    one.bytes([5]),
  ];
}

test("every prefix of a valid event is short: EventHeaderDecodeError says what needed the missing bytes", () => {
  for (const ev of sampleEvents()) {
    decodeEventHeader(ev); // the whole event decodes
    for (let n = 0; n < ev.length; n++) {
      const e = malformed(ev.subarray(0, n), /is short|no terminating NUL/);
      assert.ok(e.offset >= 0 && e.offset <= n, `offset ${e.offset} within ${n}`);
    }
  }
  const e = malformed(
    new Uint8Array(3),
    /the 3-byte event is short: the header needs 8 bytes, 3 are left \(at byte 0\)/,
  );
  assert.equal(e.offset, 0);
});

/** A small deterministic PRNG (mulberry32): the same corruptions on every run and runtime. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("corrupted events (seeded random bytes changed, then maybe cut) decode or throw EventHeaderDecodeError, nothing else", () => {
  const seed = 0x5eed;
  const rand = prng(seed);
  let decoded = 0;
  let refused = 0;
  for (const ev of sampleEvents()) {
    for (let i = 0; i < 3000; i++) {
      const b = ev.slice();
      const changes = 1 + Math.floor(rand() * 4);
      for (let c = 0; c < changes; c++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
      try {
        decodeEventHeader(cut);
        decoded++;
      } catch (e) {
        assert.ok(
          e instanceof EventHeaderDecodeError,
          `seed ${seed}, case ${i}: ${e} for ${Array.from(cut, (x) => x.toString(16)).join(" ")}`,
        );
        refused++;
      }
    }
  }
  assert.ok(decoded > 0 && refused > 0, `decoded ${decoded}, refused ${refused}`);
});

test("each malformation the spec names is refused with what is wrong", () => {
  const header = "07 00 00 00 00 00 00 05"; // little-endian, 64-bit, extension; level 5
  const meta = (body: string) => {
    const b = bytes(body);
    return `${b.length.toString(16)} 00 01 00 ${body}`;
  };
  malformed(bytes(`05 00 00 00 00 00 00 05 ${meta("45 00")}`), /big-endian .* not supported/);
  malformed(bytes("03 00 00 00 00 00 00 05"), /no Metadata extension/);
  malformed(
    bytes(`${header} 08 00 02 80 ${"00 ".repeat(8)} ${meta("45 00")}`),
    /ActivityId extension of 8 bytes/,
  );
  // name "E", field "f" with both array flags (0x60 | Value8).
  malformed(bytes(`${header} ${meta("45 00 66 00 62")} 00`), /field f: both array flags set/);
  // a constant-length array of length 0
  malformed(
    bytes(`${header} ${meta("45 00 66 00 22 00 00")}`),
    /constant-length array of length 0/,
  );
  // a struct with 0 fields (Struct | Chain, format 0)
  malformed(bytes(`${header} ${meta("45 00 66 00 81 00")}`), /struct f with 0 fields/);
  // unknown encodings
  malformed(bytes(`${header} ${meta("45 00 66 00 00")}`), /field f: unknown encoding 0/);
  malformed(bytes(`${header} ${meta("45 00 66 00 0e")} 00`), /unknown encoding 14/);
  // a struct whose members run past the metadata
  malformed(bytes(`${header} ${meta("45 00 66 00 81 02 61 00 02")} 00`), /no terminating NUL/);
  // structs nested 9 deep (each "s\0" Struct|Chain count 1)
  malformed(
    bytes(`${header} ${meta(`45 00 ${"73 00 81 01 ".repeat(9)} 6c 00 02`)} 00`),
    /nests deeper than 8/,
  );
  // a char32 that is not a code point, in each UTF-32 encoding
  const cp = "00 00 11 00"; // 0x110000
  malformed(
    bytes(`${header} ${meta("45 00 66 00 84 0b")} ${cp}`),
    /field f: 0x110000 is not a Unicode code point/,
  );
  malformed(
    bytes(`${header} ${meta("45 00 66 00 09")} ${cp} 00 00 00 00`),
    /not a Unicode code point/,
  );
  malformed(bytes(`${header} ${meta("45 00 66 00 0c")} 01 00 ${cp}`), /not a Unicode code point/);
  // an extension longer than the event
  malformed(
    bytes(`${header} ff 00 01 00 45 00`),
    /an extension of kind 1 needs 255 bytes, 2 are left/,
  );
  // not bytes at all
  malformed("07000000", /takes the event's bytes as a Uint8Array, got "07000000"/);
  malformed(null, /got null/);
});

test("string8 decodes as Latin-1; tracepoint names that are not EventHeader's throw EventHeaderDecodeError", () => {
  const enc = new EventHeaderEncoder({
    name: "L",
    fields: [
      { name: "s8", type: "string8" },
      { name: "z8", encoding: E.ZStringChar8, format: F.String8 },
      { name: "c8", type: "char8" },
    ],
  });
  assert.deepEqual(fieldValues(decodeEventHeader(enc.bytes(["café", "ÿ", "é"])).fields), {
    s8: "café",
    z8: "ÿ",
    c8: "é",
  });
  assert.throws(
    () => fieldValues(null as never),
    (e: unknown) =>
      e instanceof UmmuArgumentError && /fieldValues takes the fields/.test(e.message),
  );
  for (const name of ["NoLevel", "P_LK1", "P_L4K", "P_L4K1g", "_L4K1x", 42]) {
    assert.throws(
      () => parseTracepointName(name as string),
      (e: unknown) =>
        e instanceof EventHeaderDecodeError &&
        /is not an EventHeader tracepoint name/.test(e.message),
      String(name),
    );
  }
});
