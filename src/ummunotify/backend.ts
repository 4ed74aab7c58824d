/** What the notifier needs from a backend (device_backend.ts, uffd_backend.ts). */
import type { GenerationCounter } from "./counter.ts";
import type { CheckedWait } from "./args.ts";

/** Which backend a notifier uses. */
export type BackendKind = "device" | "userfaultfd";

export interface Backend {
  readonly kind: BackendKind;
  readonly counter: GenerationCounter;
  /** UMMUNOTIFY_EXCHANGE_FEATURES: returns the granted mask (always 0). */
  exchangeFeatures(requested: number): number;
  /** Watches [start, end) (end exclusive) under `cookie` (already normalized to u64). */
  register(start: bigint, end: bigint, cookie: bigint): void;
  unregister(cookie: bigint): void;
  /**
   * read(2) semantics: whole 32-byte events into `buf`; returns bytes. Throws
   * UmmuError EINVAL (buffer < 32 bytes) or EAGAIN (nothing to read).
   */
  readInto(buf: Uint8Array): number;
  /** A read would return something now. */
  readable(): boolean;
  /** Resolves when readable (or rejects on close, abort). */
  waitReadable(wait: CheckedWait): Promise<boolean>;
  /** Blocks the thread until readable or the timeout (ms, ≥ 0 or Infinity, checked); returns readable(). */
  waitReadableSync(timeoutMs: number): boolean;
  close(): Promise<void>;
}
