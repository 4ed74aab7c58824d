/**
 * `struct perf_event_attr` as a plain object: every field of Linux 6.12 by a
 * camelCase form of its kernel name, encoded to and decoded from the kernel's
 * bytes. One table (ATTR_FIELDS) says where each field lives, so encode,
 * decode and the perf.data reader cannot disagree.
 *
 * 64-bit fields are bigints (config words, addresses, register masks); the
 * rest are numbers; flag bits are booleans. Unions are exposed by their
 * meaning: `samplePeriod` or `sampleFreq` (the latter sets `freq`),
 * `wakeupEvents` or `wakeupWatermark` (the latter sets `watermark`),
 * `bpAddr`/`bpLen` for breakpoints and `config1`/`config2` otherwise (the same
 * words; a uprobe's path pointer and offset are config1/config2 too).
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { invalid } from "../validate.ts";

/** The flag bits of the attr's bitfield word, by name (see PERF_ATTR_FLAG_*). */
export const ATTR_FLAGS = {
  disabled: pe.PERF_ATTR_FLAG_DISABLED,
  inherit: pe.PERF_ATTR_FLAG_INHERIT,
  pinned: pe.PERF_ATTR_FLAG_PINNED,
  exclusive: pe.PERF_ATTR_FLAG_EXCLUSIVE,
  excludeUser: pe.PERF_ATTR_FLAG_EXCLUDE_USER,
  excludeKernel: pe.PERF_ATTR_FLAG_EXCLUDE_KERNEL,
  excludeHv: pe.PERF_ATTR_FLAG_EXCLUDE_HV,
  excludeIdle: pe.PERF_ATTR_FLAG_EXCLUDE_IDLE,
  mmap: pe.PERF_ATTR_FLAG_MMAP,
  comm: pe.PERF_ATTR_FLAG_COMM,
  freq: pe.PERF_ATTR_FLAG_FREQ,
  inheritStat: pe.PERF_ATTR_FLAG_INHERIT_STAT,
  enableOnExec: pe.PERF_ATTR_FLAG_ENABLE_ON_EXEC,
  task: pe.PERF_ATTR_FLAG_TASK,
  watermark: pe.PERF_ATTR_FLAG_WATERMARK,
  mmapData: pe.PERF_ATTR_FLAG_MMAP_DATA,
  sampleIdAll: pe.PERF_ATTR_FLAG_SAMPLE_ID_ALL,
  excludeHost: pe.PERF_ATTR_FLAG_EXCLUDE_HOST,
  excludeGuest: pe.PERF_ATTR_FLAG_EXCLUDE_GUEST,
  excludeCallchainKernel: pe.PERF_ATTR_FLAG_EXCLUDE_CALLCHAIN_KERNEL,
  excludeCallchainUser: pe.PERF_ATTR_FLAG_EXCLUDE_CALLCHAIN_USER,
  mmap2: pe.PERF_ATTR_FLAG_MMAP2,
  commExec: pe.PERF_ATTR_FLAG_COMM_EXEC,
  useClockid: pe.PERF_ATTR_FLAG_USE_CLOCKID,
  contextSwitch: pe.PERF_ATTR_FLAG_CONTEXT_SWITCH,
  writeBackward: pe.PERF_ATTR_FLAG_WRITE_BACKWARD,
  namespaces: pe.PERF_ATTR_FLAG_NAMESPACES,
  ksymbol: pe.PERF_ATTR_FLAG_KSYMBOL,
  bpfEvent: pe.PERF_ATTR_FLAG_BPF_EVENT,
  auxOutput: pe.PERF_ATTR_FLAG_AUX_OUTPUT,
  cgroup: pe.PERF_ATTR_FLAG_CGROUP,
  textPoke: pe.PERF_ATTR_FLAG_TEXT_POKE,
  buildId: pe.PERF_ATTR_FLAG_BUILD_ID,
  inheritThread: pe.PERF_ATTR_FLAG_INHERIT_THREAD,
  removeOnExec: pe.PERF_ATTR_FLAG_REMOVE_ON_EXEC,
  sigtrap: pe.PERF_ATTR_FLAG_SIGTRAP,
} as const;

