/**
 * The perf_event_open system call (libc has no wrapper) and what its failures
 * mean. A failure becomes an UmmuError whose hint says what to do: for
 * EACCES/EPERM the perf_event_paranoid level and what it allows; for ENOENT
 * the PMUs this machine has (virtual machines usually have no hardware PMU);
 * for E2BIG the attr size the kernel wants; for EOPNOTSUPP and EINVAL the attr
 * field the PMU refused, found by retrying without each optional field, as
 * perf's own fallbacks do (every probe's fd is closed at once).
 * @module
 */
import { runtime } from "../../ffi/platform.ts";
import * as pe from "../../ffi/perf_event.ts";
import { ERRNO_NAMES } from "../../ffi/errno.ts";
import { errno, libc } from "../libc.ts";
import { UmmuError } from "../errors.ts";
import { readFileSync } from "node:fs";
import { encodeAttr, type PerfEventAttr, setFlags } from "./attr.ts";
import { pmuNames } from "./pmu.ts";

/** The perf_event_open syscall number of this architecture. */
export function perfEventOpenNr(): number {
  if (runtime.arch === "x64") return pe.__NR_perf_event_open_x86_64;
  if (runtime.arch === "arm64") return pe.__NR_perf_event_open_arm64;
  throw new UmmuError(
    `perf_event_open on ${runtime.arch}`,
    38,
    "ummu knows the syscall number of x86_64 and arm64 only",
  );
}

/** Where one event is opened: perf_event_open's pid, cpu and flags (cgroup: pid is the cgroup dir fd). */
export interface OpenSlot {
  pid: number;
  cpu: number;
  flags: number;
}

/** Raw perf_event_open: the fd, or -errno. `attr` is the encoded struct (kept alive by the caller). */
export function rawOpen(attr: Uint8Array, slot: OpenSlot, groupFd: number): number {
  const r = Number(
    libc.syscall(
      perfEventOpenNr(),
      runtime.addressOf(attr),
      slot.pid,
      slot.cpu,
      groupFd,
      slot.flags | pe.PERF_FLAG_FD_CLOEXEC,
    ),
  );
  return r < 0 ? -errno() : r;
}

/**
 * perf_event_open of `attr` on this thread, disabled and closed at once: "ok",
 * or the errno name the kernel gave (no hint probing). The probe of the doctor
 * and of the branch tracer's "auto".
 */
export function openOutcome(attr: PerfEventAttr): string {
  const fd = rawOpen(encodeAttr({ ...attr, disabled: true }), { pid: 0, cpu: -1, flags: 0 }, -1);
  if (fd < 0) return ERRNO_NAMES[-fd] ?? `errno ${-fd}`;
  libc.close(fd);
  return "ok";
}

/** Opens one event; on failure throws an UmmuError that says why and what to do. */
export function perfEventOpen(
  attr: PerfEventAttr,
  slot: OpenSlot,
  groupFd: number,
  what: string,
): number {
  const bytes = encodeAttr(attr);
  const r = rawOpen(bytes, slot, groupFd);
  if (r >= 0) return r;
  const e = -r;
  const call = `perf_event_open(${what}, pid ${slot.pid}, cpu ${slot.cpu}${
    groupFd >= 0 ? ", in a group" : ""
  })`;
  throw new UmmuError(call, e, openHint(e, attr, bytes, slot, groupFd));
}

/** kernel.perf_event_paranoid, or null without perf events (or permission to read it). */
export function perfEventParanoid(): number | null {
  try {
    return Number(readFileSync("/proc/sys/kernel/perf_event_paranoid", "utf8").trim());
  } catch {
    return null;
  }
}

/** What each perf_event_paranoid level allows an unprivileged process (Documentation/admin-guide/perf-security.rst). */
export function paranoidMeaning(level: number): string {
  if (level >= 3) return "no perf_event_open at all without CAP_PERFMON (a Debian/Android patch)";
  if (level === 2) {
    return "only user-space measurement of one's own processes (excludeKernel: true, no CPU-wide events)";
  }
  if (level === 1) return "one's own processes, user and kernel, but no CPU-wide events";
  if (level === 0) return "CPU-wide events too, but no raw tracepoint data";
  return "everything";
}

/**
 * Optional attr settings a PMU may refuse, each with how to drop it for a probe:
 * the specific ones first, sampling as a whole last (dropping it drops them all).
 */
