/**
 * The perf tool's own records (types 64 and up: tools/lib/perf/include/perf/
 * event.h), which perf writes into perf.data beside the kernel's: attrs and
 * build ids in pipe mode, round markers, the id index, AUX trace data and its
 * info, thread and CPU maps, stat records, time conversion. The ones perf 6.1
 * writes are decoded; every other is framed (its size respected) and kept as
 * bytes.
 * @module
 */
import * as f from "./format.ts";
import { decodeAttr, type PerfEventAttrFields } from "../attr.ts";
import { PerfDecodeError } from "../decode_error.ts";
import { type BuildIdEntry, parseBuildIdRecord } from "./features.ts";
import type { RecordHeader } from "../records.ts";

/** PERF_RECORD_HEADER_ATTR (pipe mode): an attr and its ids. */
export interface HeaderAttrRecord extends RecordHeader {
  kind: "headerAttr";
  attr: PerfEventAttrFields;
  ids: bigint[];
}
/** PERF_RECORD_HEADER_TRACING_DATA: `size` bytes of tracing data follow the record. */
export interface TracingDataRecord extends RecordHeader {
  kind: "tracingData";
  /** The payload's size (it follows the record in the stream). */
  payloadSize: number;
  /** The payload (tracing metadata: formats of the tracepoints used). */
  payload?: Uint8Array;
}
/** PERF_RECORD_HEADER_BUILD_ID. */
export interface HeaderBuildIdRecord extends RecordHeader {
  kind: "buildId";
  entry: BuildIdEntry;
}
/** PERF_RECORD_FINISHED_ROUND / FINISHED_INIT: markers without a body. */
export interface MarkerRecord extends RecordHeader {
  kind: "finishedRound" | "finishedInit";
}
/** PERF_RECORD_ID_INDEX: which CPU and thread each event id belongs to. */
export interface IdIndexRecord extends RecordHeader {
  kind: "idIndex";
  entries: { id: bigint; idx: bigint; cpu: bigint; tid: bigint }[];
}
/** PERF_RECORD_AUXTRACE_INFO: the AUX PMU's private data (e.g. Intel PT's config). */
export interface AuxtraceInfoRecord extends RecordHeader {
  kind: "auxtraceInfo";
  /** enum auxtrace_type (1: Intel PT, 2: Intel BTS, ...). */
  auxtraceType: number;
  priv: BigUint64Array;
}
/** PERF_RECORD_AUXTRACE: `size` bytes of AUX data follow the record. */
export interface AuxtraceRecord extends RecordHeader {
  kind: "auxtrace";
  payloadSize: bigint;
  offset: bigint;
  reference: bigint;
  idx: number;
  tid: number;
  cpu: number;
  /** Where the payload starts in the file (file mode) or stream. */
  payloadOffset: number;
  /** The payload, when the reader kept it (see PerfDataReader's maxPayload). */
  payload?: Uint8Array;
}
/** PERF_RECORD_AUXTRACE_ERROR. */
export interface AuxtraceErrorRecord extends RecordHeader {
  kind: "auxtraceError";
  errorType: number;
  code: number;
  cpu: number;
  pid: number;
  tid: number;
  ip: bigint;
  msg: string;
}
/** PERF_RECORD_THREAD_MAP. */
export interface ThreadMapRecord extends RecordHeader {
  kind: "threadMap";
  threads: { pid: bigint; comm: string }[];
}
/** PERF_RECORD_STAT. */
export interface StatRecord extends RecordHeader {
  kind: "stat";
  id: bigint;
  cpu: number;
  thread: number;
  val: bigint;
  ena: bigint;
  run: bigint;
}
/** PERF_RECORD_STAT_ROUND. */
export interface StatRoundRecord extends RecordHeader {
  kind: "statRound";
  statType: bigint;
  time: bigint;
}
/** PERF_RECORD_TIME_CONV: TSC to perf time. */
export interface TimeConvRecord extends RecordHeader {
  kind: "timeConv";
  timeShift: bigint;
  timeMult: bigint;
  timeZero: bigint;
  timeCycles?: bigint;
  timeMask?: bigint;
  capUserTimeZero?: boolean;
  capUserTimeShort?: boolean;
}
/** PERF_RECORD_HEADER_FEATURE (pipe mode): one feature section. */
export interface HeaderFeatureRecord extends RecordHeader {
  kind: "headerFeature";
  featureId: number;
  data: Uint8Array;
}
/** Tool records kept as bytes (HEADER_EVENT_TYPE, CPU_MAP, STAT_CONFIG, EVENT_UPDATE, COMPRESSED, ...). */
export interface ToolBytesRecord extends RecordHeader {
  kind:
    | "headerEventType"
    | "cpuMap"
    | "statConfig"
    | "eventUpdate"
    | "compressed"
    | "toolUnknown";
  /** The body after the 8-byte header. */
  bytes: Uint8Array;
}