/** A flag bit's name. */
export type AttrFlag = keyof typeof ATTR_FLAGS;

/** The bits of aux_action, by name. */
export const AUX_ACTION_FLAGS = {
  auxStartPaused: pe.PERF_ATTR_AUX_START_PAUSED,
  auxPause: pe.PERF_ATTR_AUX_PAUSE,
  auxResume: pe.PERF_ATTR_AUX_RESUME,
} as const;

/** The numeric fields: [offset, width in bytes, signed]. bigint for 8-byte fields. */
const WORDS = {
  type: [pe.PERF_EVENT_ATTR_OFF.type, 4],
  size: [pe.PERF_EVENT_ATTR_OFF.size, 4],
  config: [pe.PERF_EVENT_ATTR_OFF.config, 8],
  samplePeriod: [pe.PERF_EVENT_ATTR_OFF.sample_period, 8],
  sampleType: [pe.PERF_EVENT_ATTR_OFF.sample_type, 8],
  readFormat: [pe.PERF_EVENT_ATTR_OFF.read_format, 8],
  wakeupEvents: [pe.PERF_EVENT_ATTR_OFF.wakeup_events, 4],
  bpType: [pe.PERF_EVENT_ATTR_OFF.bp_type, 4],
  config1: [pe.PERF_EVENT_ATTR_OFF.config1, 8],
  config2: [pe.PERF_EVENT_ATTR_OFF.config2, 8],
  branchSampleType: [pe.PERF_EVENT_ATTR_OFF.branch_sample_type, 8],
  sampleRegsUser: [pe.PERF_EVENT_ATTR_OFF.sample_regs_user, 8],
  sampleStackUser: [pe.PERF_EVENT_ATTR_OFF.sample_stack_user, 4],
  clockid: [pe.PERF_EVENT_ATTR_OFF.clockid, 4, true],
  sampleRegsIntr: [pe.PERF_EVENT_ATTR_OFF.sample_regs_intr, 8],
  auxWatermark: [pe.PERF_EVENT_ATTR_OFF.aux_watermark, 4],
  sampleMaxStack: [pe.PERF_EVENT_ATTR_OFF.sample_max_stack, 2],
  auxSampleSize: [pe.PERF_EVENT_ATTR_OFF.aux_sample_size, 4],
  auxAction: [pe.PERF_EVENT_ATTR_OFF.aux_action, 4],
  sigData: [pe.PERF_EVENT_ATTR_OFF.sig_data, 8],
  config3: [pe.PERF_EVENT_ATTR_OFF.config3, 8],
} as const satisfies Record<string, readonly [number, number, boolean?]>;

/**
 * Every field of `struct perf_event_attr` (Linux 6.12). What {@linkcode decodeAttr}
 * returns; {@linkcode PerfEventAttr} is the same with everything optional.
 */
