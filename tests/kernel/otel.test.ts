/**
 * ummu/otel against a real kernel (the test VM's Linux 6.12 with
 * user_events): records, spans and metrics go through the real OpenTelemetry
 * SDK into ummu's processors and exporter, are read back from the kernel
 * through ummu's perf ring (PerfTracepoint, system-wide), and are decoded
 * field by field against what the Rust exporters (opentelemetry-rust-contrib,
 * see the table in src/otel/common_schema.ts) write for the same record:
 * the expectation is derived here, from those rules, not from ummu's code.
 * With no listener, nothing is written and the processor's heap stays flat.
 *
 * Run: tests/vm/run.sh -- node_modules/.bin/deno test -A --no-check tests/kernel/otel.test.ts
 *      tests/vm/run.sh -- node_modules/.bin/bun test ./tests/kernel/otel.test.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { context, diag, DiagLogLevel, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { LoggerProvider } from "@opentelemetry/sdk-logs";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import {
  UserEventsLogProcessor,
  UserEventsMetricExporter,
  UserEventsSpanProcessor,
} from "../../src/otel/mod.ts";
import { UserEvents } from "../../src/user_events/user_events_data.ts";
import { PerfTracepoint } from "../../src/user_events/perf.ts";
import { tracepointId } from "../../src/user_events/tracefs.ts";
import { type DecodedField, decodeEventHeader } from "../../src/user_events/eventheader_decode.ts";
import { decodePayload, parseFields } from "../../src/user_events/mod.ts";
import { runtime } from "../../ffi/platform.ts";

const skip = UserEvents.available() ? false : process.env.UMMU_IN_VM
  ? false // inside the VM user_events must be there: let the tests fail
  : "needs user_events: runs inside the test VM (tests/vm/run.sh)";

const PROVIDER = `ummu_${runtime.name}_otel`;
const RESOURCE = { "service.name": "checkout", "service.instance.id": "pod-7", "deploy": "blue" };

type Row = [name: string, encoding: number, format: number, value: unknown];
/** [name, encoding, format, value] per field; structs as [name, 1, count, rows]. */
function rows(fields: DecodedField[]): Row[] {
  return fields.map((f) =>
    f.encoding === 1
      ? [f.name, 1, f.format, rows(f.value as DecodedField[])]
      : [f.name, f.encoding, f.format, f.value]
  );
}

// eventheader_dynamic's encodings of Rust's value types.
const STR = (name: string, v: string): Row => [name, 10, 0, v];
const BOOL = (name: string, v: boolean): Row => [name, 2, 7, v];
const I16 = (name: string, v: number): Row => [name, 3, 2, v];
const U32 = (name: string, v: number): Row => [name, 4, 1, v];
const I64 = (name: string, v: number): Row => [name, 5, 2, BigInt(v)];
const F64 = (name: string, v: number): Row => [name, 5, 8, v];
const STRUCT = (name: string, members: Row[]): Row => [name, 1, members.length, members];
/** Rust's attribute rule: bool, int, double, string; anything else the empty string. */
function attr(name: string, v: unknown): Row {
  if (typeof v === "boolean") return BOOL(name, v);
  if (typeof v === "number") return Number.isInteger(v) ? I64(name, v) : F64(name, v);
  if (typeof v === "string") return STR(name, v);
  return STR(name, "");
}
/** chrono's to_rfc3339 of an HrTime: 0/3/6/9 fraction digits, +00:00. */
function rfc3339([s, ns]: [number, number]): string {
  const base = new Date(s * 1000).toISOString().slice(0, 19);
  const digits = ns === 0 ? 0 : ns % 1e6 === 0 ? 3 : ns % 1e3 === 0 ? 6 : 9;
  const frac = digits ? "." + String(ns).padStart(9, "0").slice(0, digits) : "";
  return `${base}${frac}+00:00`;
}
function level(sev: number): number {
  return sev <= 8 ? 5 : sev <= 12 ? 4 : sev <= 16 ? 3 : sev <= 20 ? 2 : 1;
}

function openPerf(name: string): PerfTracepoint {
  return PerfTracepoint.open(tracepointId("user_events", name), { pages: 64 });
}

