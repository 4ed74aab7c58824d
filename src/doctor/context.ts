/**
 * What every check of the doctor starts from: how to read files, the library
 * (or why it did not load), who this process is, and the kernel's config.
 * @module
 */
import type { Library } from "./library.ts";
import type { DoctorCheck } from "./report.ts";
import {
  type Fact,
  type Identity,
  isUnknown,
  type KernelConfig,
  type SystemAccess,
} from "./system.ts";

/** The inputs of each check. */
export interface DoctorContext {
  /** File access: libc when the FFI loaded, else node:fs. */
  sys: SystemAccess;
  /** The library, or null when its FFI did not load. */
  lib: Library | null;
  /** Why the FFI did not load, or null. */
  ffiError: string | null;
  /** "deno", "bun" or "node". */
  runtimeName: string;
  /** Who this process is. */
  who: Identity;
  /** The kernel's build configuration, null when it publishes none. */
  config: Fact<KernelConfig | null>;
}

/** How to get the FFI loaded on this runtime. */
export function ffiFix(runtimeName: string): string {
  if (runtimeName === "deno") return "run with `deno run -A`";
  if (runtimeName === "node") return "install koffi next to ummu: `npm install koffi`";
  return "";
}

/** A check that needs the library's probes, when the FFI did not load: unknown, never a guess. */
export function notProbed(
  ctx: DoctorContext,
  name: DoctorCheck["name"],
  details: string[],
  facts: Record<string, unknown>,
): DoctorCheck {
  const fix = ffiFix(ctx.runtimeName);
  return {
    name,
    status: "unknown",
    summary: `unknown: not probed, the FFI did not load${fix ? ` (${fix})` : ""}`,
    details,
    fixes: [],
    facts,
  };
}

/** True when this process is root or has one of `caps` (false when that is unknown). */
export function privileged(who: Identity, caps: string[]): boolean {
  if (!isUnknown(who.uid) && who.uid === 0) return true;
  const have = who.capabilities;
  return !isUnknown(have) && caps.some((c) => have.includes(c));
}
