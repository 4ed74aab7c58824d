/**
 * The doctor's report as a readable table: one row per feature, its facts
 * indented below, then how to get what is missing and the exit status.
 * @module
 */
import { ffiFix } from "./context.ts";
import { describeExit, type DoctorReport } from "./report.ts";
import { isUnknown } from "./system.ts";

/**
 * The report as a readable table.
 * @example
 * ```ts
 * import { doctor, formatDoctorReport } from "@ummu/ummu/doctor";
 *
 * console.log(formatDoctorReport(await doctor()));
 * ```
 */
export function formatDoctorReport(report: DoctorReport): string {
  const r = report.runtime;
  const { uid, capabilities } = report.user;
  const who = isUnknown(uid) ? "uid unknown" : uid === 0 ? "root" : `uid ${uid}`;
  const caps = !isUnknown(capabilities) && capabilities.length ? `, ${capabilities.join(" ")}` : "";
  const kernel = isUnknown(report.kernel) ? "(release unknown)" : report.kernel;
  const lines = [
    `ummu ${report.version} doctor: Linux ${kernel} ${r.arch}, ${r.name} ${r.version}, ${who}${caps}`,
    ...(r.ffiError ? [`FFI: not loaded: ${r.ffiError}`] : []),
    ...(r.ffiError && ffiFix(r.name) ? [`     ${ffiFix(r.name)}`] : []),
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
