/**
 * `ummu doctor`: what this machine and this process can use, and how to get
 * the rest: userfaultfd, ummunotify, user_events and perf.
 *
 * Run it as a command (`deno run -A jsr:@ummu/ummu/doctor`, `npx ummu doctor`,
 * `bunx ummu doctor`; `--json` for machines), or call {@link doctor} for the
 * report as data. The exit status is a sum of {@link DOCTOR_EXIT} bits: 0
 * when userfaultfd, ummunotify and user_events are all usable.
 *
 * Facts come from the kernel itself: a throwaway userfaultfd (UFFDIO_API),
 * opening the device and tracefs files (nothing is registered or written),
 * and perf_event_open of counters on this process (closed at once).
 * @module
 */
import { closeSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import process from "node:process";
import { gunzipSync } from "node:zlib";

/** How usable a feature is for this process. */
export type DoctorStatus = "ok" | "limited" | "unavailable";

/** One feature's verdict, the facts behind it, and what would make it (fully) usable. */
export interface DoctorCheck {
  /** The feature. */
  name: "userfaultfd" | "ummunotify" | "user_events" | "perf";
  /** "ok": fully usable; "limited": partly (see summary); "unavailable": not usable here. */
  status: DoctorStatus;
  /** One line for the table. */
  summary: string;
  /** The facts, one line each. */
  details: string[];
  /** How to get what is missing (empty when nothing is). */
  fixes: string[];
  /** The same facts, for machines (`--json`). */
  facts: Record<string, unknown>;
}

/** Everything `ummu doctor` found. */
export interface DoctorReport {
  /** The runtime, and whether its FFI could be loaded (`ffiError` says why not). */
  runtime: { name: string; version: string; arch: string; ffiError: string | null };
  /** `uname -r`. */
  kernel: string;
  /** The process's user and the capabilities that matter here. */
  user: { uid: number; capabilities: string[] };
  /** One check per feature, in the order userfaultfd, ummunotify, user_events, perf. */
  checks: DoctorCheck[];
  /** The exit status `ummu doctor` ends with (see {@link DOCTOR_EXIT}). */
  exitCode: number;
}

/**
 * The exit status of `ummu doctor`: 0, or the sum of the bits of the core
 * features this process cannot fully use (perf is informational and never
 * sets a bit). 1 and 2 stand alone.
 * @example
 * ```ts
 * const { exitCode } = await doctor();
 * if (exitCode & DOCTOR_EXIT.USER_EVENTS) console.log("no user_events here");
 * ```
 */
export const DOCTOR_EXIT = {
  /** userfaultfd, ummunotify and user_events are all usable. */
  OK: 0,
  /** The doctor could not load the runtime's FFI (Deno without --allow-ffi, Node without koffi). */
  NO_FFI: 1,
  /** Unknown command-line arguments. */
  USAGE: 2,
  /** userfaultfd is unavailable, or only user-mode-only. */
  USERFAULTFD: 4,
  /** ummunotify has neither /dev/ummunotify nor a usable userfaultfd backend. */
  UMMUNOTIFY: 8,
  /** user_events is unavailable (no tracefs, no kernel support, or no permission). */
  USER_EVENTS: 16,
} as const;

const CAPS: Record<number, string> = {
  19: "CAP_SYS_PTRACE",
  21: "CAP_SYS_ADMIN",
  38: "CAP_PERFMON",
};
/** Non-cooperative events the userfaultfd backend of ummunotify needs (src/ummunotify/uffd_backend.ts). */
const UMMUNOTIFY_UFFD_FEATURES = [
  "EVENT_UNMAP",
  "EVENT_REMOVE",
  "EVENT_REMAP",
  "PAGEFAULT_FLAG_WP",
];

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function errCode(e: unknown): string {
  return (e as { code?: unknown })?.code !== undefined
    ? String((e as { code: unknown }).code)
    : "error";
}

/** Can this process open `path` with `flags` ("r", "r+")? Opens and closes it; returns null or the error code. */
function tryOpen(path: string, flags: string): string | null {
  try {
    closeSync(openSync(path, flags));
    return null;
  } catch (e) {
    return errCode(e);
  }
}

function modeString(path: string): string | null {
  try {
    const st = statSync(path);
    const kind = st.isCharacterDevice() ? "c" : st.isDirectory() ? "d" : "-";
    let s = kind;
    for (let shift = 6; shift >= 0; shift -= 3) {
      const b = (st.mode >> shift) & 7;
      s += (b & 4 ? "r" : "-") + (b & 2 ? "w" : "-") + (b & 1 ? "x" : "-");
    }
    return `${s} ${st.uid}:${st.gid}`;
  } catch {
    return null;
  }
}

/** The running kernel's build configuration: /proc/config.gz, else /boot/config-$(uname -r). */
function kernelConfig(
  release: string,
): { source: string; get(name: string): string | null } | null {
  let text: string | null = null;
  let source = "";
  try {
    text = gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
    source = "/proc/config.gz";
  } catch {
    text = readText(`/boot/config-${release}`);
    source = `/boot/config-${release}`;
  }
  if (text === null) return null;
  const cfg = text;
  return {
    source,
    get(name) {
      const m = new RegExp(`^${name}=(.*)$`, "m").exec(cfg);
      if (m) return m[1];
      return new RegExp(`^# ${name} is not set$`, "m").test(cfg) ? "n" : null;
    },
  };
}

function runtimeInfo(): { name: string; version: string } {
  const g = globalThis as unknown as {
    Deno?: { version: { deno: string } };
    Bun?: { version: string };
    process?: { versions?: { node?: string } };
  };
  if (g.Deno) return { name: "deno", version: g.Deno.version.deno };
  if (g.Bun) return { name: "bun", version: g.Bun.version };
  return { name: "node", version: g.process?.versions?.node ?? "?" };
}

function ffiHint(name: string): string {
  if (name === "deno") return "run with `deno run -A` (or --allow-ffi --allow-read)";
  if (name === "node") return "install koffi next to ummu: `npm install koffi`";
  return "";
}

/**
 * Looks at this machine and process and reports what ummu can use.
 * @example
 * ```ts
 * const report = await doctor();
 * for (const c of report.checks) console.log(c.name, c.status, c.summary);
 * ```
 */
export async function doctor(): Promise<DoctorReport> {
  const rt = runtimeInfo();
  const kernel = (readText("/proc/sys/kernel/osrelease") ?? "?").trim();
  const status = readText("/proc/self/status") ?? "";
  const uid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1] ?? -1);
  const capEff = BigInt("0x" + (/^CapEff:\s+([0-9a-f]+)/m.exec(status)?.[1] ?? "0"));
  const capabilities = Object.entries(CAPS).filter(([bit]) => capEff & (1n << BigInt(bit))).map((
    [, n],
  ) => n);
  const config = kernelConfig(kernel);

  // The library, loaded only now: without FFI (Deno without --allow-ffi, Node
  // without koffi) the file-based facts are still reported.
  let lib: Awaited<ReturnType<typeof loadLibrary>> | null = null;
  let ffiError: string | null = null;
  try {
    lib = await loadLibrary();
  } catch (e) {
    ffiError = errText(e);
  }
  const arch = lib?.arch ?? (globalThis as { process?: { arch?: string } }).process?.arch ?? "?";

  const uffd = checkUserfaultfd(lib, ffiError, uid, capabilities, config);
  const checks = [
    uffd.check,
    checkUmmunotify(uffd),
    checkUserEvents(config, lib),
    checkPerf(lib, ffiError, uid, capabilities, config),
  ];
  let exitCode = ffiError !== null ? DOCTOR_EXIT.NO_FFI : DOCTOR_EXIT.OK;
  if (ffiError === null) {
    if (checks[0].status !== "ok") exitCode |= DOCTOR_EXIT.USERFAULTFD;
    if (checks[1].status !== "ok") exitCode |= DOCTOR_EXIT.UMMUNOTIFY;
    if (checks[2].status !== "ok") exitCode |= DOCTOR_EXIT.USER_EVENTS;
  }
  return {
    runtime: { ...rt, arch, ffiError },
    kernel,
    user: { uid, capabilities },
    checks,
    exitCode,
  };
}

