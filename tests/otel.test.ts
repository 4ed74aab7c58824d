/**
 * ummu/otel on the host (no user_events here): the processors and the metric
 * exporter go through the real OpenTelemetry SDK and degrade with one diag
 * message each, never a throw; provider names are checked as Rust checks
 * them; the EventHeader builder's bytes decode (ummu's decoder) to the
 * fields, types and RFC 3339 times the Rust exporters write; and no other
 * entry of the package loads an OpenTelemetry module.
 * The kernel side (events read back from perf) is tests/kernel/otel.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { diag, DiagLogLevel } from "@opentelemetry/api";
import { LoggerProvider } from "@opentelemetry/sdk-logs";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import {
  UserEventsLogProcessor,
  UserEventsMetricExporter,
  UserEventsSpanProcessor,
} from "../src/otel/mod.ts";
import { EventHeaderBuilder } from "../src/otel/eventheader_builder.ts";
import { severityLevel } from "../src/otel/common_schema.ts";
import { decodeEventHeader } from "../src/user_events/eventheader_decode.ts";
import { FieldEncoding, FieldFormat } from "../src/user_events/eventheader_types.ts";
import { UmmuArgumentError } from "../src/errors.ts";
import { UserEvents } from "../src/user_events/user_events_data.ts";

const noUserEvents = UserEvents.available()
  ? "user_events exists here: the disabled-by-absence path is tested where it does not"
  : false;

/** Collects diag messages while `fn` runs. */
async function diagMessages(fn: () => Promise<void> | void): Promise<string[]> {
  const got: string[] = [];
  const push = (m: string) => got.push(m);
  diag.setLogger(
    { error: push, warn: push, info: push, debug: () => {}, verbose: () => {} },
    DiagLogLevel.INFO,
  );
  try {
    await fn();
  } finally {
    diag.disable();
  }
  return got;
}

test("provider names: Rust's rule (not empty, < 234 characters, ASCII letters, digits, '_')", () => {
  for (const ok of ["ValidName", "valid_name", "Valid123", "_valid_name", "a".repeat(233)]) {
    assert.doesNotThrow(() => new UserEventsLogProcessor(ok).shutdown());
  }
  const bad = ["", "a".repeat(234), "Invalid Name", "Invalid:Name", "Invalid-Name", "a;b", "é"];
  for (const name of bad) {
    assert.throws(() => new UserEventsLogProcessor(name), UmmuArgumentError, name);
    assert.throws(() => new UserEventsSpanProcessor(name), UmmuArgumentError, name);
  }
  assert.throws(
    () => new UserEventsLogProcessor("Invalid-Name"),
    /ASCII letters, digits and '_'.*"Invalid-Name"/,
  );
  assert.throws(
    // @ts-expect-error: an unknown option
    () => new UserEventsLogProcessor("ok", { evenName: () => "x" }),
    /unknown option "evenName"/,
  );
});

test("severity number → level as Rust maps it", () => {
  const want = [0, 5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0];
  assert.deepEqual(Array.from({ length: 26 }, (_, i) => severityLevel(i)), want);
  assert.equal(severityLevel(undefined), 0);
});

test("without user_events: one diag message per exporter, no throw, through the SDK", {
  skip: noUserEvents,
}, async () => {
  const msgs = await diagMessages(async () => {
    const logs = new LoggerProvider({ processors: [new UserEventsLogProcessor("ummu_test")] });
    const traces = new TracerProvider({
      spanProcessors: [new UserEventsSpanProcessor("ummu_test")],
    });
    const exporter = new UserEventsMetricExporter();
    const meters = new MeterProvider({
      readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 })],
    });
    const logger = logs.getLogger("t");
    const tracer = traces.getTracer("t");
    const counter = meters.getMeter("t").createCounter("c");
    for (let i = 0; i < 1000; i++) {
      logger.emit({ severityNumber: 9, body: "x", attributes: { i } });
      tracer.startSpan("s").end();
      counter.add(1);
    }
    await meters.forceFlush();
    assert.equal(exporter.enabled, false);
    await logs.shutdown();
    await traces.shutdown();
    await meters.shutdown();
  });
  const ours = msgs.filter((m) => m.startsWith("ummu "));
  assert.equal(ours.length, 3, ours.join("\n"));
  for (const m of ours) {
    assert.match(
      m,
      /user_events is not usable here, so nothing will be written.*ENOENT.*ummu doctor/,
    );
  }
  assert.ok(ours.some((m) => m.includes("UserEventsLogExporter ummu_test")));
  assert.ok(ours.some((m) => m.includes("UserEventsSpanExporter ummu_test")));
  assert.ok(ours.some((m) => m.includes("UserEventsMetricExporter")));
});