/** Every perf tool record. */
export type ToolRecord =
  | HeaderAttrRecord
  | TracingDataRecord
  | HeaderBuildIdRecord
  | MarkerRecord
  | IdIndexRecord
  | AuxtraceInfoRecord
  | AuxtraceRecord
  | AuxtraceErrorRecord
  | ThreadMapRecord
  | StatRecord
  | StatRoundRecord
  | TimeConvRecord
  | HeaderFeatureRecord
  | ToolBytesRecord;

const utf8 = new TextDecoder();

function cstring(u8: Uint8Array, from: number, to: number): string {
  let end = from;
  while (end < to && u8[end] !== 0) end++;
  return utf8.decode(u8.subarray(from, end));
}

/** Bytes of payload that follow a tool record in the stream (AUXTRACE, HEADER_TRACING_DATA). */
export function payloadSizeOf(type: number, rec: Uint8Array): bigint {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  if (type === f.PERF_RECORD_AUXTRACE && rec.length >= 16) return dv.getBigUint64(8, true);
  if (type === f.PERF_RECORD_HEADER_TRACING_DATA && rec.length >= 12) {
    return BigInt(dv.getUint32(8, true));
  }
  return 0n;
}

/**
 * Decodes one tool record `rec` (header included, `rec.length` = its size)
 * found at `offset` of the file or stream. Byte fields are copies.
 */
