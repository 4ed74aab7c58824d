/**
 * Log records as EventHeader events, in the layout of Rust's
 * opentelemetry-user-events-logs (the table is in common_schema.ts). The
 * exporter is the SDK's LogRecordExporter (for users who want the SDK's
 * batching); UserEventsLogProcessor (logs_processor.ts) writes each record
 * as it is emitted, as Rust's Processor does, and is the one to use.
 */
import type { OtelExportResult, OtelLogRecord } from "./otel_types.ts";
import { UmmuArgumentError } from "../errors.ts";
import { describeValue } from "../user_events/values.ts";
import {
  addAttribute,
  addCloudRole,
  checkProviderName,
  cloudRole,
  CS_VERSION,
  MAX_STRUCT_FIELDS,
  severityLevel,
} from "./common_schema.ts";
import { EventHeaderSink } from "./eventheader_sink.ts";
import type { Tracepoint } from "../user_events/tracepoint.ts";

/** What the log exporter and processor take besides the provider name. */
export interface UserEventsLogOptions {
  /**
   * The EventHeader event name of a record (Rust's with_event_name_callback);
   * default "Log". Called only when a tracer listens.
   */
  eventName?: (record: OtelLogRecord) => string;
  /**
   * Resource attributes to add to every record's PartC, after its own
   * attributes (an ummu option: the Rust source read writes none).
   */
  resourceAttributes?: readonly string[];
}

const LEVELS = [1, 2, 3, 4, 5] as const;
const EVENT_ID = "event_id";
const SUCCESS: OtelExportResult = { code: 0 };

/**
 * Writes log records to `<provider>_L<level>K1` (levels 1..5). Never throws
 * once constructed: without user_events it reports once through diag and
 * writes nothing.
 */
export class UserEventsLogExporter {
  /** The provider name: the prefix of the tracepoint names. */
  readonly providerName: string;
  readonly #sink: EventHeaderSink;
  readonly #eventName: ((record: OtelLogRecord) => string) | undefined;
  readonly #resourceAttributes: readonly string[];

