/**
 * The contract between FaultHandler (main side) and its Worker: the init
 * message and the layout of the shared status words.
 */
import type { FdShare } from "../fd_control.ts";
import type { SourceLinkInit } from "./source_link.ts";

/** Index of each Int32 word in the status SharedArrayBuffer. */
export const STATUS = {
  /** 0 starting, 1 running, 2 stopped, 3 failed (the Worker closed the uffd). */
  state: 0,
  faults: 1,
  pages: 2,
  errors: 3,
  wpFaults: 4,
  minorFaults: 5,
  events: 6,
  spinHits: 7,
  /** A command for the Worker, raised with the eventfd: 0 none, COMMAND_SWEEP. Reset to 0 when done. */
  command: 8,
  /** Faults at addresses outside every handled range (served a zero page). */
  outside: 9,
  /** Set by the main side to ask the Worker to stop (with the eventfd). */
  stop: 10,
  words: 11,
} as const;
/** Snapshot ranges: copy every page not yet copied, then unprotect the range. */
export const COMMAND_SWEEP = 1;
export const STATE_STARTING = 0;
export const STATE_RUNNING = 1;
export const STATE_STOPPED = 2;
export const STATE_FAILED = 3;

/** What to do with the faulting page when its source throws. */
export type SourceErrorPolicy = "zero" | "poison";

/** A page source as the Worker sees it (module sources run in the source Worker). */
export type WorkerSource =
  | { kind: "zero" }
  | {
    kind: "file";
    path: string;
    offset: number;
    fd: number;
    /** The file mapped read-only (0: not mapped), and its mapped length. */
    map: number;
    mapLength: number;
  }
  | { kind: "shared"; buffer: SharedArrayBuffer; offset: number }
  | { kind: "module"; url: string; index: number };

/** One handled range, checked and normalized by the main side. */
export interface RangeSpec {
  start: number;
  length: number;
  /** The memory's page size: 4 KiB, or the huge page size of hugetlb memory. */
  pageSize: number;
  source: WorkerSource;
  readahead: number;
  /** WP faults copy the page here (same offset) before unprotecting. */
  snapshot?: SharedArrayBuffer;
  /** MINOR faults: address of a second mapping of the same memfd, to fill through. */
  alias?: number;
  /** Resolve MISSING and MINOR faults write-protected (COPY/CONTINUE with MODE_WP). */
  writeProtect: boolean;
  /** After REMOVE: "refill" from the source at the next fault, or "zero" (a balloon's pages, Firecracker). */
  afterRemove: "refill" | "zero";
}

/** A page fault the handle read before the handler started (served first). */
export interface DeferredFault {
  address: number;
  flags: number;
}

export interface HandlerInit {
  share: FdShare;
  wakeFd: number;
  status: SharedArrayBuffer;
  ranges: RangeSpec[];
  spinMicros: number;
  onSourceError: SourceErrorPolicy;
  pageSize: number;
  /**
   * Staging memory for sources that produce bytes, mapped and unmapped by the
   * main side: the Worker owns nothing, so terminating it can leak nothing.
   */
  staging: number;
  stagingLength: number;
  /** A read-only reservation of zeros (never written): COPY source for zero huge pages and WP zero pages. */
  zeros: number;
  zerosLength: number;
  /** Module sources: the channel to the source Worker. */
  source: SourceLinkInit | null;
  /** Faults read by the handle before: served first. */
  deferred: DeferredFault[];
  /** No onEvent: the Worker closes a FORK event's new fd at once (nobody else would). */
  closeForkFds: boolean;
  /**
   * The ranges are another process's addresses: the Worker never looks them
   * up in this process's maps. `exitFd` (a pidfd of that process, or -1) is
   * polled too: readable once the process exited, and the Worker stops.
   */
  peer: { pid: number; exitFd: number } | null;
}

/** Messages from the Worker. */
export type HandlerMessage =
  | { type: "ready" }
  | { type: "stopped" }
  | { type: "source-error"; offset: number; message: string }
  | { type: "error"; message: string }
  | { type: "source-dead"; message: string }
  | { type: "fatal"; message: string }
  | { type: "peer-exited" }
  | { type: "event"; event: unknown };
