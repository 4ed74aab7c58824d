/**
 * Microsoft's EventEnumerator (libeventheader-decode-cpp, from the
 * LinuxTracepoints source in ../shared/tools/linuxtracepoints) judging the
 * metadata ummu writes, on the host: for every event of the catalogue
 * (tests/fixtures/user_events_eventheader_catalogue.ts), the provider name,
 * the options (provider group), the event name with its attributes, the
 * header flags, version, id, tag, opcode, level, keyword and activity ids it
 * reads, and, item by item, each field's name (with attributes), encoding,
 * format, tag, array kind and element count, and the struct nesting. This
 * complements the VM test tests/kernel/eventheader_perf_decode.test.ts,
 * whose perf-decode JSON shows values but not types, event attributes,
 * groups or flags.
 *
 * Needs g++ and xz (apt-get install g++ xz-utils) to build the enumerator
 * from the source tarball (about a second); skips with the reason otherwise.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type EventField,
  EventHeaderEncoder,
  FIELD_TYPES,
  FieldEncoding as E,
  tracepointName,
} from "../src/user_events/eventheader.ts";
import {
  catalogue,
  jsonKey,
  nameWithAttributes,
} from "./fixtures/user_events_eventheader_catalogue.ts";

const TOOLS = fileURLToPath(new URL("../../shared/tools/linuxtracepoints/", import.meta.url));
const DRIVER = fileURLToPath(
  new URL("./fixtures/user_events_eventheader_enumerate.cpp", import.meta.url),
);
const tarball = existsSync(TOOLS)
  ? readdirSync(TOOLS).find((f) => /^LinuxTracepoints-.*\.tar\.xz$/.test(f))
  : undefined;
const hasTool = (cmd: string) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;

const skip = tarball === undefined
  ? `no LinuxTracepoints-*.tar.xz in ${TOOLS} (../shared/tools/linuxtracepoints beside the repository)`
  : !hasTool("g++")
  ? "no g++ to build Microsoft's EventEnumerator (apt-get install g++)"
  : !hasTool("xz")
  ? "no xz to unpack the LinuxTracepoints source (apt-get install xz-utils)"
  : false;

/** What the enumerator reports for one item. */
interface Item {
  s: string;
  n: string;
  e: number;
  f: number;
  t: number;
  a: number;
  i: number;
  c: number;
  v?: string;
}

/** The (encoding, format) a field definition declares. */
function typeOf(f: EventField): [number, number] {
  if (f.type !== undefined) {
    const [enc, fmt] = FIELD_TYPES[f.type];
    return [enc, f.format ?? fmt];
  }
  return [f.encoding!, f.format ?? 0];
}

/** The items Microsoft's enumerator should visit for field `f` holding `v`. */
function expectedItems(f: EventField, v: unknown, out: Omit<Item, "v">[]): void {
  const [enc, fmt0] = typeOf(f);
  const n = jsonKey({ ...f, tag: 0 });
  const t = f.tag ?? 0;
  const isStruct = enc === E.Struct;
  const fmt = isStruct ? f.fields!.length : fmt0;
  const one = (value: unknown, i: number, c: number, a: number) => {
    if (!isStruct) {
      out.push({ s: "value", n, e: enc, f: fmt, t, a, i, c });
      return;
    }
    out.push({ s: "struct", n, e: enc, f: fmt, t, a, i, c });
    f.fields!.forEach((m, k) =>
      expectedItems(
        m,
        Array.isArray(value) ? value[k] : (value as Record<string, unknown>)[m.name],
        out,
      )
    );
    out.push({ s: "/struct", n, e: enc, f: fmt, t, a, i, c });
  };
  if (f.array === undefined) return one(v, 0, 1, 0);
  // A constant-length array of structs is written variable-length (Microsoft's layout).
  const a = f.array === "variable" || isStruct ? E.VArrayFlag : E.CArrayFlag;
  const values = Array.from(v as ArrayLike<unknown>);
  out.push({ s: "array", n, e: enc, f: fmt, t, a, i: 0, c: values.length });
  values.forEach((x, i) => one(x, i, values.length, a));
  out.push({ s: "/array", n, e: enc, f: fmt, t, a, i: values.length, c: values.length });
}