async function loadLibrary() {
  const { runtime } = await import("../ffi/platform.ts");
  const { UserfaultFd } = await import("./userfaultfd/uffd.ts");
  const { FEATURE_BITS } = await import("./userfaultfd/features.ts");
  const { libc, errno } = await import("./libc.ts");
  const { perfEventOpenNr } = await import("./user_events/perf.ts");
  const pe = await import("../ffi/perf_event.ts");
  return {
    arch: runtime.arch,
    runtime,
    UserfaultFd,
    FEATURE_BITS,
    libc,
    errno,
    perfEventOpenNr,
    pe,
  };
}
type Library = Awaited<ReturnType<typeof loadLibrary>>;

interface UffdFacts {
  check: DoctorCheck;
  full: { via: string; features: string[] } | null;
}

function checkUserfaultfd(
  lib: Library | null,
  ffiError: string | null,
  uid: number,
  caps: string[],
  config: ReturnType<typeof kernelConfig>,
): UffdFacts {
  const sysctl = readText("/proc/sys/vm/unprivileged_userfaultfd")?.trim() ?? null;
  const device = modeString("/dev/userfaultfd");
  const facts: Record<string, unknown> = {
    unprivilegedSysctl: sysctl === null ? null : Number(sysctl),
    device: device === null
      ? null
      : { mode: device, open: tryOpen("/dev/userfaultfd", "r+") ?? "ok" },
    config: config?.get("CONFIG_USERFAULTFD") ?? null,
  };
  const details: string[] = [];
  const fixes: string[] = [];
  const privilege = uid === 0
    ? "root"
    : caps.includes("CAP_SYS_PTRACE")
    ? "CAP_SYS_PTRACE"
    : `uid ${uid}, unprivileged`;
  if (lib === null) {
    return {
      check: {
        name: "userfaultfd",
        status: "unavailable",
        summary: `not probed: the FFI did not load (${ffiError})`,
        details: [
          `vm.unprivileged_userfaultfd = ${sysctl ?? "?"}`,
          `/dev/userfaultfd: ${device ?? "absent"}`,
        ],
        fixes: [ffiHint(runtimeInfo().name)].filter(Boolean),
        facts,
      },
      full: null,
    };
  }
  const probe = (opts: { via?: "syscall" | "device"; userModeOnly?: boolean }) => {
    try {
      const caps = lib.UserfaultFd.probe(opts);
      return {
        ok: true as const,
        via: caps.via,
        features: [...caps.features] as string[],
        mask: caps.featureMask,
        ioctls: [...caps.ioctls] as string[],
      };
    } catch (e) {
      return { ok: false as const, code: errCode(e), message: errText(e) };
    }
  };
  const viaSyscall = probe({ via: "syscall" });
  const viaDevice = device === null ? null : probe({ via: "device" });
  const full = viaSyscall.ok ? viaSyscall : viaDevice?.ok ? viaDevice : null;
  const userOnly = full ? null : probe({ userModeOnly: true });
  facts.syscall = viaSyscall.ok ? "ok" : viaSyscall.code;
  facts.deviceProbe = viaDevice === null ? null : viaDevice.ok ? "ok" : viaDevice.code;
  facts.userModeOnly = userOnly === null ? "not needed" : userOnly.ok ? "ok" : userOnly.code;
  const best = full ?? (userOnly?.ok ? userOnly : null);
  const all = Object.keys(lib.FEATURE_BITS);
  if (best) {
    facts.features = best.features;
    facts.featureMask = best.mask;
    facts.ioctls = best.ioctls;
    facts.missingFeatures = all.filter((f) => !best.features.includes(f));
  }
  details.push(
    `syscall: ${viaSyscall.ok ? `usable (${privilege})` : `refused, ${viaSyscall.code}`}`,
    `/dev/userfaultfd: ${
      device === null
        ? "absent (Linux 6.1+ has it)"
        : `${device}, ${
          viaDevice?.ok ? "usable" : `refused, ${(viaDevice as { code: string }).code}`
        }`
    }`,
    `vm.unprivileged_userfaultfd = ${sysctl ?? "? (no sysctl: kernel older than 5.2)"}`,
  );
  if (userOnly) {
    details.push(
      `user-mode-only (UFFD_USER_MODE_ONLY): ${
        userOnly.ok ? "usable" : `refused, ${userOnly.code}`
      }`,
    );
  }
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
  let status: DoctorStatus;
  let summary: string;
  if (full) {
    status = "ok";
    summary = `usable through the ${
      full.via === "syscall" ? "syscall" : "device /dev/userfaultfd"
    }, ${full.features.length}/${all.length} features`;
  } else if (userOnly?.ok) {
    status = "limited";
    summary =
      "user-mode-only: faults from JS are served; a system call writing into the memory gets EFAULT";
  } else {
    status = "unavailable";
    summary = `refused (${viaSyscall.ok ? "" : viaSyscall.code})`;
  }
  if (status !== "ok") {
    if (facts.config === "n") {
      fixes.push(
        "userfaultfd: this kernel is built without CONFIG_USERFAULTFD: use a kernel with it",
      );
    } else {
      fixes.push(
        "userfaultfd: run as root or with CAP_SYS_PTRACE; or `sysctl -w vm.unprivileged_userfaultfd=1`; " +
          "or give this user read-write access to /dev/userfaultfd (Linux 6.1+), e.g. `chgrp uffd /dev/userfaultfd && chmod 660 /dev/userfaultfd`" +
          (status === "unavailable" ? "; or pass userModeOnly: true (needs the sysctl)" : ""),
      );
    }
  }
  return {
    check: { name: "userfaultfd", status, summary, details, fixes, facts },
    full: full ? { via: full.via, features: full.features } : null,
  };
}

