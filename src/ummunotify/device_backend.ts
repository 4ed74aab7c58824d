/**
 * The device backend: /dev/ummunotify (kmod/ummunotify), opened read-only and
 * non-blocking; the three ioctls; read(2) of 32-byte events; the read-only
 * counter page mapped at offset 0 and read with Atomics on a BigInt64Array;
 * readiness through poll(2) (FdReadiness for the async waits).
 */
import * as n from "../../ffi/ummunotify.ts";
import * as m from "../../ffi/mman.ts";
import * as st from "../../ffi/stat.ts";
import { check, cstring, errno, libc, PAGE_SIZE, readWholeFile, statFd } from "../libc.ts";
import { ClosedError, UmmuError } from "../errors.ts";
import { FdReadiness } from "../poller.ts";
import { encodeRegister } from "./events.ts";
import { GenerationCounter } from "./counter.ts";
import { createPageControl, retirePage } from "./counter_page.ts";
import type { CheckedWait } from "./args.ts";
import type { Backend } from "./backend.ts";

/** Where the driver's node lives. */
export const DEVICE_PATH = "/dev/ummunotify";

const EINTR = 4, EINVAL = 22, ENOTTY = 25;
/** The longest single poll(2) of a synchronous wait (its timeout is an int). */
const POLL_CHUNK_MS = 1 << 30;

/**
 * /dev/ummunotify's device number from sysfs ("10:123" for the misc device),
 * or null when sysfs does not say (not mounted, or no driver loaded).
 */
function driverDevice(): [number, number] | null {
  try {
    const text = new TextDecoder().decode(readWholeFile("/sys/class/misc/ummunotify/dev")).trim();
    const m = /^(\d+):(\d+)$/.exec(text);
    return m ? [Number(m[1]), Number(m[2])] : null;
  } catch {
    return null;
  }
}

const TYPE_NAMES: Record<number, string> = {
  [st.S_IFREG]: "a regular file",
  [st.S_IFDIR]: "a folder",
};

/**
 * Refuses an fd that is not the ummunotify driver's: it must be a character
 * device, with the driver's device number when sysfs names it, and answer
 * UMMUNOTIFY_EXCHANGE_FEATURES with no feature granted. Only a character
 * device that sysfs cannot rule out gets the ioctl (another driver could
 * give the number another meaning).
 */
function checkIsUmmunotify(fd: number, path: string): [number, number] {
  const call = `open(${path})`;
  const file = statFd(fd, `statx(${path})`);
  const what = TYPE_NAMES[file.type] ?? "not a character device";
  if (file.type !== st.S_IFCHR) {
    throw new UmmuError(
      call,
      ENOTTY,
      `${path} is ${what}, not the ummunotify device (${DEVICE_PATH}, a character device of kmod/ummunotify)`,
    );
  }
  const driver = driverDevice();
  const rdev = `${file.rdev[0]}:${file.rdev[1]}`;
  if (driver !== null && (driver[0] !== file.rdev[0] || driver[1] !== file.rdev[1])) {
    throw new UmmuError(
      call,
      ENOTTY,
      `${path} is the character device ${rdev}, not the ummunotify device (${driver[0]}:${
        driver[1]
      }, per /sys/class/misc/ummunotify/dev)`,
    );
  }
  const features = new Uint8Array(4);
  if (libc.ioctl(fd, n.UMMUNOTIFY_EXCHANGE_FEATURES, features) !== 0) {
    const e = errno();
    throw new UmmuError(
      call,
      e === ENOTTY || e === EINVAL ? ENOTTY : e,
      `${path} (character device ${rdev}) does not answer UMMUNOTIFY_EXCHANGE_FEATURES: it is not the ummunotify device`,
      "ioctl(UMMUNOTIFY_EXCHANGE_FEATURES)",
    );
  }
  return file.rdev;
}

/** The device backend of one notifier. */
export class DeviceBackend implements Backend {
  readonly kind = "device" as const;
  readonly counter: GenerationCounter;
  readonly #fd: number;
  readonly #control: SharedArrayBuffer;
  readonly #reg = new Uint8Array(n.SIZEOF_UMMUNOTIFY_REGISTER_IOCTL);
  readonly #regView = new DataView(this.#reg.buffer);
  readonly #u64 = new Uint8Array(8);
  readonly #u64View = new DataView(this.#u64.buffer);
  readonly #pollfd = new Uint8Array(m.SIZEOF_POLLFD);
  readonly #pollView = new DataView(this.#pollfd.buffer);
  #ready: Promise<FdReadiness> | null = null;
  #closed = false;
  readonly path: string;

