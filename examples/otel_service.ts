/**
 * A service instrumented with OpenTelemetry whose logs, spans and metrics go
 * to user_events through ummu/otel: the only user_events-specific lines are
 * the three processor/exporter constructors. It handles a few "requests"
 * (no network: a function call each), each a server span with a database
 * child span, a log line and two metric points.
 *
 * Where the kernel has user_events, the events go to whoever listens:
 *
 *   perf record -a -e 'user_events:myco_checkout_L*' -e user_events:otlp_metrics -- sleep 10
 *   perf-decode perf.data                         # Microsoft's LinuxTracepoints decoder
 *
 * Without user_events (or with nobody listening) they go nowhere, and the
 * processors say so once through OpenTelemetry's diag logger: the service
 * runs the same either way.
 *
 *   deno run -A examples/otel_service.ts    bun examples/otel_service.ts
 *   node node_modules/ummu/examples/otel_service.js    (the npm package, with the
 *                                                       @opentelemetry peers installed)
 */
import {
  context,
  diag,
  type DiagLogger,
  DiagLogLevel,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { LoggerProvider } from "@opentelemetry/sdk-logs";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import {
  UserEventsLogProcessor,
  UserEventsMetricExporter,
  UserEventsSpanProcessor,
} from "ummu/otel";
import { UserEvents } from "ummu/user_events";

const PROVIDER = "myco_checkout";

export async function main(): Promise<void> {
  const said: string[] = [];
  const say = (m: string) => said.push(m);
  const logger: DiagLogger = {
    error: say,
    warn: say,
    info: say,
    debug: () => {},
    verbose: () => {},
  };
  diag.setLogger(logger, DiagLogLevel.WARN);

  const resource = resourceFromAttributes({
    "service.name": "checkout",
    "service.instance.id": `pid-${globalThis.process?.pid ?? 0}`,
  });
  const logs = new LoggerProvider({ resource, processors: [new UserEventsLogProcessor(PROVIDER)] });
  const spanProcessor = new UserEventsSpanProcessor(PROVIDER);
  const traces = new TracerProvider({ resource, spanProcessors: [spanProcessor] });
  const metricExporter = new UserEventsMetricExporter();
  const meters = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter: metricExporter,
        exportIntervalMillis: 60_000,
      }),
    ],
  });

  const log = logs.getLogger("checkout");
  const tracer = traces.getTracer("checkout");
  const meter = meters.getMeter("checkout");
  const requests = meter.createCounter("http.server.requests");
  const latency = meter.createHistogram("http.server.duration", { unit: "ms" });

  const routes = ["/cart", "/pay", "/cart", "/missing"];
  let served = 0;
  for (const route of routes) {
    const started = performance.now();
    const span = tracer.startSpan(`GET ${route}`, {
      kind: SpanKind.SERVER,
      attributes: { "http.request.method": "GET", "url.full": `http://shop${route}` },
    });
    const ctx = trace.setSpan(context.active(), span);
    const db = tracer.startSpan("SELECT items", {
      kind: SpanKind.CLIENT,
      attributes: { "db.system": "sqlite", "db.statement": "SELECT * FROM items" },
    }, ctx);
    db.end();
    const status = route === "/missing" ? 404 : 200;
    span.setAttribute("http.response.status_code", status);
    if (status !== 200) span.setStatus({ code: SpanStatusCode.ERROR, message: "not found" });
    log.emit({
      context: ctx,
      severityNumber: status === 200 ? 9 : 13, // INFO, WARN
      severityText: status === 200 ? "INFO" : "WARN",
      body: `GET ${route} -> ${status}`,
      attributes: { route, status },
    });
    span.end();
    requests.add(1, { route, status });
    latency.record(performance.now() - started, { route });
    served++;
  }
  await meters.forceFlush();

  const available = UserEvents.available();
  console.log(`otel_service: served ${served} requests, logs/spans/metrics through ummu/otel`);
  if (!available) {
    console.log(
      "otel_service: this kernel has no usable user_events: the events went nowhere (the service ran the same)",
    );
  } else if (!spanProcessor.exporter.enabled) {
    console.log(
      `otel_service: user_events is here but nobody listened: nothing was written (perf record -a -e user_events:${PROVIDER}_L4K1 ... to see them)`,
    );
  } else {
    console.log(
      `otel_service: written to user_events:${PROVIDER}_L*K1 and user_events:otlp_metrics`,
    );
  }
  // One diag message per processor/exporter, each once; the first says why.
  if (said.length > 0) console.log(`  diag (${said.length} messages), the first: ${said[0]}`);

  await logs.shutdown();
  await traces.shutdown();
  await meters.shutdown();
  diag.disable();
  if (!available && said.length !== 3) {
    throw new Error(`otel_service: expected one diag message per exporter, got ${said.length}`);
  }
}

if (import.meta.main) await main();