function checkUmmunotify(uffd: UffdFacts): DoctorCheck {
  const dev = "/dev/ummunotify";
  const mode = modeString(dev);
  const open = mode === null ? "ENOENT" : tryOpen(dev, "r");
  const needed = UMMUNOTIFY_UFFD_FEATURES;
  const backendMissing = uffd.full
    ? needed.filter((f) => !uffd.full!.features.includes(f))
    : needed;
  const backendOk = uffd.full !== null && backendMissing.length === 0;
  const facts: Record<string, unknown> = {
    device: mode === null ? null : { mode, open: open ?? "ok" },
    userfaultfdBackend: backendOk
      ? "ok"
      : uffd.full
      ? `missing ${backendMissing.join(" ")}`
      : "userfaultfd unavailable",
    backend: open === null ? "device" : backendOk ? "userfaultfd" : null,
  };
  const details = [
    `${dev}: ${
      mode === null
        ? "absent (the driver in kmod/ummunotify is not loaded)"
        : `${mode}, ${open === null ? "usable" : `refused, ${open}`}`
    }`,
    `userfaultfd backend (${needed.join(", ")}): ${
      facts.userfaultfdBackend === "ok" ? "usable" : facts.userfaultfdBackend
    }`,
  ];
  const fixes: string[] = [];
  let status: DoctorStatus = "ok";
  let summary: string;
  if (open === null) summary = "usable through /dev/ummunotify (the device backend)";
  else if (backendOk) {
    summary = "usable through the userfaultfd backend (Ummunotify.open() picks it)";
  } else {
    status = "unavailable";
    summary = "neither /dev/ummunotify nor the userfaultfd backend";
    fixes.push(
      "ummunotify: load the driver (kmod/ummunotify: make && insmod ummunotify.ko, Linux 6.12) or make userfaultfd fully usable (above)",
    );
  }
  if (mode !== null && open !== null) {
    fixes.push(
      `ummunotify: ${dev} exists but this process cannot open it (${open}): grant read access, or run as root`,
    );
  }
  return { name: "ummunotify", status, summary, details, fixes, facts };
}

