/**
 * What the three exporters share: the provider name rule, the severity to
 * level mapping, the Common Schema attribute encoding, the cloud role read
 * from the resource, and reporting a failure once through OpenTelemetry's
 * diagnostics (never a throw into the instrumented code).
 *
 * The layouts are the Rust exporters' of open-telemetry/opentelemetry-rust-contrib
 * (read for this file: opentelemetry-user-events-logs/src/logs/exporter.rs and
 * processor.rs, opentelemetry-user-events-trace/src/trace/exporter.rs,
 * opentelemetry-user-events-metrics/src/tracepoint/mod.rs and exporter/mod.rs),
 * with the field encodings of eventheader_dynamic's EventBuilder (Rust types:
 * bool = Value8, i16 = Value16, u32/i32 = Value32, i64/f64 = Value64, &str =
 * StringLength16Char8).
 *
 * Logs: tracepoint `<provider>_L<level>K1`, one per level 1..5, event name
 * "Log" (or the user's callback), opcode Info.
 *
 * | field                          | type                    | when                              |
 * | ------------------------------ | ----------------------- | --------------------------------- |
 * | `__csver__`                    | u32 UnsignedInt = 0x400 | always                            |
 * | `PartA` struct                 |                         | always                            |
 * | - `time`                       | string (RFC 3339)       | timestamp, else observed          |
 * | - `ext_dt_traceId`             | string (32 hex)         | the record has a span context     |
 * | - `ext_dt_spanId`              | string (16 hex)         | the record has a span context     |
 * | - `ext_cloud_role`             | string                  | resource `service.name`           |
 * | - `ext_cloud_roleInstance`     | string                  | resource `service.instance.id`    |
 * | `PartC` struct                 |                         | any attribute but an int event_id |
 * | - each attribute, in order     | see attribute types     |                                   |
 * | `PartB` struct                 |                         | always                            |
 * | - `_typeName`                  | string "Log"            | always                            |
 * | - `body`                       | as an attribute         | the record has a body             |
 * | - `severityNumber`             | i16 SignedInt           | always                            |
 * | - `severityText`               | string                  | the record has one                |
 * | - `eventId`                    | i64 SignedInt           | attribute `event_id` is an int    |
 * | - `name`                       | string                  | eventName not blank               |
 *
 * Attribute types: boolean → bool Value8 Boolean; int → i64 SignedInt;
 * double → f64 Float; string → string; anything else (arrays, maps, bytes)
 * → the empty string (Rust's TODO). JavaScript has one number type: an
 * integer number is an int (OTLP/JS does the same), any other a double.
 *
 * Severity number → level: 1..8 (trace, debug) → 5 Verbose; 9..12 info → 4;
 * 13..16 warn → 3; 17..20 error → 2; 21..24 fatal → 1. A record without a
 * severity number (or 0, unspecified) is not written (Rust: an error).
 *
 * Spans: tracepoint `<provider>_L4K1`, event "Span", opcode Info, level 4.
 *
 * | field                          | type                    | when                              |
 * | ------------------------------ | ----------------------- | --------------------------------- |
 * | `__csver__`                    | u32 UnsignedInt = 0x400 | always                            |
 * | `PartA` struct                 |                         | always                            |
 * | - `time`                       | string (end time)       | always                            |
 * | - `ext_dt_traceId`             | string                  | always                            |
 * | - `ext_dt_spanId`              | string                  | always                            |
 * | - `ext_cloud_role`             | string                  | resource `service.name`           |
 * | - `ext_cloud_roleInstance`     | string                  | resource `service.instance.id`    |
 * | `PartB` struct                 |                         | always                            |
 * | - `_typeName`                  | string "Span"           | always                            |
 * | - `name`                       | string                  | always                            |
 * | - `parentId`                   | string ("" for a root)  | always                            |
 * | - `startTime`                  | string (RFC 3339)       | always                            |
 * | - `success`                    | bool (status OK/unset)  | always                            |
 * | - `kind`                       | u32 UnsignedInt 0..4    | always (internal, server, client, producer, consumer) |
 * | - well-known attributes        | renamed, see WELL_KNOWN | in attribute order                |
 * | - `statusMessage`              | string                  | ummu: status ERROR with a message |
 * | - `links`                      | string (JSON)           | ummu: the span has links          |
 * | `PartC` struct                 |                         | any other attribute               |
 * | - each other attribute         | see attribute types     |                                   |
 *
 * `statusMessage` and `links` are in issue 11's list but not in the Rust
 * source read (commit 03c32a0 of trace/exporter.rs): they are written after
 * Rust's fields, only when there is something to say, so a decoder of Rust's
 * events reads every field it knows at the same place. Links: a JSON array
 * of `{"toTraceId":"…","toSpanId":"…"}`, the Common Schema form.
 *
 * Metrics: not EventHeader. Tracepoint `otlp_metrics` with the fields
 * `u32 protocol; char[8] version; __rel_loc u8[] buffer`: protocol 0
 * (protobuf), version "v0.19.00", buffer one ExportMetricsServiceRequest
 * holding one data point (resource, scope, metric with one point), at most
 * 65360 bytes.
 */
