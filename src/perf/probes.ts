/**
 * uprobes and kprobes through the `uprobe` and `kprobe` PMUs (perf_event_open
 * creates the probe; no tracefs): the type comes from sysfs, the return-probe
 * bit from `format/retprobe`, and the attr's config1/config2 carry
 * (kernel/events/core.c, perf_uprobe_init / perf_kprobe_init):
 *
 * - uprobe: config1 = the address of a NUL-terminated path, config2 = the
 *   file offset (a symbol's, from elf.ts), config bits 32-63 = ref_ctr_offset;
 * - kprobe: config1 = the address of a NUL-terminated function name and
 *   config2 = the offset into it, or config1 = 0 and config2 = an address.
 *
 * The kernel copies the string during perf_event_open: the returned `keep`
 * holds it; keep that object reachable until the open returns.
 * @module
 */
import { runtime } from "../../ffi/platform.ts";
import { cstring, readWholeFile } from "../libc.ts";
import { UmmuArgumentError } from "../errors.ts";
import type { PerfEventAttr } from "./attr.ts";
import type { ParsedEvent } from "./event_names.ts";
import {
  closeMatches,
  encodeTerms,
  noSuchPmu,
  type Pmu,
  PMU_ROOT,
  pmuNames,
  readPmu,
} from "./pmu.ts";
import { readElfSymbols, symbolFileOffset } from "./elf.ts";

/** A uprobe: a file and a symbol (optionally an offset into it) or a file offset. */
export interface UprobeOptions {
  /** The executable or shared library (as the kernel resolves it: absolute, or from the cwd). */
  path: string;
  /** A function defined in it: "malloc", "malloc@@GLIBC_2.2.5". */
  symbol?: string;
  /** With `symbol`: bytes into the function; without: the file offset itself. */
  offset?: bigint | number;
  /** Fire on return instead of entry (format/retprobe). */
  retprobe?: boolean;
  /** A USDT semaphore's file offset (format/ref_ctr_offset), incremented while the probe is on. */
  refCtrOffset?: bigint | number;
  /** The PMU folder (tests). */
  pmuRoot?: string;
}

/** A kprobe: a kernel function (optionally an offset into it), or an address. */
export interface KprobeOptions {
  /** A kernel function name ("do_sys_openat2", or "module:function"). */
  func?: string;
  /** With `func`: bytes into it. */
  offset?: bigint | number;
  /** Instead of `func`: a kernel address. */
  address?: bigint | number;
  /** Fire on return instead of entry (format/retprobe). */
  retprobe?: boolean;
  /** The PMU folder (tests). */
  pmuRoot?: string;
}

function u64(what: string, v: unknown): bigint {
  const b = typeof v === "bigint"
    ? v
    : typeof v === "number" && Number.isSafeInteger(v)
    ? BigInt(v)
    : null;
  if (b === null || b < 0n || b >= 1n << 64n) {
    throw new UmmuArgumentError(
      `${what} must be an unsigned 64-bit integer (bigint or safe integer), got ${String(v)}`,
    );
  }
  return b;
}

function probePmu(kind: "uprobe" | "kprobe", root: string): Pmu {
  if (!pmuNames(root).includes(kind)) {
    const e = noSuchPmu(kind, root);
    throw new UmmuArgumentError(
      `${e.message}; the ${kind} PMU needs a kernel built with ${
        kind === "uprobe" ? "CONFIG_UPROBE_EVENTS" : "CONFIG_KPROBE_EVENTS (and CONFIG_KPROBES)"
      }`,
    );
  }
  return readPmu(kind, root);
}

function retprobeBits(pmu: Pmu, what: string): bigint {
  if (!pmu.formats.has("retprobe")) {
    throw new UmmuArgumentError(
      `${what}: this kernel's ${pmu.name} PMU has no format/retprobe: it cannot make return probes`,
    );
  }
  return encodeTerms(pmu, "retprobe", what).config;
}

/**
 * The attr of a uprobe on `path` at a symbol or a file offset. Validates the
 * file (exists, 64-bit ELF), the symbol (defined, not an IFUNC) and the
 * offset (inside a PT_LOAD segment).
 *
 * @example
 * ```ts
 * const probe = uprobe({ path: "/lib/x86_64-linux-gnu/libc.so.6", symbol: "getpid" });
 * // perf_event_open(encodeAttr(probe.attr), ...) while probe.keep is reachable
 * ```
 */