function tracefsMounts(): string[] {
  const mounts = readText("/proc/self/mounts") ?? "";
  return mounts.split("\n").map((l) => l.split(" ")).filter((f) => f[2] === "tracefs").map((f) =>
    f[1]
  );
}

function checkUserEvents(
  config: ReturnType<typeof kernelConfig>,
  lib: Library | null,
): DoctorCheck {
  const mounts = tracefsMounts();
  const root =
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"].find((d) =>
      tryOpen(`${d}/trace`, "r") !== "ENOENT"
    ) ??
      mounts[0] ?? null;
  const dataPath = root === null ? null : `${root}/user_events_data`;
  const dataMode = dataPath === null ? null : modeString(dataPath);
  const dataOpen = dataPath === null || dataMode === null ? "ENOENT" : tryOpen(dataPath, "r+");
  const statusOpen = root === null ? "ENOENT" : tryOpen(`${root}/user_events_status`, "r");
  const cfg = config?.get("CONFIG_USER_EVENTS") ?? null;
  const facts: Record<string, unknown> = {
    tracefs: mounts,
    root,
    userEventsData: dataMode === null ? null : { mode: dataMode, open: dataOpen ?? "ok" },
    userEventsStatus: statusOpen ?? "ok",
    config: cfg,
    configSource: config?.source ?? null,
    maxEvents: Number(readText("/proc/sys/kernel/user_events_max")?.trim() ?? NaN) || null,
  };
  void lib;
  const details = [
    `tracefs: ${mounts.length ? `mounted at ${mounts.join(", ")}` : "not mounted"}`,
    `user_events_data: ${
      dataMode === null
        ? "absent"
        : `${dataMode}, ${dataOpen === null ? "writable by this process" : `refused, ${dataOpen}`}`
    }`,
    `kernel config: ${
      config === null
        ? "unreadable (no /proc/config.gz nor /boot/config-*)"
        : `CONFIG_USER_EVENTS${
          cfg === "n"
            ? " is not set"
            : cfg === null
            ? " absent (kernel older than 6.4?)"
            : `=${cfg}`
        } (${config.source})`
    }`,
  ];
  const fixes: string[] = [];
  let status: DoctorStatus = "ok";
  let summary = `usable: ${dataPath}`;
  if (dataOpen !== null) {
    status = "unavailable";
    if (root === null) {
      summary = "tracefs is not mounted";
      fixes.push(
        "user_events: mount tracefs: `mount -t tracefs nodev /sys/kernel/tracing` (as root)",
      );
    } else if (dataMode === null) {
      summary = cfg === "n"
        ? "this kernel is built without CONFIG_USER_EVENTS"
        : `no user_events_data in ${root} (the kernel has no user_events)`;
    } else {
      summary = `user_events_data is not writable by this process (${dataOpen})`;
      fixes.push(
        `user_events: run as root, or let this user in: \`chgrp tracing ${dataPath} && chmod g+rw ${dataPath}\` and make tracefs traversable (mount -o remount,mode=755)`,
      );
    }
    if (dataMode === null && root !== null) {
      fixes.push(
        "user_events: use a kernel built with CONFIG_USER_EVENTS=y (Linux 6.4+); to run ummu's user_events tests here, use the test VM: tests/vm/run.sh",
      );
    }
  }
  return { name: "user_events", status, summary, details, fixes, facts };
}

