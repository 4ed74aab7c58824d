/**
 * Ummunotify: learn when registered address ranges of this process are
 * invalidated (unmapped, freed, remapped), with a 64-bit generation counter
 * checked by one atomic load. The interface and semantics of the 2010
 * ummunotify driver, on every kernel: /dev/ummunotify where it exists (the
 * device backend), userfaultfd's non-cooperative events elsewhere.
 */
import { ClosedError, UmmuError } from "../errors.ts";
import * as v from "../validate.ts";
import { knownKeys, u64, type U64Like, waitOptions } from "./args.ts";
import { whileWaiting } from "./keep_alive.ts";
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
  /** Default "/dev/ummunotify". It must be the ummunotify driver's character device. */
  devicePath?: string;
}

const OPTION_NAMES = new Set([
  "backend",
  "devicePath",
  "maxRegistrations",
  "spinMicros",
  "userModeOnly",
  "unsafeNoBusyMarker",
]);

const EAGAIN = 11, EINVAL = 22;
const BATCH = 64;
/** errnos of open() that mean "no such device here". */
const NO_DEVICE = new Set([2, 6, 19]);

export type { U64Like };

/** A spin time: a finite number of microseconds, 0..1e6. */
function microseconds(what: string, x: unknown): number {
  if (typeof x !== "number" || !(x >= 0 && x <= 1e6)) {
    v.invalid(what, x, "a number of microseconds in 0..1000000");
  }
  return x as number;
}

/** The checked options of open(). */
function checkOptions(options: unknown): UmmunotifyOptions & { backend: "auto" | BackendKind } {
  const o = v.options<UmmunotifyOptions>("Ummunotify.open options", options);
  knownKeys("Ummunotify.open options", o, OPTION_NAMES);
  const backend = o.backend === undefined
    ? "auto"
    : v.oneOf("options.backend", o.backend, ["auto", "device", "userfaultfd"] as const);
  let devicePath: string | undefined;
  if (o.devicePath !== undefined) {
    devicePath = v.string("options.devicePath", o.devicePath);
    if (devicePath.includes("\0")) {
      v.invalid("options.devicePath", devicePath, "a path without NUL");
    }
  }
  return {
    backend,
    devicePath,
    maxRegistrations: o.maxRegistrations === undefined
      ? undefined
      : v.integer("options.maxRegistrations", o.maxRegistrations, 1, 1 << 24),
    spinMicros: o.spinMicros === undefined
      ? undefined
      : microseconds("options.spinMicros", o.spinMicros),
    userModeOnly: o.userModeOnly === undefined
      ? undefined
      : v.boolean("options.userModeOnly", o.userModeOnly, false),
    unsafeNoBusyMarker: v.boolean("options.unsafeNoBusyMarker", o.unsafeNoBusyMarker, false),
  };
}

/** A notifier: registrations, a queue of invalidation reports, a generation counter. */
export class Ummunotify {
  readonly #b: Backend;
  /** The backend's counter; after close(), {@link CLOSED_COUNTER} (so changed() needs no check of its own). */
  #counter: Pick<GenerationCounter, "changed">;
  readonly #buf = new Uint8Array(BATCH * n.SIZEOF_UMMUNOTIFY_EVENT);
  #closed = false;

  private constructor(backend: Backend) {
    this.#b = backend;
    this.#counter = backend.counter;
  }

  /**
   * Opens a notifier watching this process. Every option is checked
   * (UmmuArgumentError names a wrong one); `devicePath` must be the
   * ummunotify driver's character device.
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
    const o = checkOptions(options);
    const path = o.devicePath ?? DEVICE_PATH;
    if (o.backend === "device") return new Ummunotify(DeviceBackend.open(path));
    if (o.backend === "auto") {
      try {
        return new Ummunotify(DeviceBackend.open(path));
      } catch (e) {
        if (!(e instanceof UmmuError) || !NO_DEVICE.has(e.errno)) throw e;
      }
    }
    return new Ummunotify(await UffdBackend.open(o));
  }

  /** "device" or "userfaultfd". */
  get backend(): BackendKind {
    return this.#b.kind;
  }

  /**
   * UMMUNOTIFY_EXCHANGE_FEATURES: asks for features (a u32 mask), returns
   * those granted. No feature is defined, so this is always 0 (forward
   * compatibility only).
   */
  exchangeFeatures(requested: number = 0): number {
    const mask = v.integer("requested", requested, 0, 0xffffffff);
    this.#checkOpen();
    return this.#b.exchangeFeatures(mask);
  }