const REFUSABLE: [string, (a: PerfEventAttr) => boolean, (a: PerfEventAttr) => PerfEventAttr][] = [
  ["preciseIp", (a) => !!a.preciseIp, (a) => ({ ...a, preciseIp: 0 })],
  [
    "branchSampleType (branch stacks: LBR or its equivalent)",
    (a) => !!a.branchSampleType,
    (a) => ({
      ...a,
      branchSampleType: 0,
      sampleType: (a.sampleType ?? 0) & ~pe.PERF_SAMPLE_BRANCH_STACK,
    }),
  ],
  [
    "sampleRegsIntr",
    (a) => !!a.sampleRegsIntr,
    (a) => ({
      ...a,
      sampleRegsIntr: 0n,
      sampleType: (a.sampleType ?? 0) & ~pe.PERF_SAMPLE_REGS_INTR,
    }),
  ],
  [
    "sampleRegsUser",
    (a) => !!a.sampleRegsUser,
    (a) => ({
      ...a,
      sampleRegsUser: 0n,
      sampleType: (a.sampleType ?? 0) & ~pe.PERF_SAMPLE_REGS_USER,
    }),
  ],
  [
    "sampleType PHYS_ADDR/DATA_SRC/WEIGHT (memory sampling needs a PMU that records them)",
    (a) =>
      ((a.sampleType ?? 0) &
        (pe.PERF_SAMPLE_PHYS_ADDR | pe.PERF_SAMPLE_DATA_SRC | pe.PERF_SAMPLE_WEIGHT |
          pe.PERF_SAMPLE_WEIGHT_STRUCT)) !== 0,
    (a) => ({
      ...a,
      sampleType: (a.sampleType ?? 0) &
        ~(pe.PERF_SAMPLE_PHYS_ADDR | pe.PERF_SAMPLE_DATA_SRC | pe.PERF_SAMPLE_WEIGHT |
          pe.PERF_SAMPLE_WEIGHT_STRUCT),
    }),
  ],
  ["excludeHv", (a) => !!a.excludeHv, (a) => ({ ...a, excludeHv: false })],
  ["excludeIdle", (a) => !!a.excludeIdle, (a) => ({ ...a, excludeIdle: false })],
  [
    "excludeGuest/excludeHost",
    (a) => !!(a.excludeGuest || a.excludeHost),
    (a) => ({ ...a, excludeGuest: false, excludeHost: false }),
  ],
  ["auxOutput", (a) => !!a.auxOutput, (a) => ({ ...a, auxOutput: false })],
  [
    "auxSampleSize (SAMPLE_AUX)",
    (a) => !!a.auxSampleSize,
    (a) => ({ ...a, auxSampleSize: 0, sampleType: (a.sampleType ?? 0) & ~pe.PERF_SAMPLE_AUX }),
  ],
  [
    "auxStartPaused/auxPause/auxResume (Linux 6.13+)",
    (a) => !!(a.auxStartPaused || a.auxPause || a.auxResume),
    (a) => ({ ...a, auxStartPaused: false, auxPause: false, auxResume: false }),
  ],
  ["useClockid/clockid", (a) => !!a.useClockid, (a) => ({ ...a, useClockid: false, clockid: 0 })],
  [
    "pinned/exclusive",
    (a) => !!(a.pinned || a.exclusive),
    (a) => ({ ...a, pinned: false, exclusive: false }),
  ],
  [
    "inherit (with this read format or target)",
    (a) => !!a.inherit,
    (a) => ({ ...a, inherit: false, inheritStat: false, inheritThread: false }),
  ],
  [
    "readFormat LOST (Linux 6.0+)",
    (a) => ((a.readFormat ?? 0) & pe.PERF_FORMAT_LOST) !== 0,
    (a) => ({ ...a, readFormat: (a.readFormat ?? 0) & ~pe.PERF_FORMAT_LOST }),
  ],
  [
    "buildId (MMAP2 with build ids, Linux 5.12+)",
    (a) => !!a.buildId,
    (a) => ({ ...a, buildId: false }),
  ],
  [
    "config1/config2/config3 (PMU format terms)",
    (a) => !!(a.config1 || a.config2 || a.config3),
    (a) => ({ ...a, config1: 0n, config2: 0n, config3: 0n }),
  ],
  [
    "sampling (samplePeriod/sampleFreq): this PMU or event counts only",
    (a) => !!(a.samplePeriod || a.sampleFreq),
    (a) => ({
      ...a,
      samplePeriod: undefined,
      sampleFreq: undefined,
      freq: undefined,
      sampleType: undefined,
    }),
  ],
];

