/**
 * UserfaultFd: the one handle type. Creation (syscall or /dev/userfaultfd),
 * feature negotiation, registration, and every resolving ioctl, each packing
 * its struct into a buffer allocated once per handle.
 */
import * as u from "../../ffi/userfaultfd.ts";
import * as m from "../../ffi/mman.ts";
import { runtime } from "../../ffi/platform.ts";
import { check, closeFd, cstring, errno, libc, PAGE_SIZE } from "../libc.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import { decodeEvent, type UffdEvent } from "./events.ts";
import { FdReadiness } from "../poller.ts";
import {
  featureMask,
  type FeatureName,
  featureNames,
  type IoctlName,
  ioctlNames,
  MODE_BITS,
  type RegisterMode,
} from "./features.ts";

const EAGAIN = 11, EEXIST = 17, ENOENT = 2, EPERM = 1, EACCES = 13;

/** Where a userfaultfd comes from. */
export type UffdSource = "syscall" | "device" | "auto";

/** Options of {@link UserfaultFd.open}. */
export interface UserfaultFdOptions {
  /** Features to request. Unsupported ones fail the open with a list of what is missing. */
  features?: Iterable<FeatureName>;
  /** UFFD_USER_MODE_ONLY: only user-mode faults; allowed unprivileged when the sysctl is 1. */
  userModeOnly?: boolean;
  /** O_NONBLOCK on the fd (default true: the library polls, never blocks in read). */
  nonBlocking?: boolean;
  /** O_CLOEXEC (default true). */
  closeOnExec?: boolean;
  /** "auto" (default) tries the syscall then /dev/userfaultfd, each falling back on EPERM/EACCES/ENOENT. */
  via?: UffdSource;
}

/** What the kernel offers: from a throwaway fd, since UFFDIO_API is one-shot. */
export interface UffdCapabilities {
  /** Every feature the kernel supports. */
  features: Set<FeatureName>;
  /** The raw features mask. */
  featureMask: number;
  /** The ioctls UFFDIO_API reports. */
  ioctls: Set<IoctlName>;
  /** How the fd was made: "syscall" or "device". */
  via: "syscall" | "device";
}

/** Options common to the resolving ioctls. */
export interface WakeOption {
  /** Do not wake the faulting threads (wake them later with wake()). */
  dontWake?: boolean;
}

/** An address: a bigint (the public convention for 64-bit values) or a number (exact below 2^53). */
export type Address = bigint | number;

function createFd(flags: number, via: UffdSource): { fd: number; via: "syscall" | "device" } {
  const trySyscall = (): number => {
    const nr = u.NR_userfaultfd[runtime.arch];
    if (nr === undefined) {
      throw new UmmuError("userfaultfd", 38, /* ENOSYS */ `no syscall number for ${runtime.arch}`);
    }
    return check(libc.syscall(nr, flags, 0, 0, 0, 0), "userfaultfd");
  };
  const tryDevice = (): number => {
    const dev = libc.open(cstring("/dev/userfaultfd"), m.O_RDWR | m.O_CLOEXEC, 0);
    if (dev < 0) throw new UmmuError("open(/dev/userfaultfd)", errno());
    try {
      return check(libc.ioctl_int(dev, u.USERFAULTFD_IOC_NEW, flags), "ioctl(USERFAULTFD_IOC_NEW)");
    } finally {
      libc.close(dev);
    }
  };
  if (via === "syscall") return { fd: trySyscall(), via };
  if (via === "device") return { fd: tryDevice(), via };
  try {
    return { fd: trySyscall(), via: "syscall" };
  } catch (first) {
    if (!(first instanceof UmmuError) || ![EPERM, EACCES, ENOENT, 38].includes(first.errno)) {
      throw first;
    }
    try {
      return { fd: tryDevice(), via: "device" };
    } catch (second) {
      if (second instanceof UmmuError && [EPERM, EACCES, ENOENT].includes(second.errno)) {
        throw new UmmuError(
          first.call,
          first.errno,
          "",
          `and ${second.call} failed with ${second.code}. ${first.hint}`,
        );
      }
      throw second;
    }
  }
}

