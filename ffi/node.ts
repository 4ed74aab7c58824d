/**
 * The Node adapter: koffi (an optional peer dependency of the npm package),
 * with the Deno-format symbol table translated, and errno through
 * `koffi.errno()` (Node may run code that changes errno between our call and
 * a read of `__errno_location()`; koffi saves it right after each call).
 * @module
 */
import { libcSymbols } from "./symbols.ts";
import type { Libc, RuntimeAdapter } from "./runtime.ts";

interface Koffi {
  load(path: string): { func(name: string, result: string, params: string[]): (...args: unknown[]) => unknown };
  view(pointer: bigint, length: number): ArrayBuffer;
  address(value: unknown): bigint;
  errno(): number;
  version: string;
}

declare const process: { arch: string; versions: Record<string, string | undefined> };

async function loadKoffi(): Promise<Koffi> {
  try {
    const mod = (await import("koffi")) as unknown as { default?: Koffi } & Koffi;
    return mod.default ?? mod;
  } catch (e) {
    throw new Error(
      "ummu on Node calls libc through koffi, an optional peer dependency that is not installed: " +
        "run `npm install koffi` (version 3) next to ummu. Deno and Bun need no addon.",
      { cause: e },
    );
  }
}

const koffi = await loadKoffi();
if (!/^3\./.test(koffi.version)) {
  throw new Error(`ummu needs koffi 3.x (pointers as BigInt), found ${koffi.version}: npm install koffi@3`);
}

// Deno type names -> koffi's. Buffers are `void *`: koffi passes a typed
// array's own memory (no copy), as Deno and Bun do.
const KOFFI_TYPE: Record<string, string> = {
  buffer: "void *",
  i32: "int32_t",
  u32: "uint32_t",
  i64: "int64_t",
  u64: "uint64_t",
  usize: "uintptr_t",
  pointer: "void *",
};

const lib = koffi.load("libc.so.6");
const symbols: Record<string, unknown> = {};
for (const [key, def] of Object.entries(libcSymbols)) {
  const d = def as { name?: string; parameters: readonly string[]; result: string };
  symbols[key] = lib.func(d.name ?? key, KOFFI_TYPE[d.result], d.parameters.map((t) => KOFFI_TYPE[t]));
}

/**
 * Detaching: Node 22+ has ArrayBuffer.prototype.transfer. Node 20 has it
 * behind a V8 flag: take the builtin from a fresh context created with the
 * flag on, then turn the flag off again (the main realm is unchanged).
 */
async function findTransfer(): Promise<(this: ArrayBuffer, length?: number) => ArrayBuffer> {
  const own = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer, length?: number) => ArrayBuffer }).transfer;
  if (typeof own === "function") return own;
  const v8 = await import("node:v8");
  const vm = await import("node:vm");
  v8.setFlagsFromString("--harmony-rab-gsab-transfer");
  try {
    const fromContext = vm.runInNewContext("ArrayBuffer.prototype.transfer");
    if (typeof fromContext === "function") return fromContext;
  } finally {
    v8.setFlagsFromString("--no-harmony-rab-gsab-transfer");
  }
  throw new Error(
    `ummu: this Node (${process.versions.node}) cannot detach an ArrayBuffer, so Mapping.close() could leave ` +
      "views over unmapped memory: use Node 20.x with V8 11.3+ or Node 22+",
  );
}
const transfer = await findTransfer();

/** The koffi adapter. */
export const adapter: RuntimeAdapter = {
  name: "node",
  libc: symbols as unknown as Libc,
  arch: process.arch,
  view(address, length) {
    if (length === 0) return new ArrayBuffer(0);
    if (address === 0) throw new RangeError("view of address 0");
    return koffi.view(BigInt(address), length);
  },
  addressOf(view) {
    return Number(koffi.address(view));
  },
  errno() {
    return koffi.errno();
  },
  detach(buffer) {
    transfer.call(buffer, 0);
  },
};
