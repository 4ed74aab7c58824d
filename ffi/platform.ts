/**
 * Picks the adapter for the running runtime. Loaded with top-level await so
 * that Deno never sees `bun:ffi` and Bun never sees `Deno.dlopen`.
 */
import type { RuntimeAdapter } from "./runtime.ts";

const g = globalThis as { Bun?: unknown; Deno?: unknown };

export const runtime: RuntimeAdapter = g.Bun !== undefined
  ? (await import("./bun.ts")).adapter
  : g.Deno !== undefined
  ? (await import("./deno.ts")).adapter
  : (() => {
    throw new Error("ummu: unsupported runtime (Deno or Bun needed; Node through the npm build)");
  })();