test(
  "Microsoft's EventEnumerator reads every catalogue event's names, attributes, group, flags, header and each field's encoding, format, tag and arrays as defined",
  { skip },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "ummu-enumerator-"));
    try {
      const tar = spawnSync("tar", ["-xJf", join(TOOLS, tarball!), "-C", dir], {
        encoding: "utf8",
      });
      assert.equal(tar.status, 0, tar.stderr);
      const src = join(dir, readdirSync(dir).find((d) => d.startsWith("LinuxTracepoints"))!);
      const exe = join(dir, "enumerate");
      const cc = spawnSync("g++", [
        "-O0",
        "-std=c++17",
        `-I${src}/libeventheader-decode-cpp/include`,
        `-I${src}/libeventheader-tracepoint/include`,
        `-I${src}/libtracepoint/include`,
        DRIVER,
        `${src}/libeventheader-decode-cpp/src/EventEnumerator.cpp`,
        "-o",
        exe,
      ], { encoding: "utf8" });
      assert.equal(cc.status, 0, cc.stderr);

      const cat = catalogue("ummu_");
      const input: Uint8Array[] = [];
      const names: string[] = [];
      for (const ev of cat.events) {
        const p = cat.providers[ev.provider];
        const enc = new EventHeaderEncoder(ev.def);
        if (ev.activity) enc.setActivity(ev.activity[0], ev.activity[1]);
        const name = tracepointName(p.name, enc.level, enc.keyword, p.group ? `G${p.group}` : "");
        const event = enc.bytes(ev.values);
        const head = new Uint8Array(2 + name.length + 4);
        const dv = new DataView(head.buffer);
        dv.setUint16(0, name.length, true);
        head.set(new TextEncoder().encode(name), 2);
        dv.setUint32(2 + name.length, event.length, true);
        input.push(head, event);
        names.push(name);
      }
      const file = join(dir, "events.bin");
      writeFileSync(file, Buffer.concat(input));
      const run = spawnSync(exe, [file], { encoding: "utf8", maxBuffer: 64 << 20 });
      assert.equal(run.status, 0, run.stderr);
      const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines.length, cat.events.length);
      let items = 0;
      cat.events.forEach((ev, k) => {
        const got = lines[k];
        const what = `${names[k]} ${ev.def.name}`;
        assert.equal(got.error, undefined, `${what}: StartEvent error ${got.error}`);
        assert.equal(got.end, 0, `${what}: enumeration ended with error ${got.end}`);
        const p = cat.providers[ev.provider];
        const d = ev.def;
        const hexId = (s: string) =>
          s.replace(/[{}-]/g, "").toLowerCase().replace(/(..)(?!$)/g, "$1 ");
        assert.deepEqual(
          {
            tracepoint: got.tracepoint,
            provider: got.provider,
            options: got.options,
            name: got.name,
            flags: got.flags,
            version: got.version,
            id: got.id,
            tag: got.tag,
            opcode: got.opcode,
            level: got.level,
            keyword: got.keyword,
            activity: got.activity,
            related: got.related,
          },
          {
            tracepoint: names[k],
            provider: p.name,
            options: p.group ? `G${p.group}` : "",
            name: nameWithAttributes(d),
            flags: 7, // 64-bit pointers, little-endian, extensions
            version: d.version ?? 0,
            id: d.id ?? 0,
            tag: d.tag ?? 0,
            opcode: d.opcode ?? 0,
            level: d.level ?? 5,
            keyword: BigInt(d.keyword ?? 1).toString(16),
            activity: ev.activity ? hexId(ev.activity[0]) : null,
            related: d.activity === "related"
              ? hexId(ev.activity![1] ?? "00000000-0000-0000-0000-000000000000")
              : null,
          },
          what,
        );
        const expected: Omit<Item, "v">[] = [];
        (d.fields ?? []).forEach((f, i) => expectedItems(f, ev.values[i], expected));
        const seen = (got.items as Item[]).map(({ v: _v, ...rest }) => rest);
        assert.deepEqual(seen, expected, `${what}: items`);
        items += seen.length;
      });
      assert.ok(items > 600, `${items} items compared`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
