/**
 * The doctor's perf check (informational: it sets no exit bit):
 * perf_event_paranoid, the PMUs in sysfs, and perf_event_open of a software
 * and a hardware counter on this process (closed at once). A fix is offered
 * only where it would change something: never "lower the paranoid level" to
 * the value it already has.
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { ERRNO_NAMES } from "../../ffi/errno.ts";
import { type DoctorContext, notProbed, privileged } from "./context.ts";
import type { Library } from "./library.ts";
import type { DoctorCheck, DoctorStatus } from "./report.ts";
import { configFact, type Fact, isUnknown, readFact, readNumber, showFact } from "./system.ts";

const HW_PMUS =
  /^(cpu|cpu_core|cpu_atom|armv8_.*|arm_cortex_.*|arm_neoverse_.*|armv7_.*|apple_.*)$/;
const PMU_DIR = "/sys/bus/event_source/devices";
/** PERF_COUNT_SW_TASK_CLOCK and PERF_COUNT_HW_CPU_CYCLES (enum perf_sw_ids, perf_hw_id). */
const SW_TASK_CLOCK = 1;
const HW_CPU_CYCLES = 0;

/**
 * perf_event_open of one counter on this process, user space only, disabled,
 * closed at once: "ok" or the errno name.
 */
export function perfOpenOutcome(lib: Library, type: number, config: number): string {
  const attr = new Uint8Array(pe.SIZEOF_PERF_EVENT_ATTR);
  const dv = new DataView(attr.buffer);
  dv.setUint32(pe.PERF_EVENT_ATTR_OFF.type, type, true);
  dv.setUint32(pe.PERF_EVENT_ATTR_OFF.size, pe.SIZEOF_PERF_EVENT_ATTR, true);
  dv.setBigUint64(pe.PERF_EVENT_ATTR_OFF.config, BigInt(config), true);
  dv.setBigUint64(
    pe.PERF_EVENT_ATTR_OFF.flags,
    BigInt(pe.PERF_ATTR_FLAG_DISABLED | pe.PERF_ATTR_FLAG_EXCLUDE_KERNEL),
    true,
  );
  const fd = Number(
    lib.libc.syscall(
      lib.perfEventOpenNr(),
      lib.runtime.addressOf(attr),
      0,
      -1,
      -1,
      pe.PERF_FLAG_FD_CLOEXEC,
    ),
  );
  if (fd < 0) {
    const e = lib.errno();
    return ERRNO_NAMES[e] ?? `errno ${e}`;
  }
  lib.libc.close(fd);
  return "ok";
}

function paranoidMeaning(paranoid: number | null, isPrivileged: boolean): string {
  if (paranoid === null) return "absent: a kernel without perf events";
  if (isPrivileged) return "no restriction for this privileged process";
  if (paranoid >= 3) return "perf_event_open refused to unprivileged users";
  if (paranoid === 2) return "user-space measurement of own processes only";
  if (paranoid === 1) return "no CPU-wide events for unprivileged users";
  return "few restrictions";
}

