/**
 * The doctor's user_events check: diagnoseUserEvents(), the function whose
 * answer UserEvents.open()'s error gives, so the doctor and the library name
 * the same cause (a kernel without user_events before an unmounted tracefs).
 * @module
 */
import { ERRNO_NAMES } from "../../ffi/errno.ts";
import { type DoctorContext, notProbed } from "./context.ts";
import type { DoctorCheck, DoctorStatus } from "./report.ts";
import {
  configFact,
  type Fact,
  isUnknown,
  type KernelConfig,
  readFact,
  readNumber,
  showFact,
  type SystemAccess,
} from "./system.ts";

// USER_EVENTS_SYSCTL of src/user_events/diagnose.ts, which cannot be imported before the FFI loads.
const SYSCTL = "/proc/sys/kernel/user_events_max";

/** Mount points of tracefs, from /proc/self/mounts. */
function tracefsMounts(sys: SystemAccess): Fact<string[]> {
  const mounts = readFact(sys, "/proc/self/mounts");
  if (isUnknown(mounts)) return mounts;
  if (mounts === null) return { unknown: "/proc/self/mounts does not exist (is /proc mounted?)" };
  return mounts.split("\n").map((l) => l.split(" ")).filter((f) => f[2] === "tracefs").map((f) =>
    f[1]
  );
}

function configLine(config: Fact<KernelConfig | null>, value: Fact<string | null>): string {
  if (isUnknown(config)) return `kernel config: unknown (${config.unknown})`;
  if (config === null) {
    return "kernel config: not published (no /proc/config.gz nor /boot/config-*)";
  }
  const v = value === "n"
    ? " is not set"
    : value === null
    ? " is not listed (a kernel older than 6.4?)"
    : `=${String(value)}`;
  return `kernel config: CONFIG_USER_EVENTS${v} (${config.source})`;
}

/** Runs the user_events check. */
export function checkUserEvents(ctx: DoctorContext): DoctorCheck {
  const { sys, lib } = ctx;
  const mounts = tracefsMounts(sys);
  const cfg = configFact(ctx.config, "CONFIG_USER_EVENTS");
  const maxEvents = readNumber(sys, SYSCTL);
  const facts: Record<string, unknown> = {
    tracefs: mounts,
    config: cfg,
    configSource: isUnknown(ctx.config) || ctx.config === null ? null : ctx.config.source,
    maxEvents,
  };
  const mountLine = `tracefs: ${
    showFact(mounts, (m) => m.length ? `mounted at ${m.join(", ")}` : "not mounted")
  }`;
  const sysctlLine = `${SYSCTL}: ${
    showFact(
      maxEvents,
      (n) =>
        n === null ? "absent (the kernel has no user_events)" : `${n} (the kernel has user_events)`,
    )
  }`;
  if (lib === null) {
    return notProbed(
      ctx,
      "user_events",
      [sysctlLine, mountLine, configLine(ctx.config, cfg)],
      facts,
    );
  }
  const d = lib.diagnoseUserEvents();
  const dataMode = d.tracefs === null ? null : sys.mode(d.dataPath);
  const statusOpen = d.tracefs === null ? null : sys.open(`${d.tracefs}/user_events_status`, "r");
  facts.kernelSupport = d.kernelSupport;
  facts.root = d.tracefs;
  facts.cause = d.cause;
  facts.userEventsData = d.tracefs === null || d.cause === "no-user-events-data"
    ? null
    : { mode: dataMode, open: d.errno === 0 ? "ok" : codeOf(d.errno) };
  facts.userEventsStatus = statusOpen;
  const details = [
    sysctlLine,
    mountLine,
    `user_events_data: ${
      d.tracefs === null
        ? "not looked for (no tracefs)"
        : d.cause === "no-user-events-data"
        ? `absent from ${d.tracefs}`
        : `${showFact(dataMode, (m) => m ?? "present")}, ${
          d.errno === 0 ? "writable by this process" : `refused, ${codeOf(d.errno)}`
        }`
    }`,
    configLine(ctx.config, cfg),
  ];
  let status: DoctorStatus = "ok";
  let summary = `usable: ${d.dataPath}`;
  const fixes: string[] = [];
  if (d.cause !== "usable") {
    status = "unavailable";
    // The kernel's own config, when published, names the cause in its words.
    const noKernel = d.cause === "no-kernel-support" || d.cause === "no-user-events-data";
    summary = noKernel && cfg === "n"
      ? `this kernel is built without CONFIG_USER_EVENTS; mounting tracefs would not help`
      : d.reason;
    if (d.fix) fixes.push(`user_events: ${d.fix}`);
  }
  return { name: "user_events", status, summary, details, fixes, facts };
}

function codeOf(e: number): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}
