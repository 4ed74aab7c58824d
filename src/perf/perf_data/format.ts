/**
 * The perf.data format's numbers (tools/perf/util/header.h, tools/lib/perf/
 * include/perf/event.h of Linux 6.12): the file headers, the feature ids and
 * the perf tool's own record types (64 and up). perf.data is perf's file
 * format, not a kernel ABI: these come from the perf sources, not the UAPI
 * headers, and live here rather than in ffi/.
 * @module
 */

/** "PERFILE2" as a little-endian u64 (the file's first 8 bytes). */
export const PERF_MAGIC2 = 0x32454c4946524550n;
/** The same bytes read by a big-endian writer's reader: a big-endian file. */
export const PERF_MAGIC2_SWAPPED = 0x50455246494c4532n;

/** struct perf_file_header: magic, size, attr_size, attrs, data, event_types, adds_features[4]. */
export const PERF_FILE_HEADER_SIZE = 104;
export const PERF_FILE_HEADER_OFF = {
  magic: 0,
  size: 8,
  attr_size: 16,
  attrs: 24, // struct perf_file_section { u64 offset; u64 size; }
  data: 40,
  event_types: 56,
  adds_features: 72, // DECLARE_BITMAP(adds_features, HEADER_FEAT_BITS) = 4 u64
} as const;
/** struct perf_pipe_file_header { u64 magic; u64 size; } */
export const PERF_PIPE_HEADER_SIZE = 16;
export const HEADER_FEAT_BITS = 256;
/** perf_file_attr: the attr then a perf_file_section of its ids. */
export const PERF_FILE_SECTION_SIZE = 16;

/** enum perf_header_feature (tools/perf/util/header.h). */
export const HEADER_RESERVED = 0;
export const HEADER_TRACING_DATA = 1;
export const HEADER_BUILD_ID = 2;
export const HEADER_HOSTNAME = 3;
export const HEADER_OSRELEASE = 4;
export const HEADER_VERSION = 5;
export const HEADER_ARCH = 6;
export const HEADER_NRCPUS = 7;
export const HEADER_CPUDESC = 8;
export const HEADER_CPUID = 9;
export const HEADER_TOTAL_MEM = 10;
export const HEADER_CMDLINE = 11;
export const HEADER_EVENT_DESC = 12;
export const HEADER_CPU_TOPOLOGY = 13;
export const HEADER_NUMA_TOPOLOGY = 14;
export const HEADER_BRANCH_STACK = 15;
export const HEADER_PMU_MAPPINGS = 16;
export const HEADER_GROUP_DESC = 17;
export const HEADER_AUXTRACE = 18;
export const HEADER_STAT = 19;
export const HEADER_CACHE = 20;
export const HEADER_SAMPLE_TIME = 21;
export const HEADER_MEM_TOPOLOGY = 22;
export const HEADER_CLOCKID = 23;
export const HEADER_DIR_FORMAT = 24;
export const HEADER_BPF_PROG_INFO = 25;
export const HEADER_BPF_BTF = 26;
export const HEADER_COMPRESSED = 27;
export const HEADER_CPU_PMU_CAPS = 28;
export const HEADER_CLOCK_DATA = 29;
export const HEADER_HYBRID_TOPOLOGY = 30;
export const HEADER_PMU_CAPS = 31;

/** Feature names by id (lower case, as `perf report --header` prints them). */
export const FEATURE_NAMES: Readonly<Record<number, string>> = {
  1: "tracing_data",
  2: "build_id",
  3: "hostname",
  4: "osrelease",
  5: "version",
  6: "arch",
  7: "nrcpus",
  8: "cpudesc",
  9: "cpuid",
  10: "total_mem",
  11: "cmdline",
  12: "event_desc",
  13: "cpu_topology",
  14: "numa_topology",
  15: "branch_stack",
  16: "pmu_mappings",
  17: "group_desc",
  18: "auxtrace",
  19: "stat",
  20: "cache",
  21: "sample_time",
  22: "mem_topology",
  23: "clockid",
  24: "dir_format",
  25: "bpf_prog_info",
  26: "bpf_btf",
  27: "compressed",
  28: "cpu_pmu_caps",
  29: "clock_data",
  30: "hybrid_topology",
  31: "pmu_caps",
};

/** enum perf_user_event_type (tools/lib/perf/include/perf/event.h). */
export const PERF_RECORD_USER_TYPE_START = 64;
export const PERF_RECORD_HEADER_ATTR = 64;
export const PERF_RECORD_HEADER_EVENT_TYPE = 65;
export const PERF_RECORD_HEADER_TRACING_DATA = 66;
export const PERF_RECORD_HEADER_BUILD_ID = 67;
export const PERF_RECORD_FINISHED_ROUND = 68;
export const PERF_RECORD_ID_INDEX = 69;
export const PERF_RECORD_AUXTRACE_INFO = 70;
export const PERF_RECORD_AUXTRACE = 71;
export const PERF_RECORD_AUXTRACE_ERROR = 72;
/** struct perf_record_auxtrace: header, size, offset, reference, idx, tid, cpu, reserved (the data follows). */
export const AUXTRACE_RECORD_SIZE = 48;
/** enum auxtrace_type (tools/perf/util/auxtrace.h). */
export const PERF_AUXTRACE_INTEL_PT = 1;
export const PERF_AUXTRACE_INTEL_BTS = 2;
export const PERF_RECORD_THREAD_MAP = 73;
export const PERF_RECORD_CPU_MAP = 74;
export const PERF_RECORD_STAT_CONFIG = 75;
export const PERF_RECORD_STAT = 76;
export const PERF_RECORD_STAT_ROUND = 77;
export const PERF_RECORD_EVENT_UPDATE = 78;
export const PERF_RECORD_TIME_CONV = 79;
export const PERF_RECORD_HEADER_FEATURE = 80;
export const PERF_RECORD_COMPRESSED = 81;
export const PERF_RECORD_FINISHED_INIT = 82;

/** perf's misc bit on a build-id record: the build id's size is in the record (else 20). */
export const PERF_RECORD_MISC_BUILD_ID_SIZE = 1 << 15;
/** Strings in feature sections are padded to this (NAME_ALIGN). */
export const NAME_ALIGN = 64;
