/**
 * Metrics over user_events, as Rust's opentelemetry-user-events-metrics
 * writes them (table in common_schema.ts): not EventHeader but one raw
 * tracepoint, `otlp_metrics` with `u32 protocol; char[8] version; __rel_loc
 * u8[] buffer`, whose buffer is an OTLP ExportMetricsServiceRequest in
 * protobuf holding one data point (the resource, the scope, the metric with
 * that one point), at most 65360 bytes. Use it with the SDK's
 * PeriodicExportingMetricReader. When nobody listens, export() checks the
 * enable bit once and serializes nothing.
 */
import type { ResourceMetrics } from "@opentelemetry/sdk-metrics";
import type { OtelExportResult, OtelResourceMetrics } from "./otel_types.ts";
import { ProtobufMetricsSerializer } from "@opentelemetry/otlp-transformer";
import { UserEvents } from "../user_events/user_events_data.ts";
import type { Tracepoint } from "../user_events/tracepoint.ts";
import { OnceReporter, unavailableHint } from "./common_schema.ts";

/** Rust's METRICS_EVENT_DEF (without the NUL). */
export const OTLP_METRICS_TRACEPOINT = "otlp_metrics";
/** The tracepoint's fields, as Rust registers them. */
export const OTLP_METRICS_FIELDS = "u32 protocol;char[8] version;__rel_loc u8[] buffer";
/** protocol 0: protobuf. */
export const OTLP_METRICS_PROTOCOL = 0;
/** The protobuf definition version Rust writes (exactly 8 characters). */
export const OTLP_METRICS_VERSION = "v0.19.00";
/** Rust's MAX_EVENT_SIZE: a larger encoded data point is dropped. */
export const OTLP_METRICS_MAX_EVENT_SIZE = 65360;

const SUCCESS: OtelExportResult = { code: 0 };

/**
 * `new PeriodicExportingMetricReader({ exporter: new UserEventsMetricExporter() })`.
 * Never throws once constructed: without user_events it reports once through
 * diag and exports nothing.
 */
export class UserEventsMetricExporter {
  readonly #report = new OnceReporter("ummu UserEventsMetricExporter");
  #events: UserEvents | null = null;
  #tp: Tracepoint | null = null;

  /** Registers `otlp_metrics` (shared with any other process that registered it the same way). */
  constructor() {
    try {
      this.#events = UserEvents.open();
      this.#tp = this.#events.register(OTLP_METRICS_TRACEPOINT, OTLP_METRICS_FIELDS);
    } catch (e) {
      this.#report.warn("open", unavailableHint(e));
      this.#events?.close();
      this.#events = null;
    }
  }

  /** True while a tracer listens on user_events:otlp_metrics. */
  get enabled(): boolean {
    return this.#tp !== null && this.#tp.enabled;
  }

  /** PushMetricExporter.export: one event per data point, when someone listens. */
  export(
    metrics: OtelResourceMetrics,
    resultCallback: (result: OtelExportResult) => void,
  ): void {
    const tp = this.#tp;
    if (tp === null || !tp.enabled) {
      resultCallback(SUCCESS);
      return;
    }
    try {
      for (const scope of metrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          for (const point of metric.dataPoints as unknown[]) {
            this.#writePoint(tp, metrics, scope, metric, point);
          }
        }
      }
    } catch (e) {
      this.#report.warn("build", `metrics could not be exported (${(e as Error).message})`);
    }
    resultCallback(SUCCESS);
  }

  #writePoint(
    tp: Tracepoint,
    metrics: OtelResourceMetrics,
    scope: OtelResourceMetrics["scopeMetrics"][number],
    metric: OtelResourceMetrics["scopeMetrics"][number]["metrics"][number],
    point: unknown,
  ): void {
    const one = {
      resource: metrics.resource,
      scopeMetrics: [{
        scope: scope.scope,
        metrics: [{ ...metric, dataPoints: [point] }],
      }],
    } as unknown as ResourceMetrics; // the SDK's own objects, one point kept
    const bytes = ProtobufMetricsSerializer.serializeRequest(one);
    if (bytes === undefined) {
      this.#report.warn("serialize", `metric ${metric.descriptor.name} could not be serialized`);
      return;
    }
    if (bytes.length > OTLP_METRICS_MAX_EVENT_SIZE) {
      this.#report.warn(
        "size",
        `a data point of ${metric.descriptor.name} encodes to ${bytes.length} bytes, over the ${OTLP_METRICS_MAX_EVENT_SIZE} an otlp_metrics event holds; it was dropped: fewer attributes or histogram buckets`,
      );
      return;
    }
    try {
      tp.emit(OTLP_METRICS_PROTOCOL, OTLP_METRICS_VERSION, bytes);
    } catch (e) {
      this.#report.warn("write", `writing otlp_metrics failed: ${(e as Error).message}`);
    }
  }

  /** Nothing is buffered. */
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  /** Unregisters the tracepoint. */
  shutdown(): Promise<void> {
    const ev = this.#events;
    this.#events = null;
    this.#tp = null;
    ev?.close();
    return Promise.resolve();
  }
}
