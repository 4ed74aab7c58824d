/**
 * Picks the adapter for the running runtime. Loaded with top-level await so
 * that Deno never sees `bun:ffi` and Bun never sees `Deno.dlopen`, and neither
 * loads koffi (Node's). The npm build replaces this file with one that imports
 * `#platform`, which package.json maps by the `deno`/`bun`/`node` conditions.
 * @module
 */
import type { RuntimeAdapter } from "./runtime.ts";

const g = globalThis as {
  Bun?: unknown;
  Deno?: unknown;
  process?: { versions?: { node?: string } };
};

/** The adapter of the running runtime. */
export const runtime: RuntimeAdapter = g.Bun !== undefined
  ? (await import("./bun.ts")).adapter
  : g.Deno !== undefined
  ? (await import("./deno.ts")).adapter
  : g.process?.versions?.node !== undefined
  ? (await import("./node.ts")).adapter
  : (() => {
    throw new Error("ummu: unsupported runtime: it needs Deno, Bun or Node (with koffi) on Linux");
  })();
