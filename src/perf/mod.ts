/**
 * perf_event: the kernel's event stream. Events of every type opened on a
 * thread, a process, CPUs or a cgroup; counters and groups read with their
 * times; ring buffers read with Atomics (forward, or as a flight recorder);
 * the records decoded into one typed union; perf.data read and written;
 * branches (LBR branch stacks, Intel BTS, Intel PT packets) through
 * BranchTracer, the AUX area and the decoders.
 *
 * @example
 * ```ts
 * import { PerfEvent, PERF_COUNT_SW_PAGE_FAULTS, PERF_TYPE_SOFTWARE } from "@ummu/ummu/perf";
 *
 * const faults = PerfEvent.open({ type: PERF_TYPE_SOFTWARE, config: BigInt(PERF_COUNT_SW_PAGE_FAULTS) });
 * faults.enable();
 * const buf = new Uint8Array(1 << 20);
 * for (let i = 0; i < buf.length; i += 4096) buf[i] = 1;
 * faults.disable();
 * console.log(faults.read().value); // about 256
 * await faults.close();
 * ```
 * @module
 */
export { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
export { addressOf } from "../memory.ts";
export {
  type AttrFlag,
  decodeAttr,
  encodeAttr,
  type PerfEventAttr,
  type PerfEventAttrFields,
  validateAttr,
} from "./attr.ts";
export { type PerfCount, type PerfGroupCount, scale } from "./counts.ts";
export { PerfEvent, type PerfEventOptions, type PerfRingOptions } from "./event.ts";
export { PerfEventBuilder } from "./builder.ts";
export { paranoidMeaning, perfEventParanoid } from "./open.ts";
export { PerfRing, type RecordCallback } from "./ring.ts";
export { PerfWorkerReader, type PerfWorkerReaderOptions } from "./worker_reader.ts";
export {
  type DecoderAttrs,
  PerfDecodeError,
  RecordDecoder,
  type RecordLayout,
  recordLayout,
  sampleIdOf,
  SampleView,
  type StreamAttr,
} from "./record_decoder.ts";
export {
  type PerfDataAttr,
  type PerfDataEntry,
  PerfDataError,
  PerfDataReader,
  type PerfDataReaderOptions,
  type PerfDataRecord,
} from "./perf_data/reader.ts";
export {
  PerfDataWriter,
  type PerfDataWriterAttr,
  type PerfDataWriterOptions,
} from "./perf_data/writer.ts";
export type { PerfDataFeatures } from "./perf_data/features.ts";
export type { ToolRecord } from "./perf_data/tool_records.ts";
export {
  breakpoint,
  type BreakpointAccess,
  knownEventNames,
  type ParsedEvent,
  parseEvent,
  parseEventList,
} from "./event_names.ts";
export { kprobe, type KprobeOptions, uprobe, type UprobeOptions } from "./probes.ts";
export { listPmus, type Pmu, type PmuFormat, pmuNames, readPmu } from "./pmu.ts";
export { tracepointId } from "./tracepoint_id.ts";
export type * from "./records.ts";
export { onlineCpus, type PerfTarget, threadsOf } from "./target.ts";
export { type AuxChunkCallback, PerfAuxArea, type PerfAuxOptions } from "./aux_area.ts";
export { AuxStreamDecoder } from "./aux_stream.ts";
export {
  BRANCH_FILTERS,
  type BranchFilterName,
  branchFilterNames,
  branchPrivName,
  branchSampleType,
  branchSpecName,
  branchTypeName,
} from "./branch_filter.ts";
export {
  type BranchMethod,
  type BranchMethodSupport,
  type BranchSupport,
  pmuType,
  probeBranchTracing,
} from "./branch_support.ts";
export {
  type AuxEvent,
  type BranchEvent,
  type BranchTraceEvent,
  BranchTracer,
  type BranchTracerOptions,
  BranchTracingUnavailableError,
  type LostEvent,
  type PtPacketEvent,
} from "./branch_tracer.ts";
export {
  BTS_FLAG_PREDICTED,
  BTS_RECORD_SIZE,
  type BtsBranch,
  btsBranches,
  type BtsDecodeSummary,
  decodeBts,
  encodeBts,
} from "./bts.ts";
export * from "./intel_pt/mod.ts";
export * from "../../ffi/perf_event.ts";
