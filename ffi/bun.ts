/** The Bun adapter: bun:ffi, with the Deno-format symbol table translated. */
// @ts-ignore: bun:ffi exists only under Bun; deno check skips this module's import.
import { dlopen, ptr, toArrayBuffer } from "bun:ffi";
import { libcSymbols } from "./symbols.ts";
import type { Libc, RuntimeAdapter } from "./runtime.ts";

// Deno type names -> Bun's. The *_fast variants return a number when it is exact.
const BUN_TYPE: Record<string, string> = {
  buffer: "buffer",
  i32: "i32",
  u32: "u32",
  i64: "i64",
  u64: "u64",
  usize: "u64",
  pointer: "ptr",
};
const BUN_RESULT: Record<string, string> = {
  ...BUN_TYPE,
  i64: "i64_fast",
  u64: "u64_fast",
  usize: "u64_fast",
};

const bunTable: Record<string, unknown> = {};
for (const [key, def] of Object.entries(libcSymbols)) {
  const d = def as { name?: string; parameters: readonly string[]; result: string };
  bunTable[key] = { args: d.parameters.map((t) => BUN_TYPE[t]), returns: BUN_RESULT[d.result] };
}
// Bun binds by key, so aliases (ioctl_int -> ioctl, pread -> pread64) are opened separately.
const symbols: Record<string, unknown> = {};
for (const [key, def] of Object.entries(libcSymbols)) {
  const name = (def as { name?: string }).name ?? key;
  symbols[key] = dlopen("libc.so.6", { [name]: bunTable[key] }).symbols[name];
}

declare const process: { arch: string };

export const adapter: RuntimeAdapter = {
  name: "bun",
  libc: symbols as unknown as Libc,
  arch: process.arch,
  view(address, length) {
    if (length === 0) return new ArrayBuffer(0);
    return toArrayBuffer(address, 0, length);
  },
  detach(buffer) {
    buffer.transfer(0);
  },
  addressOf(view) {
    return ptr(view);
  },
};