export interface PerfEventAttrFields extends Record<AttrFlag, boolean> {
  /** PERF_TYPE_* or a dynamic PMU's type (/sys/bus/event_source/devices/NAME/type). */
  type: number;
  /** The attr size the kernel is told (default: 136, PERF_ATTR_SIZE_VER8). */
  size: number;
  /** The event within its type (PERF_COUNT_*, a tracepoint id, a raw PMU encoding). */
  config: bigint;
  /** Sample every N events (when `freq` is false). */
  samplePeriod: bigint;
  /** Samples per second (when `freq` is true: the same word as samplePeriod). */
  sampleFreq: bigint;
  /** PERF_SAMPLE_* bits: the fields of each SAMPLE record. */
  sampleType: number;
  /** PERF_FORMAT_* bits: what read() returns. */
  readFormat: number;
  /** SAMPLE_IP skid constraint, 0 to 3. */
  preciseIp: number;
  /** Wake a waiter every N samples (when `watermark` is false). */
  wakeupEvents: number;
  /** Wake a waiter every N bytes (when `watermark` is true: the same word). */
  wakeupWatermark: number;
  /** Breakpoints: HW_BREAKPOINT_R/W/RW/X. */
  bpType: number;
  /** Breakpoints: the address (the config1 word). */
  bpAddr: bigint;
  /** Breakpoints: 1, 2, 4 or 8 bytes (the config2 word). */
  bpLen: bigint;
  /** PMU-specific extension (the union with bp_addr, kprobe_func, uprobe_path). */
  config1: bigint;
  /** PMU-specific extension (the union with bp_len, kprobe_addr, probe_offset). */
  config2: bigint;
  /** PMU-specific extension (Linux 6.3+). */
  config3: bigint;
  /** PERF_SAMPLE_BRANCH_* filter bits (with PERF_SAMPLE_BRANCH_STACK). */
  branchSampleType: number;
  /** Registers in REGS_USER samples (a bit per register of the architecture's perf_regs.h). */
  sampleRegsUser: bigint;
  /** Bytes of user stack in STACK_USER samples (a multiple of 8). */
  sampleStackUser: number;
  /** The clock of time fields (with useClockid): CLOCK_MONOTONIC is 1. */
  clockid: number;
  /** Registers in REGS_INTR samples. */
  sampleRegsIntr: bigint;
  /** Bytes of AUX data before a wakeup. */
  auxWatermark: number;
  /** Callchain depth limit (0: the sysctl's). */
  sampleMaxStack: number;
  /** Bytes of AUX data in SAMPLE_AUX samples. */
  auxSampleSize: number;
  /** aux_action bits: start paused. */
  auxStartPaused: boolean;
  /** aux_action bits: pause AUX tracing on overflow. */
  auxPause: boolean;
  /** aux_action bits: resume AUX tracing on overflow. */
  auxResume: boolean;
  /** With sigtrap: si_perf_data of the signal. */
  sigData: bigint;
}

/** An attr to encode: every field optional (zero or false when absent). */
export type PerfEventAttr = Partial<PerfEventAttrFields>;

const U64_MAX = (1n << 64n) - 1n;

/** Encodes `attr` into `out` (at least `attr.size` bytes; zeroed first). Validates every field. */
export function encodeAttr(
  attr: PerfEventAttr,
  out: Uint8Array = new Uint8Array(pe.SIZEOF_PERF_EVENT_ATTR),
): Uint8Array {
  const a = validateAttr(attr);
  const size = a.size ?? pe.SIZEOF_PERF_EVENT_ATTR;
  if (out.length < size) invalid("encodeAttr: the output buffer", out, `at least ${size} bytes`);
  out.fill(0, 0, size);
  const dv = new DataView(out.buffer, out.byteOffset, size);
  const put = (key: keyof typeof WORDS, v: number | bigint | undefined) => {
    if (v === undefined) return;
    const [off, width] = WORDS[key];
    if (off + width > size) {
      if (v === 0 || v === 0n) return;
      invalid(`perf_event_attr.${key}`, v, `zero: it lies past the attr size ${size}`);
    }
    if (width === 8) dv.setBigUint64(off, BigInt(v), true);
    else if (width === 4) dv.setUint32(off, Number(v) >>> 0, true);
    else dv.setUint16(off, Number(v), true);
  };
  put("type", a.type ?? 0);
  put("size", size);
  put("config", a.config);
  put("samplePeriod", a.sampleFreq ?? a.samplePeriod);
  put("sampleType", a.sampleType);
  put("readFormat", a.readFormat);
  put("wakeupEvents", a.wakeupWatermark ?? a.wakeupEvents);
  put("bpType", a.bpType);
  put("config1", a.bpAddr ?? a.config1);
  put("config2", a.bpLen ?? a.config2);
  put("branchSampleType", a.branchSampleType);
  put("sampleRegsUser", a.sampleRegsUser);
  put("sampleStackUser", a.sampleStackUser);
  put("clockid", a.clockid);
  put("sampleRegsIntr", a.sampleRegsIntr);
  put("auxWatermark", a.auxWatermark);
  put("sampleMaxStack", a.sampleMaxStack);
  put("auxSampleSize", a.auxSampleSize);
  let aux = 0;
  for (const [k, bit] of Object.entries(AUX_ACTION_FLAGS)) {
    if (a[k as keyof typeof AUX_ACTION_FLAGS]) aux |= bit;
  }
  put("auxAction", aux);
  put("sigData", a.sigData);
  put("config3", a.config3);
  let flags = 0n;
  for (const [k, bit] of Object.entries(ATTR_FLAGS)) {
    if (a[k as AttrFlag]) flags |= BigInt(bit);
  }
  if (a.sampleFreq !== undefined) flags |= BigInt(pe.PERF_ATTR_FLAG_FREQ);
  if (a.wakeupWatermark !== undefined) flags |= BigInt(pe.PERF_ATTR_FLAG_WATERMARK);
  flags |= BigInt(a.preciseIp ?? 0) << BigInt(pe.PERF_ATTR_PRECISE_IP_SHIFT);
  dv.setBigUint64(pe.PERF_EVENT_ATTR_OFF.flags, flags, true);
  return out;
}

