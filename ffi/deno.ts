/** The Deno adapter: Deno.dlopen and Deno.UnsafePointer. */
import { libcSymbols } from "./symbols.ts";
import type { Libc, RuntimeAdapter } from "./runtime.ts";

const lib = Deno.dlopen("libc.so.6", libcSymbols);

export const adapter: RuntimeAdapter = {
  name: "deno",
  libc: lib.symbols as unknown as Libc,
  arch: Deno.build.arch === "x86_64"
    ? "x64"
    : Deno.build.arch === "aarch64"
    ? "arm64"
    : Deno.build.arch,
  view(address, length) {
    if (length === 0) return new ArrayBuffer(0);
    const p = Deno.UnsafePointer.create(BigInt(address));
    if (p === null) throw new RangeError("view of address 0");
    return Deno.UnsafePointerView.getArrayBuffer(p, length);
  },
  detach(buffer) {
    buffer.transfer(0);
  },
  addressOf(view) {
    return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
  },
};
