/**
 * The `ummu` command line: `ummu doctor [--json]`, `ummu --help`,
 * `ummu --version`, parsed with node:util's parseArgs.
 * @module
 */
import { parseArgs } from "node:util";
import { DOCTOR_EXIT, DOCTOR_SCHEMA, type DoctorReport } from "./report.ts";
import { formatDoctorReport } from "./render.ts";
import { VERSION } from "./version.ts";

/** The help text of `ummu` (what `ummu --help` prints). */
export const USAGE = `usage: ummu doctor [--json]
       ummu perf decode|record ... (ummu perf --help)
       ummu --help | --version

ummu doctor tells what this machine and this process can use of userfaultfd,
ummunotify, user_events and perf, and how to get the rest. A fact it was not
allowed to read (Deno without -A) is "unknown", never guessed.

  --json        the report as JSON ("schema": ${DOCTOR_SCHEMA}, "version": ummu's version)
  -h, --help    this text
  --version     ummu's version (${VERSION})

exit status of ummu doctor: 0 when userfaultfd, ummunotify and user_events are
all usable; otherwise the sum of 4 (userfaultfd not fully usable), 8
(ummunotify), 16 (user_events) and 32 (a feature could not be checked: the
runtime did not allow it); 1 when the runtime's FFI could not be loaded;
2 for a usage error.`;

/** How {@link main} reads its arguments. */
export interface MainOptions {
  /** The `doctor` word is required (the `ummu` command) rather than optional (the doctor module run directly). */
  commandRequired?: boolean;
  /** Makes the report (the doctor; a parameter so that the CLI does not load the FFI before it must). */
  doctor: () => Promise<DoctorReport>;
}

function usageError(message: string): number {
  console.error(`ummu: ${message}\n\n${USAGE}`);
  return DOCTOR_EXIT.USAGE;
}

/**
 * Runs the command line `args` (without the runtime and script): prints the
 * report, the help or the version, and returns the exit status.
 */
export async function main(args: string[], options: MainOptions): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const unknown = /Unknown option '([^']+)'/.exec(message)?.[1];
    return usageError(unknown ? `unknown option ${unknown}` : message.split(". ")[0]);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return DOCTOR_EXIT.OK;
  }
  if (values.version) {
    console.log(VERSION);
    return DOCTOR_EXIT.OK;
  }
  const [command, ...extra] = positionals;
  if (command === undefined && options.commandRequired) return usageError("no command given");
  if (command !== undefined && command !== "doctor") {
    return usageError(`unknown command ${command}`);
  }
  if (extra.length) return usageError(`unexpected argument ${extra[0]}`);
  const report = await options.doctor();
  console.log(values.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
  return report.exitCode;
}