const HW_PMUS =
  /^(cpu|cpu_core|cpu_atom|armv8_.*|arm_cortex_.*|arm_neoverse_.*|armv7_.*|apple_.*)$/;

function checkPerf(
  lib: Library | null,
  ffiError: string | null,
  uid: number,
  caps: string[],
  config: ReturnType<typeof kernelConfig>,
): DoctorCheck {
  const paranoidText = readText("/proc/sys/kernel/perf_event_paranoid")?.trim() ?? null;
  const paranoid = paranoidText === null ? null : Number(paranoidText);
  let pmus: string[] = [];
  try {
    pmus = readdirSync("/sys/bus/event_source/devices").sort();
  } catch { /* no sysfs */ }
  const hw = pmus.filter((p) => HW_PMUS.test(p));
  const bts = pmus.includes("intel_bts");
  const pt = pmus.includes("intel_pt");
  const branches =
    hw.map((p) => readText(`/sys/bus/event_source/devices/${p}/caps/branches`)?.trim()).find((b) =>
      b
    ) ?? null;
  const cpuFlags = (/^flags\s*:(.*)$/m.exec(readText("/proc/cpuinfo") ?? "")?.[1] ?? "").trim()
    .split(/\s+/);
  const privileged = uid === 0 || caps.includes("CAP_PERFMON") || caps.includes("CAP_SYS_ADMIN");
  const paranoidMeaning = paranoid === null
    ? "no perf_event_paranoid: kernel without perf events"
    : privileged
    ? "no restriction for this privileged process"
    : paranoid >= 3
    ? "perf_event_open refused to unprivileged users"
    : paranoid === 2
    ? "user-space measurement of own processes only"
    : paranoid === 1
    ? "no CPU-wide events for unprivileged users"
    : "few restrictions";
  const facts: Record<string, unknown> = {
    paranoid,
    privileged,
    pmus,
    hardwarePmu: hw,
    bts,
    intelPt: pt,
    lbr: branches === null ? null : Number(branches),
    config: config?.get("CONFIG_PERF_EVENTS") ?? null,
  };
  const open = (type: number, configValue: number): string => {
    if (lib === null) return `not tried (${ffiError})`;
    const { pe, libc, errno, perfEventOpenNr, runtime } = lib;
    const attr = new Uint8Array(pe.SIZEOF_PERF_EVENT_ATTR);
    const dv = new DataView(attr.buffer);
    dv.setUint32(pe.PERF_EVENT_ATTR_OFF.type, type, true);
    dv.setUint32(pe.PERF_EVENT_ATTR_OFF.size, pe.SIZEOF_PERF_EVENT_ATTR, true);
    dv.setBigUint64(pe.PERF_EVENT_ATTR_OFF.config, BigInt(configValue), true);
    dv.setBigUint64(
      pe.PERF_EVENT_ATTR_OFF.flags,
      BigInt(pe.PERF_ATTR_FLAG_DISABLED | pe.PERF_ATTR_FLAG_EXCLUDE_KERNEL),
      true,
    );
    const fd = Number(
      libc.syscall(perfEventOpenNr(), runtime.addressOf(attr), 0, -1, -1, pe.PERF_FLAG_FD_CLOEXEC),
    );
    if (fd < 0) {
      const e = errno();
      return {
        1: "EPERM",
        2: "ENOENT",
        13: "EACCES",
        19: "ENODEV",
        22: "EINVAL",
        95: "EOPNOTSUPP",
      }[e] ?? `errno ${e}`;
    }
    libc.close(fd);
    return "ok";
  };
  const software = open(lib?.pe.PERF_TYPE_SOFTWARE ?? 1, 1 /* PERF_COUNT_SW_TASK_CLOCK */);
  const hardware = open(lib?.pe.PERF_TYPE_HARDWARE ?? 0, 0 /* PERF_COUNT_HW_CPU_CYCLES */);
  facts.softwareEvents = software;
  facts.hardwareEvents = hardware;
  const details = [
    `kernel.perf_event_paranoid = ${paranoid ?? "?"} (${paranoidMeaning})`,
    `PMUs: ${pmus.join(" ") || "none"}`,
    `hardware PMU: ${
      hw.length
        ? hw.join(" ")
        : "none: this machine exposes no CPU PMU (a VM without a virtual PMU?)"
    }; cycles counter: ${hardware}`,
    `software events (task-clock) and tracepoints: ${software === "ok" ? "usable" : software}`,
    `BTS (intel_bts): ${bts ? "available" : "absent"}${pt ? "; Intel PT: available" : ""}`,
    `LBR: ${
      branches !== null
        ? `${branches} entries (caps/branches)`
        : hw.length
        ? `not reported by ${hw.join(" ")}`
        : "unavailable (needs a hardware PMU)"
    }${cpuFlags.includes("arch_lbr") ? "; CPU flag arch_lbr" : ""}`,
  ];
  const fixes: string[] = [];
  let status: DoctorStatus = "ok";
  let summary = "hardware and software events usable";
  if (software !== "ok") {
    status = "unavailable";
    summary = `perf_event_open refused (${software})`;
    fixes.push(
      "perf: run as root or with CAP_PERFMON, or lower the paranoid level: `sysctl -w kernel.perf_event_paranoid=2`",
    );
  } else if (hardware !== "ok" || hw.length === 0) {
    status = "limited";
    summary = "software events and tracepoints only: no hardware PMU (no cycles, BTS or LBR)";
    fixes.push(
      "perf: hardware counters, BTS and LBR need a CPU PMU: on a VM, enable the virtual PMU (e.g. qemu -cpu host with KVM, or a cloud instance type that exposes it); BTS is Intel-only (intel_bts)",
    );
  }
  return { name: "perf", status, summary, details, fixes, facts };
}

