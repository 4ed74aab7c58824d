/**
 * UserEventsLogProcessor: the SDK's LogRecordProcessor that writes each
 * record as it is emitted, on the emitting thread, as Rust's
 * opentelemetry-user-events-logs Processor does (no batching: the kernel
 * copies the event during the write). When nobody listens on the record's
 * level, onEmit costs one severity mapping and one Atomics.load.
 */
import type { OtelLogRecord } from "./otel_types.ts";
import type { Tracepoint } from "../user_events/tracepoint.ts";
import { UserEventsLogExporter, type UserEventsLogOptions } from "./logs_exporter.ts";

/**
 * Add it to the LoggerProvider's processors:
 * `new LoggerProvider({ processors: [new UserEventsLogProcessor("myco_myapp")] })`.
 * Its tracepoints are `myco_myapp_L1K1` .. `myco_myapp_L5K1`.
 */
export class UserEventsLogProcessor {
  /** The exporter that encodes and writes the records. */
  readonly exporter: UserEventsLogExporter;

  /** Same arguments as UserEventsLogExporter (the provider name is checked the same way). */
  constructor(
    providerName: string,
    options: UserEventsLogOptions = {},
    /** @internal Tracepoints by level instead of registering (benchmarks). */
    tracepoints?: ReadonlyMap<number, Tracepoint>,
  ) {
    this.exporter = new UserEventsLogExporter(providerName, options, tracepoints);
  }

  /** Writes the record when a tracer listens on its level. Never throws. */
  onEmit(logRecord: OtelLogRecord): void {
    this.exporter.writeRecord(logRecord);
  }

  /**
   * Logger.enabled(): whether a record of this severity would be written now
   * (a tracer listens on its level), so callers can skip building it.
   */
  enabled(options: { severityNumber?: number }): boolean {
    return this.exporter.enabledFor(options?.severityNumber);
  }

  /** Nothing is buffered. */
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  /** Unregisters the tracepoints. */
  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }
}
