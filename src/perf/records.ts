/**
 * The records of a perf ring buffer or perf.data data section, as one
 * discriminated union (`kind`), decoded by {@linkcode RecordDecoder}
 * (record_decoder.ts). Field names are camelCase forms of the kernel's
 * (include/uapi/linux/perf_event.h, Linux 6.12); 64-bit values and addresses
 * are bigints, 32-bit and smaller values numbers.
 *
 * Optional fields of a SAMPLE are present exactly when the attr's
 * `sampleType` (or `readFormat`, `branchSampleType`) asks for them. The
 * `sampleId` trailer of the other records is present when the attr has
 * `sampleIdAll`.
 * @module
 */

/** perf_event_header.misc & PERF_RECORD_MISC_CPUMODE_MASK, by name (6 and 7 are "unknown"). */
export type CpuMode =
  | "unknown"
  | "kernel"
  | "user"
  | "hypervisor"
  | "guestKernel"
  | "guestUser";

/** CpuMode by the misc value's low 3 bits. */
export const CPUMODES: readonly CpuMode[] = [
  "unknown",
  "kernel",
  "user",
  "hypervisor",
  "guestKernel",
  "guestUser",
  "unknown",
  "unknown",
];

/** What every record carries: its header. */
export interface RecordHeader {
  /** PERF_RECORD_* (perf_event_header.type). */
  type: number;
  /** perf_event_header.misc as is (its meaningful bits are decoded per kind). */
  misc: number;
  /** The record's size in bytes, header included. */
  size: number;
  /** Where the event happened (misc & PERF_RECORD_MISC_CPUMODE_MASK). */
  cpumode: CpuMode;
}

/**
 * The `sample_id_all` trailer of a non-SAMPLE record: the fields of the attr's
 * sampleType among TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER (the latter two
 * give `id`).
 */
export interface SampleId {
  pid?: number;
  tid?: number;
  time?: bigint;
  /** PERF_SAMPLE_ID or PERF_SAMPLE_IDENTIFIER (the event's id). */
  id?: bigint;
  streamId?: bigint;
  cpu?: number;
}

/** The trailer field of every non-SAMPLE record: undefined when the attr lacks sampleIdAll. */
interface WithSampleId {
  sampleId?: SampleId;
}

/** One counter in a `read_format` value. */
export interface ReadCounter {
  value: bigint;
  /** With PERF_FORMAT_ID. */
  id?: bigint;
  /** With PERF_FORMAT_LOST. */
  lost?: bigint;
}

/** struct read_format: one counter, or a group's (PERF_FORMAT_GROUP). */
export interface ReadValues {
  /** PERF_FORMAT_GROUP: `counters` holds the whole group (leader first). */
  group: boolean;
  /** With PERF_FORMAT_TOTAL_TIME_ENABLED. */
  timeEnabled?: bigint;
  /** With PERF_FORMAT_TOTAL_TIME_RUNNING. */
  timeRunning?: bigint;
  counters: ReadCounter[];
}

/** The context a callchain marker (PERF_CONTEXT_*) opens. */
export type CallchainContext = "hv" | "kernel" | "user" | "guest" | "guestKernel" | "guestUser";

/** A run of callchain frames after one PERF_CONTEXT_* marker. */
export interface CallchainSegment {
  context: CallchainContext;
  /** The frames' instruction pointers, innermost first (a view into `Callchain.ips`). */
  ips: BigUint64Array;
}

/** PERF_SAMPLE_CALLCHAIN. */
export interface Callchain {
  /** Every u64 the kernel wrote, markers included, innermost first. */
  ips: BigUint64Array;
  /** The frames split by their markers (frames before any marker have context "kernel" or "user" by the sample's cpumode). */
  segments: CallchainSegment[];
}

/** struct perf_branch_entry, its bitfield word decoded. */
export interface BranchEntry {
  from: bigint;
  to: bigint;
  /** The branch target was mispredicted. */
  mispred: boolean;
  /** The branch target was predicted. */
  predicted: boolean;
  /** In a transaction. */
  inTx: boolean;
  /** A transaction abort. */
  abort: boolean;
  /** Cycles since the previous branch (0: not reported). */
  cycles: number;
  /** PERF_BR_* (0 unless the filter has TYPE_SAVE). */
  type: number;
  /** PERF_BR_SPEC_* (speculation outcome, e.g. AMD). */
  spec: number;
  /** PERF_BR_NEW_* (when type is PERF_BR_EXTEND_ABI). */
  newType: number;
  /** PERF_BR_PRIV_* (with PRIV_SAVE). */
  priv: number;
}

/** PERF_SAMPLE_BRANCH_STACK. */
export interface BranchStack {
  /** With branch_sample_type HW_INDEX: the hardware's index of the newest entry (-1n as u64 when unknown). */
  hwIdx?: bigint;
  entries: BranchEntry[];
  /** With branch_sample_type COUNTERS: one u64 of counter occurrences per entry. */
  counters?: BigUint64Array;
}

