/**
 * Every ABI table, and the ffi/ files that hold no ABI numbers.
 *
 * tests/abi_coverage.test.ts holds this list to two rules: every ffi/*.ts is
 * either here or in NOT_ABI, and every number a listed module exports has a
 * row in its table (or an allow-list entry with the reason). Each table is
 * compared with its headers by its own tests/abi_<name>.test.ts.
 */
import type { ModuleSpec } from "./spec.ts";
import { USERFAULTFD } from "./userfaultfd.ts";
import { FS, MMAN } from "./mman_fs.ts";
import { ERRNO, IOCTL } from "./ioctl_errno.ts";
import { USER_EVENTS } from "./user_events.ts";
import { PERF_EVENT } from "./perf_event.ts";
import { UMMUNOTIFY } from "./ummunotify.ts";
import { STAT, UIO } from "./stat_uio.ts";
import { SOCKET } from "./socket.ts";

/** One entry per ffi/ module with ABI numbers. */
export const TABLES: ModuleSpec[] = [
  USERFAULTFD,
  FS,
  MMAN,
  IOCTL,
  ERRNO,
  USER_EVENTS,
  PERF_EVENT,
  UMMUNOTIFY,
  STAT,
  UIO,
  SOCKET,
];

/** ffi/*.ts files that hold no ABI numbers (the runtime boundary). */
export const NOT_ABI: Record<string, string> = {
  "symbols.ts": "the libc symbol table (types, no numbers)",
  "runtime.ts": "the adapter interface",
  "deno.ts": "Deno adapter",
  "bun.ts": "Bun adapter",
  "node.ts": "Node adapter (koffi)",
  "platform.ts": "picks the adapter",
};
