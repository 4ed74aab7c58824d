/**
 * perf_event_open(2) ABI from <linux/perf_event.h> and <linux/hw_breakpoint.h>
 * (and the syscall numbers of <asm/unistd_64.h> / <asm-generic/unistd.h>), as
 * of Linux 6.12: event types and ids, `struct perf_event_attr` with every field
 * and flag bit, the ioctls, the mmap control page, record types and their misc
 * bits, sample and read formats, branch-stack filters and entry types, AUX
 * flags, callchain context markers. Names are the header's; the ABI test
 * (tests/abi/perf_event.ts) checks every number here against the headers.
 */
import { _IO, _IOR, _IOW, _IOWR } from "./ioctl.ts";

/** enum perf_type_id */
export const PERF_TYPE_HARDWARE = 0;
export const PERF_TYPE_SOFTWARE = 1;
export const PERF_TYPE_TRACEPOINT = 2;
export const PERF_TYPE_HW_CACHE = 3;
export const PERF_TYPE_RAW = 4;
export const PERF_TYPE_BREAKPOINT = 5;

/** attr.config bits 32..63 for HARDWARE/HW_CACHE: the PMU type id (hybrid CPUs). */
export const PERF_PMU_TYPE_SHIFT = 32;
export const PERF_HW_EVENT_MASK = 0xffffffff;

/** enum perf_hw_id */
export const PERF_COUNT_HW_CPU_CYCLES = 0;
export const PERF_COUNT_HW_INSTRUCTIONS = 1;
export const PERF_COUNT_HW_CACHE_REFERENCES = 2;
export const PERF_COUNT_HW_CACHE_MISSES = 3;
export const PERF_COUNT_HW_BRANCH_INSTRUCTIONS = 4;
export const PERF_COUNT_HW_BRANCH_MISSES = 5;
export const PERF_COUNT_HW_BUS_CYCLES = 6;
export const PERF_COUNT_HW_STALLED_CYCLES_FRONTEND = 7;
export const PERF_COUNT_HW_STALLED_CYCLES_BACKEND = 8;
export const PERF_COUNT_HW_REF_CPU_CYCLES = 9;

/** enum perf_hw_cache_id, _op_id, _op_result_id: config = id | op << 8 | result << 16. */
export const PERF_COUNT_HW_CACHE_L1D = 0;
export const PERF_COUNT_HW_CACHE_L1I = 1;
export const PERF_COUNT_HW_CACHE_LL = 2;
export const PERF_COUNT_HW_CACHE_DTLB = 3;
export const PERF_COUNT_HW_CACHE_ITLB = 4;
export const PERF_COUNT_HW_CACHE_BPU = 5;
export const PERF_COUNT_HW_CACHE_NODE = 6;
export const PERF_COUNT_HW_CACHE_OP_READ = 0;
export const PERF_COUNT_HW_CACHE_OP_WRITE = 1;
export const PERF_COUNT_HW_CACHE_OP_PREFETCH = 2;
export const PERF_COUNT_HW_CACHE_RESULT_ACCESS = 0;
export const PERF_COUNT_HW_CACHE_RESULT_MISS = 1;

/** enum perf_sw_ids */
export const PERF_COUNT_SW_CPU_CLOCK = 0;
export const PERF_COUNT_SW_TASK_CLOCK = 1;
export const PERF_COUNT_SW_PAGE_FAULTS = 2;
export const PERF_COUNT_SW_CONTEXT_SWITCHES = 3;
export const PERF_COUNT_SW_CPU_MIGRATIONS = 4;
export const PERF_COUNT_SW_PAGE_FAULTS_MIN = 5;
export const PERF_COUNT_SW_PAGE_FAULTS_MAJ = 6;
export const PERF_COUNT_SW_ALIGNMENT_FAULTS = 7;
export const PERF_COUNT_SW_EMULATION_FAULTS = 8;
export const PERF_COUNT_SW_DUMMY = 9;
export const PERF_COUNT_SW_BPF_OUTPUT = 10;
export const PERF_COUNT_SW_CGROUP_SWITCHES = 11;