/** The userfaultfd handle. */
export class UserfaultFd {
  #fd: number;
  #closed = false;
  /** Features in effect on this fd (exactly those requested). */
  readonly features: Set<FeatureName>;
  /** ioctls allowed on this fd (UFFDIO_API's answer). */
  readonly ioctls: Set<IoctlName>;
  /** "syscall" or "device". */
  readonly via: "syscall" | "device";
  readonly #arg = new Uint8Array(64);
  readonly #dv = new DataView(this.#arg.buffer);
  readonly #msgs = new Uint8Array(u.SIZEOF_UFFD_MSG * 64);
  readonly #msgView = new DataView(this.#msgs.buffer);
  /** Pollers of live events() iterators: close() stops them, since close(2) does not wake poll(2). */
  readonly #iterators = new Set<FdReadiness>();
  /** Events read while retrying an ioctl (EAGAIN on mmap change); returned first by readEvents. */
  readonly #pending: UffdEvent[] = [];

  private constructor(fd: number, features: number, ioctls: bigint, via: "syscall" | "device") {
    this.#fd = fd;
    this.features = featureNames(features);
    this.ioctls = ioctlNames(ioctls);
    this.via = via;
  }

  /**
   * What this kernel and this process can use, probed on a throwaway fd.
   * @example
   * ```ts
   * const caps = UserfaultFd.probe();
   * console.log(caps.via, [...caps.features]);
   * ```
   */
  static probe(options: Pick<UserfaultFdOptions, "userModeOnly" | "via"> = {}): UffdCapabilities {
    const flags = m.O_CLOEXEC | m.O_NONBLOCK | (options.userModeOnly ? u.UFFD_USER_MODE_ONLY : 0);
    const { fd, via } = createFd(flags, options.via ?? "auto");
    try {
      const arg = new Uint8Array(u.SIZEOF_UFFDIO_API);
      const dv = new DataView(arg.buffer);
      dv.setBigUint64(0, BigInt(u.UFFD_API), true);
      check(libc.ioctl(fd, u.UFFDIO_API, arg), "ioctl(UFFDIO_API)");
      const mask = Number(dv.getBigUint64(8, true));
      return {
        features: featureNames(mask),
        featureMask: mask,
        ioctls: ioctlNames(dv.getBigUint64(16, true)),
        via,
      };
    } finally {
      libc.close(fd);
    }
  }

  /**
   * Opens a userfaultfd with exactly the requested features.
   * @example
   * ```ts
   * const uffd = UserfaultFd.open({ features: ["EVENT_UNMAP", "THREAD_ID"] });
   * uffd.close();
   * ```
   */
  static open(options: UserfaultFdOptions = {}): UserfaultFd {
    const want = featureMask(options.features ?? []);
    const flags = (options.closeOnExec ?? true ? m.O_CLOEXEC : 0) |
      (options.nonBlocking ?? true ? m.O_NONBLOCK : 0) |
      (options.userModeOnly ? u.UFFD_USER_MODE_ONLY : 0);
    const { fd, via } = createFd(flags, options.via ?? "auto");
    const arg = new Uint8Array(u.SIZEOF_UFFDIO_API);
    const dv = new DataView(arg.buffer);
    dv.setBigUint64(0, BigInt(u.UFFD_API), true);
    dv.setBigUint64(8, BigInt(want), true);
    if (libc.ioctl(fd, u.UFFDIO_API, arg) !== 0) {
      const e = errno();
      libc.close(fd);
      let detail = "";
      if (want) {
        try {
          const caps = UserfaultFd.probe({ userModeOnly: options.userModeOnly, via });
          const missing = [...featureNames(want)].filter((f) => !caps.features.has(f));
          if (missing.length) detail = `this kernel lacks ${missing.join(", ")}`;
        } catch { /* the probe's own failure adds nothing */ }
      }
      throw new UmmuError("ioctl(UFFDIO_API)", e, "", detail);
    }
    // The kernel answers with every feature it supports; what is in effect is what was asked.
    return new UserfaultFd(fd, want, dv.getBigUint64(16, true), via);
  }

  /** Starts a {@link UffdBuilder}. */
  static builder(): UffdBuilder {
    return new UffdBuilder();
  }