test("the builder's bytes: eventheader_dynamic's encodings, decoded field by field", () => {
  const eb = new EventHeaderBuilder();
  eb.reset("Log", 4);
  eb.addU32("__csver__", 0x400);
  const a = eb.addStruct("PartA", 1);
  eb.addTime("time", 1700000000, 123000000);
  eb.addStr("ext_dt_traceId", "0af7651916cd43dd8448eb211c80319c");
  eb.setStructCount(a, 2);
  const b = eb.addStruct("PartB", 3);
  eb.addBool("b", true);
  eb.addI16("severityNumber", -5);
  eb.addI64("i", -(2 ** 40) - 3);
  eb.addF64("f", 1.5);
  eb.addStr("utf", "héllo 🙂");
  eb.setStructCount(b, 5);
  const d = decodeEventHeader(eb.bytes());
  assert.deepEqual([d.flags, d.version, d.id, d.tag, d.opcode, d.level, d.name], [
    7,
    0,
    0,
    0,
    0,
    4,
    "Log",
  ]);
  const f = d.fields;
  assert.deepEqual(
    [f[0].name, f[0].encoding, f[0].format, f[0].value],
    ["__csver__", FieldEncoding.Value32, FieldFormat.UnsignedInt, 0x400],
  );
  assert.equal(f[1].name, "PartA");
  assert.equal(f[1].encoding, FieldEncoding.Struct);
  const pa = f[1].value as typeof f;
  assert.deepEqual(pa.map((x) => [x.name, x.encoding, x.format, x.value]), [
    ["time", FieldEncoding.StringLength16Char8, 0, "2023-11-14T22:13:20.123+00:00"],
    ["ext_dt_traceId", FieldEncoding.StringLength16Char8, 0, "0af7651916cd43dd8448eb211c80319c"],
  ]);
  const pb = f[2].value as typeof f;
  assert.deepEqual(pb.map((x) => [x.name, x.encoding, x.format, x.value]), [
    ["b", FieldEncoding.Value8, FieldFormat.Boolean, true],
    ["severityNumber", FieldEncoding.Value16, FieldFormat.SignedInt, -5],
    ["i", FieldEncoding.Value64, FieldFormat.SignedInt, BigInt(-(2 ** 40) - 3)],
    ["f", FieldEncoding.Value64, FieldFormat.Float, 1.5],
    ["utf", FieldEncoding.StringLength16Char8, 0, "héllo 🙂"],
  ]);
  assert.equal(d.trailing, 0);
});

test("RFC 3339 as chrono's to_rfc3339 prints UTC: 0, 3, 6 or 9 fraction digits, +00:00", () => {
  const eb = new EventHeaderBuilder();
  const cases: [number, number, string][] = [
    [0, 0, "1970-01-01T00:00:00+00:00"],
    [951782400, 5000000, "2000-02-29T00:00:00.005+00:00"], // a leap day
    [1700000000, 123456000, "2023-11-14T22:13:20.123456+00:00"],
    [1700000000, 1, "2023-11-14T22:13:20.000000001+00:00"],
    [4102444799, 999999999, "2099-12-31T23:59:59.999999999+00:00"],
  ];
  for (const [s, ns, want] of cases) {
    eb.reset("E", 5);
    eb.addTime("t", s, ns);
    const d = decodeEventHeader(eb.bytes());
    assert.equal(d.fields[0].value, want);
    // The same instant as JavaScript reads it (milliseconds).
    assert.equal(Date.parse(want), s * 1000 + Math.floor(ns / 1e6));
  }
});

// Paths joined, not `new URL("../x")`: the npm build rewrites those to point into the package.
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const DENO = join(ROOT, "node_modules", ".bin", "deno");

