/**
 * Spans as EventHeader events, in the layout of Rust's
 * opentelemetry-user-events-trace (the table is in common_schema.ts): event
 * "Span" at level 4 on `<provider>_L4K1`, written when the span ends.
 * UserEventsSpanProcessor writes each span in onEnd (Rust's processor);
 * UserEventsSpanExporter is the SDK's SpanExporter, for a BatchSpanProcessor.
 */
import type { OtelExportResult, OtelSpan } from "./otel_types.ts";
import {
  addAttribute,
  addCloudRole,
  checkProviderName,
  cloudRole,
  CS_VERSION,
  MAX_STRUCT_FIELDS,
} from "./common_schema.ts";
import { EventHeaderSink } from "./eventheader_sink.ts";

/** Level 4 (Informational), as Rust registers its one event set. */
const SPAN_LEVEL = 4;
const SUCCESS: OtelExportResult = { code: 0 };

/** Rust's WELL_KNOWN_ATTRIBUTES: these go to PartB under the new name, in attribute order. */
export const WELL_KNOWN_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze(Object.assign(
  Object.create(null), // no prototype: an attribute named "constructor" is not well known
  {
    "db.system": "dbSystem",
    "db.name": "dbName",
    "db.statement": "dbStatement",
    "http.request.method": "httpMethod",
    "url.full": "httpUrl",
    "http.response.status_code": "httpStatusCode",
    "messaging.system": "messagingSystem",
    "messaging.destination": "messagingDestination",
    "messaging.url": "messagingUrl",
  },
));

/** The six fields PartB always has (Rust's BASE_PARTB_FIELD_COUNT). */
const BASE_PARTB_FIELD_COUNT = 6;
const STATUS_ERROR = 2;

/** Writes ended spans to `<provider>_L4K1`. Never throws once constructed. */
export class UserEventsSpanExporter {
  /** The provider name: the prefix of the tracepoint name. */
  readonly providerName: string;
  readonly #sink: EventHeaderSink;

  /** `providerName`: ASCII letters, digits and '_', under 234 characters. */
  constructor(providerName: string) {
    this.providerName = checkProviderName("UserEventsSpanExporter", providerName);
    this.#sink = new EventHeaderSink(
      providerName,
      [SPAN_LEVEL],
      `ummu UserEventsSpanExporter ${providerName}`,
    );
  }

  /** True while a tracer listens on `<provider>_L4K1`. */
  get enabled(): boolean {
    return this.#sink.enabled(SPAN_LEVEL);
  }

  /** The tracepoint's name, null when it could not be registered. */
  get tracepointName(): string | null {
    return this.#sink.tracepoint(SPAN_LEVEL)?.name ?? null;
  }

  /** Writes one span when a tracer listens (one check, nothing built otherwise). */
  writeSpan(span: OtelSpan): boolean {
    if (!this.#sink.enabled(SPAN_LEVEL)) return false;
    try {
      return this.#write(span);
    } catch (e) {
      this.#sink.report.warn(
        "build",
        `a span could not be encoded (${(e as Error).message}); it was dropped`,
      );
      return false;
    }
  }

  #write(s: OtelSpan): boolean {
    const eb = this.#sink.builder;
    eb.reset("Span", SPAN_LEVEL, 0);
    eb.addU32("__csver__", CS_VERSION);

    const a = eb.addStruct("PartA", 3);
    eb.addTime("time", s.endTime[0], s.endTime[1]);
    const sc = s.spanContext();
    eb.addStr("ext_dt_traceId", sc.traceId);
    eb.addStr("ext_dt_spanId", sc.spanId);
    eb.setStructCount(a, 3 + addCloudRole(eb, cloudRole(s.resource as never)));

    const b = eb.addStruct("PartB", BASE_PARTB_FIELD_COUNT);
    eb.addStr("_typeName", "Span");
    eb.addStr("name", s.name);
    eb.addStr("parentId", s.parentSpanContext?.spanId ?? "");
    eb.addTime("startTime", s.startTime[0], s.startTime[1]);
    eb.addBool("success", s.status.code !== STATUS_ERROR);
    eb.addU32("kind", s.kind);
    let bCount = BASE_PARTB_FIELD_COUNT;
    let cCount = 0;
    const attrs = s.attributes as Record<string, unknown>;
    for (const key in attrs) {
      const v = attrs[key];
      if (v === undefined) continue;
      const wk = WELL_KNOWN_ATTRIBUTES[key];
      if (wk !== undefined) {
        addAttribute(eb, wk, v);
        bCount++;
      } else if (cCount < MAX_STRUCT_FIELDS) {
        cCount++;
      } else {
        this.#sink.report.warn(
          "attributes",
          `a span has more than ${MAX_STRUCT_FIELDS} attributes (what an EventHeader struct holds): the rest were left out`,
        );
      }
    }
    if (s.status.code === STATUS_ERROR && s.status.message) {
      eb.addStr("statusMessage", s.status.message);
      bCount++;
    }
    const links = s.links;
    if (links.length > 0) {
      let json = "[";
      for (let i = 0; i < links.length; i++) {
        const l = links[i].context;
        json += `${i ? "," : ""}{"toTraceId":"${l.traceId}","toSpanId":"${l.spanId}"}`;
      }
      eb.addStr("links", json + "]");
      bCount++;
    }
    eb.setStructCount(b, bCount);

    if (cCount > 0) {
      eb.addStruct("PartC", cCount);
      let left = cCount;
      for (const key in attrs) {
        const v = attrs[key];
        if (v === undefined || WELL_KNOWN_ATTRIBUTES[key] !== undefined) continue;
        addAttribute(eb, key, v);
        if (--left === 0) break;
      }
    }
    return this.#sink.write(SPAN_LEVEL);
  }

  /** SpanExporter.export: writes each span. */
  export(spans: readonly OtelSpan[], resultCallback: (result: OtelExportResult) => void): void {
    for (let i = 0; i < spans.length; i++) this.writeSpan(spans[i]);
    resultCallback(SUCCESS);
  }

  /** Unregisters the tracepoint. */
  shutdown(): Promise<void> {
    this.#sink.close();
    return Promise.resolve();
  }

  /** Nothing is buffered. */
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Writes each span as it ends, on the ending thread:
 * `new TracerProvider({ spanProcessors: [new UserEventsSpanProcessor("myco_myapp")] })`.
 */
export class UserEventsSpanProcessor {
  /** The exporter that encodes and writes the spans. */
  readonly exporter: UserEventsSpanExporter;

  /** `providerName`: ASCII letters, digits and '_', under 234 characters. */
  constructor(providerName: string) {
    this.exporter = new UserEventsSpanExporter(providerName);
  }

  /** Nothing to do when a span starts. */
  onStart(): void {}

  /** Writes the span when a tracer listens. Never throws. */
  onEnd(span: OtelSpan): void {
    this.exporter.writeSpan(span);
  }

  /** Nothing is buffered. */
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  /** Unregisters the tracepoint. */
  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }
}