  /**
   * Watches [start, end) (end exclusive) under `cookie`: each a u64, as a
   * bigint or a safe integer number (UmmuArgumentError otherwise; nothing is
   * wrapped). Overlapping and identical ranges are fine with distinct
   * cookies; a cookie already registered fails with UmmuError EINVAL, as
   * does start >= end.
   * The userfaultfd backend also fails with ENOMEM (not all mapped, or
   * vm.max_map_count), EBUSY (another userfaultfd's memory), EINVAL/EPERM
   * (memory userfaultfd cannot register), ENOSPC (maxRegistrations).
   */
  register(start: U64Like, end: U64Like, cookie: U64Like): void {
    const s = u64("start", start), e = u64("end", end), c = u64("cookie", cookie);
    this.#checkOpen();
    if (s >= e) {
      throw new UmmuError(
        `register(ummunotify, ${this.#b.kind} backend)`,
        EINVAL,
        `start 0x${s.toString(16)} must be below end 0x${e.toString(16)} (end is exclusive)`,
      );
    }
    this.#b.register(s, e, c);
  }

  /** Stops watching `cookie`'s range and drops its queued report. Unknown cookie: UmmuError EINVAL. */
  unregister(cookie: U64Like): void {
    const c = u64("cookie", cookie);
    this.#checkOpen();
    this.#b.unregister(c);
  }

  /** The counter: shareable with Workers through `counter.handle`. */
  get counter(): GenerationCounter {
    this.#checkOpen();
    return this.#b.counter;
  }

  /** The current generation (one atomic load, unless events are being applied). */
  get generation(): bigint {
    this.#checkOpen();
    return this.#b.counter.generation;
  }

  /**
   * True if anything was invalidated since generation `since` (a bigint, or
   * a safe integer number). One atomic load on the fast path.
   */
  changed(since: U64Like): boolean {
    return this.#counter.changed(since);
  }

  /**
   * read(2) semantics, byte for byte on both backends: whole 32-byte
   * `struct ummunotify_event`s into `buf`, returns the bytes written. Throws
   * UmmuError EINVAL if `buf` is shorter than one event, EAGAIN if there is
   * nothing to read.
   */
  readInto(buf: Uint8Array): number {
    if (!(buf instanceof Uint8Array)) v.invalid("buf", buf, "a Uint8Array");
    this.#checkOpen();
    return this.#b.readInto(buf);
  }

  /**
   * Everything queued, without blocking: INVALs, then a LAST carrying the
   * counter. [] when nothing is queued.
   */
  readEvents(): UmmunotifyEvent[] {
    this.#checkOpen();
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
   * timeout; rejects on abort or close(). `opts.timeoutMs`: ≥ 0 or Infinity.
   */
  async read(opts: WaitOptions = {}): Promise<UmmunotifyEvent[]> {
    const wait = waitOptions("options", opts);
    this.#checkOpen();
    if (!(await whileWaiting(() => this.#b.waitReadable(wait)))) return [];
    return this.readEvents();
  }

  /**
   * Blocks this thread until something is queued (or the timeout, in
   * milliseconds: ≥ 0 or Infinity), then reads it all.
   */
  readSync(timeoutMs: number = Infinity): UmmunotifyEvent[] {
    const ms = v.milliseconds("timeoutMs", timeoutMs, Infinity);
    this.#checkOpen();
    if (!this.#b.waitReadableSync(ms)) return [];
    return this.readEvents();
  }

  /** A read would return something now. */
  get readable(): boolean {
    this.#checkOpen();
    return this.#b.readable();
  }

  /**
   * Every event as it comes (INVALs and the LAST that ends each read). Ends
   * when the notifier is closed; on a notifier already closed, ClosedError.
   */
  events(
    opts: { signal?: AbortSignal } = {},
  ): AsyncGenerator<UmmunotifyEvent, void, undefined> {
    const { signal } = waitOptions("options", opts, EVENTS_KEYS);
    this.#checkOpen();
    return this.#events(signal);
  }

  async *#events(
    signal: AbortSignal | undefined,
  ): AsyncGenerator<UmmunotifyEvent, void, undefined> {
    for (;;) {
      if (this.#closed) return;
      const batch = this.readEvents();
      if (batch.length > 0) {
        yield* batch;
        continue;
      }
      try {
        await whileWaiting(() => this.#b.waitReadable({ timeoutMs: Infinity, signal }));
      } catch (e) {
        if (this.#closed) return;
        throw e;
      }
    }
  }

  /**
   * Resolves with the generation once it differs from `since`, without
   * polling. `opts.timeoutMs`: ≥ 0 or Infinity.
   */
  waitForChange(since: U64Like, opts: WaitOptions = {}): Promise<bigint> {
    if (this.#closed) return Promise.reject(new ClosedError("Ummunotify"));
    return this.#b.counter.waitForChange(since, opts);
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Releases everything: registrations, queued reports, the fd, the counter
   * (device: its page is unmapped, or, while counters rebuilt in other
   * threads still use it, replaced by a page that reads "changed"; the
   * userfaultfd backend: counters elsewhere answer "changed" from now on),
   * the Worker. Every other method throws ClosedError afterwards.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#counter = CLOSED_COUNTER;
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

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("Ummunotify");
  }
}

const EVENTS_KEYS = new Set(["signal"]);

/** What changed() calls once the notifier is closed: the fast path then tests nothing extra. */
const CLOSED_COUNTER: Pick<GenerationCounter, "changed"> = {
  changed(): boolean {
    throw new ClosedError("Ummunotify");
  },
};