/** enum perf_event_sample_format */
export const PERF_SAMPLE_IP = 1 << 0;
export const PERF_SAMPLE_TID = 1 << 1;
export const PERF_SAMPLE_TIME = 1 << 2;
export const PERF_SAMPLE_ADDR = 1 << 3;
export const PERF_SAMPLE_READ = 1 << 4;
export const PERF_SAMPLE_CALLCHAIN = 1 << 5;
export const PERF_SAMPLE_ID = 1 << 6;
export const PERF_SAMPLE_CPU = 1 << 7;
export const PERF_SAMPLE_PERIOD = 1 << 8;
export const PERF_SAMPLE_STREAM_ID = 1 << 9;
export const PERF_SAMPLE_RAW = 1 << 10;
export const PERF_SAMPLE_BRANCH_STACK = 1 << 11;
export const PERF_SAMPLE_REGS_USER = 1 << 12;
export const PERF_SAMPLE_STACK_USER = 1 << 13;
export const PERF_SAMPLE_WEIGHT = 1 << 14;
export const PERF_SAMPLE_DATA_SRC = 1 << 15;
export const PERF_SAMPLE_IDENTIFIER = 1 << 16;
export const PERF_SAMPLE_TRANSACTION = 1 << 17;
export const PERF_SAMPLE_REGS_INTR = 1 << 18;
export const PERF_SAMPLE_PHYS_ADDR = 1 << 19;
export const PERF_SAMPLE_AUX = 1 << 20;
export const PERF_SAMPLE_CGROUP = 1 << 21;
export const PERF_SAMPLE_DATA_PAGE_SIZE = 1 << 22;
export const PERF_SAMPLE_CODE_PAGE_SIZE = 1 << 23;
export const PERF_SAMPLE_WEIGHT_STRUCT = 1 << 24;
/** PERF_SAMPLE_MAX (non-ABI in the header): every bit below it is a known sample field. */
export const PERF_SAMPLE_MAX = 1 << 25;

/** enum perf_branch_sample_type (attr.branch_sample_type). */
export const PERF_SAMPLE_BRANCH_USER = 1 << 0;
export const PERF_SAMPLE_BRANCH_KERNEL = 1 << 1;
export const PERF_SAMPLE_BRANCH_HV = 1 << 2;
export const PERF_SAMPLE_BRANCH_ANY = 1 << 3;
export const PERF_SAMPLE_BRANCH_ANY_CALL = 1 << 4;
export const PERF_SAMPLE_BRANCH_ANY_RETURN = 1 << 5;
export const PERF_SAMPLE_BRANCH_IND_CALL = 1 << 6;
export const PERF_SAMPLE_BRANCH_ABORT_TX = 1 << 7;
export const PERF_SAMPLE_BRANCH_IN_TX = 1 << 8;
export const PERF_SAMPLE_BRANCH_NO_TX = 1 << 9;
export const PERF_SAMPLE_BRANCH_COND = 1 << 10;
export const PERF_SAMPLE_BRANCH_CALL_STACK = 1 << 11;
export const PERF_SAMPLE_BRANCH_IND_JUMP = 1 << 12;
export const PERF_SAMPLE_BRANCH_CALL = 1 << 13;
export const PERF_SAMPLE_BRANCH_NO_FLAGS = 1 << 14;
export const PERF_SAMPLE_BRANCH_NO_CYCLES = 1 << 15;
export const PERF_SAMPLE_BRANCH_TYPE_SAVE = 1 << 16;
export const PERF_SAMPLE_BRANCH_HW_INDEX = 1 << 17;
export const PERF_SAMPLE_BRANCH_PRIV_SAVE = 1 << 18;
export const PERF_SAMPLE_BRANCH_COUNTERS = 1 << 19;
export const PERF_SAMPLE_BRANCH_MAX = 1 << 20;