  /**
   * `providerName`: ASCII letters, digits and '_', under 234 characters (an
   * UmmuArgumentError otherwise: this is setup, not the hot path).
   */
  constructor(
    providerName: string,
    options: UserEventsLogOptions = {},
    /** @internal Tracepoints by level instead of registering (benchmarks). */
    tracepoints?: ReadonlyMap<number, Tracepoint>,
  ) {
    const what = "UserEventsLogExporter";
    this.providerName = checkProviderName(what, providerName);
    if (options === null || typeof options !== "object") {
      throw new UmmuArgumentError(
        `${what}: options must be an object { eventName?, resourceAttributes? }, got ${
          describeValue(options)
        }`,
      );
    }
    for (const k of Object.keys(options)) {
      if (k !== "eventName" && k !== "resourceAttributes") {
        throw new UmmuArgumentError(
          `${what}: unknown option "${k}" (eventName, resourceAttributes)`,
        );
      }
    }
    if (options.eventName !== undefined && typeof options.eventName !== "function") {
      throw new UmmuArgumentError(
        `${what}: eventName must be a function (record) => string, got ${
          describeValue(options.eventName)
        }`,
      );
    }
    const ra = options.resourceAttributes ?? [];
    if (!Array.isArray(ra) || ra.some((k) => typeof k !== "string")) {
      throw new UmmuArgumentError(
        `${what}: resourceAttributes must be an array of attribute names, got ${describeValue(ra)}`,
      );
    }
    this.#eventName = options.eventName;
    this.#resourceAttributes = [...ra];
    this.#sink = new EventHeaderSink(
      providerName,
      LEVELS,
      `ummu ${what} ${providerName}`,
      tracepoints,
    );
  }

  /** True while a tracer listens to the tracepoint records of `severityNumber` go to. */
  enabledFor(severityNumber: number | undefined): boolean {
    return this.#sink.enabled(severityLevel(severityNumber));
  }

  /** The tracepoint name of a level (1..5), null when it could not be registered. */
  tracepointName(level: number): string | null {
    return this.#sink.tracepoint(level)?.name ?? null;
  }

  /**
   * Writes one record when its level's tracepoint is enabled (one check,
   * nothing built otherwise). Returns true when the kernel took it.
   */
  writeRecord(record: OtelLogRecord): boolean {
    const sink = this.#sink;
    const level = severityLevel(record.severityNumber);
    if (!sink.enabled(level)) return false;
    try {
      return this.#write(record, level);
    } catch (e) {
      sink.report.warn(
        "build",
        `a log record could not be encoded (${(e as Error).message}); it was dropped`,
      );
      return false;
    }
  }

  #write(r: OtelLogRecord, level: number): boolean {
    const sink = this.#sink;
    const eb = sink.builder;
    let name = "Log";
    if (this.#eventName !== undefined) {
      const n = this.#eventName(r);
      if (typeof n === "string" && n.length > 0 && !n.includes("\0")) name = n;
    }
    eb.reset(name, level);
    eb.addU32("__csver__", CS_VERSION);

    // PartA
    const a = eb.addStruct("PartA", 2);
    let aCount = 1;
    const t = r.hrTime ?? r.hrTimeObserved;
    eb.addTime("time", t[0], t[1]);
    const sc = r.spanContext;
    if (sc !== undefined) {
      eb.addStr("ext_dt_traceId", sc.traceId);
      eb.addStr("ext_dt_spanId", sc.spanId);
      aCount += 2;
    }
    aCount += addCloudRole(eb, cloudRole(r.resource as never));
    eb.setStructCount(a, aCount);

    // PartC: every attribute but an integer event_id (that goes to PartB's eventId).
    const attrs = r.attributes as Record<string, unknown>;
    let c = -1;
    let cCount = 0;
    let hasEventId = false;
    let eventId = 0;
    for (const key in attrs) {
      const v = attrs[key];
      if (key === EVENT_ID && typeof v === "number" && Number.isSafeInteger(v)) {
        hasEventId = true;
        eventId = v;
        continue;
      }
      if (v === undefined) continue;
      if (cCount === MAX_STRUCT_FIELDS) {
        this.#tooMany();
        break;
      }
      if (c < 0) c = eb.addStruct("PartC", 1);
      addAttribute(eb, key, v);
      cCount++;
    }
    const ra = this.#resourceAttributes;
    if (ra.length > 0) {
      const res = (r.resource as { attributes?: Record<string, unknown> })?.attributes ?? {};
      for (let i = 0; i < ra.length; i++) {
        const v = res[ra[i]];
        if (v === undefined) continue;
        if (cCount === MAX_STRUCT_FIELDS) {
          this.#tooMany();
          break;
        }
        if (c < 0) c = eb.addStruct("PartC", 1);
        addAttribute(eb, ra[i], v);
        cCount++;
      }
    }
    if (c >= 0) eb.setStructCount(c, cCount);

    // PartB
    const b = eb.addStruct("PartB", 1);
    let bCount = 1;
    eb.addStr("_typeName", "Log");
    if (r.body !== undefined && r.body !== null) {
      addAttribute(eb, "body", r.body);
      bCount++;
    }
    eb.addI16("severityNumber", r.severityNumber!);
    bCount++;
    if (r.severityText !== undefined) {
      eb.addStr("severityText", r.severityText);
      bCount++;
    }
    if (hasEventId) {
      eb.addI64("eventId", eventId);
      bCount++;
    }
    const en = r.eventName;
    if (en !== undefined && en.trim().length > 0) {
      eb.addStr("name", en);
      bCount++;
    }
    eb.setStructCount(b, bCount);
    return sink.write(level);
  }

  #tooMany(): void {
    this.#sink.report.warn(
      "attributes",
      `a record has more than ${MAX_STRUCT_FIELDS} attributes (what an EventHeader struct holds): the rest were left out`,
    );
  }

  /** LogRecordExporter.export: writes each record (those of unlistened levels cost one check). */
  export(
    logs: readonly OtelLogRecord[],
    resultCallback: (result: OtelExportResult) => void,
  ): void {
    for (let i = 0; i < logs.length; i++) this.writeRecord(logs[i]);
    resultCallback(SUCCESS);
  }

  /** Unregisters the tracepoints. */
  shutdown(): Promise<void> {
    this.#sink.close();
    return Promise.resolve();
  }

  /** Nothing is buffered. */
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}