  /** The file descriptor. Throws once closed. */
  get fd(): number {
    if (this.#closed) throw new ClosedError("UserfaultFd");
    return this.#fd;
  }

  /** True once close() was called (or the fd was closed by a failed handler). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Registers [address, address+length) in the given modes; returns the
   * ioctls the kernel allows on the range.
   */
  register(
    address: Address,
    length: number,
    modes: Iterable<RegisterMode> = ["missing"],
  ): Set<IoctlName> {
    let mode = 0;
    for (const md of modes) {
      if (MODE_BITS[md] === undefined) throw new UmmuArgumentError(`unknown register mode ${md}`);
      mode |= MODE_BITS[md];
    }
    if (mode === 0) throw new UmmuArgumentError("register needs at least one mode");
    const dv = this.#range(address, length);
    dv.setBigUint64(16, BigInt(mode), true);
    dv.setBigUint64(24, 0n, true);
    this.#ioctl(u.UFFDIO_REGISTER, "ioctl(UFFDIO_REGISTER)");
    return ioctlNames(dv.getBigUint64(24, true));
  }

  /** Unregisters a range (wakes its blocked faulters, which then fault normally). */
  unregister(address: Address, length: number): void {
    this.#range(address, length);
    this.#ioctl(u.UFFDIO_UNREGISTER, "ioctl(UFFDIO_UNREGISTER)");
  }

  /** Wakes threads blocked on faults in the range (after a DONTWAKE resolution). */
  wake(address: Address, length: number): void {
    this.#range(address, length);
    this.#ioctl(u.UFFDIO_WAKE, "ioctl(UFFDIO_WAKE)");
  }

  /**
   * UFFDIO_COPY: copies `length` bytes from `source` (an address, or a typed
   * array whose bytes are used) into the missing pages at `dst`. Pages that
   * already exist (EEXIST) are skipped and count as done; partial progress is
   * resumed. Returns the bytes resolved.
   */
  copy(
    dst: Address,
    source: Address | ArrayBufferView,
    length: number,
    opts: WakeOption & { wp?: boolean } = {},
  ): number {
    const src = typeof source === "object" ? runtime.addressOf(source) : Number(source);
    if (typeof source === "object" && source.byteLength < length) {
      throw new UmmuArgumentError(
        `copy source has ${source.byteLength} bytes, fewer than ${length}`,
      );
    }
    const mode = (opts.dontWake ? u.UFFDIO_COPY_MODE_DONTWAKE : 0) |
      (opts.wp ? u.UFFDIO_COPY_MODE_WP : 0);
    return this.#progress(u.UFFDIO_COPY, "ioctl(UFFDIO_COPY)", dst, length, 32, (dv, off) => {
      dv.setBigUint64(8, BigInt(src + off), true);
      dv.setBigUint64(24, BigInt(mode), true);
    }, true);
  }

  /** UFFDIO_ZEROPAGE: maps the zero page over missing pages. Returns the bytes resolved. */
  zeropage(address: Address, length: number, opts: WakeOption = {}): number {
    const mode = opts.dontWake ? u.UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0;
    return this.#progress(
      u.UFFDIO_ZEROPAGE,
      "ioctl(UFFDIO_ZEROPAGE)",
      address,
      length,
      24,
      (dv) => {
        dv.setBigUint64(16, BigInt(mode), true);
      },
      false,
    );
  }

  /** UFFDIO_CONTINUE: maps pages already in the page cache (MINOR faults). Returns the bytes resolved. */
  continue(address: Address, length: number, opts: WakeOption & { wp?: boolean } = {}): number {
    const mode = (opts.dontWake ? u.UFFDIO_CONTINUE_MODE_DONTWAKE : 0) |
      (opts.wp ? u.UFFDIO_CONTINUE_MODE_WP : 0);
    return this.#progress(
      u.UFFDIO_CONTINUE,
      "ioctl(UFFDIO_CONTINUE)",
      address,
      length,
      24,
      (dv) => {
        dv.setBigUint64(16, BigInt(mode), true);
      },
      false,
    );
  }

  /** UFFDIO_POISON: marks missing pages poisoned; touching them raises SIGBUS. Returns the bytes resolved. */
  poison(address: Address, length: number, opts: WakeOption = {}): number {
    const mode = opts.dontWake ? u.UFFDIO_POISON_MODE_DONTWAKE : 0;
    return this.#progress(u.UFFDIO_POISON, "ioctl(UFFDIO_POISON)", address, length, 24, (dv) => {
      dv.setBigUint64(16, BigInt(mode), true);
    }, false);
  }

  /**
   * UFFDIO_MOVE: moves pages from `src` to the missing pages at `dst` (zero
   * copy, anonymous memory). Returns the bytes moved.
   */
  move(
    dst: Address,
    src: Address,
    length: number,
    opts: WakeOption & { allowSrcHoles?: boolean } = {},
  ): number {
    const mode = (opts.dontWake ? u.UFFDIO_MOVE_MODE_DONTWAKE : 0) |
      (opts.allowSrcHoles ? u.UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES : 0);
    const s = Number(src);
    return this.#progress(u.UFFDIO_MOVE, "ioctl(UFFDIO_MOVE)", dst, length, 32, (dv, off) => {
      dv.setBigUint64(8, BigInt(s + off), true);
      dv.setBigUint64(24, BigInt(mode), true);
    }, true);
  }

  /** UFFDIO_WRITEPROTECT: protects (`protect: true`) or unprotects and wakes a range. */
  writeProtect(address: Address, length: number, protect: boolean, opts: WakeOption = {}): void {
    const dv = this.#range(address, length);
    const mode = (protect ? u.UFFDIO_WRITEPROTECT_MODE_WP : 0) |
      (opts.dontWake ? u.UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0);
    dv.setBigUint64(16, BigInt(mode), true);
    for (let tries = 0;; tries++) {
      if (libc.ioctl(this.#fd, u.UFFDIO_WRITEPROTECT, this.#arg) === 0) return;
      const e = errno();
      if (e === EAGAIN && tries < 100_000) {
        this.#drainEvents();
        libc.sched_yield();
        continue;
      }
      throw new UmmuError("ioctl(UFFDIO_WRITEPROTECT)", e);
    }
  }

  /**
   * Reads the messages that are ready, without blocking: returns [] when none.
   * Reads up to 64 messages per read().
   */
  readEvents(): UffdEvent[] {
    const out = this.#pending.splice(0);
    this.#readInto(out);
    return out;
  }

  /**
   * Every event, as an async iterator, for a thread that serves faults raised
   * by other threads (Workers, native code). A polling Worker waits on the fd,
   * so the calling thread stays free between events. Must not be used by a
   * thread that itself touches the registered memory.
   * @example
   * ```ts
   * for await (const ev of uffd.events()) {
   *   if (ev.kind === "pagefault") uffd.zeropage(ev.address & ~4095n, 4096);
   * }
   * ```
   */
  async *events(): AsyncGenerator<UffdEvent, void, undefined> {
    const ready = await FdReadiness.start(this.fd);
    this.#iterators.add(ready);
    try {
      for (;;) {
        if (this.#closed) return;
        const batch = this.readEvents();
        if (batch.length > 0) {
          yield* batch;
          continue;
        }
        ready.rearm();
        try {
          await ready.readable();
        } catch (e) {
          if (this.#closed) return; // closed while waiting: the iteration ends
          throw e;
        }
      }
    } finally {
      this.#iterators.delete(ready);
      await ready.close();
    }
  }

  /** Closes the fd: blocked faulters wake and fault normally, ranges are unregistered. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const it of this.#iterators) void it.close();
    closeFd(this.#fd, "close(userfaultfd)");
  }

  /** Closes the fd (`using uffd = UserfaultFd.open()`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal The fd was closed elsewhere (by a failed handler Worker): forget it without closing. */
  markClosed(): void {
    this.#closed = true;
  }

  #readInto(out: UffdEvent[]): void {
    const fd = this.fd;
    for (;;) {
      const n = libc.read(fd, this.#msgs, this.#msgs.length);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) return;
        throw new UmmuError("read(userfaultfd)", e);
      }
      for (let off = 0; off < n; off += u.SIZEOF_UFFD_MSG) {
        out.push(decodeEvent(this.#msgView, off));
      }
      if (n < this.#msgs.length) return;
    }
  }

  #wakeOne(page: number): void {
    const arg = new Uint8Array(u.SIZEOF_UFFDIO_RANGE);
    const dv = new DataView(arg.buffer);
    dv.setBigUint64(0, BigInt(page), true);
    dv.setBigUint64(8, BigInt(PAGE_SIZE), true);
    libc.ioctl(this.#fd, u.UFFDIO_WAKE, arg);
  }

  #drainEvents(): void {
    this.#readInto(this.#pending);
  }

  #range(address: Address, length: number): DataView {
    const start = Number(address);
    if (this.#closed) throw new ClosedError("UserfaultFd");
    if (!Number.isSafeInteger(start) || start % PAGE_SIZE !== 0) {
      throw new UmmuArgumentError(
        `address 0x${start.toString(16)} is not page-aligned (${PAGE_SIZE})`,
      );
    }
    if (!(length > 0) || length % PAGE_SIZE !== 0) {
      throw new UmmuArgumentError(
        `length ${length} must be a positive multiple of the page size (${PAGE_SIZE})`,
      );
    }
    this.#arg.fill(0);
    this.#dv.setBigUint64(0, BigInt(start), true);
    this.#dv.setBigUint64(8, BigInt(length), true);
    return this.#dv;
  }

  #ioctl(request: number, call: string): void {
    if (libc.ioctl(this.#fd, request, this.#arg) !== 0) throw new UmmuError(call, errno());
  }

  /**
   * The progress loop shared by COPY, ZEROPAGE, CONTINUE, POISON, MOVE: the
   * kernel reports bytes done in a signed field at `resultOff`; -1 with
   * EAGAIN and a positive count is partial progress, EAGAIN with none means a
   * non-cooperative event is pending (read it, then retry), EEXIST means the
   * page is already there (skip it, it counts as resolved).
   */
  #progress(
    request: number,
    call: string,
    address: Address,
    length: number,
    resultOff: number,
    fill: (dv: DataView, offset: number) => void,
    copyLayout: boolean,
  ): number {
    const start = Number(address);
    this.#range(start, length);
    let done = 0;
    let stalls = 0;
    while (done < length) {
      const dv = this.#range(start + done, length - done);
      if (copyLayout) {
        // COPY and MOVE: { dst, src, len, mode, result }
        dv.setBigUint64(0, BigInt(start + done), true);
        dv.setBigUint64(16, BigInt(length - done), true);
        dv.setBigUint64(8, 0n, true);
      }
      fill(dv, done);
      dv.setBigInt64(resultOff, 0n, true);
      const r = libc.ioctl(this.#fd, request, this.#arg);
      const count = Number(dv.getBigInt64(resultOff, true));
      if (r === 0) return length;
      const e = errno();
      if (count > 0) {
        done += count;
        continue;
      }
      if (e === EEXIST) {
        // Already there: a racing resolution mapped it. Make sure its waiters run.
        if (!(this.#dv.getBigUint64(copyLayout ? 24 : 16, true) & 1n)) this.#wakeOne(start + done);
        done += PAGE_SIZE;
        continue;
      }
      if (e === EAGAIN && stalls++ < 100_000) {
        // A non-cooperative event is pending: read it (readEvents() returns it
        // later), so the thread that raised it can finish, then retry.
        this.#drainEvents();
        libc.sched_yield();
        continue;
      }
      throw new UmmuError(call, e);
    }
    return done;
  }
}

/** Builder for {@link UserfaultFd}, in the style of the userfaultfd crate. */
export class UffdBuilder {
  #opts: UserfaultFdOptions & { features: FeatureName[] } = { features: [] };
  /** Requests features (fails at create() if the kernel lacks one). */
  require(...features: FeatureName[]): this {
    this.#opts.features.push(...features);
    return this;
  }
  /** UFFD_USER_MODE_ONLY: only faults raised in user mode (allowed unprivileged with the sysctl). */
  userModeOnly(on = true): this {
    this.#opts.userModeOnly = on;
    return this;
  }
  /** O_NONBLOCK on the fd (default on). */
  nonBlocking(on = true): this {
    this.#opts.nonBlocking = on;
    return this;
  }
  /** O_CLOEXEC on the fd (default on). */
  closeOnExec(on = true): this {
    this.#opts.closeOnExec = on;
    return this;
  }
  /** Where the fd comes from: "syscall", "device" (/dev/userfaultfd) or "auto" (default). */
  via(source: UffdSource): this {
    this.#opts.via = source;
    return this;
  }
  /** Opens the userfaultfd with everything set so far (see {@link UserfaultFd.open}). */
  create(): UserfaultFd {
    return UserfaultFd.open(this.#opts);
  }
}