import { diag } from "@opentelemetry/api";
import { UmmuArgumentError } from "../errors.ts";
import { describeValue } from "../user_events/values.ts";
import type { EventHeaderBuilder } from "./eventheader_builder.ts";

/** A struct's member count is 7 bits: attributes beyond it are dropped (and reported once). */
export const MAX_STRUCT_FIELDS = 127;
/** Common Schema version 4.0, written as `__csver__` by every Rust exporter. */
export const CS_VERSION = 0x400;
/** The keyword of every tracepoint the Rust exporters register. */
export const OTEL_KEYWORD = 1;

/**
 * Rust's rule (processor.rs): not empty, under 234 characters, ASCII letters,
 * digits and '_' only. Throws UmmuArgumentError naming the rule broken.
 */
export function checkProviderName(what: string, name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new UmmuArgumentError(
      `${what}: the provider name must be a non-empty string, got ${describeValue(name)}`,
    );
  }
  if (name.length >= 234) {
    throw new UmmuArgumentError(
      `${what}: the provider name must be less than 234 characters, got ${name.length}`,
    );
  }
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new UmmuArgumentError(
      `${what}: the provider name must contain only ASCII letters, digits and '_' (e.g. "MyCompany_MyComponent"), got ${
        describeValue(name)
      }`,
    );
  }
  return name;
}

/** Severity number (1..24) → EventHeader level (1..5); 0 for none or out of range. */
export function severityLevel(severityNumber: number | undefined): number {
  if (severityNumber === undefined || !(severityNumber >= 1 && severityNumber <= 24)) return 0;
  if (severityNumber <= 8) return 5;
  if (severityNumber <= 12) return 4;
  if (severityNumber <= 16) return 3;
  if (severityNumber <= 20) return 2;
  return 1;
}

/** Writes one attribute (or a log body) the way the Rust exporters do. */
export function addAttribute(eb: EventHeaderBuilder, name: string, value: unknown): void {
  switch (typeof value) {
    case "boolean":
      eb.addBool(name, value);
      return;
    case "number":
      if (Number.isSafeInteger(value)) eb.addI64(name, value);
      else eb.addF64(name, value);
      return;
    case "string":
      eb.addStr(name, value);
      return;
    default:
      eb.addStr(name, ""); // arrays, maps, bytes: Rust writes the empty string (its TODO)
  }
}

/** `service.name` and `service.instance.id` of a resource, read once per resource. */
export interface CloudRole {
  role: string | undefined;
  roleInstance: string | undefined;
}

const roles = new WeakMap<object, CloudRole>();

let lastResource: object | null = null;
let lastRole: CloudRole | null = null;

/** Rust's set_resource(): the attribute's string form (Value::to_string), when present. */
export function cloudRole(
  resource: { attributes: Record<string, unknown> } | undefined,
): CloudRole {
  if (resource === undefined || resource === null) return NO_ROLE;
  if (resource === lastResource) return lastRole!; // a service has one resource: no lookup
  let r = roles.get(resource);
  if (r === undefined) {
    const a = resource.attributes ?? {};
    const s = (v: unknown) => v === undefined || v === null ? undefined : String(v);
    r = { role: s(a["service.name"]), roleInstance: s(a["service.instance.id"]) };
    roles.set(resource, r);
  }
  lastResource = resource;
  lastRole = r;
  return r;
}

const NO_ROLE: CloudRole = { role: undefined, roleInstance: undefined };

/** Writes ext_cloud_role and ext_cloud_roleInstance when known; returns how many. */
export function addCloudRole(eb: EventHeaderBuilder, r: CloudRole): number {
  let n = 0;
  if (r.role !== undefined) {
    eb.addStr("ext_cloud_role", r.role);
    n++;
  }
  if (r.roleInstance !== undefined) {
    eb.addStr("ext_cloud_roleInstance", r.roleInstance);
    n++;
  }
  return n;
}

/** A time in [seconds, nanoseconds] (OpenTelemetry's HrTime). */
export type HrTime = [number, number];

/**
 * Failures reported once per kind through OpenTelemetry's diag (the SDK's
 * error handling convention: the instrumented code never sees a throw), each
 * saying what to do.
 */
export class OnceReporter {
  readonly #said = new Set<string>();
  readonly #who: string;

  constructor(who: string) {
    this.#who = who;
  }

  /** Reports `message` the first time `kind` happens; later ones stay silent. */
  warn(kind: string, message: string): void {
    if (this.#said.has(kind)) return;
    this.#said.add(kind);
    diag.warn(`${this.#who}: ${message}`);
  }

  /** Whether `kind` was reported (for tests). */
  said(kind: string): boolean {
    return this.#said.has(kind);
  }
}

/** What to tell the user when user_events cannot be opened or a tracepoint registered. */
export function unavailableHint(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return `user_events is not usable here, so nothing will be written (the instrumented code runs the same): ${msg}. \`ummu doctor\` says what is missing`;
}
