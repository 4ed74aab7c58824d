/**
 * Hardware breakpoints (watchpoints): the attr of a breakpoint on an address,
 * and perf's `mem:ADDR[/LEN][:rwx][:modifiers]` event names.
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { runtime } from "../../ffi/platform.ts";
import { UmmuArgumentError } from "../errors.ts";
import type { PerfEventAttr } from "./attr.ts";
import type { ParsedEvent } from "./event_names.ts";
import { applyModifiers } from "./event_modifiers.ts";

/** How a breakpoint fires: on reads, writes, either, or execution. */
export type BreakpointAccess = "r" | "w" | "rw" | "x";

const BP_TYPES: Record<BreakpointAccess, number> = {
  r: pe.HW_BREAKPOINT_R,
  w: pe.HW_BREAKPOINT_W,
  rw: pe.HW_BREAKPOINT_RW,
  x: pe.HW_BREAKPOINT_X,
};

/**
 * The attr fields of a hardware breakpoint (a watchpoint) on `address`:
 * `len` 1, 2, 4 or 8 bytes (default 4 for data, 8, the size of a long, for
 * execution, as perf), `access` "r", "w", "rw" (default) or "x". The address
 * must be aligned to `len` for data; x86's debug registers cannot watch
 * reads alone (use "rw") and execute breakpoints take a length of 8 only.
 */
export function breakpoint(
  address: bigint | number,
  options: { len?: 1 | 2 | 4 | 8; access?: BreakpointAccess } = {},
): PerfEventAttr {
  const what = `breakpoint(${typeof address === "bigint" ? `0x${address.toString(16)}` : address})`;
  if (options === null || typeof options !== "object") {
    throw new UmmuArgumentError(`${what}: options must be an object { len, access }`);
  }
  const addr = typeof address === "bigint"
    ? address
    : typeof address === "number" && Number.isSafeInteger(address)
    ? BigInt(address)
    : null;
  if (addr === null || addr < 0n || addr >= 1n << 64n) {
    throw new UmmuArgumentError(
      `${what}: address must be an unsigned 64-bit integer (bigint or safe integer), got ${
        String(address)
      }`,
    );
  }
  const access = options.access ?? "rw";
  if (!(access in BP_TYPES)) {
    throw new UmmuArgumentError(
      `${what}: access must be "r", "w", "rw" or "x", got ${JSON.stringify(access)}`,
    );
  }
  const len = options.len ?? (access === "x" ? 8 : 4);
  if (![1, 2, 4, 8].includes(len as number)) {
    throw new UmmuArgumentError(
      `${what}: len must be 1, 2, 4 or 8 bytes (HW_BREAKPOINT_LEN_*), got ${String(len)}`,
    );
  }
  const x64 = runtime.arch === "x64";
  if (access === "x") {
    if (len !== 8) {
      throw new UmmuArgumentError(
        `${what}: an execute breakpoint takes len 8 (sizeof(long); the kernel refuses others on x86), got ${len}`,
      );
    }
    if (!x64 && addr % 4n !== 0n) {
      throw new UmmuArgumentError(
        `${what}: an execute breakpoint's address must be 4-byte aligned (an instruction), got 0x${
          addr.toString(16)
        }`,
      );
    }
  } else {
    if (addr % BigInt(len) !== 0n) {
      throw new UmmuArgumentError(
        `${what}: address 0x${addr.toString(16)} must be aligned to len ${len} ` +
          `(a watched range may not cross its own size; use address 0x${
            (addr - addr % BigInt(len)).toString(16)
          } or a smaller len)`,
      );
    }
    if (access === "r" && x64) {
      throw new UmmuArgumentError(
        `${what}: x86 debug registers cannot watch reads alone: use access "rw" (or "w")`,
      );
    }
  }
  return {
    type: pe.PERF_TYPE_BREAKPOINT,
    bpType: BP_TYPES[access],
    bpAddr: addr,
    bpLen: BigInt(len),
  };
}

/** A `mem:` event name's rest (after `mem:`) as a ParsedEvent. */
export function parseBreakpoint(rest: string, spec: string): ParsedEvent {
  // mem:ADDR[/LEN][:rwx][:modifiers]  (parse-events.y event_legacy_mem)
  const mm =
    /^(0[xX][0-9a-fA-F]+|[0-9]+)(?:\/(0[xX][0-9a-fA-F]+|[0-9]+))?(?::([^:]*))?(?::([^:]*))?$/
      .exec(rest);
  if (!mm) {
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: a breakpoint is mem:ADDR[/LEN][:rwx][:modifiers] ` +
        `(ADDR decimal or 0x hex, LEN 1, 2, 4 or 8), e.g. mem:0x7f0010/8:w`,
    );
  }
  let access: string | undefined = mm[3], mods: string | undefined = mm[4];
  if (access !== undefined && !/^[rwx]+$/.test(access)) {
    if (mods !== undefined) {
      throw new UmmuArgumentError(
        `event ${JSON.stringify(spec)}: breakpoint access ${JSON.stringify(access)} must be ` +
          `letters of r, w, x (e.g. :w, :rw, :x)`,
      );
    }
    mods = access;
    access = undefined;
  }
  let bits = 0;
  for (const c of access ?? "") {
    const bit = c === "r"
      ? pe.HW_BREAKPOINT_R
      : c === "w"
      ? pe.HW_BREAKPOINT_W
      : pe.HW_BREAKPOINT_X;
    if (bits & bit) {
      throw new UmmuArgumentError(
        `event ${JSON.stringify(spec)}: breakpoint access ${JSON.stringify(access)} repeats ${c}`,
      );
    }
    bits |= bit;
  }
  const named = (Object.entries(BP_TYPES).find(([, b]) => b === bits)?.[0] ??
    (bits === 0 ? "rw" : null)) as BreakpointAccess | null;
  if (named === null) {
    throw new UmmuArgumentError(
      `event ${JSON.stringify(spec)}: breakpoint access ${JSON.stringify(access)} mixes x with ` +
        `r/w: a breakpoint watches data (r, w, rw) or execution (x), not both`,
    );
  }
  const len = mm[2] === undefined ? undefined : Number(BigInt(mm[2]));
  let attr: PerfEventAttr;
  try {
    attr = breakpoint(BigInt(mm[1]), { len: len as 1 | 2 | 4 | 8 | undefined, access: named });
  } catch (e) {
    if (e instanceof UmmuArgumentError) {
      throw new UmmuArgumentError(`event ${JSON.stringify(spec)}: ${e.message}`);
    }
    throw e;
  }
  if (mods !== undefined) applyModifiers(attr, mods, spec);
  return { attr, name: spec };
}