/** Retries without each optional setting: the first that makes the kernel accept the attr. */
function refusedField(
  attr: PerfEventAttr,
  slot: OpenSlot,
  groupFd: number,
  e: number,
): string | null {
  for (const [name, isSet, drop] of REFUSABLE) {
    if (!isSet(attr)) continue;
    let probe: Uint8Array;
    try {
      probe = encodeAttr({ ...drop(attr), disabled: true });
    } catch {
      continue;
    }
    const fd = rawOpen(probe, slot, groupFd);
    if (fd >= 0) {
      libc.close(fd);
      return name;
    }
    if (-fd !== e) continue;
  }
  return null;
}

function openHint(
  e: number,
  attr: PerfEventAttr,
  bytes: Uint8Array,
  slot: OpenSlot,
  groupFd: number,
): string {
  const hardware = attr.type === pe.PERF_TYPE_HARDWARE || attr.type === pe.PERF_TYPE_HW_CACHE ||
    attr.type === pe.PERF_TYPE_RAW;
  switch (e) {
    case 1: // EPERM
    case 13: { // EACCES
      const p = perfEventParanoid();
      const level = p === null ? "unknown" : `${p} (${paranoidMeaning(p)})`;
      const kernel = attr.excludeKernel
        ? ""
        : "; try excludeKernel: true (and excludeHv: true), which level 2 allows";
      const cpuWide = slot.pid === -1
        ? "; a CPU-wide event (no pid) needs level ≤ 0 or CAP_PERFMON"
        : "";
      const sig = attr.sigtrap ? "; sigtrap also needs the target to be this process" : "";
      return `kernel.perf_event_paranoid is ${level}: run with CAP_PERFMON (or root), or lower it (sysctl -w kernel.perf_event_paranoid=1)${kernel}${cpuWide}${sig}; in a container, a seccomp profile may refuse perf_event_open`;
    }
    case 2: { // ENOENT
      const pmus = pmuNames();
      const have = pmus.length
        ? `this machine's PMUs: ${pmus.join(", ")}`
        : "no PMU is listed in /sys/bus/event_source/devices";
      return hardware
        ? `this CPU (or its PMU driver) has no such event; ${have}. Virtual machines usually expose no hardware PMU: use a software event (cpu-clock, task-clock, page-faults)`
        : `no such event for type ${attr.type} (config ${
          attr.config ?? 0n
        }) on this kernel; ${have}`;
    }
    case 7: { // E2BIG
      const wants = new DataView(bytes.buffer, bytes.byteOffset).getUint32(
        pe.PERF_EVENT_ATTR_OFF.size,
        true,
      );
      return `this kernel's struct perf_event_attr is ${wants} bytes: a field past byte ${wants} is set (size: ${wants} makes it refuse those fields instead)`;
    }
    case 24: // EMFILE
      return "too many open files: raise the limit (ulimit -n), or open fewer events (one per CPU and thread adds up)";
    case 3: // ESRCH
      return `no process or thread ${slot.pid}`;
    case 16: // EBUSY
      return "the PMU is in exclusive use by another event (Intel PT and BTS allow one user per CPU)";
    case 19: // ENODEV
      return "the PMU does not support this target (a CPU it does not cover, or per-task use of an uncore PMU)";
    case 95: // EOPNOTSUPP
    case 22: { // EINVAL
      if (attr.type === pe.PERF_TYPE_BREAKPOINT) {
        return "a breakpoint's address must be aligned to its length (bpLen 1, 2, 4 or 8; an execute breakpoint takes bpLen 8 on x86), and x86 has no read-only watchpoint: use HW_BREAKPOINT_RW";
      }
      const f = refusedField(attr, slot, groupFd, e);
      if (f) return `the PMU refused ${f}: the same attr without it opens`;
      const flags = setFlags(attr);
      return e === 95
        ? `the PMU refused a feature this attr asks for (flags set: ${flags.join(", ") || "none"})`
        : `the kernel refused the attr (type ${attr.type}, config ${attr.config ?? 0n}, flags: ${
          flags.join(", ") || "none"
        }${groupFd >= 0 ? "; group members must be on the leader's CPU and task" : ""})`;
    }
  }
  return "";
}
