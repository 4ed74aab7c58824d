/**
 * ummu/otel's events judged by Microsoft's own tools, in the VM: perf-collect
 * records the log and span tracepoints while records and spans go through
 * the real OpenTelemetry SDK into ummu's processors, and perf-decode's JSON
 * must show every field (PartA, PartC, PartB, their names, order and values)
 * and the header (level, keyword) as the Rust exporters would have written
 * them. The tools are built from ../shared/tools/linuxtracepoints
 * (tests/fixtures/otel_linuxtracepoints.ts).
 *
 * Run: tests/vm/run.sh -- node_modules/.bin/deno test -A --no-check tests/kernel/otel_perf_decode.test.ts
 *      tests/vm/run.sh -- node_modules/.bin/bun test ./tests/kernel/otel_perf_decode.test.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  context,
  INVALID_SPAN_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { LoggerProvider } from "@opentelemetry/sdk-logs";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { UserEventsLogProcessor, UserEventsSpanProcessor } from "../../src/otel/mod.ts";
import { UserEvents } from "../../src/user_events/user_events_data.ts";
import { runtime } from "../../ffi/platform.ts";
import { perfDecodeRecords } from "../fixtures/user_events_eventheader_catalogue.ts";

/** JSON.stringify's replacer for the bigints of perf-decode's records (in messages). */
const jsonBigint = (_k: string, v: unknown) => typeof v === "bigint" ? v.toString() : v;
import { linuxTracepointsSkip, linuxTracepointsTools } from "../fixtures/otel_linuxtracepoints.ts";

const skip = linuxTracepointsSkip() ||
  (UserEvents.available() || process.env.UMMU_IN_VM
    ? false // inside the VM user_events must be there: let the test fail
    : "needs user_events: runs inside the test VM (tests/vm/run.sh)");

const PROVIDER = `ummu_${runtime.name}_otelpd`;
const RESOURCE = { "service.name": "checkout", "service.instance.id": "pod-7" };

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** chrono's to_rfc3339 of an HrTime (0/3/6/9 fraction digits, +00:00). */
function rfc3339([s, ns]: [number, number]): string {
  const base = new Date(s * 1000).toISOString().slice(0, 19);
  const digits = ns === 0 ? 0 : ns % 1e6 === 0 ? 3 : ns % 1e3 === 0 ? 6 : 9;
  return `${base}${digits ? "." + String(ns).padStart(9, "0").slice(0, digits) : ""}+00:00`;
}