  private constructor(path: string, fd: number, control: SharedArrayBuffer) {
    this.path = path;
    this.#fd = fd;
    this.#control = control;
    this.#pollView.setInt32(0, fd, true);
    this.#pollView.setInt16(4, m.POLLIN, true);
    this.counter = GenerationCounter.ofDevicePage(control);
    this.counter.setDeviceWait((since, wait) => this.#waitChange(since, wait));
  }

  /**
   * Opens the device (read-only, as its ABI requires), checks that it is the
   * ummunotify driver's, and maps its counter page.
   */
  static open(path = DEVICE_PATH): DeviceBackend {
    const fd = libc.open(cstring(path), m.O_RDONLY | m.O_CLOEXEC | m.O_NONBLOCK, 0);
    if (fd < 0) throw new UmmuError(`open(${path})`, errno());
    try {
      const rdev = checkIsUmmunotify(fd, path);
      const address = check(
        libc.mmap(0, PAGE_SIZE, m.PROT_READ, m.MAP_SHARED, fd, 0),
        `mmap(${path})`,
      );
      return new DeviceBackend(path, fd, createPageControl({ address, fd, rdev }));
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

  async waitReadable(wait: CheckedWait): Promise<boolean> {
    this.#checkOpen();
    if (this.#poll(0)) return true;
    const ready = await (this.#ready ??= FdReadiness.start(this.#fd));
    const deadline = Date.now() + wait.timeoutMs;
    for (;;) {
      this.#checkOpen();
      wait.signal?.throwIfAborted();
      if (this.#poll(0)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      ready.rearm();
      await raceReadable(ready, Math.min(left, 250), wait.signal);
    }
  }

  waitReadableSync(timeoutMs: number): boolean {
    this.#checkOpen();
    // poll(2) takes an int of milliseconds: wait in chunks, so any timeout is exact.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (this.#poll(Math.max(0, Math.ceil(Math.min(left, POLL_CHUNK_MS))))) return true;
      if (deadline - Date.now() <= 0) return false;
    }
  }

  /**
   * Stops the readiness Worker, retires the counter page (unmapped, or
   * replaced by a DEAD page while counters in other threads still read it:
   * counter_page.ts), closes the fd.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ready) await (await this.#ready).close();
    retirePage(this.#control, this.counter.retireDevicePage());
    libc.close(this.#fd);
  }

  /** waitForChange of the owner's counter: poll(2) readiness, then the counter. */
  async #waitChange(since: bigint, wait: CheckedWait): Promise<bigint> {
    const deadline = Date.now() + wait.timeoutMs;
    for (;;) {
      if (this.counter.changed(since)) return this.counter.generation;
      const left = deadline - Date.now();
      if (left <= 0) return this.counter.generation;
      // Readable with the counter unchanged: a report from before `since` is still unread;
      // the kernel gives no edge for the next one, so look again shortly.
      if (this.#poll(0)) await sleep(Math.min(left, 5), wait.signal);
      else await this.waitReadable({ timeoutMs: left, signal: wait.signal });
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
): (since: bigint, wait: CheckedWait) => Promise<bigint> {
  return async (since, wait) => {
    const ready = await FdReadiness.start(fd);
    const pollfd = new Uint8Array(m.SIZEOF_POLLFD);
    const pv = new DataView(pollfd.buffer);
    pv.setInt32(0, fd, true);
    pv.setInt16(4, m.POLLIN, true);
    // Any revents counts: POLLNVAL (the notifier closed its fd) must not spin on the poller.
    const readyNow = () => {
      pv.setInt16(6, 0, true);
      return libc.poll(pollfd, 1, 0) !== 0;
    };
    const deadline = Date.now() + wait.timeoutMs;
    try {
      for (;;) {
        if (counter.changed(since)) return counter.generation;
        const left = deadline - Date.now();
        if (left <= 0) return counter.generation;
        if (readyNow()) await sleep(Math.min(left, 5), wait.signal);
        else {
          ready.rearm();
          await raceReadable(ready, Math.min(left, 250), wait.signal);
        }
      }
    } finally {
      await ready.close();
    }
  };
}
