/**
 * The device backend: /dev/ummunotify (kmod/ummunotify), opened read-only and
 * non-blocking; the three ioctls; read(2) of 32-byte events; the read-only
 * counter page mapped at offset 0 and read with Atomics on a BigInt64Array;
 * readiness through poll(2) (FdReadiness for the async waits).
 */
import * as n from "../../ffi/ummunotify.ts";
import * as m from "../../ffi/mman.ts";
import { check, cstring, errno, libc, PAGE_SIZE } from "../libc.ts";
import { ClosedError, UmmuError } from "../errors.ts";
import { FdReadiness } from "../poller.ts";
import { encodeRegister } from "./events.ts";
import { GenerationCounter, type WaitOptions } from "./counter.ts";
import type { Backend } from "./backend.ts";

/** Where the driver's node lives. */
export const DEVICE_PATH = "/dev/ummunotify";

const EINTR = 4;

/** The device backend of one notifier. */
export class DeviceBackend implements Backend {
  readonly kind = "device" as const;
  readonly counter: GenerationCounter;
  readonly #fd: number;
  readonly #counterAddr: number;
  readonly #reg = new Uint8Array(n.SIZEOF_UMMUNOTIFY_REGISTER_IOCTL);
  readonly #regView = new DataView(this.#reg.buffer);
  readonly #u64 = new Uint8Array(8);
  readonly #u64View = new DataView(this.#u64.buffer);
  readonly #pollfd = new Uint8Array(m.SIZEOF_POLLFD);
  readonly #pollView = new DataView(this.#pollfd.buffer);
  #ready: Promise<FdReadiness> | null = null;
  #closed = false;
  readonly path: string;

