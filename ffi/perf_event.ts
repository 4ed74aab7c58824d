/**
 * perf_event_open(2) ABI from <linux/perf_event.h> (and the syscall numbers of
 * <asm/unistd_64.h> / <asm-generic/unistd.h>): what reading a tracepoint into
 * the mmap ring buffer needs. `struct perf_event_attr` is PERF_ATTR_SIZE_VER8
 * (136 bytes, Linux 6.3+; older kernels accept a smaller `size`).
 */
import { _IO, _IOR, _IOW } from "./ioctl.ts";

/** enum perf_type_id */
export const PERF_TYPE_HARDWARE = 0;
export const PERF_TYPE_SOFTWARE = 1;
export const PERF_TYPE_TRACEPOINT = 2;

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

export const PERF_ATTR_SIZE_VER0 = 64;
export const PERF_ATTR_SIZE_VER8 = 136;
export const SIZEOF_PERF_EVENT_ATTR = PERF_ATTR_SIZE_VER8;
/** Byte offsets in struct perf_event_attr. */
export const PERF_EVENT_ATTR_OFF = {
  type: 0, // u32
  size: 4, // u32
  config: 8, // u64
  sample_period: 16, // u64 (union sample_freq)
  sample_type: 24, // u64
  read_format: 32, // u64
  flags: 40, // u64 bitfield: disabled, inherit, ...
  wakeup_events: 48, // u32 (union wakeup_watermark)
  bp_type: 52, // u32
  config1: 56, // u64
  config2: 64, // u64
  branch_sample_type: 72, // u64
  sample_regs_user: 80, // u64
  sample_stack_user: 88, // u32
  clockid: 92, // s32
  sample_regs_intr: 96, // u64
  aux_watermark: 104, // u32
  sample_max_stack: 108, // u16
  aux_sample_size: 112, // u32
  aux_action: 116, // u32
  sig_data: 120, // u64
  config3: 128, // u64
} as const;

/** Bits of the perf_event_attr flags word (offset 40). */
export const PERF_ATTR_FLAG_DISABLED = 1 << 0;
export const PERF_ATTR_FLAG_INHERIT = 1 << 1;
export const PERF_ATTR_FLAG_EXCLUDE_KERNEL = 1 << 5;
export const PERF_ATTR_FLAG_WATERMARK = 1 << 14;
export const PERF_ATTR_FLAG_SAMPLE_ID_ALL = 1 << 18;

/** perf_event_open flags */
export const PERF_FLAG_FD_NO_GROUP = 1 << 0;
export const PERF_FLAG_FD_OUTPUT = 1 << 1;
export const PERF_FLAG_PID_CGROUP = 1 << 2;
export const PERF_FLAG_FD_CLOEXEC = 1 << 3;

/** ioctls on a perf event fd ('$' = 0x24). */
export const PERF_EVENT_IOC_ENABLE = _IO(0x24, 0);
export const PERF_EVENT_IOC_DISABLE = _IO(0x24, 1);
export const PERF_EVENT_IOC_REFRESH = _IO(0x24, 2);
export const PERF_EVENT_IOC_RESET = _IO(0x24, 3);
export const PERF_EVENT_IOC_SET_OUTPUT = _IO(0x24, 5);
export const PERF_EVENT_IOC_SET_FILTER = _IOW(0x24, 6, 8); // char *
export const PERF_EVENT_IOC_ID = _IOR(0x24, 7, 8); // __u64 *

/** struct perf_event_mmap_page: the ring buffer's control fields. */
export const PERF_MMAP_PAGE_OFF = {
  version: 0, // u32
  compat_version: 4, // u32
  data_head: 1024, // u64
  data_tail: 1032, // u64
  data_offset: 1040, // u64
  data_size: 1048, // u64
} as const;

/** struct perf_event_header { u32 type; u16 misc; u16 size; } */
export const SIZEOF_PERF_EVENT_HEADER = 8;
/** enum perf_event_type */
export const PERF_RECORD_LOST = 2;
export const PERF_RECORD_SAMPLE = 9;

/** __NR_perf_event_open: x86_64 <asm/unistd_64.h>, arm64 <asm-generic/unistd.h>. */
export const __NR_perf_event_open_x86_64 = 298;
export const __NR_perf_event_open_arm64 = 241;
