/**
 * perf's event modifiers (`cycles:u`, `:k`, `:ppp`, `:G`, `:H`, `:I`, `:D`,
 * `:e`) as attr bits: parse_events__modifier_list of Linux 6.12.
 * @module
 */
import { UmmuArgumentError } from "../errors.ts";
import type { PerfEventAttr } from "./attr.ts";

/** The modifiers an attr bit exists for, and perf's others (tool settings ummu does not map). */
const MODIFIER_LETTERS = "ukhpGHIDe";
const TOOL_MODIFIERS: Record<string, string> = {
  P: "P (maximum precision: perf probes the PMU; give preciseIp yourself)",
  S: "S (sample read: PERF_SAMPLE_READ with a group)",
  W: "W (weak group)",
  b: "b (BPF counter)",
  R: "R (retire latency)",
};

/**
 * Applies perf's modifier letters to `attr` (parse_events__modifier_list in
 * 6.12): u/k/h keep only the listed privilege levels (u also excludes guest),
 * G/H keep only guest/host, each p raises precise_ip (and excludes guest),
 * I excludes idle, D pins, e makes exclusive.
 */
export function applyModifiers(attr: PerfEventAttr, mods: string, spec: string): void {
  const bad = [...mods].filter((c) => !MODIFIER_LETTERS.includes(c));
  if (bad.length || mods === "") {
    const tool = bad.map((c) => TOOL_MODIFIERS[c]).filter(Boolean);
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: modifier ${JSON.stringify(mods)} ` +
        (tool.length
          ? `has a perf tool modifier ummu does not map: ${tool.join("; ")}`
          : `must be letters of u k h (privilege levels), p pp ppp (precision), G H (guest, host), ` +
            `I (no idle), D (pinned), e (exclusive)`),
    );
  }
  const has = (c: string) => mods.includes(c);
  let eu = false, ek = false, eh = false, eG = false, eH = false;
  let exclude = false, excludeGH = false;
  const precise = [...mods].filter((c) => c === "p").length;
  if (precise) eG = true;
  if (has("u")) {
    if (!exclude) {
      exclude =
        eu =
        ek =
        eh =
          true;
    }
    if (!excludeGH) eG = true;
    eu = false;
  }
  if (has("k")) {
    if (!exclude) {
      exclude =
        eu =
        ek =
        eh =
          true;
    }
    ek = false;
  }
  if (has("h")) {
    if (!exclude) {
      exclude =
        eu =
        ek =
        eh =
          true;
    }
    eh = false;
  }
  if (has("G")) {
    if (!excludeGH) excludeGH = eG = eH = true;
    eG = false;
  }
  if (has("H")) {
    if (!excludeGH) excludeGH = eG = eH = true;
    eH = false;
  }
  if (precise > 3) {
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: precision ${"p".repeat(precise)} is more than ppp ` +
        `(precise_ip is 0 to 3)`,
    );
  }
  if (eu) attr.excludeUser = true;
  if (ek) attr.excludeKernel = true;
  if (eh) attr.excludeHv = true;
  if (eH) attr.excludeHost = true;
  if (eG) attr.excludeGuest = true;
  if (precise) attr.preciseIp = precise;
  if (has("I")) attr.excludeIdle = true;
  if (has("D")) attr.pinned = true;
  if (has("e")) attr.exclusive = true;
}