/** Branch types (struct perf_branch_entry.type). */
export const PERF_BR_UNKNOWN = 0;
export const PERF_BR_COND = 1;
export const PERF_BR_UNCOND = 2;
export const PERF_BR_IND = 3;
export const PERF_BR_CALL = 4;
export const PERF_BR_IND_CALL = 5;
export const PERF_BR_RET = 6;
export const PERF_BR_SYSCALL = 7;
export const PERF_BR_SYSRET = 8;
export const PERF_BR_COND_CALL = 9;
export const PERF_BR_COND_RET = 10;
export const PERF_BR_ERET = 11;
export const PERF_BR_IRQ = 12;
export const PERF_BR_SERROR = 13;
export const PERF_BR_NO_TX = 14;
export const PERF_BR_EXTEND_ABI = 15;
/** perf_branch_entry.spec */
export const PERF_BR_SPEC_NA = 0;
export const PERF_BR_SPEC_WRONG_PATH = 1;
export const PERF_BR_NON_SPEC_CORRECT_PATH = 2;
export const PERF_BR_SPEC_CORRECT_PATH = 3;
/** perf_branch_entry.new_type (when type is PERF_BR_EXTEND_ABI). */
export const PERF_BR_NEW_FAULT_ALGN = 0;
export const PERF_BR_NEW_FAULT_DATA = 1;
export const PERF_BR_NEW_FAULT_INST = 2;
export const PERF_BR_NEW_ARCH_1 = 3;
export const PERF_BR_NEW_ARCH_2 = 4;
export const PERF_BR_NEW_ARCH_3 = 5;
export const PERF_BR_NEW_ARCH_4 = 6;
export const PERF_BR_NEW_ARCH_5 = 7;
/** perf_branch_entry.priv */
export const PERF_BR_PRIV_UNKNOWN = 0;
export const PERF_BR_PRIV_USER = 1;
export const PERF_BR_PRIV_KERNEL = 2;
export const PERF_BR_PRIV_HV = 3;

/** enum perf_sample_regs_abi (the u64 before REGS_USER / REGS_INTR values). */
export const PERF_SAMPLE_REGS_ABI_NONE = 0;
export const PERF_SAMPLE_REGS_ABI_32 = 1;
export const PERF_SAMPLE_REGS_ABI_64 = 2;

/** enum perf_event_read_format */
export const PERF_FORMAT_TOTAL_TIME_ENABLED = 1 << 0;
export const PERF_FORMAT_TOTAL_TIME_RUNNING = 1 << 1;
export const PERF_FORMAT_ID = 1 << 2;
export const PERF_FORMAT_GROUP = 1 << 3;
export const PERF_FORMAT_LOST = 1 << 4;
export const PERF_FORMAT_MAX = 1 << 5;

export const PERF_ATTR_SIZE_VER0 = 64;
export const PERF_ATTR_SIZE_VER1 = 72;
export const PERF_ATTR_SIZE_VER2 = 80;
export const PERF_ATTR_SIZE_VER3 = 96;
export const PERF_ATTR_SIZE_VER4 = 104;
export const PERF_ATTR_SIZE_VER5 = 112;
export const PERF_ATTR_SIZE_VER6 = 120;
export const PERF_ATTR_SIZE_VER7 = 128;
export const PERF_ATTR_SIZE_VER8 = 136;
export const SIZEOF_PERF_EVENT_ATTR = PERF_ATTR_SIZE_VER8;
/** Byte offsets in struct perf_event_attr (union members share an offset). */
export const PERF_EVENT_ATTR_OFF = {
  type: 0, // u32
  size: 4, // u32
  config: 8, // u64
  sample_period: 16, // u64
  sample_freq: 16, // u64 (union with sample_period; attr.freq chooses)
  sample_type: 24, // u64
  read_format: 32, // u64
  flags: 40, // u64 bitfield: disabled, inherit, ... sigtrap (PERF_ATTR_FLAG_*)
  wakeup_events: 48, // u32
  wakeup_watermark: 48, // u32 (union; attr.watermark chooses)
  bp_type: 52, // u32
  bp_addr: 56, // u64 (union config1 / kprobe_func / uprobe_path)
  kprobe_func: 56,
  uprobe_path: 56,
  config1: 56,
  bp_len: 64, // u64 (union config2 / kprobe_addr / probe_offset)
  kprobe_addr: 64,
  probe_offset: 64,
  config2: 64,
  branch_sample_type: 72, // u64
  sample_regs_user: 80, // u64
  sample_stack_user: 88, // u32
  clockid: 92, // s32
  sample_regs_intr: 96, // u64
  aux_watermark: 104, // u32
  sample_max_stack: 108, // u16
  aux_sample_size: 112, // u32
  aux_action: 116, // u32 (aux_start_paused, aux_pause, aux_resume bits)
  sig_data: 120, // u64
  config3: 128, // u64
} as const;

