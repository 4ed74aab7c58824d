/**
 * The doctor's userfaultfd check: UserfaultFd.probe() through the syscall,
 * through /dev/userfaultfd, and user-mode-only; each verdict is what that
 * probe returned here, and each fix one that applies to what it returned.
 * @module
 */
import { type DoctorContext, notProbed, privileged } from "./context.ts";
import type { DoctorCheck, DoctorStatus } from "./report.ts";
import { configFact, type Fact, isUnknown, readNumber, showFact } from "./system.ts";

/** What the ummunotify check needs to know of userfaultfd. */
export interface UserfaultfdResult {
  /** The check. */
  check: DoctorCheck;
  /** The full userfaultfd's features (syscall or device), null if neither works. */
  full: { via: string; features: string[] } | null;
}

type Probe =
  | { ok: true; via: string; features: string[]; mask: number; ioctls: string[] }
  | { ok: false; code: string; message: string };

/** The Linux release that made UFFD_USER_MODE_ONLY free for every user (fs/userfaultfd.c). */
const USER_MODE_ONLY_SINCE = "5.11";

/** Runs the userfaultfd check. */
export function checkUserfaultfd(ctx: DoctorContext): UserfaultfdResult {
  const { sys, lib, who } = ctx;
  const sysctl = readNumber(sys, "/proc/sys/vm/unprivileged_userfaultfd");
  const deviceMode = sys.mode("/dev/userfaultfd");
  const config = configFact(ctx.config, "CONFIG_USERFAULTFD");
  const facts: Record<string, unknown> = {
    unprivilegedSysctl: sysctl,
    config,
    seccomp: who.seccomp,
  };
  const sysctlLine = `vm.unprivileged_userfaultfd = ${
    showFact(sysctl, (v) => v === null ? "absent (a kernel older than 5.2)" : String(v))
  }`;
  if (lib === null) {
    facts.device = deviceMode === null
      ? null
      : { mode: deviceMode, open: { unknown: "not probed: the FFI did not load" } };
    return {
      check: notProbed(ctx, "userfaultfd", [
        sysctlLine,
        `/dev/userfaultfd: ${showFact(deviceMode, (m) => m ?? "absent")}`,
      ], facts),
      full: null,
    };
  }
  const probe = (opts: { via?: "syscall" | "device"; userModeOnly?: boolean }): Probe => {
    try {
      const caps = lib.UserfaultFd.probe(opts);
      return {
        ok: true,
        via: caps.via,
        features: [...caps.features],
        mask: caps.featureMask,
        ioctls: [...caps.ioctls],
      };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      return {
        ok: false,
        code: typeof code === "string" ? code : "error",
        message: e instanceof Error ? e.message : String(e),
      };
    }
  };
  const viaSyscall = probe({ via: "syscall" });
  // The library's device path opens /dev/userfaultfd itself: its ENOENT is the device's absence.
  const viaDevice = probe({ via: "device" });
  const deviceAbsent = !viaDevice.ok && viaDevice.code === "ENOENT";
  const userOnly = probe({ via: "syscall", userModeOnly: true });
  const full = viaSyscall.ok ? viaSyscall : viaDevice.ok ? viaDevice : null;
  const outcome = (p: Probe) => p.ok ? "ok" : p.code;
  facts.syscall = outcome(viaSyscall);
  facts.device = deviceAbsent ? null : { mode: deviceMode, open: outcome(viaDevice) };
  facts.deviceProbe = deviceAbsent ? null : outcome(viaDevice);
  facts.userModeOnly = outcome(userOnly);
  const best = full ?? (userOnly.ok ? userOnly : null);
  const all = Object.keys(lib.FEATURE_BITS);
  if (best) {
    facts.features = best.features;
    facts.featureMask = best.mask;
    facts.ioctls = best.ioctls;
    facts.missingFeatures = all.filter((f) => !best.features.includes(f));
  }

  const uid = who.uid;
  const rootOrPtrace = privileged(who, ["CAP_SYS_PTRACE"]);
  const privilege = showFact(
    uid,
    (u) => u === 0 ? "root" : rootOrPtrace ? `uid ${u}, CAP_SYS_PTRACE` : `uid ${u}, unprivileged`,
  );
  const filtered = who.seccomp === 2;
  const details = [
    `syscall: ${viaSyscall.ok ? `usable (${privilege})` : `refused, ${viaSyscall.code}`}`,
    `/dev/userfaultfd: ${
      deviceAbsent
        ? "absent (Linux 6.1+ has it)"
        : `${showFact(deviceMode, (m) => m ?? "present")}, ${
          viaDevice.ok ? "usable" : `refused, ${viaDevice.code}`
        }`
    }`,
    sysctlLine,
    `user-mode-only (UFFD_USER_MODE_ONLY): ${
      userOnly.ok
        ? `usable (the kernel allows it to every user since Linux ${USER_MODE_ONLY_SINCE}, whatever vm.unprivileged_userfaultfd says)`
        : `refused, ${userOnly.code}${userModeOnlyRefusal(userOnly.code, filtered)}`
    }`,
  ];
  if (best) {
    const missing = all.filter((f) => !best.features.includes(f));
    details.push(
      `features (${best.features.length}/${all.length}, mask 0x${best.mask.toString(16)}): ${
        best.features.join(" ")
      }`,
      `ioctls on the fd (UFFDIO_API): ${best.ioctls.join(" ")}; per range: register() reports them`,
    );
    if (missing.length) details.push(`features this kernel lacks: ${missing.join(" ")}`);
  }
  if (who.seccomp !== null && !isUnknown(who.seccomp) && who.seccomp !== 0) {
    details.push(`seccomp: mode ${who.seccomp} (a filter may refuse system calls)`);
  }

  let status: DoctorStatus;
  let summary: string;
  if (full) {
    status = "ok";
    summary = `usable through the ${
      full.via === "syscall" ? "syscall" : "device /dev/userfaultfd"
    }, ${full.features.length}/${all.length} features`;
  } else if (userOnly.ok) {
    status = "limited";
    summary =
      "user-mode-only: faults from JS are served; a system call that touches registered memory gets EFAULT";
  } else {
    status = "unavailable";
    summary = `refused: syscall ${viaSyscall.ok ? "ok" : viaSyscall.code}, ${
      deviceAbsent ? "no /dev/userfaultfd" : `/dev/userfaultfd ${outcome(viaDevice)}`
    }, user-mode-only ${outcome(userOnly)}`;
  }
  const fixes = status === "ok"
    ? []
    : fullFixes(viaSyscall, viaDevice, deviceAbsent, sysctl, config, rootOrPtrace, filtered);
  if (status === "limited") {
    fixes.push(
      "userfaultfd: meanwhile, user-mode-only works here as things are: pass userModeOnly: true to UserfaultFd.open() or LazyMapping.create()",
    );
  }
  return {
    check: { name: "userfaultfd", status, summary, details, fixes, facts },
    full: full ? { via: full.via, features: full.features } : null,
  };
}