export function decodeToolRecord(rec: Uint8Array, offset: number): ToolRecord {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const type = dv.getUint32(0, true);
  const misc = dv.getUint16(4, true);
  const size = rec.length;
  const head = { type, misc, size, cpumode: "unknown" as const };
  const need = (field: string, at: number, n: number) => {
    if (at + n > size) {
      throw new PerfDecodeError(
        type,
        offset,
        size,
        field,
        at,
        `needs ${n} bytes, ${size - at} left`,
      );
    }
  };
  const u64 = (at: number, field: string) => (need(field, at, 8), dv.getBigUint64(at, true));
  const u32 = (at: number, field: string) => (need(field, at, 4), dv.getUint32(at, true));
  switch (type) {
    case f.PERF_RECORD_HEADER_ATTR: {
      need("attr", 8, 64);
      const attrSize = u32(12, "attr.size") || 64;
      if (attrSize < 64 || 8 + attrSize > size) {
        throw new PerfDecodeError(type, offset, size, "attr.size", 12, `${attrSize} does not fit`);
      }
      const attr = decodeAttr(rec.slice(8, 8 + attrSize));
      const ids: bigint[] = [];
      for (let p = 8 + attrSize; p + 8 <= size; p += 8) ids.push(dv.getBigUint64(p, true));
      return { ...head, kind: "headerAttr", attr, ids };
    }
    case f.PERF_RECORD_HEADER_TRACING_DATA:
      return { ...head, kind: "tracingData", payloadSize: u32(8, "size") };
    case f.PERF_RECORD_HEADER_BUILD_ID:
      need("build id", 8, 28);
      return { ...head, kind: "buildId", entry: parseBuildIdRecord(rec, misc) };
    case f.PERF_RECORD_FINISHED_ROUND:
      return { ...head, kind: "finishedRound" };
    case f.PERF_RECORD_FINISHED_INIT:
      return { ...head, kind: "finishedInit" };
    case f.PERF_RECORD_ID_INDEX: {
      const nr = u64(8, "nr");
      if (nr > BigInt((size - 16) >> 5)) {
        throw new PerfDecodeError(
          type,
          offset,
          size,
          "nr",
          8,
          `${nr} entries of 32 bytes do not fit`,
        );
      }
      const entries = [];
      for (let i = 0, p = 16; i < Number(nr); i++, p += 32) {
        entries.push({
          id: dv.getBigUint64(p, true),
          idx: dv.getBigUint64(p + 8, true),
          cpu: dv.getBigUint64(p + 16, true),
          tid: dv.getBigUint64(p + 24, true),
        });
      }
      return { ...head, kind: "idIndex", entries };
    }
    case f.PERF_RECORD_AUXTRACE_INFO: {
      const auxtraceType = u32(8, "type");
      const n = Math.max(0, (size - 16) >> 3);
      return {
        ...head,
        kind: "auxtraceInfo",
        auxtraceType,
        priv: new BigUint64Array(rec.slice(16, 16 + n * 8).buffer),
      };
    }
    case f.PERF_RECORD_AUXTRACE:
      need("auxtrace", 8, 40);
      return {
        ...head,
        kind: "auxtrace",
        payloadSize: dv.getBigUint64(8, true),
        offset: dv.getBigUint64(16, true),
        reference: dv.getBigUint64(24, true),
        idx: dv.getUint32(32, true),
        tid: dv.getUint32(36, true),
        cpu: dv.getUint32(40, true),
        payloadOffset: offset + size,
      };
    case f.PERF_RECORD_AUXTRACE_ERROR:
      need("auxtrace error", 8, 32 + 64);
      return {
        ...head,
        kind: "auxtraceError",
        errorType: dv.getUint32(8, true),
        code: dv.getUint32(12, true),
        cpu: dv.getUint32(16, true),
        pid: dv.getUint32(20, true),
        tid: dv.getUint32(24, true),
        ip: dv.getBigUint64(32, true),
        msg: cstring(rec, 40, 40 + 64),
      };
    case f.PERF_RECORD_THREAD_MAP: {
      const nr = u64(8, "nr");
      if (nr > BigInt(Math.floor((size - 16) / 24))) {
        throw new PerfDecodeError(
          type,
          offset,
          size,
          "nr",
          8,
          `${nr} threads of 24 bytes do not fit`,
        );
      }
      const threads = [];
      for (let i = 0, p = 16; i < Number(nr); i++, p += 24) {
        threads.push({ pid: dv.getBigUint64(p, true), comm: cstring(rec, p + 8, p + 24) });
      }
      return { ...head, kind: "threadMap", threads };
    }
    case f.PERF_RECORD_STAT:
      need("stat", 8, 40);
      return {
        ...head,
        kind: "stat",
        id: dv.getBigUint64(8, true),
        cpu: dv.getUint32(16, true),
        thread: dv.getUint32(20, true),
        val: dv.getBigUint64(24, true),
        ena: dv.getBigUint64(32, true),
        run: dv.getBigUint64(40, true),
      };
    case f.PERF_RECORD_STAT_ROUND:
      return { ...head, kind: "statRound", statType: u64(8, "type"), time: u64(16, "time") };
    case f.PERF_RECORD_TIME_CONV: {
      const out: TimeConvRecord = {
        ...head,
        kind: "timeConv",
        timeShift: u64(8, "time_shift"),
        timeMult: u64(16, "time_mult"),
        timeZero: u64(24, "time_zero"),
      };
      if (size >= 56) {
        out.timeCycles = dv.getBigUint64(32, true);
        out.timeMask = dv.getBigUint64(40, true);
        out.capUserTimeZero = rec[48] !== 0;
        out.capUserTimeShort = rec[49] !== 0;
      }
      return out;
    }
    case f.PERF_RECORD_HEADER_FEATURE:
      return {
        ...head,
        kind: "headerFeature",
        featureId: Number(u64(8, "feat_id")),
        data: rec.slice(16),
      };
  }
  const kinds: Record<number, ToolBytesRecord["kind"]> = {
    [f.PERF_RECORD_HEADER_EVENT_TYPE]: "headerEventType",
    [f.PERF_RECORD_CPU_MAP]: "cpuMap",
    [f.PERF_RECORD_STAT_CONFIG]: "statConfig",
    [f.PERF_RECORD_EVENT_UPDATE]: "eventUpdate",
    [f.PERF_RECORD_COMPRESSED]: "compressed",
  };
  return { ...head, kind: kinds[type] ?? "toolUnknown", bytes: rec.slice(8) };
}