test(
  "logs: every severity and attribute type through the SDK, read back from perf as Rust writes them",
  {
    skip,
  },
  async () => {
    const processor = new UserEventsLogProcessor(PROVIDER);
    const exported: { hrTime: [number, number] }[] = [];
    const provider = new LoggerProvider({
      resource: resourceFromAttributes(RESOURCE),
      processors: [processor, {
        onEmit: (r) => void exported.push(r as never),
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve(),
      }],
    });
    const perfs = [1, 2, 3, 4, 5].map((l) => openPerf(`${PROVIDER}_L${l}K1`));
    try {
      for (const [l, p] of perfs.entries()) {
        assert.equal(
          processor.enabled({ severityNumber: [21, 17, 13, 9, 1][l] }),
          true,
          `L${l + 1}`,
        );
        assert.ok(p);
      }
      const logger = provider.getLogger("checkout-logger");
      const attributes = {
        ok: true,
        count: 42,
        neg: -7,
        ratio: 0.25,
        user: "ada lovelace ü",
        list: ["a", "b"],
        event_id: 1234,
      };
      const records: { sev: number; body: unknown; text?: string; eventName?: string }[] = [];
      for (let sev = 1; sev <= 24; sev++) {
        const body = [`message ${sev}`, sev * 1000, sev % 2 === 0, sev + 0.5, { k: 1 }][sev % 5];
        const r = {
          severityNumber: sev,
          severityText: sev % 3 === 0 ? undefined : `S${sev}`,
          body,
          eventName: sev === 9 ? "checkout.started" : sev === 10 ? "   " : undefined,
          attributes: sev === 24 ? {} : attributes,
        };
        logger.emit(r);
        records.push({ sev, body, text: r.severityText, eventName: r.eventName });
      }
      // One record in a span: PartA carries its trace and span ids.
      const tracer = trace.getTracer("t");
      const span = new TracerProvider().getTracer("t").startSpan("parent");
      const ctx = trace.setSpan(context.active(), span);
      logger.emit({ severityNumber: 17, body: "in a span", context: ctx });
      void tracer;
      const sc = span.spanContext();
      span.end();

      const got = perfs.flatMap((p) => p.read()).sort((a, b) => Number(a.time - b.time));
      assert.equal(got.length, 25);
      for (let i = 0; i < 25; i++) {
        const d = decodeEventHeader(got[i].raw.subarray(8));
        const sev = i < 24 ? records[i].sev : 17;
        assert.deepEqual([d.flags, d.version, d.id, d.tag, d.opcode, d.level, d.name], [
          7,
          0,
          0,
          0,
          0,
          level(sev),
          "Log",
        ]);
        const partA: Row[] = [STR("time", rfc3339(exported[i].hrTime))];
        if (i === 24) {
          partA.push(STR("ext_dt_traceId", sc.traceId), STR("ext_dt_spanId", sc.spanId));
        }
        partA.push(STR("ext_cloud_role", "checkout"), STR("ext_cloud_roleInstance", "pod-7"));
        const want: Row[] = [U32("__csver__", 0x400), STRUCT("PartA", partA)];
        if (i < 24 && sev !== 24) {
          want.push(STRUCT(
            "PartC",
            Object.entries(attributes).filter(([k]) => k !== "event_id").map(([k, v]) =>
              attr(k, v)
            ),
          ));
        }
        const partB: Row[] = [STR("_typeName", "Log")];
        if (i < 24) {
          const r = records[i];
          partB.push(attr("body", r.body), I16("severityNumber", sev));
          if (r.text !== undefined) partB.push(STR("severityText", r.text));
          if (sev !== 24) partB.push(I64("eventId", 1234));
          if (r.eventName !== undefined && r.eventName.trim()) partB.push(STR("name", r.eventName));
        } else {
          partB.push(STR("body", "in a span"), I16("severityNumber", 17));
        }
        want.push(STRUCT("PartB", partB));
        assert.deepEqual(rows(d.fields), want, `record ${i} (severity ${sev})`);
      }
    } finally {
      for (const p of perfs) p.close();
      await provider.shutdown();
    }
  },
);