/**
 * The report as a readable table: one row per feature, its facts indented
 * below, then how to get what is missing and the exit status.
 * @example
 * ```ts
 * console.log(formatDoctorReport(await doctor()));
 * ```
 */
export function formatDoctorReport(report: DoctorReport): string {
  const r = report.runtime;
  const who = report.user.uid === 0 ? "root" : `uid ${report.user.uid}`;
  const caps = report.user.capabilities.length ? `, ${report.user.capabilities.join(" ")}` : "";
  const lines = [
    `ummu doctor: Linux ${report.kernel} ${r.arch}, ${r.name} ${r.version}, ${who}${caps}`,
    ...(r.ffiError ? [`FFI: not loaded: ${r.ffiError}`] : []),
    "",
    `${"feature".padEnd(12)} ${"status".padEnd(12)} summary`,
    `${"-".repeat(12)} ${"-".repeat(12)} ${"-".repeat(50)}`,
  ];
  const indent = " ".repeat(26);
  for (const c of report.checks) {
    lines.push(`${c.name.padEnd(12)} ${c.status.padEnd(12)} ${c.summary}`);
    for (const d of c.details) {
      lines.push(...wrap(d, 100 - indent.length).map((l, i) => indent + (i ? "  " : "") + l));
    }
  }
  const fixes = report.checks.flatMap((c) => c.fixes);
  if (fixes.length) {
    lines.push("", "to get the rest:");
    for (const f of fixes) lines.push(`  - ${f}`);
  }
  lines.push("", `exit status ${report.exitCode}: ${describeExit(report.exitCode)}`);
  return lines.join("\n");
}

