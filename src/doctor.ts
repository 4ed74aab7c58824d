/**
 * `ummu doctor`: what this machine and this process can use, and how to get
 * the rest: userfaultfd, ummunotify, user_events and perf.
 *
 * Run it as a command (`deno run -A jsr:@ummu/ummu/doctor`, `npx ummu doctor`,
 * `bunx ummu doctor`; `--json` for machines), or call {@link doctor} for the
 * report as data. The exit status is a sum of {@link DOCTOR_EXIT} bits: 0
 * when userfaultfd, ummunotify and user_events are all usable.
 *
 * Every verdict comes from the library's own probes (UserfaultFd.probe(),
 * Ummunotify.open(), the user_events diagnosis behind UserEvents.open()'s
 * error, perf_event_open of counters on this process), each closed at once. A
 * fact the runtime did not let it read (Deno without -A) is reported as
 * unknown, with the flag to run with: never as absent.
 * @module
 */
import process from "node:process";
import { main as runCommandLine } from "./doctor/cli.ts";
import { loadLibrary } from "./doctor/library.ts";
import { DOCTOR_SCHEMA, type DoctorReport, exitCodeOf } from "./doctor/report.ts";
import { checkPerf } from "./doctor/perf.ts";
import {
  identity,
  kernelConfig,
  libcAccess,
  nodeAccess,
  readFact,
  type SystemAccess,
} from "./doctor/system.ts";
import { checkUmmunotify } from "./doctor/ummunotify.ts";
import { checkUserEvents } from "./doctor/user_events.ts";
import { checkUserfaultfd } from "./doctor/userfaultfd.ts";
import { VERSION } from "./doctor/version.ts";

export { DOCTOR_EXIT, DOCTOR_SCHEMA } from "./doctor/report.ts";
export type { DoctorCheck, DoctorReport, DoctorStatus } from "./doctor/report.ts";
export type { Fact, UnknownFact } from "./doctor/system.ts";
export { formatDoctorReport } from "./doctor/render.ts";
export { USAGE } from "./doctor/cli.ts";
export { VERSION } from "./doctor/version.ts";

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

/**
 * Looks at this machine and process and reports what ummu can use.
 * @example
 * ```ts
 * import { doctor } from "@ummu/ummu/doctor";
 *
 * const report = await doctor();
 * for (const c of report.checks) console.log(c.name, c.status, c.summary);
 * ```
 */
export async function doctor(): Promise<DoctorReport> {
  const rt = runtimeInfo();
  // The library, loaded only now: without FFI (Deno without --allow-ffi, Node
  // without koffi) the facts node:fs may read are still reported.
  let lib: Awaited<ReturnType<typeof loadLibrary>> | null = null;
  let ffiError: string | null = null;
  try {
    lib = await loadLibrary();
  } catch (e) {
    ffiError = e instanceof Error ? e.message : String(e);
  }
  const sys: SystemAccess = lib ? libcAccess(lib.files) : nodeAccess();
  const kernel = readFact(sys, "/proc/sys/kernel/osrelease");
  const who = identity(sys);
  const ctx = {
    sys,
    lib,
    ffiError,
    runtimeName: rt.name,
    who,
    config: kernelConfig(sys, kernel),
  };
  const uffd = checkUserfaultfd(ctx);
  const checks = [
    uffd.check,
    await checkUmmunotify(ctx, uffd),
    checkUserEvents(ctx),
    checkPerf(ctx),
  ];
  return {
    schema: DOCTOR_SCHEMA,
    version: VERSION,
    runtime: { ...rt, arch: lib?.arch ?? process.arch, ffiError },
    kernel: kernel ?? { unknown: "/proc/sys/kernel/osrelease does not exist (is /proc mounted?)" },
    user: { uid: who.uid, capabilities: who.capabilities },
    checks,
    exitCode: exitCodeOf(checks, ffiError),
  };
}

/**
 * The command, as `ummu doctor` runs it: `[doctor] [--json]`, `--help`,
 * `--version`. Prints the table (or JSON) and returns the exit status.
 * @example
 * ```ts
 * import { main } from "@ummu/ummu/doctor";
 *
 * const status = await main(["--json"]);
 * ```
 */
export function main(args: string[]): Promise<number> {
  return runCommandLine(args, { doctor });
}

// `deno run -A jsr:@ummu/ummu/doctor`, `bun src/doctor.ts`: run as the command.
if ((import.meta as { main?: boolean }).main) process.exit(await main(process.argv.slice(2)));