test("perf-collect records and perf-decode decodes ummu/otel's logs and spans as Rust's", {
  skip,
  timeout: 900_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "otel-perf-decode-"));
  try {
    const tools = linuxTracepointsTools(dir);
    const data = join(dir, "otel.data");
    const logRecords: { hrTime: [number, number] }[] = [];
    const spans: { startTime: [number, number]; endTime: [number, number] }[] = [];
    const logs = new LoggerProvider({
      resource: resourceFromAttributes(RESOURCE),
      processors: [new UserEventsLogProcessor(PROVIDER), {
        onEmit: (r) => void logRecords.push(r as never),
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve(),
      }],
    });
    const traces = new TracerProvider({
      resource: resourceFromAttributes(RESOURCE),
      spanProcessors: [new UserEventsSpanProcessor(PROVIDER), {
        onStart: () => {},
        onEnd: (s) => void spans.push(s as never),
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve(),
      }],
    });
    const tracepoints = [1, 2, 3, 4, 5].map((l) => `user_events:${PROVIDER}_L${l}K1`);
    let log = "";
    const collector = spawn(tools.collect, ["-o", data, ...tracepoints], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    collector.stdout!.on("data", (b) => (log += b));
    collector.stderr!.on("data", (b) => (log += b));
    const exited = new Promise<string>((resolve) =>
      collector.on("exit", (code, signal) => resolve(signal ?? `status ${code}`))
    );
    const tracer = traces.getTracer("checkout");
    const logger = logs.getLogger("checkout");
    let parentId = "";
    let childCtx: SpanContext = INVALID_SPAN_CONTEXT;
    let linkCtx: SpanContext = INVALID_SPAN_CONTEXT;
    try {
      assert.ok(
        await until(() => /info: created/.test(log) || collector.exitCode !== null, 300_000),
        `perf-collect did not start: ${log}`,
      );
      assert.equal(collector.exitCode, null, `perf-collect exited: ${log}`);
      for (const [sev, body] of [[21, "fatal"], [17, 404], [13, true], [9, 2.5], [1, "trace"]]) {
        logger.emit({
          severityNumber: sev as number,
          severityText: `S${sev}`,
          body,
          eventName: sev === 9 ? "checkout.step" : undefined,
          attributes: { user: "ada", n: -3, ok: false, ratio: 0.5, list: [1], event_id: 77 },
        });
      }
      const parent = tracer.startSpan("GET /cart", { kind: SpanKind.SERVER });
      parentId = parent.spanContext().spanId;
      const linked = tracer.startSpan("earlier");
      linked.end();
      linkCtx = linked.spanContext();
      const child = tracer.startSpan("SELECT", {
        kind: SpanKind.CLIENT,
        attributes: { "db.system": "postgresql", rows: 12 },
        links: [{ context: linkCtx }],
      }, trace.setSpan(context.active(), parent));
      child.setStatus({ code: SpanStatusCode.ERROR, message: "timeout" });
      child.end();
      childCtx = child.spanContext();
      parent.end();
    } finally {
      collector.kill("SIGINT");
    }
    assert.match(await exited, /^(SIGINT|status 0)$/, `perf-collect: ${log}`);
    await logs.shutdown();
    await traces.shutdown();

    const records = perfDecodeRecords(tools.decode, data);
    assert.equal(records.length, 8, JSON.stringify(records, jsonBigint).slice(0, 4000));

    const strip = (r: Record<string, unknown>) => {
      const { meta, ...rest } = r as Record<string, unknown> & { meta: Record<string, unknown> };
      const { time: _t, cpu: _c, pid, tid: _tid, ...hdr } = meta;
      assert.equal(pid, process.pid);
      return { rest, hdr };
    };
    const role = { ext_cloud_role: "checkout", ext_cloud_roleInstance: "pod-7" };
    const levels = [1, 2, 3, 4, 5];
    const bodies = ["fatal", 404, true, 2.5, "trace"];
    for (let i = 0; i < 5; i++) {
      const { rest, hdr } = strip(records[i]);
      const sev = [21, 17, 13, 9, 1][i];
      assert.deepEqual(hdr, { level: levels[i], keyword: "0x1" }, `log ${i} header`);
      const partB: Record<string, unknown> = {
        _typeName: "Log",
        body: bodies[i],
        severityNumber: sev,
        severityText: `S${sev}`,
        eventId: 77,
      };
      if (sev === 9) partB.name = "checkout.step";
      assert.deepEqual(rest, {
        n: `${PROVIDER}:Log`,
        __csver__: 1024,
        PartA: { time: rfc3339(logRecords[i].hrTime), ...role },
        PartC: { user: "ada", n: -3, ok: false, ratio: 0.5, list: "" },
        PartB: partB,
      }, `log ${i}`);
      assert.deepEqual(Object.keys(rest), ["n", "__csver__", "PartA", "PartC", "PartB"]);
    }
    const spanWant = [
      { name: "earlier", parentId: "", success: true, kind: 0, ctx: linkCtx },
      { name: "SELECT", parentId, success: false, kind: 2, ctx: childCtx },
      { name: "GET /cart", parentId: "", success: true, kind: 1, ctx: null },
    ];
    for (let i = 0; i < 3; i++) {
      const { rest, hdr } = strip(records[5 + i]);
      assert.deepEqual(hdr, { level: 4, keyword: "0x1" }, `span ${i} header`);
      const w = spanWant[i];
      const partA = rest.PartA as Record<string, unknown>;
      if (w.ctx) {
        assert.equal(partA.ext_dt_traceId, w.ctx.traceId);
        assert.equal(partA.ext_dt_spanId, w.ctx.spanId);
      }
      const partB: Record<string, unknown> = {
        _typeName: "Span",
        name: w.name,
        parentId: w.parentId,
        startTime: rfc3339(spans[i].startTime),
        success: w.success,
        kind: w.kind,
      };
      const want: Record<string, unknown> = {
        n: `${PROVIDER}:Span`,
        __csver__: 1024,
        PartA: {
          time: rfc3339(spans[i].endTime),
          ext_dt_traceId: partA.ext_dt_traceId,
          ext_dt_spanId: partA.ext_dt_spanId,
          ...role,
        },
        PartB: partB,
      };
      if (i === 1) {
        partB.dbSystem = "postgresql";
        partB.statusMessage = "timeout";
        partB.links = `[{"toTraceId":"${linkCtx.traceId}","toSpanId":"${linkCtx.spanId}"}]`;
        want.PartC = { rows: 12 };
      }
      assert.deepEqual(rest, want, `span ${w.name}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