/** Splits a line at spaces into pieces of at most `width` characters (longer words stay whole). */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  out.push(line);
  return out;
}

function describeExit(code: number): string {
  if (code === DOCTOR_EXIT.OK) return "userfaultfd, ummunotify and user_events are all usable";
  if (code === DOCTOR_EXIT.NO_FFI) return "the FFI could not be loaded";
  if (code === DOCTOR_EXIT.USAGE) return "usage error";
  const parts = [];
  if (code & DOCTOR_EXIT.USERFAULTFD) parts.push(`${DOCTOR_EXIT.USERFAULTFD} userfaultfd`);
  if (code & DOCTOR_EXIT.UMMUNOTIFY) parts.push(`${DOCTOR_EXIT.UMMUNOTIFY} ummunotify`);
  if (code & DOCTOR_EXIT.USER_EVENTS) parts.push(`${DOCTOR_EXIT.USER_EVENTS} user_events`);
  return `not fully usable: ${parts.join(" + ")}`;
}

const USAGE = `usage: ummu doctor [--json]

Tells what this machine and this process can use of userfaultfd, ummunotify,
user_events and perf, and how to get the rest.

  --json   the report as JSON
exit status: 0 when userfaultfd, ummunotify and user_events are all usable;
otherwise the sum of 4 (userfaultfd), 8 (ummunotify), 16 (user_events);
1 when the runtime's FFI could not be loaded; 2 for a usage error.`;

/**
 * The command: `doctor [--json]` (the word "doctor" is optional). Prints the
 * table (or JSON) and returns the exit status.
 * @example
 * ```ts
 * const status = await main(["--json"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const rest = args[0] === "doctor" ? args.slice(1) : args;
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(USAGE);
    return DOCTOR_EXIT.OK;
  }
  const unknown = rest.filter((a) => a !== "--json");
  if (unknown.length) {
    console.error(`ummu doctor: unknown argument ${unknown[0]}\n\n${USAGE}`);
    return DOCTOR_EXIT.USAGE;
  }
  const report = await doctor();
  console.log(
    rest.includes("--json") ? JSON.stringify(report, null, 2) : formatDoctorReport(report),
  );
  return report.exitCode;
}

// `deno run -A jsr:@ummu/ummu/doctor`, `bun src/doctor.ts`: run as the command.
if ((import.meta as { main?: boolean }).main) process.exit(await main(process.argv.slice(2)));