test("no other entry loads an OpenTelemetry module (deno info: each entry's module graph)", {
  skip: existsSync(DENO) ? false : `no deno at ${DENO}`,
}, () => {
  const entries = [
    "mod.ts",
    "src/user_events/mod.ts",
    "src/ummunotify/mod.ts",
    "src/perf/mod.ts",
    "src/doctor.ts",
  ];
  for (const e of entries) {
    const r = spawnSync(DENO, ["info", "--json", e], { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const graph = JSON.parse(r.stdout) as { modules: { specifier: string }[] };
    assert.ok(graph.modules.length > 5, `${e}: a graph of ${graph.modules.length} modules`);
    const otel = graph.modules.filter((m) => /opentelemetry|\/src\/otel\//.test(m.specifier));
    assert.deepEqual(otel.map((m) => m.specifier), [], `${e} loads OpenTelemetry`);
  }
  const r = spawnSync(DENO, ["info", "--json", "src/otel/mod.ts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /opentelemetry/); // the check above can see them
});

/**
 * The compiled package (the installed one when this test runs from the npm
 * package's tests, else the repository's npm/ build): the static import graph
 * of every entry but ./otel, read from the JavaScript, names no OpenTelemetry
 * module. What Node and Bun load is that graph.
 */
const ESM = [join(HERE, "..", "node_modules", "ummu", "esm"), join(HERE, "..", "npm", "esm")]
  .find((d) => existsSync(join(d, "mod.js")));

test("the compiled entries' import graphs name no OpenTelemetry module (but ./otel's does)", {
  skip: ESM ? false : "no compiled package here (node scripts/build_npm.mjs builds npm/)",
}, () => {
  // Static imports and re-exports at the start of a line, and import("..."): not strings in comments.
  const IMPORT =
    /^\s*(?:import|export)\b[^'"`;]*?(?:from\s*|import\s*)["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  const graph = (entry: string) => {
    const seen = new Set<string>();
    const bare = new Set<string>();
    const todo = [join(ESM!, entry)];
    while (todo.length) {
      const f = todo.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      for (const m of readFileSync(f, "utf8").matchAll(IMPORT)) {
        const spec = m[1] ?? m[2];
        if (!spec.startsWith(".")) bare.add(spec);
        else if (existsSync(resolve(dirname(f), spec))) todo.push(resolve(dirname(f), spec));
      }
    }
    return { files: [...seen], bare: [...bare] };
  };
  for (
    const e of [
      "mod.js",
      "src/user_events/mod.js",
      "src/ummunotify/mod.js",
      "src/perf/mod.js",
      "src/doctor.js",
    ]
  ) {
    if (!existsSync(join(ESM!, e))) continue;
    const g = graph(e);
    assert.ok(g.files.length > 5, `${e}: ${g.files.length} modules`);
    assert.deepEqual(g.bare.filter((b) => b.includes("opentelemetry")), [], e);
    assert.deepEqual(g.files.filter((f) => f.includes("/src/otel/")), [], e);
  }
  const otel = graph("src/otel/mod.js");
  assert.ok(otel.bare.includes("@opentelemetry/api"), otel.bare.join(" "));
});

test("the builder reuses the previous event's metadata only while the fields match", () => {
  // Events of changing shapes, each built by one reused builder and by a fresh one: same bytes.
  type Step = (eb: EventHeaderBuilder) => void;
  const shapes: Step[] = [
    (eb) => {
      eb.reset("Log", 4);
      eb.addStr("a", "x");
      eb.addI64("b", 1);
    },
    (eb) => {
      eb.reset("Log", 4);
      eb.addStr("a", "yy");
      eb.addI64("b", 2);
      eb.addBool("c", true);
    },
    (eb) => {
      eb.reset("Log", 4);
      eb.addStr("a", "z"); // fewer fields: the data goes where c's metadata was
    },
    (eb) => {
      eb.reset("Log", 4);
      eb.addStr("a", "z");
      eb.addF64("b", 1.5); // same name, another type
    },
    (eb) => {
      eb.reset("Span", 4);
      const s = eb.addStruct("PartB", 1);
      eb.addStr("a", "é");
      eb.setStructCount(s, 1);
    },
    (eb) => {
      eb.reset("Span", 4);
      eb.addStruct("PartB", 2); // the count set by addStruct, no setStructCount
      eb.addStr("a", "é");
      eb.addStr("b", "");
    },
    (eb) => {
      eb.reset("Log", 2);
      eb.addStr("a", "x");
      eb.addI64("b", 1);
    },
  ];
  const reused = new EventHeaderBuilder();
  for (let round = 0; round < 3; round++) {
    for (const [i, step] of shapes.entries()) {
      step(reused);
      const fresh = new EventHeaderBuilder();
      step(fresh);
      const want = fresh.bytes();
      assert.deepEqual(reused.bytes(), want, `round ${round}, shape ${i}`);
      assert.doesNotThrow(() => decodeEventHeader(want));
    }
  }
});