/** Bits of the perf_event_attr flags word (offset 40); bits past 31 as 2 ** n. */
export const PERF_ATTR_FLAG_DISABLED = 2 ** 0;
export const PERF_ATTR_FLAG_INHERIT = 2 ** 1;
export const PERF_ATTR_FLAG_PINNED = 2 ** 2;
export const PERF_ATTR_FLAG_EXCLUSIVE = 2 ** 3;
export const PERF_ATTR_FLAG_EXCLUDE_USER = 2 ** 4;
export const PERF_ATTR_FLAG_EXCLUDE_KERNEL = 2 ** 5;
export const PERF_ATTR_FLAG_EXCLUDE_HV = 2 ** 6;
export const PERF_ATTR_FLAG_EXCLUDE_IDLE = 2 ** 7;
export const PERF_ATTR_FLAG_MMAP = 2 ** 8;
export const PERF_ATTR_FLAG_COMM = 2 ** 9;
export const PERF_ATTR_FLAG_FREQ = 2 ** 10;
export const PERF_ATTR_FLAG_INHERIT_STAT = 2 ** 11;
export const PERF_ATTR_FLAG_ENABLE_ON_EXEC = 2 ** 12;
export const PERF_ATTR_FLAG_TASK = 2 ** 13;
export const PERF_ATTR_FLAG_WATERMARK = 2 ** 14;
/** precise_ip is two bits (0..3) at this shift. */
export const PERF_ATTR_PRECISE_IP_SHIFT = 15;
export const PERF_ATTR_FLAG_MMAP_DATA = 2 ** 17;
export const PERF_ATTR_FLAG_SAMPLE_ID_ALL = 2 ** 18;
export const PERF_ATTR_FLAG_EXCLUDE_HOST = 2 ** 19;
export const PERF_ATTR_FLAG_EXCLUDE_GUEST = 2 ** 20;
export const PERF_ATTR_FLAG_EXCLUDE_CALLCHAIN_KERNEL = 2 ** 21;
export const PERF_ATTR_FLAG_EXCLUDE_CALLCHAIN_USER = 2 ** 22;
export const PERF_ATTR_FLAG_MMAP2 = 2 ** 23;
export const PERF_ATTR_FLAG_COMM_EXEC = 2 ** 24;
export const PERF_ATTR_FLAG_USE_CLOCKID = 2 ** 25;
export const PERF_ATTR_FLAG_CONTEXT_SWITCH = 2 ** 26;
export const PERF_ATTR_FLAG_WRITE_BACKWARD = 2 ** 27;
export const PERF_ATTR_FLAG_NAMESPACES = 2 ** 28;
export const PERF_ATTR_FLAG_KSYMBOL = 2 ** 29;
export const PERF_ATTR_FLAG_BPF_EVENT = 2 ** 30;
export const PERF_ATTR_FLAG_AUX_OUTPUT = 2 ** 31;
export const PERF_ATTR_FLAG_CGROUP = 2 ** 32;
export const PERF_ATTR_FLAG_TEXT_POKE = 2 ** 33;
export const PERF_ATTR_FLAG_BUILD_ID = 2 ** 34;
export const PERF_ATTR_FLAG_INHERIT_THREAD = 2 ** 35;
export const PERF_ATTR_FLAG_REMOVE_ON_EXEC = 2 ** 36;
export const PERF_ATTR_FLAG_SIGTRAP = 2 ** 37;

/** Bits of attr.aux_action (Linux 6.13; in the 6.12.y headers). */
export const PERF_ATTR_AUX_START_PAUSED = 1 << 0;
export const PERF_ATTR_AUX_PAUSE = 1 << 1;
export const PERF_ATTR_AUX_RESUME = 1 << 2;

/** <linux/hw_breakpoint.h>: attr.bp_type and attr.bp_len. */
export const HW_BREAKPOINT_EMPTY = 0;
export const HW_BREAKPOINT_R = 1;
export const HW_BREAKPOINT_W = 2;
export const HW_BREAKPOINT_RW = 3;
export const HW_BREAKPOINT_X = 4;
export const HW_BREAKPOINT_LEN_1 = 1;
export const HW_BREAKPOINT_LEN_2 = 2;
export const HW_BREAKPOINT_LEN_4 = 4;
export const HW_BREAKPOINT_LEN_8 = 8;

/** perf_event_open flags */
export const PERF_FLAG_FD_NO_GROUP = 1 << 0;
export const PERF_FLAG_FD_OUTPUT = 1 << 1;
export const PERF_FLAG_PID_CGROUP = 1 << 2;
export const PERF_FLAG_FD_CLOEXEC = 1 << 3;

