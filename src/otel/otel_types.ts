/**
 * The shapes of the OpenTelemetry SDK's objects that ummu/otel reads: each
 * a structural subset of the SDK's type (ReadableLogRecord, ReadableSpan,
 * ResourceMetrics, ExportResult), so the SDK's own objects are accepted and
 * this entry's API names no type of another package (the OpenTelemetry
 * packages are peers: their types are the user's, at the user's version).
 */

/** [seconds, nanoseconds] since the epoch: OpenTelemetry's HrTime. */
export type OtelTime = readonly [number, number];

/** A trace and span id pair (SpanContext), lowercase hex. */
export interface OtelSpanIds {
  /** 32 hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
}

/** A resource: its attributes (service.name, service.instance.id, …). */
export interface OtelResource {
  /** The resource attributes. */
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** What the log exporter reads of a log record (the SDK's ReadableLogRecord has these). */
export interface OtelLogRecord {
  /** The record's time. */
  readonly hrTime: OtelTime;
  /** When the SDK saw it. */
  readonly hrTimeObserved: OtelTime;
  /** The span it was emitted in, if any. */
  readonly spanContext?: OtelSpanIds;
  /** 1..24 (SeverityNumber); none or 0: not written. */
  readonly severityNumber?: number;
  /** The severity's name as the caller gave it. */
  readonly severityText?: string;
  /** The body (string, number, boolean; anything else is written as ""). */
  readonly body?: unknown;
  /** The event name (PartB's `name` when not blank). */
  readonly eventName?: string;
  /** The resource (PartA's cloud role). */
  readonly resource: OtelResource;
  /** The attributes (PartC; an integer `event_id` goes to PartB's eventId). */
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** What the span exporter reads of an ended span (the SDK's ReadableSpan has these). */
export interface OtelSpan {
  /** The span name. */
  readonly name: string;
  /** SpanKind: 0 internal, 1 server, 2 client, 3 producer, 4 consumer. */
  readonly kind: number;
  /** Its trace and span ids. */
  spanContext(): OtelSpanIds;
  /** The parent's ids (a root span has none). */
  readonly parentSpanContext?: OtelSpanIds;
  /** Start. */
  readonly startTime: OtelTime;
  /** End. */
  readonly endTime: OtelTime;
  /** SpanStatus: code 0 unset, 1 ok, 2 error; an error's message. */
  readonly status: { readonly code: number; readonly message?: string };
  /** The attributes (well-known ones go to PartB, renamed). */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Its links (PartB's `links`). */
  readonly links: readonly { readonly context: OtelSpanIds }[];
  /** The resource (PartA's cloud role). */
  readonly resource: OtelResource;
}

/** What the metric exporter reads of a collection (the SDK's ResourceMetrics has these). */
export interface OtelResourceMetrics {
  /** The resource, serialized into every event. */
  readonly resource: unknown;
  /** Per instrumentation scope, its metrics. */
  readonly scopeMetrics: readonly {
    /** The scope, serialized into every event. */
    readonly scope: unknown;
    /** The metrics, each with its data points. */
    readonly metrics: readonly {
      /** Name, unit, description… */
      readonly descriptor: { readonly name: string };
      /** One event each. */
      readonly dataPoints: readonly unknown[];
    }[];
  }[];
}

/** An exporter's answer (ExportResult): code 0 success, 1 failure. */
export interface OtelExportResult {
  /** 0: success. */
  code: number;
  /** What failed. */
  error?: Error;
}