/** PERF_SAMPLE_REGS_USER / REGS_INTR. */
export interface SampledRegs {
  /** PERF_SAMPLE_REGS_ABI_* (NONE: no registers, e.g. a kernel thread's user regs). */
  abi: number;
  /** The attr's register mask: bit i set means register i is among `values`, in bit order. */
  mask: bigint;
  /** One u64 per set bit of the mask (empty when abi is NONE). */
  values: BigUint64Array;
}

/** PERF_SAMPLE_STACK_USER. */
export interface StackUser {
  /** The bytes dumped (the attr's sampleStackUser, or 0 when no user stack). */
  size: bigint;
  /** `size` bytes of the user stack from the stack pointer. */
  data: Uint8Array;
  /** How many of them are meaningful (the stack's real size at the sample). */
  dynSize: bigint;
}

/** PERF_SAMPLE_WEIGHT_STRUCT (union perf_sample_weight). */
export interface WeightStruct {
  var1Dw: number;
  var2W: number;
  var3W: number;
}

/** union perf_mem_data_src, its bitfields decoded (PERF_MEM_* values). */
export interface DataSource {
  raw: bigint;
  memOp: number;
  memLvl: number;
  memSnoop: number;
  memLock: number;
  memDtlb: number;
  memLvlNum: number;
  memRemote: number;
  memSnoopx: number;
  memBlk: number;
  memHops: number;
}

/** PERF_RECORD_SAMPLE: the fields of the attr's sampleType, in the kernel's order. */
export interface SampleRecord extends RecordHeader {
  kind: "sample";
  /** PERF_RECORD_MISC_EXACT_IP: `ip` is the instruction that caused the event (no skid). */
  exactIp: boolean;
  identifier?: bigint;
  ip?: bigint;
  pid?: number;
  tid?: number;
  time?: bigint;
  addr?: bigint;
  id?: bigint;
  streamId?: bigint;
  cpu?: number;
  period?: bigint;
  read?: ReadValues;
  callchain?: Callchain;
  /** PERF_SAMPLE_RAW: `size` bytes (a tracepoint's record: common fields, then its own). */
  raw?: Uint8Array;
  branchStack?: BranchStack;
  regsUser?: SampledRegs;
  stackUser?: StackUser;
  /** PERF_SAMPLE_WEIGHT. */
  weight?: bigint;
  /** PERF_SAMPLE_WEIGHT_STRUCT. */
  weightStruct?: WeightStruct;
  dataSrc?: DataSource;
  transaction?: bigint;
  regsIntr?: SampledRegs;
  physAddr?: bigint;
  cgroup?: bigint;
  dataPageSize?: bigint;
  codePageSize?: bigint;
  /** PERF_SAMPLE_AUX: a snapshot of the AUX area. */
  aux?: Uint8Array;
}

/** PERF_RECORD_MMAP: an executable (or, with mmapData, a data) mapping. */
export interface MmapRecord extends RecordHeader, WithSampleId {
  kind: "mmap";
  /** PERF_RECORD_MISC_MMAP_DATA: not executable. */
  data: boolean;
  pid: number;
  tid: number;
  addr: bigint;
  len: bigint;
  pgoff: bigint;
  filename: string;
}

/** PERF_RECORD_MMAP2: MMAP with the file's identity (device and inode, or a build id). */
export interface Mmap2Record extends RecordHeader, WithSampleId {
  kind: "mmap2";
  data: boolean;
  pid: number;
  tid: number;
  addr: bigint;
  len: bigint;
  pgoff: bigint;
  /** PERF_RECORD_MISC_MMAP_BUILD_ID: `buildId` is set instead of maj/min/ino/inoGeneration. */
  hasBuildId: boolean;
  maj?: number;
  min?: number;
  ino?: bigint;
  inoGeneration?: bigint;
  /** The build id's bytes (build_id_size of them). */
  buildId?: Uint8Array;
  prot: number;
  flags: number;
  filename: string;
}

/** PERF_RECORD_COMM: a thread's name changed (exec: by an execve). */
export interface CommRecord extends RecordHeader, WithSampleId {
  kind: "comm";
  /** PERF_RECORD_MISC_COMM_EXEC. */
  exec: boolean;
  pid: number;
  tid: number;
  comm: string;
}

/** PERF_RECORD_EXIT and PERF_RECORD_FORK. */
export interface TaskRecord extends RecordHeader, WithSampleId {
  kind: "exit" | "fork";
  pid: number;
  ppid: number;
  tid: number;
  ptid: number;
  time: bigint;
}

/** PERF_RECORD_LOST: the kernel dropped `lost` records (the ring was full). */
export interface LostRecord extends RecordHeader, WithSampleId {
  kind: "lost";
  id: bigint;
  lost: bigint;
}

/** PERF_RECORD_LOST_SAMPLES: samples the PMU or a BPF filter dropped. */
export interface LostSamplesRecord extends RecordHeader, WithSampleId {
  kind: "lostSamples";
  lost: bigint;
}