/** ioctls on a perf event fd ('$' = 0x24). */
export const PERF_EVENT_IOC_ENABLE: number = _IO(0x24, 0);
export const PERF_EVENT_IOC_DISABLE: number = _IO(0x24, 1);
export const PERF_EVENT_IOC_REFRESH: number = _IO(0x24, 2);
export const PERF_EVENT_IOC_RESET: number = _IO(0x24, 3);
export const PERF_EVENT_IOC_PERIOD: number = _IOW(0x24, 4, 8); // __u64
export const PERF_EVENT_IOC_SET_OUTPUT: number = _IO(0x24, 5);
export const PERF_EVENT_IOC_SET_FILTER: number = _IOW(0x24, 6, 8); // char *
export const PERF_EVENT_IOC_ID: number = _IOR(0x24, 7, 8); // __u64 *
export const PERF_EVENT_IOC_SET_BPF: number = _IOW(0x24, 8, 4); // __u32
export const PERF_EVENT_IOC_PAUSE_OUTPUT: number = _IOW(0x24, 9, 4); // __u32
export const PERF_EVENT_IOC_QUERY_BPF: number = _IOWR(0x24, 10, 8); // struct perf_event_query_bpf *
export const PERF_EVENT_IOC_MODIFY_ATTRIBUTES: number = _IOW(0x24, 11, 8); // struct perf_event_attr *
/** The ioctl argument that applies ENABLE/DISABLE/RESET/REFRESH to the whole group. */
export const PERF_IOC_FLAG_GROUP = 1 << 0;

/** struct perf_event_query_bpf { u32 ids_len; u32 prog_cnt; u32 ids[]; } */
export const PERF_EVENT_QUERY_BPF_OFF = { ids_len: 0, prog_cnt: 4, ids: 8 } as const;

/** struct perf_event_mmap_page: the ring buffer's control page. */
export const SIZEOF_PERF_EVENT_MMAP_PAGE = 1088;
export const PERF_MMAP_PAGE_OFF = {
  version: 0, // u32
  compat_version: 4, // u32
  lock: 8, // u32 seqlock
  index: 12, // u32
  offset: 16, // s64
  time_enabled: 24, // u64
  time_running: 32, // u64
  capabilities: 40, // u64 bitfield
  pmc_width: 48, // u16
  time_shift: 50, // u16
  time_mult: 52, // u32
  time_offset: 56, // u64
  time_zero: 64, // u64
  size: 72, // u32
  time_cycles: 80, // u64
  time_mask: 88, // u64
  data_head: 1024, // u64: written by the kernel; read with Atomics.load
  data_tail: 1032, // u64: written by the reader with Atomics.store
  data_offset: 1040, // u64
  data_size: 1048, // u64
  aux_head: 1056, // u64
  aux_tail: 1064, // u64
  aux_offset: 1072, // u64
  aux_size: 1080, // u64
} as const;

/** struct perf_event_header { u32 type; u16 misc; u16 size; } */
export const SIZEOF_PERF_EVENT_HEADER = 8;
export const PERF_EVENT_HEADER_OFF = { type: 0, misc: 4, size: 6 } as const;

/** enum perf_event_type */
export const PERF_RECORD_MMAP = 1;
export const PERF_RECORD_LOST = 2;
export const PERF_RECORD_COMM = 3;
export const PERF_RECORD_EXIT = 4;
export const PERF_RECORD_THROTTLE = 5;
export const PERF_RECORD_UNTHROTTLE = 6;
export const PERF_RECORD_FORK = 7;
export const PERF_RECORD_READ = 8;
export const PERF_RECORD_SAMPLE = 9;
export const PERF_RECORD_MMAP2 = 10;
export const PERF_RECORD_AUX = 11;
export const PERF_RECORD_ITRACE_START = 12;
export const PERF_RECORD_LOST_SAMPLES = 13;
export const PERF_RECORD_SWITCH = 14;
export const PERF_RECORD_SWITCH_CPU_WIDE = 15;
export const PERF_RECORD_NAMESPACES = 16;
export const PERF_RECORD_KSYMBOL = 17;
export const PERF_RECORD_BPF_EVENT = 18;
export const PERF_RECORD_CGROUP = 19;
export const PERF_RECORD_TEXT_POKE = 20;
export const PERF_RECORD_AUX_OUTPUT_HW_ID = 21;
/** PERF_RECORD_MAX (non-ABI): types from here on are perf tool records (perf.data). */
export const PERF_RECORD_MAX = 22;