/**
 * Decodes an attr the kernel or a perf.data file holds. `bytes` may be shorter
 * than 136 (an older attr version): missing fields read as zero. Both forms
 * of each union are filled (samplePeriod and sampleFreq hold the same word).
 */
export function decodeAttr(bytes: Uint8Array): PerfEventAttrFields {
  if (!(bytes instanceof Uint8Array) || bytes.length < pe.PERF_ATTR_SIZE_VER0) {
    invalid(
      "decodeAttr: the attr bytes",
      bytes,
      `a Uint8Array of at least ${pe.PERF_ATTR_SIZE_VER0} bytes`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const get = (key: keyof typeof WORDS): number | bigint => {
    const [off, width, signed] = WORDS[key] as readonly [number, number, boolean?];
    if (off + width > bytes.length) return width === 8 ? 0n : 0;
    if (width === 8) return dv.getBigUint64(off, true);
    if (width === 4) return signed ? dv.getInt32(off, true) : dv.getUint32(off, true);
    return dv.getUint16(off, true);
  };
  const flags = dv.getBigUint64(pe.PERF_EVENT_ATTR_OFF.flags, true);
  const out = {
    type: get("type") as number,
    size: get("size") as number,
    config: get("config") as bigint,
    samplePeriod: get("samplePeriod") as bigint,
    sampleFreq: get("samplePeriod") as bigint,
    sampleType: Number(get("sampleType")),
    readFormat: Number(get("readFormat")),
    preciseIp: Number((flags >> BigInt(pe.PERF_ATTR_PRECISE_IP_SHIFT)) & 3n),
    wakeupEvents: get("wakeupEvents") as number,
    wakeupWatermark: get("wakeupEvents") as number,
    bpType: get("bpType") as number,
    bpAddr: get("config1") as bigint,
    bpLen: get("config2") as bigint,
    config1: get("config1") as bigint,
    config2: get("config2") as bigint,
    config3: get("config3") as bigint,
    branchSampleType: Number(get("branchSampleType")),
    sampleRegsUser: get("sampleRegsUser") as bigint,
    sampleStackUser: get("sampleStackUser") as number,
    clockid: get("clockid") as number,
    sampleRegsIntr: get("sampleRegsIntr") as bigint,
    auxWatermark: get("auxWatermark") as number,
    sampleMaxStack: get("sampleMaxStack") as number,
    auxSampleSize: get("auxSampleSize") as number,
    sigData: get("sigData") as bigint,
  } as PerfEventAttrFields;
  for (const [k, bit] of Object.entries(ATTR_FLAGS)) {
    out[k as AttrFlag] = (flags & BigInt(bit)) !== 0n;
  }
  const aux = get("auxAction") as number;
  for (const [k, bit] of Object.entries(AUX_ACTION_FLAGS)) {
    out[k as keyof typeof AUX_ACTION_FLAGS] = (aux & bit) !== 0;
  }
  return out;
}

const BIGINT_FIELDS = new Set([
  "config",
  "samplePeriod",
  "sampleFreq",
  "bpAddr",
  "bpLen",
  "config1",
  "config2",
  "config3",
  "sampleRegsUser",
  "sampleRegsIntr",
  "sigData",
]);
const NUMBER_LIMITS: Record<string, number> = {
  type: 0xffffffff,
  size: 0xffffffff,
  sampleType: pe.PERF_SAMPLE_MAX - 1,
  readFormat: pe.PERF_FORMAT_MAX - 1,
  preciseIp: 3,
  wakeupEvents: 0xffffffff,
  wakeupWatermark: 0xffffffff,
  bpType: 0xffffffff,
  branchSampleType: pe.PERF_SAMPLE_BRANCH_MAX - 1,
  sampleStackUser: 0xffffffff,
  clockid: 0x7fffffff,
  auxWatermark: 0xffffffff,
  sampleMaxStack: 0xffff,
  auxSampleSize: 0xffffffff,
};
const BIT_MASKS: Record<string, number> = {
  sampleType: pe.PERF_SAMPLE_MAX - 1,
  readFormat: pe.PERF_FORMAT_MAX - 1,
  branchSampleType: pe.PERF_SAMPLE_BRANCH_MAX - 1,
};

/**
 * Checks every field of an attr before the kernel sees it: known names only,
 * integers in their field's range (bigints accepted for 64-bit fields and
 * numbers where exact), booleans for flags, no two forms of one union.
 * Returns the attr with 64-bit fields as bigints.
 */
export function validateAttr(attr: PerfEventAttr): PerfEventAttr {
  if (attr === null || typeof attr !== "object" || Array.isArray(attr)) {
    invalid("perf_event_attr", attr, "an object of attr fields");
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attr)) {
    if (v === undefined) continue;
    const what = `perf_event_attr.${k}`;
    if (k in ATTR_FLAGS || k in AUX_ACTION_FLAGS) {
      if (typeof v !== "boolean") invalid(what, v, "a boolean");
      out[k] = v;
    } else if (BIGINT_FIELDS.has(k)) {
      const b = typeof v === "bigint"
        ? v
        : typeof v === "number" && Number.isSafeInteger(v)
        ? BigInt(v)
        : null;
      if (b === null || b < 0n || b > U64_MAX) {
        invalid(what, v, "an unsigned 64-bit integer (bigint, or a safe integer number)");
      }
      out[k] = b;
    } else if (k in NUMBER_LIMITS) {
      const max = NUMBER_LIMITS[k];
      const min = k === "clockid" ? -0x80000000 : 0;
      if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
        invalid(what, v, `an integer in ${min}..${max}`);
      }
      const mask = BIT_MASKS[k];
      if (mask !== undefined && (v & ~mask) !== 0) {
        invalid(
          what,
          v,
          `a combination of the bits this ABI defines (mask 0x${
            mask.toString(16)
          }); unknown bits 0x${(v & ~mask).toString(16)}`,
        );
      }
      out[k] = v;
    } else {
      invalid(
        `perf_event_attr: field ${JSON.stringify(k)}`,
        v,
        "absent: no such field in struct perf_event_attr (Linux 6.12)",
      );
    }
  }
  const both = (x: string, y: string) => {
    if (out[x] !== undefined && out[y] !== undefined) {
      invalid(`perf_event_attr.${x} and .${y}`, out[y], `not both: they share one word (give one)`);
    }
  };
  both("samplePeriod", "sampleFreq");
  both("wakeupEvents", "wakeupWatermark");
  both("bpAddr", "config1");
  both("bpLen", "config2");
  if (out.freq === true && out.samplePeriod !== undefined) {
    invalid(
      "perf_event_attr.samplePeriod",
      out.samplePeriod,
      "absent with freq: true (give sampleFreq)",
    );
  }
  if (
    out.size !== undefined &&
    ((out.size as number) < pe.PERF_ATTR_SIZE_VER0 || (out.size as number) % 8 !== 0)
  ) {
    invalid(
      "perf_event_attr.size",
      out.size,
      `a multiple of 8, at least ${pe.PERF_ATTR_SIZE_VER0}`,
    );
  }
  return out as PerfEventAttr;
}

/** The attr's flags that are set, by name (for messages: "sigtrap, inherit"). */
export function setFlags(attr: PerfEventAttr): string[] {
  return Object.keys(ATTR_FLAGS).filter((k) => attr[k as AttrFlag] === true);
}
