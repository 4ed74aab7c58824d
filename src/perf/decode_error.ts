/**
 * PerfDecodeError: a record (or perf.data structure) that cannot be decoded,
 * naming the record type, where it starts, the field and the byte offset. An
 * UmmuArgumentError: the bytes are the bad argument.
 * @module
 */
import { UmmuArgumentError } from "../errors.ts";

/** PERF_RECORD_* names for messages (kernel 1..21, perf tool 64..83). */
export const RECORD_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: "MMAP",
  2: "LOST",
  3: "COMM",
  4: "EXIT",
  5: "THROTTLE",
  6: "UNTHROTTLE",
  7: "FORK",
  8: "READ",
  9: "SAMPLE",
  10: "MMAP2",
  11: "AUX",
  12: "ITRACE_START",
  13: "LOST_SAMPLES",
  14: "SWITCH",
  15: "SWITCH_CPU_WIDE",
  16: "NAMESPACES",
  17: "KSYMBOL",
  18: "BPF_EVENT",
  19: "CGROUP",
  20: "TEXT_POKE",
  21: "AUX_OUTPUT_HW_ID",
  64: "HEADER_ATTR",
  65: "HEADER_EVENT_TYPE",
  66: "HEADER_TRACING_DATA",
  67: "HEADER_BUILD_ID",
  68: "FINISHED_ROUND",
  69: "ID_INDEX",
  70: "AUXTRACE_INFO",
  71: "AUXTRACE",
  72: "AUXTRACE_ERROR",
  73: "THREAD_MAP",
  74: "CPU_MAP",
  75: "STAT_CONFIG",
  76: "STAT",
  77: "STAT_ROUND",
  78: "EVENT_UPDATE",
  79: "TIME_CONV",
  80: "HEADER_FEATURE",
  81: "COMPRESSED",
  82: "FINISHED_INIT",
  83: "COMPRESSED2",
};

/** "SAMPLE (9)", "type 200". */
export function recordTypeName(type: number): string {
  const n = RECORD_TYPE_NAMES[type];
  return n ? `${n} (${type})` : `type ${type}`;
}

/** A malformed record: which record (type, start, size), which field, at which byte of it. */
export class PerfDecodeError extends UmmuArgumentError {
  /** Always "PerfDecodeError". */
  override name = "PerfDecodeError";
  /**
   * `recordType` (-1: not yet known), `recordOffset`: where the record starts in
   * the bytes given (or the file), `recordSize` (-1: unknown), `field`, and
   * `fieldOffset`: the field's byte offset within the record.
   */
  constructor(
    readonly recordType: number,
    readonly recordOffset: number,
    readonly recordSize: number,
    readonly field: string,
    readonly fieldOffset: number,
    readonly detail: string,
  ) {
    super(
      `perf record ${
        recordType < 0 ? "" : recordTypeName(recordType) + " "
      }at byte ${recordOffset}` +
        `${
          recordSize >= 0 ? ` (size ${recordSize})` : ""
        }: field ${field} at record byte ${fieldOffset}: ${detail}`,
    );
  }
}
