/**
 * The contract between FaultHandler (main side) and its Worker: the init
 * message and the layout of the shared status words.
 */
import type { PageSource } from "./sources.ts";

/** Index of each Int32 word in the status SharedArrayBuffer. */
export const STATUS = {
  /** 0 starting, 1 running, 2 stopped (main closes the uffd), 3 failed (the Worker closed the uffd). */
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
  words: 9,
} as const;
/** Snapshot ranges: copy every page not yet copied, then unprotect the range. */
export const COMMAND_SWEEP = 1;
export const STATE_STARTING = 0;
export const STATE_RUNNING = 1;
export const STATE_STOPPED = 2;
export const STATE_FAILED = 3;

/** What to do with the faulting page when its source throws. */
export type SourceErrorPolicy = "zero" | "poison";

export interface RangeSpec {
  start: number;
  length: number;
  /** The memory's page size: 4 KiB, or the huge page size of hugetlb memory. */
  pageSize: number;
  source: PageSource;
  readahead: number;
  /** WP faults copy the page here (same offset) before unprotecting. */
  snapshot?: SharedArrayBuffer;
  /** MINOR faults: address of a second mapping of the same memfd, to fill through. */
  alias?: number;
  /** File sources: the fd, opened (and closed) by the main side. */
  fileFd: number;
}

export interface HandlerInit {
  uffd: number;
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
}

/** Messages from the Worker. */
export type HandlerMessage =
  | { type: "ready" }
  | { type: "stopped" }
  | { type: "source-error"; offset: number; message: string }
  | { type: "fatal"; message: string }
  | { type: "event"; event: unknown };
