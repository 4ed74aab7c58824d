/**
 * Ummunotify: learn when registered address ranges of this process are
 * invalidated (unmapped, freed, remapped), with a 64-bit generation counter
 * checked by one atomic load. The interface and semantics of the 2010
 * ummunotify driver, on every kernel: /dev/ummunotify where it exists (the
 * device backend), userfaultfd's non-cooperative events elsewhere.
 */
import { UmmuError } from "../errors.ts";
import * as n from "../../ffi/ummunotify.ts";
import type { Backend, BackendKind } from "./backend.ts";
import type { GenerationCounter, WaitOptions } from "./counter.ts";
import { DEVICE_PATH, DeviceBackend } from "./device_backend.ts";
import { decodeEvents, type UmmunotifyEvent } from "./events.ts";
import { UffdBackend, type UffdBackendOptions } from "./uffd_backend.ts";

/** Options of {@link Ummunotify.open}. */
export interface UmmunotifyOptions extends UffdBackendOptions {
  /**
   * "auto" (default): the device if `devicePath` exists, else userfaultfd.
   * "device" or "userfaultfd" force one (and fail if it is unavailable).
   */
  backend?: "auto" | BackendKind;
  /** Default "/dev/ummunotify". */
  devicePath?: string;
}

const EAGAIN = 11;
const BATCH = 64;
/** errnos of open() that mean "no such device here". */
const NO_DEVICE = new Set([2, 6, 19]);

/** A 64-bit value: a bigint, or a number when it is a safe integer. */
export type U64Like = bigint | number;

function u64(x: U64Like, what: string): bigint {
  if (typeof x === "number" && !Number.isSafeInteger(x)) {
    throw new RangeError(`${what} must be an integer, got ${x}`);
  }
  return BigInt.asUintN(64, BigInt(x));
}

/** A notifier: registrations, a queue of invalidation reports, a generation counter. */
export class Ummunotify {
  readonly #b: Backend;
  readonly #buf = new Uint8Array(BATCH * n.SIZEOF_UMMUNOTIFY_EVENT);
  #closed = false;

  private constructor(backend: Backend) {
    this.#b = backend;
  }

  /**
   * Opens a notifier watching this process.
   * @example
   * ```ts
   * const un = await Ummunotify.open();
   * un.register(mem.address, mem.address + BigInt(mem.length), 123n);
   * let seen = un.generation;
   * // ... later, on the fast path:
   * if (un.changed(seen)) {
   *   for (const ev of un.readEvents()) {
   *     if (ev.kind === "invalidate") cache.drop(ev.cookie);
   *     else seen = ev.generation;
   *   }
   * }
   * await un.close();
   * ```
   */
  static async open(options: UmmunotifyOptions = {}): Promise<Ummunotify> {
    const which = options.backend ?? "auto";
    if (which !== "auto" && which !== "device" && which !== "userfaultfd") {
      throw new RangeError(`backend must be "auto", "device" or "userfaultfd", got ${which}`);
    }
    const path = options.devicePath ?? DEVICE_PATH;
    if (which === "device") return new Ummunotify(DeviceBackend.open(path));
    if (which === "auto") {
      try {
        return new Ummunotify(DeviceBackend.open(path));
      } catch (e) {
        if (!(e instanceof UmmuError) || !NO_DEVICE.has(e.errno)) throw e;
      }
    }
    return new Ummunotify(await UffdBackend.open(options));
  }

  /** "device" or "userfaultfd". */
  get backend(): BackendKind {
    return this.#b.kind;
  }

  /**
   * UMMUNOTIFY_EXCHANGE_FEATURES: asks for features, returns those granted.
   * No feature is defined, so this is always 0 (forward compatibility only).
   */
  exchangeFeatures(requested = 0): number {
    return this.#b.exchangeFeatures(requested);
  }