export function uprobe(options: UprobeOptions): ParsedEvent {
  if (options === null || typeof options !== "object") {
    throw new UmmuArgumentError(`uprobe options must be an object { path, symbol | offset }`);
  }
  const { path, symbol } = options;
  if (typeof path !== "string" || path === "" || path.includes("\0")) {
    throw new UmmuArgumentError(`uprobe path must be a non-empty file path, got ${String(path)}`);
  }
  const what = `uprobe(${path}${symbol !== undefined ? `:${symbol}` : ""})`;
  const pmu = probePmu("uprobe", options.pmuRoot ?? PMU_ROOT);
  let offset: bigint;
  let name: string;
  if (symbol !== undefined) {
    const within = options.offset === undefined ? 0n : u64(`${what}: offset`, options.offset);
    offset = symbolFileOffset(path, symbol, within).offset;
    name = `uprobe:${path}:${symbol}${within ? `+${within}` : ""}`;
  } else {
    if (options.offset === undefined) {
      throw new UmmuArgumentError(`${what}: give a symbol or a file offset`);
    }
    offset = u64(`${what}: offset`, options.offset);
    const elf = readElfSymbols(path);
    const inLoad = elf.loads.some((l) => offset >= l.offset && offset < l.offset + l.filesz);
    if (!inLoad) {
      throw new UmmuArgumentError(
        `${what}: file offset 0x${offset.toString(16)} lies in no PT_LOAD segment of ${path}`,
      );
    }
    name = `uprobe:${path}:0x${offset.toString(16)}`;
  }
  let config = 0n;
  if (options.retprobe) {
    config |= retprobeBits(pmu, what);
    name += "%return";
  }
  if (options.refCtrOffset !== undefined) {
    const ref = u64(`${what}: refCtrOffset`, options.refCtrOffset);
    if (!pmu.formats.has("ref_ctr_offset")) {
      throw new UmmuArgumentError(`${what}: this kernel's uprobe PMU has no ref_ctr_offset`);
    }
    config |= encodeTerms(pmu, [{ name: "ref_ctr_offset", value: ref }], what).config;
  }
  const pathBuf = cstring(path);
  const attr: PerfEventAttr = {
    type: pmu.type,
    config,
    config1: BigInt(runtime.addressOf(pathBuf)),
    config2: offset,
  };
  return { attr, name, keep: [pathBuf] };
}

/** Function names of /proc/kallsyms (text symbols), or null when unreadable. */
function kernelFunctions(): Set<string> | null {
  let text: string;
  try {
    text = new TextDecoder().decode(readWholeFile("/proc/kallsyms"));
  } catch {
    return null;
  }
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const f = line.split(/\s+/);
    if (f.length >= 3 && (f[1] === "T" || f[1] === "t")) out.add(f[2]);
  }
  return out.size ? out : null;
}

/**
 * The attr of a kprobe on kernel function `func` (plus `offset`) or on an
 * address. A function name is checked against /proc/kallsyms when it is
 * readable (a name it lacks: close names listed); the kernel may still refuse
 * a function kprobes may not probe (EINVAL from perf_event_open).
 */
export function kprobe(options: KprobeOptions): ParsedEvent {
  if (options === null || typeof options !== "object") {
    throw new UmmuArgumentError(`kprobe options must be an object { func | address }`);
  }
  const { func, address } = options;
  if ((func === undefined) === (address === undefined)) {
    throw new UmmuArgumentError(
      `kprobe options must give func (a kernel function name) or address, exactly one; got ${
        func === undefined ? "neither" : "both"
      }`,
    );
  }
  const what = `kprobe(${func ?? `0x${u64("kprobe address", address).toString(16)}`})`;
  const pmu = probePmu("kprobe", options.pmuRoot ?? PMU_ROOT);
  let config = 0n;
  let name: string;
  const attr: PerfEventAttr = { type: pmu.type };
  const keep: Uint8Array[] = [];
  if (func !== undefined) {
    if (typeof func !== "string" || !/^([A-Za-z0-9_]+:)?[A-Za-z_][A-Za-z0-9_.]*$/.test(func)) {
      throw new UmmuArgumentError(
        `kprobe func must be a kernel function name (or module:function), got ${String(func)}`,
      );
    }
    const offset = options.offset === undefined ? 0n : u64(`${what}: offset`, options.offset);
    const plain = func.includes(":") ? func.slice(func.indexOf(":") + 1) : func;
    const known = kernelFunctions();
    if (known !== null && !known.has(plain)) {
      const prefix = plain.slice(0, 3);
      const close = closeMatches(plain, [...known].filter((k) => k.startsWith(prefix)));
      throw new UmmuArgumentError(
        `${what}: no kernel function ${JSON.stringify(plain)} in /proc/kallsyms` +
          (close.length ? ` (close: ${close.join(", ")})` : ""),
      );
    }
    const nameBuf = cstring(func);
    keep.push(nameBuf);
    attr.config1 = BigInt(runtime.addressOf(nameBuf));
    attr.config2 = offset;
    name = `kprobe:${func}${offset ? `+${offset}` : ""}`;
  } else {
    const addr = u64("kprobe address", address);
    if (options.offset !== undefined) {
      throw new UmmuArgumentError(`${what}: offset goes with func; add it to the address instead`);
    }
    attr.config1 = 0n;
    attr.config2 = addr;
    name = `kprobe:0x${addr.toString(16)}`;
  }
  if (options.retprobe) {
    config |= retprobeBits(pmu, what);
    name += "%return";
  }
  attr.config = config;
  return { attr, name, keep };
}