/** Runs the perf check. */
export function checkPerf(ctx: DoctorContext): DoctorCheck {
  const { sys, lib, who } = ctx;
  const paranoid = readNumber(sys, "/proc/sys/kernel/perf_event_paranoid");
  const pmus = sys.list(PMU_DIR);
  const pmuList = isUnknown(pmus) || pmus === null ? null : pmus;
  const hw = pmuList?.filter((p) => HW_PMUS.test(p)) ?? null;
  const branches = hw === null ? null : hw.map((p) => {
    const b = readFact(sys, `${PMU_DIR}/${p}/caps/branches`);
    return typeof b === "string" && b ? Number(b) : null;
  }).find((b) => b !== null) ?? null;
  const cpuinfo = readFact(sys, "/proc/cpuinfo");
  const archLbr = typeof cpuinfo === "string"
    ? (/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/).includes("arch_lbr")
    : false;
  const isPrivileged = privileged(who, ["CAP_PERFMON", "CAP_SYS_ADMIN"]);
  const unknownPmus = isUnknown(pmus) ? pmus : null;
  const facts: Record<string, unknown> = {
    paranoid,
    privileged: isPrivileged,
    pmus: pmus ?? [],
    hardwarePmu: unknownPmus ?? hw ?? [],
    bts: unknownPmus ?? pmuList?.includes("intel_bts") ?? false,
    intelPt: unknownPmus ?? pmuList?.includes("intel_pt") ?? false,
    lbr: unknownPmus ?? branches,
    config: configFact(ctx.config, "CONFIG_PERF_EVENTS"),
  };
  const details = [
    `kernel.perf_event_paranoid = ${
      showFact(paranoid, (p) => `${p ?? "?"} (${paranoidMeaning(p, isPrivileged)})`)
    }`,
    `PMUs: ${showFact(pmus, (l) => l === null ? `none (no ${PMU_DIR})` : l.join(" ") || "none")}`,
  ];
  if (lib === null) {
    return notProbed(ctx, "perf", details, facts);
  }
  const software = perfOpenOutcome(lib, pe.PERF_TYPE_SOFTWARE, SW_TASK_CLOCK);
  const hardware = perfOpenOutcome(lib, pe.PERF_TYPE_HARDWARE, HW_CPU_CYCLES);
  facts.softwareEvents = software;
  facts.hardwareEvents = hardware;
  // The kernel's answer for a counter no PMU provides (ENOENT; EOPNOTSUPP, ENODEV on some arches).
  const noHwCounter = ["ENOENT", "EOPNOTSUPP", "ENODEV"].includes(hardware);
  details.push(
    `hardware PMU: ${
      hw === null
        ? "unknown (the PMU list could not be read)"
        : hw.length
        ? hw.join(" ")
        : "none: this machine exposes no CPU PMU (a VM without a virtual PMU?)"
    }; cycles counter: ${hardware}`,
    `software events (task-clock) and tracepoints: ${software === "ok" ? "usable" : software}`,
  );
  if (pmuList !== null) {
    details.push(
      `BTS (intel_bts): ${pmuList.includes("intel_bts") ? "available" : "absent"}${
        pmuList.includes("intel_pt") ? "; Intel PT: available" : ""
      }`,
      `LBR: ${
        branches !== null
          ? `${branches} entries (caps/branches)`
          : hw?.length
          ? `not reported by ${hw.join(" ")}`
          : "unavailable (needs a hardware PMU)"
      }${archLbr ? "; CPU flag arch_lbr" : ""}`,
    );
  }
  const fixes: string[] = [];
  let status: DoctorStatus = "ok";
  let summary = "hardware and software events usable";
  if (software !== "ok") {
    status = "unavailable";
    summary = `perf_event_open refused (${software})`;
    const fix = softwareFix(software, paranoid, isPrivileged, who.seccomp);
    if (fix) fixes.push(`perf: ${fix}`);
  } else if (hardware !== "ok") {
    status = "limited";
    summary = noHwCounter
      ? "software events and tracepoints only: no hardware PMU (no cycles, BTS or LBR)"
      : `software events and tracepoints only: the cycles counter is refused (${hardware})`;
    fixes.push(
      noHwCounter
        ? "perf: hardware counters, BTS and LBR need a CPU PMU: on a VM, enable the virtual PMU (e.g. qemu -cpu host with KVM, or a cloud instance type that exposes it); BTS is Intel-only (intel_bts)"
        : `perf: the cycles counter is refused (${hardware})${
          isPrivileged ? "" : ": try as root or with CAP_PERFMON"
        }`,
    );
  }
  return { name: "perf", status, summary, details, fixes, facts };
}

/** What would let perf_event_open of this process's own task-clock through, from the facts. */
function softwareFix(
  code: string,
  paranoid: Fact<number | null>,
  isPrivileged: boolean,
  seccomp: Fact<number | null>,
): string {
  if (code === "ENOSYS" || paranoid === null) {
    return "this kernel has no perf events (or a filter hides perf_event_open): use a kernel built with CONFIG_PERF_EVENTS";
  }
  if (code !== "EACCES" && code !== "EPERM") return "";
  const filter = seccomp === 2
    ? "this process's seccomp filter refuses perf_event_open"
    : "a security module or seccomp filter refuses perf_event_open";
  if (isPrivileged) return `refused although this process is privileged: ${filter}`;
  if (isUnknown(paranoid)) {
    return `run as root or with CAP_PERFMON, or lower kernel.perf_event_paranoid (its value is unknown: ${paranoid.unknown})`;
  }
  if (paranoid > 2) {
    return `run as root or with CAP_PERFMON, or lower the paranoid level from ${paranoid}: \`sysctl -w kernel.perf_event_paranoid=2\``;
  }
  return `refused although kernel.perf_event_paranoid = ${paranoid} allows measuring one's own process: ${filter}`;
}