test("spans: parent, kind, status, links, events and well-known attributes, as Rust writes them", {
  skip,
}, async () => {
  const ended: { startTime: [number, number]; endTime: [number, number] }[] = [];
  const provider = new TracerProvider({
    resource: resourceFromAttributes(RESOURCE),
    spanProcessors: [new UserEventsSpanProcessor(PROVIDER), {
      onStart: () => {},
      onEnd: (s) => void ended.push(s as never),
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    }],
  });
  const perf = openPerf(`${PROVIDER}_L4K1`);
  try {
    const tracer = provider.getTracer("checkout");
    const parent = tracer.startSpan("GET /cart", { kind: SpanKind.SERVER });
    const ctx = trace.setSpan(context.active(), parent);
    const linked = tracer.startSpan("earlier");
    linked.end();
    const child = tracer.startSpan("SELECT cart", {
      kind: SpanKind.CLIENT,
      attributes: {
        "db.system": "postgresql",
        "retries": 2,
        "http.response.status_code": 503,
        "cached": false,
        "weight": 1.5,
        "tags": ["x"],
      },
      links: [{ context: linked.spanContext() }],
    }, ctx);
    child.addEvent("row", { n: 1 });
    child.setStatus({ code: SpanStatusCode.ERROR, message: "timeout" });
    child.end();
    parent.setStatus({ code: SpanStatusCode.OK });
    parent.end();
    for (const kind of [SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER]) {
      tracer.startSpan(`k${kind}`, { kind }).end();
    }

    const got = perf.read().sort((a, b) => Number(a.time - b.time));
    assert.equal(got.length, 6);
    const spans = [
      { s: linked, name: "earlier", kind: 0, parent: "", ok: true },
      { s: child, name: "SELECT cart", kind: 2, parent: parent.spanContext().spanId, ok: false },
      { s: parent, name: "GET /cart", kind: 1, parent: "", ok: true },
      { s: null, name: "k0", kind: 0, parent: "", ok: true },
      { s: null, name: "k3", kind: 3, parent: "", ok: true },
      { s: null, name: "k4", kind: 4, parent: "", ok: true },
    ];
    for (let i = 0; i < 6; i++) {
      const d = decodeEventHeader(got[i].raw.subarray(8));
      assert.deepEqual([d.flags, d.opcode, d.level, d.name], [7, 0, 4, "Span"]);
      const e = spans[i];
      const sc = (e.s ?? null)?.spanContext();
      const fields = rows(d.fields);
      const partA = fields[1][3] as Row[];
      if (sc) {
        assert.deepEqual(partA.slice(1, 3), [
          STR("ext_dt_traceId", sc.traceId),
          STR("ext_dt_spanId", sc.spanId),
        ]);
      }
      const want: Row[] = [
        U32("__csver__", 0x400),
        STRUCT("PartA", [
          STR("time", rfc3339(ended[i].endTime)),
          partA[1],
          partA[2],
          STR("ext_cloud_role", "checkout"),
          STR("ext_cloud_roleInstance", "pod-7"),
        ]),
      ];
      const partB: Row[] = [
        STR("_typeName", "Span"),
        STR("name", e.name),
        STR("parentId", e.parent),
        STR("startTime", rfc3339(ended[i].startTime)),
        BOOL("success", e.ok),
        U32("kind", e.kind),
      ];
      if (i === 1) {
        partB.push(
          STR("dbSystem", "postgresql"),
          I64("httpStatusCode", 503),
          STR("statusMessage", "timeout"),
          STR(
            "links",
            `[{"toTraceId":"${linked.spanContext().traceId}","toSpanId":"${linked.spanContext().spanId}"}]`,
          ),
        );
      }
      want.push(STRUCT("PartB", partB));
      if (i === 1) {
        want.push(STRUCT("PartC", [
          I64("retries", 2),
          BOOL("cached", false),
          F64("weight", 1.5),
          STR("tags", ""),
        ]));
      }
      assert.deepEqual(fields, want, `span ${e.name}`);
    }
  } finally {
    perf.close();
    await provider.shutdown();
  }
});