/** PERF_RECORD_THROTTLE / UNTHROTTLE. */
export interface ThrottleRecord extends RecordHeader, WithSampleId {
  kind: "throttle" | "unthrottle";
  time: bigint;
  id: bigint;
  streamId: bigint;
}

/** PERF_RECORD_READ (inherit_stat: a child's counts at its exit). */
export interface ReadRecord extends RecordHeader, WithSampleId {
  kind: "read";
  pid: number;
  tid: number;
  values: ReadValues;
}

/** PERF_RECORD_AUX: new data in the AUX area. */
export interface AuxRecord extends RecordHeader, WithSampleId {
  kind: "aux";
  auxOffset: bigint;
  auxSize: bigint;
  /** PERF_AUX_FLAG_* bits. */
  flags: bigint;
  truncated: boolean;
  overwrite: boolean;
  partial: boolean;
  collision: boolean;
}

/** PERF_RECORD_ITRACE_START. */
export interface ItraceStartRecord extends RecordHeader, WithSampleId {
  kind: "itraceStart";
  pid: number;
  tid: number;
}

/** PERF_RECORD_SWITCH (context_switch): this task in or out. */
export interface SwitchRecord extends RecordHeader, WithSampleId {
  kind: "switch";
  /** PERF_RECORD_MISC_SWITCH_OUT: switched out (else in). */
  out: boolean;
  /** PERF_RECORD_MISC_SWITCH_OUT_PREEMPT: switched out while runnable. */
  preempt: boolean;
}

/** PERF_RECORD_SWITCH_CPU_WIDE: a switch on a CPU, naming the other task. */
export interface SwitchCpuWideRecord extends RecordHeader, WithSampleId {
  kind: "switchCpuWide";
  out: boolean;
  preempt: boolean;
  /** The next task's (switch out) or previous task's (switch in) pid and tid. */
  nextPrevPid: number;
  nextPrevTid: number;
}

/** One namespace of a PERF_RECORD_NAMESPACES. */
export interface NamespaceLink {
  dev: bigint;
  inode: bigint;
}

/** PERF_RECORD_NAMESPACES (index: NET_NS_INDEX 0, UTS 1, IPC 2, PID 3, USER 4, MNT 5, CGROUP 6). */
export interface NamespacesRecord extends RecordHeader, WithSampleId {
  kind: "namespaces";
  pid: number;
  tid: number;
  namespaces: NamespaceLink[];
}

/** PERF_RECORD_KSYMBOL: a kernel symbol (BPF program, out-of-line code) appeared or went. */
export interface KsymbolRecord extends RecordHeader, WithSampleId {
  kind: "ksymbol";
  addr: bigint;
  len: number;
  /** PERF_RECORD_KSYMBOL_TYPE_*. */
  ksymType: number;
  flags: number;
  unregister: boolean;
  name: string;
}

/** PERF_RECORD_BPF_EVENT. */
export interface BpfEventRecord extends RecordHeader, WithSampleId {
  kind: "bpfEvent";
  /** PERF_BPF_EVENT_*. */
  bpfType: number;
  flags: number;
  id: number;
  /** BPF_TAG_SIZE (8) bytes. */
  tag: Uint8Array;
}

/** PERF_RECORD_CGROUP: a cgroup's id and path. */
export interface CgroupRecord extends RecordHeader, WithSampleId {
  kind: "cgroup";
  id: bigint;
  path: string;
}

/** PERF_RECORD_TEXT_POKE: kernel text changed. */
export interface TextPokeRecord extends RecordHeader, WithSampleId {
  kind: "textPoke";
  addr: bigint;
  oldBytes: Uint8Array;
  newBytes: Uint8Array;
}

/** PERF_RECORD_AUX_OUTPUT_HW_ID. */
export interface AuxOutputHwIdRecord extends RecordHeader, WithSampleId {
  kind: "auxOutputHwId";
  hwId: bigint;
}

/** A record type this decoder does not know: its body (after the 8-byte header). */
export interface UnknownRecord extends RecordHeader {
  kind: "unknown";
  bytes: Uint8Array;
}

/** Every kernel record (PERF_RECORD_* types 1..21 of Linux 6.12), and "unknown". */
export type PerfRecord =
  | SampleRecord
  | MmapRecord
  | Mmap2Record
  | CommRecord
  | TaskRecord
  | LostRecord
  | LostSamplesRecord
  | ThrottleRecord
  | ReadRecord
  | AuxRecord
  | ItraceStartRecord
  | SwitchRecord
  | SwitchCpuWideRecord
  | NamespacesRecord
  | KsymbolRecord
  | BpfEventRecord
  | CgroupRecord
  | TextPokeRecord
  | AuxOutputHwIdRecord
  | UnknownRecord;

/** A record's `kind`. */
export type PerfRecordKind = PerfRecord["kind"];