  private constructor(path: string, fd: number, counterAddr: number) {
    this.path = path;
    this.#fd = fd;
    this.#counterAddr = counterAddr;
    this.#pollView.setInt32(0, fd, true);
    this.#pollView.setInt16(4, m.POLLIN, true);
    this.counter = GenerationCounter.fromHandle({ kind: "device", address: counterAddr, fd });
    this.counter.setDeviceWait((since, opts) => this.#waitChange(since, opts));
  }

  /** Opens the device (read-only, as its ABI requires) and maps its counter page. */
  static open(path = DEVICE_PATH): DeviceBackend {
    const fd = libc.open(cstring(path), m.O_RDONLY | m.O_CLOEXEC | m.O_NONBLOCK, 0);
    if (fd < 0) {
      const e = errno();
      throw new UmmuError(
        `open(${path})`,
        e,
        e === 2
          ? "no ummunotify device: load kmod/ummunotify (insmod ummunotify.ko), or use the userfaultfd backend"
          : "",
      );
    }
    try {
      const addr = check(
        libc.mmap(0, PAGE_SIZE, m.PROT_READ, m.MAP_SHARED, fd, 0),
        `mmap(${path})`,
      );
      return new DeviceBackend(path, fd, addr);
    } catch (e) {
      libc.close(fd);
      throw e;
    }
  }

  /** The file descriptor (for poll/epoll elsewhere). */
  get fd(): number {
    this.#checkOpen();
    return this.#fd;
  }

  exchangeFeatures(requested: number): number {
    this.#checkOpen();
    if (!Number.isInteger(requested) || requested < 0 || requested > 0xffffffff) {
      throw new RangeError(`a feature mask is a u32, got ${requested}`);
    }
    const b = new Uint8Array(4);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, requested, true);
    check(
      libc.ioctl(this.#fd, n.UMMUNOTIFY_EXCHANGE_FEATURES, b),
      "ioctl(UMMUNOTIFY_EXCHANGE_FEATURES)",
    );
    return dv.getUint32(0, true);
  }

  register(start: bigint, end: bigint, cookie: bigint): void {
    this.#checkOpen();
    encodeRegister(this.#regView, start, end, cookie);
    if (libc.ioctl(this.#fd, n.UMMUNOTIFY_REGISTER_REGION, this.#reg) !== 0) {
      const e = errno();
      throw new UmmuError("ioctl(UMMUNOTIFY_REGISTER_REGION)", e, registerHint(e, cookie));
    }
  }

  unregister(cookie: bigint): void {
    this.#checkOpen();
    this.#u64View.setBigUint64(0, cookie, true);
    if (libc.ioctl(this.#fd, n.UMMUNOTIFY_UNREGISTER_REGION, this.#u64) !== 0) {
      const e = errno();
      throw new UmmuError(
        "ioctl(UMMUNOTIFY_UNREGISTER_REGION)",
        e,
        e === 22 ? `cookie ${cookie} is not registered` : "",
      );
    }
  }

  readInto(buf: Uint8Array): number {
    this.#checkOpen();
    for (;;) {
      const r = libc.read(this.#fd, buf, buf.byteLength);
      if (r >= 0) return r;
      const e = errno();
      if (e === EINTR) continue;
      throw new UmmuError(
        "read(/dev/ummunotify)",
        e,
        e === 22
          ? `a read needs room for at least one ${n.SIZEOF_UMMUNOTIFY_EVENT}-byte event`
          : e === 11
          ? "nothing to read"
          : "",
      );
    }
  }

  readable(): boolean {
    if (this.#closed) return false;
    return this.#poll(0);
  }

  async waitReadable(opts: WaitOptions): Promise<boolean> {
    this.#checkOpen();
    if (this.#poll(0)) return true;
    const ready = await (this.#ready ??= FdReadiness.start(this.#fd));
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    for (;;) {
      this.#checkOpen();
      opts.signal?.throwIfAborted();
      if (this.#poll(0)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      ready.rearm();
      await raceReadable(ready, Math.min(left, 250), opts.signal);
    }
  }

  waitReadableSync(timeoutMs: number): boolean {
    this.#checkOpen();
    return this.#poll(timeoutMs === Infinity ? -1 : Math.max(0, Math.ceil(timeoutMs)));
  }

  /** Unmaps the counter page (detaching its view), stops the readiness Worker, closes the fd. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ready) await (await this.#ready).close();
    this.counter.detach();
    libc.munmap(this.#counterAddr, PAGE_SIZE);
    libc.close(this.#fd);
  }

  /** waitForChange of the owner's counter: poll(2) readiness, then the counter. */
  async #waitChange(since: bigint, opts: WaitOptions): Promise<bigint> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    for (;;) {
      if (this.counter.changed(since)) return this.counter.generation;
      const left = deadline - Date.now();
      if (left <= 0) return this.counter.generation;
      // Readable with the counter unchanged: a report from before `since` is still unread;
      // the kernel gives no edge for the next one, so look again shortly.
      if (this.#poll(0)) await sleep(Math.min(left, 5), opts.signal);
      else await this.waitReadable({ ...opts, timeoutMs: left });
    }
  }

  #poll(timeoutMs: number): boolean {
    for (;;) {
      this.#pollView.setInt16(6, 0, true);
      const r = libc.poll(this.#pollfd, 1, timeoutMs);
      if (r >= 0) return r > 0 && (this.#pollView.getInt16(6, true) & m.POLLIN) !== 0;
      if (errno() !== EINTR) throw new UmmuError("poll(/dev/ummunotify)", errno());
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("Ummunotify");
  }
}

function registerHint(e: number, cookie: bigint): string {
  switch (e) {
    case 22:
      return `start must be below end, flags and reserved 0, and cookie ${cookie} not already registered`;
    case 28:
      return "the driver's max_regions registrations are in use (module parameter max_regions)";
    case 19:
      return "the watched process's address space is gone (exit or exec)";
    default:
      return "";
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** FdReadiness.readable() bounded by a timeout and an AbortSignal. */
async function raceReadable(ready: FdReadiness, ms: number, signal?: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      ready.readable(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
      new Promise<void>((_, reject) => {
        if (!signal) return;
        onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal!.removeEventListener("abort", onAbort);
  }
}

/**
 * waitForChange for a device counter rebuilt in another thread: a private
 * FdReadiness per wait, on the owner's fd (fds are per process).
 */
export function deviceWaiter(
  counter: GenerationCounter,
  fd: number,
): (since: bigint, opts: WaitOptions) => Promise<bigint> {
  return async (since, opts) => {
    const ready = await FdReadiness.start(fd);
    const pollfd = new Uint8Array(m.SIZEOF_POLLFD);
    const pv = new DataView(pollfd.buffer);
    pv.setInt32(0, fd, true);
    pv.setInt16(4, m.POLLIN, true);
    const readableNow = () => {
      pv.setInt16(6, 0, true);
      return libc.poll(pollfd, 1, 0) > 0 && (pv.getInt16(6, true) & m.POLLIN) !== 0;
    };
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    try {
      for (;;) {
        if (counter.changed(since)) return counter.generation;
        const left = deadline - Date.now();
        if (left <= 0) return counter.generation;
        if (readableNow()) await sleep(Math.min(left, 5), opts.signal);
        else {
          ready.rearm();
          await raceReadable(ready, Math.min(left, 250), opts.signal);
        }
      }
    } finally {
      await ready.close();
    }
  };
}