/** A protobuf message's fields: number -> values (varints as bigint, the rest as bytes). */
function protoFields(buf: Uint8Array): Map<number, (Uint8Array | bigint)[]> {
  const out = new Map<number, (Uint8Array | bigint)[]>();
  let p = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n;; shift += 7n) {
      const b = buf[p++];
      assert.ok(b !== undefined, "a truncated varint");
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  while (p < buf.length) {
    const key = Number(varint());
    const wire = key & 7;
    let v: Uint8Array | bigint;
    if (wire === 0) v = varint();
    else if (wire === 1) v = buf.subarray(p, p += 8);
    else if (wire === 5) v = buf.subarray(p, p += 4);
    else if (wire === 2) {
      const n = Number(varint());
      v = buf.subarray(p, p += n);
    } else throw new Error(`wire type ${wire} at ${p}`);
    assert.ok(p <= buf.length, "a field past the end");
    const list = out.get(key >> 3) ?? [];
    list.push(v);
    out.set(key >> 3, list);
  }
  return out;
}
/** The one value of field `n` (asserting there is exactly one), as bytes. */
function one(f: Map<number, (Uint8Array | bigint)[]>, n: number): Uint8Array {
  const list = f.get(n) ?? [];
  assert.equal(list.length, 1, `field ${n} once`);
  return list[0] as Uint8Array;
}
const str = (b: Uint8Array) => new TextDecoder().decode(b);
const fixed64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8);

test("metrics: one otlp_metrics event per data point (protocol 0, v0.19.00, OTLP protobuf)", {
  skip,
}, async () => {
  const exporter = new UserEventsMetricExporter();
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes(RESOURCE),
    readers: [reader],
  });
  const perf = openPerf("otlp_metrics");
  try {
    assert.equal(exporter.enabled, true);
    const meter = provider.getMeter("checkout-meter");
    meter.createCounter("requests").add(3, { route: "/cart" });
    meter.createCounter("requests_b").add(1, { route: "/a" });
    const up = meter.createUpDownCounter("in_flight");
    up.add(5, { route: "/a" });
    up.add(-2, { route: "/b" });
    meter.createHistogram("latency_ms").record(12.5);
    meter.createGauge("temperature").record(21.5);
    meter.createObservableGauge("queue_depth").addCallback((r) => r.observe(7));
    meter.createObservableCounter("bytes_total").addCallback((r) => r.observe(4096));
    meter.createObservableUpDownCounter("workers").addCallback((r) => r.observe(3));
    await provider.forceFlush();

    const layout = parseFields("u32 protocol;char[8] version;__rel_loc u8[] buffer");
    const got = perf.read().map((s) => decodePayload(layout, s.raw.subarray(8)));
    // [metric, data field (5 gauge, 7 sum, 9 histogram), value] per data point.
    const want: [string, number, number][] = [
      ["requests", 7, 3],
      ["requests_b", 7, 1],
      ["in_flight", 7, 5],
      ["in_flight", 7, -2],
      ["latency_ms", 9, 12.5], // a histogram point: its sum
      ["temperature", 5, 21.5],
      ["queue_depth", 5, 7],
      ["bytes_total", 7, 4096],
      ["workers", 7, 3],
    ];
    assert.equal(got.length, want.length); // one event per data point
    const seen: [string, number, number][] = [];
    for (const g of got) {
      assert.equal(g.protocol, 0);
      assert.equal(g.version, "v0.19.00");
      const buf = g.buffer as Uint8Array;
      assert.ok(buf.length > 0 && buf.length <= 65360);
      // ExportMetricsServiceRequest { resource_metrics = 1 }: exactly one of each level down.
      const rm = one(protoFields(buf), 1);
      const rmf = protoFields(rm);
      const resource = protoFields(one(rmf, 1));
      const attrs = new Map((resource.get(1) ?? []).map((kv) => {
        const f = protoFields(kv as Uint8Array);
        return [str(one(f, 1)), str(one(protoFields(one(f, 2)), 1))];
      }));
      assert.equal(attrs.get("service.name"), "checkout");
      assert.equal(attrs.get("service.instance.id"), "pod-7");
      const sm = protoFields(one(rmf, 2));
      assert.equal(str(one(protoFields(one(sm, 1)), 1)), "checkout-meter", "the scope");
      const metric = protoFields(one(sm, 2));
      const name = str(one(metric, 1));
      const kind = [5, 7, 9].find((k) => metric.has(k))!;
      const point = protoFields(one(protoFields(one(metric, kind)), 1)); // one data point
      let value: number;
      if (kind === 9) {
        assert.equal(fixed64(one(point, 4) as Uint8Array).getBigUint64(0, true), 1n, "count");
        value = fixed64(one(point, 5) as Uint8Array).getFloat64(0, true);
      } else if (point.has(4)) value = fixed64(one(point, 4) as Uint8Array).getFloat64(0, true);
      else value = Number(fixed64(one(point, 6) as Uint8Array).getBigInt64(0, true));
      seen.push([name, kind, value]);
    }
    const order = (a: [string, number, number], b: [string, number, number]) =>
      a[0] === b[0] ? a[2] - b[2] : a[0] < b[0] ? -1 : 1;
    assert.deepEqual(seen.sort(order), [...want].sort(order));
  } finally {
    perf.close();
    await provider.shutdown();
  }
});