  /**
   * Watches [start, end) (end exclusive) under `cookie`. Overlapping and
   * identical ranges are fine with distinct cookies; a cookie already
   * registered fails with UmmuError EINVAL, as does start >= end.
   * The userfaultfd backend also fails with ENOMEM (not all mapped, or
   * vm.max_map_count), EBUSY (another userfaultfd's memory), EINVAL/EPERM
   * (memory userfaultfd cannot register), ENOSPC (maxRegistrations).
   */
  register(start: U64Like, end: U64Like, cookie: U64Like): void {
    this.#b.register(u64(start, "start"), u64(end, "end"), u64(cookie, "cookie"));
  }

  /** Stops watching `cookie`'s range and drops its queued report. Unknown cookie: UmmuError EINVAL. */
  unregister(cookie: U64Like): void {
    this.#b.unregister(u64(cookie, "cookie"));
  }

  /** The counter: shareable with Workers through `counter.handle`. */
  get counter(): GenerationCounter {
    return this.#b.counter;
  }

  /** The current generation (one atomic load, unless events are being applied). */
  get generation(): bigint {
    return this.#b.counter.generation;
  }

  /** True if anything was invalidated since generation `since`. One atomic load on the fast path. */
  changed(since: bigint): boolean {
    return this.#b.counter.changed(since);
  }

  /**
   * read(2) semantics, byte for byte on both backends: whole 32-byte
   * `struct ummunotify_event`s into `buf`, returns the bytes written. Throws
   * UmmuError EINVAL if `buf` is shorter than one event, EAGAIN if there is
   * nothing to read.
   */
  readInto(buf: Uint8Array): number {
    return this.#b.readInto(buf);
  }

  /**
   * Everything queued, without blocking: INVALs, then a LAST carrying the
   * counter. [] when nothing is queued.
   */
  readEvents(): UmmunotifyEvent[] {
    const out: UmmunotifyEvent[] = [];
    for (;;) {
      let bytes: number;
      try {
        bytes = this.#b.readInto(this.#buf);
      } catch (e) {
        if (e instanceof UmmuError && e.errno === EAGAIN) return out;
        throw e;
      }
      if (bytes === 0) return out; // end of file: the watched mm is gone (device)
      const evs = decodeEvents(this.#buf, bytes);
      out.push(...evs);
      if (evs[evs.length - 1].kind === "last") return out;
    }
  }

  /**
   * Waits until something is queued, then reads it all. Ends with [] on
   * timeout; rejects on abort or close().
   */
  async read(opts: WaitOptions = {}): Promise<UmmunotifyEvent[]> {
    if (!(await this.#b.waitReadable(opts))) return [];
    return this.readEvents();
  }

  /** Blocks this thread until something is queued (or the timeout), then reads it all. */
  readSync(timeoutMs = Infinity): UmmunotifyEvent[] {
    if (!this.#b.waitReadableSync(timeoutMs)) return [];
    return this.readEvents();
  }

  /** A read would return something now. */
  get readable(): boolean {
    return this.#b.readable();
  }

  /**
   * Every event as it comes (INVALs and the LAST that ends each read). Ends
   * when the notifier is closed.
   */
  async *events(
    opts: { signal?: AbortSignal } = {},
  ): AsyncGenerator<UmmunotifyEvent, void, undefined> {
    for (;;) {
      if (this.#closed) return;
      const batch = this.readEvents();
      if (batch.length > 0) {
        yield* batch;
        continue;
      }
      try {
        await this.#b.waitReadable({ signal: opts.signal });
      } catch (e) {
        if (this.#closed) return;
        throw e;
      }
    }
  }

  /** Resolves with the generation once it differs from `since`, without polling. */
  waitForChange(since: bigint, opts: WaitOptions = {}): Promise<bigint> {
    return this.#b.counter.waitForChange(since, opts);
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Releases everything: registrations, queued reports, the fd, the counter
   * (device: its page is unmapped; userfaultfd: counters elsewhere answer
   * "changed" from now on), the Worker. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#b.close();
  }

  /** `await using un = await Ummunotify.open()` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal the backend (tests). */
  get backendImpl(): Backend {
    return this.#b;
  }
}