/** Why the kernel refused UFFD_USER_MODE_ONLY, which it allows to everyone since 5.11. */
function userModeOnlyRefusal(code: string, filtered: boolean): string {
  if (code === "EINVAL") {
    return ` (this kernel does not know UFFD_USER_MODE_ONLY: it needs Linux ${USER_MODE_ONLY_SINCE}+)`;
  }
  if (code === "EPERM") {
    return filtered
      ? " (by this process's seccomp filter: the kernel itself allows it to every user)"
      : " (the kernel itself allows it to every user: a security module or seccomp filter refuses it)";
  }
  if (code === "ENOSYS") {
    return " (no userfaultfd system call in this kernel, or a filter hides it)";
  }
  return "";
}

/** The ways to a full userfaultfd that apply to what the probes returned. */
function fullFixes(
  viaSyscall: Probe,
  viaDevice: Probe,
  deviceAbsent: boolean,
  sysctl: Fact<number | null>,
  config: Fact<string | null>,
  rootOrPtrace: boolean,
  filtered: boolean,
): string[] {
  if (config === "n" || (!viaSyscall.ok && viaSyscall.code === "ENOSYS" && deviceAbsent)) {
    return [
      "userfaultfd: this kernel has no userfaultfd (CONFIG_USERFAULTFD is not set, or a filter hides the system call): use a kernel built with CONFIG_USERFAULTFD=y",
    ];
  }
  if (rootOrPtrace) {
    return [
      `userfaultfd: refused although this process is privileged (${
        viaSyscall.ok ? "" : viaSyscall.code
      }): ${
        filtered
          ? "its seccomp filter refuses userfaultfd"
          : "a security module or seccomp filter refuses it"
      } (in a container, allow userfaultfd in its seccomp profile)`,
    ];
  }
  const ways = ["run as root or with CAP_SYS_PTRACE"];
  if (sysctl === 0) ways.push("`sysctl -w vm.unprivileged_userfaultfd=1` (as root)");
  else if (isUnknown(sysctl)) ways.push("set vm.unprivileged_userfaultfd=1 (its value is unknown)");
  if (
    !deviceAbsent && !viaDevice.ok && (viaDevice.code === "EACCES" || viaDevice.code === "EPERM")
  ) {
    ways.push(
      "give this user read-write access to /dev/userfaultfd, e.g. `chgrp uffd /dev/userfaultfd && chmod 660 /dev/userfaultfd`",
    );
  }
  return [`userfaultfd (full, also faults of system calls): ${ways.join("; or ")}`];
}