test("no listener: nothing written, and the processor's heap stays flat over many records", {
  skip,
}, async () => {
  const processor = new UserEventsLogProcessor(PROVIDER);
  const captured: unknown[] = [];
  const provider = new LoggerProvider({
    processors: [{
      onEmit: (r) => void captured.push(r),
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    }],
  });
  provider.getLogger("t").emit({ severityNumber: 9, body: "x", attributes: { a: 1, b: "s" } });
  const record = captured[0] as never;
  assert.equal(processor.enabled({ severityNumber: 9 }), false);
  for (let i = 0; i < 10_000; i++) processor.onEmit(record); // warm up
  const before = process.memoryUsage().heapUsed;
  const N = 1_000_000;
  for (let i = 0; i < N; i++) processor.onEmit(record);
  const grew = process.memoryUsage().heapUsed - before;
  // An allocation per call (16 bytes at least) would be 16 MB here.
  assert.ok(grew < N, `heap grew ${grew} bytes over ${N} calls`);
  // With a listener the same record is written (the check above was not vacuous).
  const perf = openPerf(`${PROVIDER}_L4K1`);
  try {
    assert.equal(processor.exporter.writeRecord(record), true);
    assert.equal(perf.read().length, 1);
  } finally {
    perf.close();
    await processor.shutdown();
    await provider.shutdown();
  }
});

test("edge records: over 127 attributes, a NUL in a key, keys named like Object's members", {
  skip,
}, async () => {
  const said: string[] = [];
  diag.setLogger({
    error: (m) => said.push(m),
    warn: (m) => said.push(m),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  }, DiagLogLevel.WARN);
  const logs = new LoggerProvider({
    processors: [new UserEventsLogProcessor(PROVIDER)],
    logRecordLimits: { attributeCountLimit: 1000 },
  });
  const traces = new TracerProvider({
    spanProcessors: [new UserEventsSpanProcessor(PROVIDER)],
    spanLimits: { attributeCountLimit: 1000 },
  });
  const perf = openPerf(`${PROVIDER}_L4K1`);
  try {
    const many: Record<string, number> = { "toString": 1, "a\0b": 2 };
    for (let i = 0; i < 140; i++) many[`k${i}`] = i;
    logs.getLogger("t").emit({ severityNumber: 9, body: "many", attributes: many });
    logs.getLogger("t").emit({ severityNumber: 9, body: "many", attributes: many });
    traces.getTracer("t").startSpan("s", { attributes: { constructor: "c", "db.system": "x" } })
      .end();
    const got = perf.read().map((s) => rows(decodeEventHeader(s.raw.subarray(8)).fields));
    assert.equal(got.length, 3);
    for (const ev of got.slice(0, 2)) {
      const partC = ev.find((r) => r[0] === "PartC")!;
      assert.equal(partC[2], 127, "PartC holds 127 attributes");
      const names = (partC[3] as Row[]).map((r) => r[0]);
      assert.deepEqual(names.slice(0, 3), ["toString", "a\uFFFDb", "k0"]);
      assert.equal(names.length, 127);
      const partB = ev.find((r) => r[0] === "PartB")!;
      assert.deepEqual((partB[3] as Row[]).map((r) => r[0]), [
        "_typeName",
        "body",
        "severityNumber",
      ]);
    }
    const span = got[2];
    const partB = span.find((r) => r[0] === "PartB")![3] as Row[];
    assert.deepEqual(partB.at(-1), STR("dbSystem", "x"));
    assert.deepEqual(
      span.find((r) => r[0] === "PartC"),
      STRUCT("PartC", [STR("constructor", "c")]),
    );
    const ours = said.filter((m) => m.includes("more than 127 attributes"));
    assert.equal(ours.length, 1, said.join("\n"));
  } finally {
    perf.close();
    diag.disable();
    await logs.shutdown();
    await traces.shutdown();
  }
});