/** perf_event_header.misc */
export const PERF_RECORD_MISC_CPUMODE_MASK = 7;
export const PERF_RECORD_MISC_CPUMODE_UNKNOWN = 0;
export const PERF_RECORD_MISC_KERNEL = 1;
export const PERF_RECORD_MISC_USER = 2;
export const PERF_RECORD_MISC_HYPERVISOR = 3;
export const PERF_RECORD_MISC_GUEST_KERNEL = 4;
export const PERF_RECORD_MISC_GUEST_USER = 5;
export const PERF_RECORD_MISC_PROC_MAP_PARSE_TIMEOUT = 1 << 12;
export const PERF_RECORD_MISC_MMAP_DATA = 1 << 13;
export const PERF_RECORD_MISC_COMM_EXEC = 1 << 13;
export const PERF_RECORD_MISC_FORK_EXEC = 1 << 13;
export const PERF_RECORD_MISC_SWITCH_OUT = 1 << 13;
export const PERF_RECORD_MISC_EXACT_IP = 1 << 14;
export const PERF_RECORD_MISC_SWITCH_OUT_PREEMPT = 1 << 14;
export const PERF_RECORD_MISC_MMAP_BUILD_ID = 1 << 14;
export const PERF_RECORD_MISC_EXT_RESERVED = 1 << 15;

/** PERF_RECORD_KSYMBOL */
export const PERF_RECORD_KSYMBOL_TYPE_UNKNOWN = 0;
export const PERF_RECORD_KSYMBOL_TYPE_BPF = 1;
export const PERF_RECORD_KSYMBOL_TYPE_OOL = 2;
export const PERF_RECORD_KSYMBOL_FLAGS_UNREGISTER = 1 << 0;
/** PERF_RECORD_BPF_EVENT */
export const PERF_BPF_EVENT_UNKNOWN = 0;
export const PERF_BPF_EVENT_PROG_LOAD = 1;
export const PERF_BPF_EVENT_PROG_UNLOAD = 2;

/** Callchain limits and the context markers among its ips. */
export const PERF_MAX_STACK_DEPTH = 127;
export const PERF_MAX_CONTEXTS_PER_STACK = 8;
export const PERF_CONTEXT_HV = 0xffff_ffff_ffff_ffe0n; // (u64)-32
export const PERF_CONTEXT_KERNEL = 0xffff_ffff_ffff_ff80n; // (u64)-128
export const PERF_CONTEXT_USER = 0xffff_ffff_ffff_fe00n; // (u64)-512
export const PERF_CONTEXT_GUEST = 0xffff_ffff_ffff_f800n; // (u64)-2048
export const PERF_CONTEXT_GUEST_KERNEL = 0xffff_ffff_ffff_f780n; // (u64)-2176
export const PERF_CONTEXT_GUEST_USER = 0xffff_ffff_ffff_f600n; // (u64)-2560
export const PERF_CONTEXT_MAX = 0xffff_ffff_ffff_f001n; // (u64)-4095

/** PERF_RECORD_AUX flags */
export const PERF_AUX_FLAG_TRUNCATED = 0x01;
export const PERF_AUX_FLAG_OVERWRITE = 0x02;
export const PERF_AUX_FLAG_PARTIAL = 0x04;
export const PERF_AUX_FLAG_COLLISION = 0x08;
export const PERF_AUX_FLAG_PMU_FORMAT_TYPE_MASK = 0xff00;

/** enum perf_txn (PERF_SAMPLE_TRANSACTION) */
export const PERF_TXN_ELISION = 1 << 0;
export const PERF_TXN_TRANSACTION = 1 << 1;
export const PERF_TXN_SYNC = 1 << 2;
export const PERF_TXN_ASYNC = 1 << 3;
export const PERF_TXN_RETRY = 1 << 4;
export const PERF_TXN_CONFLICT = 1 << 5;
export const PERF_TXN_CAPACITY_WRITE = 1 << 6;
export const PERF_TXN_CAPACITY_READ = 1 << 7;
export const PERF_TXN_ABORT_SHIFT = 32;

/** __NR_perf_event_open: x86_64 <asm/unistd_64.h>, arm64 <asm-generic/unistd.h>. */
export const __NR_perf_event_open_x86_64 = 298;
export const __NR_perf_event_open_arm64 = 241;
