/**
 * OpenTelemetry over user_events: a LogRecordProcessor, a SpanProcessor and
 * a MetricExporter (and the exporters behind them) that write what the Rust
 * exporters of open-telemetry/opentelemetry-rust-contrib write, so a
 * collector that reads Rust's events reads these the same way. The
 * OpenTelemetry packages are peer dependencies of this entry only.
 *
 * @example
 * ```ts
 * import { LoggerProvider } from "@opentelemetry/sdk-logs";
 * import { TracerProvider } from "@opentelemetry/sdk-trace";
 * import { UserEventsLogProcessor, UserEventsSpanProcessor } from "ummu/otel";
 *
 * // Tracepoints myco_myapp_L1K1..L5K1 (logs) and myco_myapp_L4K1 (spans).
 * const logs = new LoggerProvider({ processors: [new UserEventsLogProcessor("myco_myapp")] });
 * const traces = new TracerProvider({ spanProcessors: [new UserEventsSpanProcessor("myco_myapp")] });
 * logs.getLogger("app").emit({ severityNumber: 9, body: "started" });
 * traces.getTracer("app").startSpan("work").end();
 * await logs.shutdown();
 * await traces.shutdown();
 * ```
 * @module
 */
export { UserEventsLogExporter, type UserEventsLogOptions } from "./logs_exporter.ts";
export { UserEventsLogProcessor } from "./logs_processor.ts";
export {
  UserEventsSpanExporter,
  UserEventsSpanProcessor,
  WELL_KNOWN_ATTRIBUTES,
} from "./span_exporter.ts";
export {
  OTLP_METRICS_FIELDS,
  OTLP_METRICS_MAX_EVENT_SIZE,
  OTLP_METRICS_PROTOCOL,
  OTLP_METRICS_TRACEPOINT,
  OTLP_METRICS_VERSION,
  UserEventsMetricExporter,
} from "./metrics_exporter.ts";
export { CS_VERSION, severityLevel } from "./common_schema.ts";
export type {
  OtelExportResult,
  OtelLogRecord,
  OtelResource,
  OtelResourceMetrics,
  OtelSpan,
  OtelSpanIds,
  OtelTime,
} from "./otel_types.ts";
