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
  load(
    path: string,
  ): { func(name: string, result: string, params: string[]): (...args: unknown[]) => unknown };
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
  throw new Error(
    `ummu needs koffi 3.x (pointers as BigInt), found ${koffi.version}: npm install koffi@3`,
  );
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
  symbols[key] = lib.func(
    d.name ?? key,
    KOFFI_TYPE[d.result],
    d.parameters.map((t) => KOFFI_TYPE[t]),
  );
}

/**
 * Detaching: Node 22+ has ArrayBuffer.prototype.transfer. Node 20 has it
 * behind a V8 flag: turn the flag on and take the builtin from a fresh
 * context (the main realm's ArrayBuffer is unchanged). Looked up on first
 * use; the flag is left on, since V8 flags are per process and another
 * thread may be doing the same lookup.
 */
type Transfer = (this: ArrayBuffer, length?: number) => ArrayBuffer;
let transfer: Transfer | null = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer ?? null;
const nodeV8 = transfer ? null : await import("node:v8");
const nodeVm = transfer ? null : await import("node:vm");
function findTransfer(): Transfer {
  if (transfer) return transfer;
  nodeV8!.setFlagsFromString("--harmony-rab-gsab-transfer");
  const fromContext = nodeVm!.runInNewContext("ArrayBuffer.prototype.transfer");
  if (typeof fromContext !== "function") {
    throw new Error(
      `ummu: this Node (${process.versions.node}) cannot detach an ArrayBuffer, so closing a Mapping could leave ` +
        "views over unmapped memory: use Node 20.x or newer",
    );
  }
  return (transfer = fromContext as Transfer);
}

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
    findTransfer().call(buffer, 0);
  },
};
