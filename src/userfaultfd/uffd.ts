/**
 * UserfaultFd: the one handle type. Creation (syscall or /dev/userfaultfd),
 * feature negotiation, registration, and every resolving ioctl.
 *
 * Ownership: one handle owns the fd; its control words (fd_control.ts) are
 * shared with every thread that calls on the fd (a FaultHandler's Worker, the
 * poller of events()), so the fd is closed exactly once and never used after.
 * Reading: one reader at a time. While a FaultHandler serves the fd, it reads
 * every message; the handle's own resolving calls then wait for it to take a
 * pending event instead of reading (and stealing page faults).
 */
import * as u from "../../ffi/userfaultfd.ts";
import * as m from "../../ffi/mman.ts";
import { runtime } from "../../ffi/platform.ts";
import { check, cstring, errno, libc, PAGE_SIZE, readWholeFile, sched } from "../libc.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import { decodeEvent, type UffdEvent } from "./events.ts";
import { FdReadiness } from "../poller.ts";
import { vmaAt, vmasOverlapping } from "../maps.ts";
import { Mapping } from "../memory.ts";
import * as v from "../validate.ts";
import { EAGAIN, EBADF, UffdCalls } from "./calls.ts";
import { FdControl, type FdShare, READER_HANDLE } from "../fd_control.ts";
import {
  featureMask,
  type FeatureName,
  featureNames,
  type IoctlName,
  ioctlNames,
  MODE_BITS,
  type RegisterMode,
} from "./features.ts";

const EPERM = 1, EACCES = 13, ENOENT = 2, ENOSYS = 38, EINVAL = 22, ENOMEM = 12;
/** UFFD_FEATURE_INITIALIZED: set in /proc/self/fdinfo once UFFDIO_API succeeded (kernel-internal bit). */
const FEATURE_INITIALIZED = 2 ** 31;
/** How long a resolving call waits for a pending event to be read before giving up with EAGAIN. */
const EAGAIN_WAIT_MS = 10_000;

/** Where a userfaultfd comes from. */
export type UffdSource = "syscall" | "device" | "auto";
const SOURCES: readonly UffdSource[] = ["syscall", "device", "auto"];

/** Options of {@link UserfaultFd.open}. */
export interface UserfaultFdOptions {
  /** Features to request. Unsupported ones fail the open with a list of what is missing. */
  features?: Iterable<FeatureName>;
  /** UFFD_USER_MODE_ONLY: only user-mode faults; allowed unprivileged (see the README's Permissions). */
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

/**
 * A userfaultfd on its way to another thread: post it (structured clone),
 * then {@link UserfaultFd.adopt} it there, once.
 */
export interface UffdTransfer {
  /** Discriminant. */
  readonly kind: "ummu:userfaultfd";
  /** The fd and its shared control words. */
  readonly share: FdShare;
  /** The features in effect (mask). */
  readonly features: number;
  /** The ioctls UFFDIO_API reported. */
  readonly ioctls: bigint;
  /** How it was made. */
  readonly via: "syscall" | "device";
  /** Messages the handle had read but not returned yet. */
  readonly pending: UffdEvent[];
}

function createFd(flags: number, via: UffdSource): { fd: number; via: "syscall" | "device" } {
  const trySyscall = (): number => {
    const nr = u.NR_userfaultfd[runtime.arch];
    if (nr === undefined) {
      throw new UmmuError("userfaultfd", ENOSYS, `no syscall number for ${runtime.arch}`);
    }
    // A user-mode-only fd has its own failure causes (and hints) apart from a full one.
    const call = flags & u.UFFD_USER_MODE_ONLY ? "userfaultfd(UFFD_USER_MODE_ONLY)" : "userfaultfd";
    return check(libc.syscall(nr, flags, 0, 0, 0, 0), call);
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
    if (!(first instanceof UmmuError) || ![EPERM, EACCES, ENOENT, ENOSYS].includes(first.errno)) {
      throw first;
    }
    try {
      return { fd: tryDevice(), via: "device" };
    } catch (second) {
      if (second instanceof UmmuError && [EPERM, EACCES, ENOENT].includes(second.errno)) {
        // One message, one hint: the syscall's (which names every fix).
        throw new UmmuError(
          first.call,
          first.errno,
          "",
          `and ${second.call} failed with ${second.code}`,
        );
      }
      throw second;
    }
  }
}

/** What `/proc/self/fdinfo/<fd>` says of a userfaultfd, or null if the fd is not one. */
function fdinfo(
  fd: number,
): { features: number; ioctls: bigint; pending: number; total: number } | null {
  let text: string;
  try {
    text = new TextDecoder().decode(readWholeFile(`/proc/self/fdinfo/${fd}`));
  } catch {
    return null;
  }
  const api = /^API:\s*([0-9a-f]+):([0-9a-f]+):([0-9a-f]+)$/m.exec(text);
  if (!api) return null;
  return {
    features: parseInt(api[2], 16),
    ioctls: BigInt("0x" + api[3]),
    pending: Number(/^pending:\s*(\d+)/m.exec(text)?.[1] ?? 0),
    total: Number(/^total:\s*(\d+)/m.exec(text)?.[1] ?? 0),
  };
}

/** What the library's own modules may do with a handle beyond its public API. */
export interface UffdInternals {
  control: FdControl;
  /** Page faults (and events) the handle read before a FaultHandler took over. */
  takePending(): UffdEvent[];
  /** Wakers run when the fd closes (a FaultHandler's eventfd). */
  wakers: Set<() => void>;
}
/** Module-private access for FaultHandler (not part of the public API). */
export const uffdInternals: WeakMap<UserfaultFd, UffdInternals> = new WeakMap();

/** The userfaultfd handle. */
export class UserfaultFd {
  readonly #control: FdControl;
  readonly #calls: UffdCalls;
  #released = false; // closed by this handle, or transferred away
  /** Features in effect on this fd (exactly those requested). */
  readonly features: Set<FeatureName>;
  /** ioctls allowed on this fd (UFFDIO_API's answer). */
  readonly ioctls: Set<IoctlName>;
  /** "syscall" or "device". */
  readonly via: "syscall" | "device";
  readonly #featureMask: number;
  readonly #ioctlMask: bigint;
  readonly #msgs = new Uint8Array(u.SIZEOF_UFFD_MSG * 64);
  readonly #msgView = new DataView(this.#msgs.buffer);
  /** Pollers of live events() iterators: close() stops them, since close(2) does not wake poll(2). */
  readonly #iterators = new Set<FdReadiness>();
  /** Messages read while retrying an ioctl (EAGAIN); returned first by readEvents. */
  readonly #pending: UffdEvent[];
  readonly #wakers = new Set<() => void>();
  #stallDeadline = 0;

  private constructor(
    control: FdControl,
    features: number,
    ioctls: bigint,
    via: "syscall" | "device",
    pending: UffdEvent[] = [],
  ) {
    this.#control = control;
    this.#calls = new UffdCalls(control);
    this.#featureMask = features;
    this.#ioctlMask = ioctls;
    this.features = featureNames(features);
    this.ioctls = ioctlNames(ioctls);
    this.via = via;
    this.#pending = pending;
    uffdInternals.set(this, {
      control,
      takePending: () => this.#pending.splice(0),
      wakers: this.#wakers,
    });
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
    const o = v.options<UserfaultFdOptions>("UserfaultFd.probe options", options);
    const userModeOnly = v.boolean("options.userModeOnly", o.userModeOnly, false);
    const via = o.via === undefined ? "auto" : v.oneOf("options.via", o.via, SOURCES);
    const flags = m.O_CLOEXEC | m.O_NONBLOCK | (userModeOnly ? u.UFFD_USER_MODE_ONLY : 0);
    const created = createFd(flags, via);
    try {
      const arg = new Uint8Array(u.SIZEOF_UFFDIO_API);
      const dv = new DataView(arg.buffer);
      dv.setBigUint64(0, BigInt(u.UFFD_API), true);
      check(libc.ioctl(created.fd, u.UFFDIO_API, arg), "ioctl(UFFDIO_API)");
      const mask = Number(dv.getBigUint64(8, true));
      return {
        features: featureNames(mask),
        featureMask: mask,
        ioctls: ioctlNames(dv.getBigUint64(16, true)),
        via: created.via,
      };
    } finally {
      libc.close(created.fd);
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
    const o = v.options<UserfaultFdOptions>("UserfaultFd.open options", options);
    const want = featureMask(
      o.features === undefined
        ? []
        : v.list("options.features", o.features, (f) => f as FeatureName),
    );
    const via = o.via === undefined ? "auto" : v.oneOf("options.via", o.via, SOURCES);
    const userModeOnly = v.boolean("options.userModeOnly", o.userModeOnly, false);
    const flags = (v.boolean("options.closeOnExec", o.closeOnExec, true) ? m.O_CLOEXEC : 0) |
      (v.boolean("options.nonBlocking", o.nonBlocking, true) ? m.O_NONBLOCK : 0) |
      (userModeOnly ? u.UFFD_USER_MODE_ONLY : 0);
    const created = createFd(flags, via);
    const arg = new Uint8Array(u.SIZEOF_UFFDIO_API);
    const dv = new DataView(arg.buffer);
    dv.setBigUint64(0, BigInt(u.UFFD_API), true);
    dv.setBigUint64(8, BigInt(want), true);
    if (libc.ioctl(created.fd, u.UFFDIO_API, arg) !== 0) {
      const e = errno();
      libc.close(created.fd);
      let detail = "";
      if (want) {
        try {
          const caps = UserfaultFd.probe({ userModeOnly, via: created.via });
          const missing = [...featureNames(want)].filter((f) => !caps.features.has(f));
          if (missing.length) detail = `this kernel lacks ${missing.join(", ")}`;
        } catch { /* the probe's own failure adds nothing */ }
      }
      throw new UmmuError("ioctl(UFFDIO_API)", e, "", detail);
    }
    // The kernel answers with every feature it supports; what is in effect is what was asked.
    return new UserfaultFd(
      FdControl.create(created.fd),
      want,
      dv.getBigUint64(16, true),
      created.via,
    );
  }

  /**
   * Wraps a userfaultfd this process already has as an fd number: a FORK
   * event's `ufd`, or one received from another process. The handle takes
   * ownership (its close() closes the fd). If the fd's UFFDIO_API handshake
   * was done (by its creator), its features are read from the kernel
   * (/proc/self/fdinfo) and `options.features` must be absent or equal;
   * otherwise the handshake is done here with `options.features`.
   * @example
   * ```ts
   * onEvent: (ev) => {
   *   if (ev.kind === "fork") UserfaultFd.fromFd(ev.ufd).close(); // or serve the child
   * }
   * ```
   */
  static fromFd(fd: number, options: { features?: Iterable<FeatureName> } = {}): UserfaultFd {
    const n = v.integer("fd", fd, 0, 2 ** 31 - 1);
    const o = v.options<{ features?: Iterable<FeatureName> }>(
      "UserfaultFd.fromFd options",
      options,
    );
    const info = fdinfo(n);
    if (info === null) {
      throw new UmmuArgumentError(
        `fd ${n} is not a userfaultfd of this process (see /proc/self/fd/${n})`,
      );
    }
    const want = o.features === undefined
      ? undefined
      : featureMask(v.list("options.features", o.features, (f) => f as FeatureName));
    if (info.features & FEATURE_INITIALIZED) {
      const have = info.features & ~FEATURE_INITIALIZED;
      if (want !== undefined && want !== have) {
        throw new UmmuArgumentError(
          `fd ${n} already has features [${
            [...featureNames(have)].join(", ")
          }], not the requested [${
            [...featureNames(want)].join(", ")
          }]: a userfaultfd's features are fixed by its first UFFDIO_API`,
        );
      }
      return new UserfaultFd(FdControl.create(n), have, info.ioctls, "syscall");
    }
    const arg = new Uint8Array(u.SIZEOF_UFFDIO_API);
    const dv = new DataView(arg.buffer);
    dv.setBigUint64(0, BigInt(u.UFFD_API), true);
    dv.setBigUint64(8, BigInt(want ?? 0), true);
    check(libc.ioctl(n, u.UFFDIO_API, arg), "ioctl(UFFDIO_API)");
    return new UserfaultFd(FdControl.create(n), want ?? 0, dv.getBigUint64(16, true), "syscall");
  }

  /**
   * Takes a userfaultfd handed over by {@link UserfaultFd.transfer} (in any
   * thread of this process). Once only: a second adopt throws ClosedError.
   */
  static adopt(transfer: UffdTransfer): UserfaultFd {
    const t = v.options<UffdTransfer>("transfer", transfer);
    if (
      t.kind !== "ummu:userfaultfd" || typeof t.share?.fd !== "number" ||
      !(t.share.words instanceof SharedArrayBuffer) || typeof t.features !== "number" ||
      typeof t.ioctls !== "bigint" || !Array.isArray(t.pending)
    ) {
      v.invalid("transfer", transfer, "what UserfaultFd.transfer() returned");
    }
    const control = new FdControl(t.share!);
    if (!control.open) throw new ClosedError("UserfaultFd (closed before it was adopted)");
    if (!control.completeTransfer()) {
      throw new ClosedError("UserfaultFd transfer (already adopted)");
    }
    return new UserfaultFd(control, t.features!, t.ioctls!, t.via!, t.pending!);
  }

  /** Starts a {@link UffdBuilder}. */
  static builder(): UffdBuilder {
    return new UffdBuilder();
  }

  /** The file descriptor. Throws once closed. */
  get fd(): number {
    this.#check();
    return this.#control.fd;
  }

  /** True once close() was called, the handle was transferred, or a failed handler closed the fd. */
  get closed(): boolean {
    return this.#released || !this.#control.open;
  }

  /**
   * Hands this userfaultfd to another thread: post the result to a Worker,
   * which calls {@link UserfaultFd.adopt}. This handle is closed without
   * closing the fd (ownership moves). Not while a FaultHandler serves it or
   * an events() iterator is open.
   */
  transfer(): UffdTransfer {
    this.#check();
    if (this.#control.reader !== READER_HANDLE) {
      throw new UmmuArgumentError(
        "a UserfaultFd served by a FaultHandler cannot be transferred: close the handler first",
      );
    }
    if (this.#iterators.size > 0) {
      throw new UmmuArgumentError(
        "a UserfaultFd with an open events() iterator cannot be transferred: end the iteration first",
      );
    }
    if (!this.#control.beginTransfer()) throw new ClosedError("UserfaultFd (already in transfer)");
    this.#released = true;
    return {
      kind: "ummu:userfaultfd",
      share: this.#control.share,
      features: this.#featureMask,
      ioctls: this.#ioctlMask,
      via: this.via,
      pending: this.#pending.splice(0),
    };
  }

  /**
   * Registers [address, address+length) in the given modes; returns the
   * ioctls the kernel allows on the range. The range must be mapped, of one
   * kind of memory, and aligned to its page size (a huge page for hugetlb);
   * a range that starts in a ummu {@link Mapping} must end inside it.
   */
  register(
    address: Address,
    length: number,
    modes: Iterable<RegisterMode> = ["missing"],
  ): Set<IoctlName> {
    this.#check();
    const start = v.address("address", address, PAGE_SIZE);
    const len = v.byteLength("length", length, PAGE_SIZE);
    let mode = 0;
    for (const md of v.list("modes", modes, (x) => x)) {
      mode |= MODE_BITS[v.oneOf("register mode", md, Object.keys(MODE_BITS) as RegisterMode[])];
    }
    if (mode === 0) v.invalid("modes", modes, 'at least one of "missing", "wp", "minor"');
    Mapping.checkWithin(start, len, "register");
    const c = this.#calls;
    c.setRange(start, len);
    c.set64(16, mode);
    const r = c.ioctl(u.UFFDIO_REGISTER);
    if (r < 0) this.#fail("ioctl(UFFDIO_REGISTER)", -r, start, len);
    return ioctlNames(c.get64(24));
  }

  /** Unregisters a range (wakes its blocked faulters, which then fault normally). */
  unregister(address: Address, length: number): void {
    this.#rangeCall(u.UFFDIO_UNREGISTER, "ioctl(UFFDIO_UNREGISTER)", address, length);
  }

  /** Wakes threads blocked on faults in the range (after a DONTWAKE resolution). */
  wake(address: Address, length: number): void {
    this.#rangeCall(u.UFFDIO_WAKE, "ioctl(UFFDIO_WAKE)", address, length);
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
    this.#check();
    const o = v.options<WakeOption & { wp?: boolean }>("copy options", opts);
    const len = v.byteLength("length", length, PAGE_SIZE);
    let src: number;
    if (ArrayBuffer.isView(source)) {
      if (source.byteLength < len) {
        v.invalid("copy source", source, `at least ${len} bytes (it has ${source.byteLength})`);
      }
      src = runtime.addressOf(source);
    } else {
      src = v.address("copy source address", source);
    }
    const mode =
      (v.boolean("options.dontWake", o.dontWake, false) ? u.UFFDIO_COPY_MODE_DONTWAKE : 0) |
      (v.boolean("options.wp", o.wp, false) ? u.UFFDIO_COPY_MODE_WP : 0);
    return this.#resolve(u.UFFDIO_COPY, "ioctl(UFFDIO_COPY)", dst, len, src, mode);
  }

  /** UFFDIO_ZEROPAGE: maps the zero page over missing pages. Returns the bytes resolved. */
  zeropage(address: Address, length: number, opts: WakeOption = {}): number {
    const o = v.options<WakeOption>("zeropage options", opts);
    const mode = v.boolean("options.dontWake", o.dontWake, false)
      ? u.UFFDIO_ZEROPAGE_MODE_DONTWAKE
      : 0;
    return this.#resolve(u.UFFDIO_ZEROPAGE, "ioctl(UFFDIO_ZEROPAGE)", address, length, 0, mode);
  }

  /** UFFDIO_CONTINUE: maps pages already in the page cache (MINOR faults). Returns the bytes resolved. */
  continue(address: Address, length: number, opts: WakeOption & { wp?: boolean } = {}): number {
    const o = v.options<WakeOption & { wp?: boolean }>("continue options", opts);
    const mode =
      (v.boolean("options.dontWake", o.dontWake, false) ? u.UFFDIO_CONTINUE_MODE_DONTWAKE : 0) |
      (v.boolean("options.wp", o.wp, false) ? u.UFFDIO_CONTINUE_MODE_WP : 0);
    return this.#resolve(u.UFFDIO_CONTINUE, "ioctl(UFFDIO_CONTINUE)", address, length, 0, mode);
  }

  /** UFFDIO_POISON: marks missing pages poisoned; touching them raises SIGBUS. Returns the bytes resolved. */
  poison(address: Address, length: number, opts: WakeOption = {}): number {
    const o = v.options<WakeOption>("poison options", opts);
    const mode = v.boolean("options.dontWake", o.dontWake, false)
      ? u.UFFDIO_POISON_MODE_DONTWAKE
      : 0;
    return this.#resolve(u.UFFDIO_POISON, "ioctl(UFFDIO_POISON)", address, length, 0, mode);
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
    const o = v.options<WakeOption & { allowSrcHoles?: boolean }>("move options", opts);
    const s = v.address("move source address", src, PAGE_SIZE);
    const mode =
      (v.boolean("options.dontWake", o.dontWake, false) ? u.UFFDIO_MOVE_MODE_DONTWAKE : 0) |
      (v.boolean("options.allowSrcHoles", o.allowSrcHoles, false)
        ? u.UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
        : 0);
    return this.#resolve(u.UFFDIO_MOVE, "ioctl(UFFDIO_MOVE)", dst, length, s, mode);
  }

  /** UFFDIO_WRITEPROTECT: protects (`protect: true`) or unprotects and wakes a range. */
  writeProtect(address: Address, length: number, protect: boolean, opts: WakeOption = {}): void {
    this.#check();
    const start = v.address("address", address, PAGE_SIZE);
    const len = v.byteLength("length", length, PAGE_SIZE);
    if (typeof protect !== "boolean") v.invalid("protect", protect, "true or false");
    const o = v.options<WakeOption>("writeProtect options", opts);
    const mode = (protect ? u.UFFDIO_WRITEPROTECT_MODE_WP : 0) |
      (v.boolean("options.dontWake", o.dontWake, false) ? u.UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0);
    this.#stallDeadline = 0;
    const r = this.#calls.writeProtect(start, len, mode, this.#onEagain);
    if (r < 0) this.#fail("ioctl(UFFDIO_WRITEPROTECT)", -r, start, len);
  }

  /**
   * Reads the messages that are ready, without blocking: returns [] when none.
   * Reads up to 64 messages per read(). Not while a FaultHandler serves this
   * fd (it is the reader then).
   */
  readEvents(): UffdEvent[] {
    this.#check();
    this.#checkReader("readEvents()");
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
    this.#check();
    this.#checkReader("events()");
    const ready = await FdReadiness.start(this.#control.share);
    this.#iterators.add(ready);
    try {
      for (;;) {
        if (this.closed) return;
        const batch = this.readEvents();
        if (batch.length > 0) {
          yield* batch;
          continue;
        }
        ready.rearm();
        try {
          await ready.readable();
        } catch (e) {
          if (this.closed) return; // closed while waiting: the iteration ends
          throw e;
        }
      }
    } finally {
      this.#iterators.delete(ready);
      await ready.close();
    }
  }

  /**
   * Faults raised on this fd that nobody has resolved yet: `pending` not yet
   * read, `total` including those read and being served (from the kernel's
   * /proc/self/fdinfo). 0 and 0 means no thread is blocked on this fd now.
   */
  faultsInFlight(): { pending: number; total: number } {
    this.#check();
    if (!this.#control.enter()) throw new ClosedError("UserfaultFd");
    try {
      const info = fdinfo(this.#control.fd);
      return { pending: info?.pending ?? 0, total: info?.total ?? 0 };
    } finally {
      this.#control.leave();
    }
  }

  /** Closes the fd: blocked faulters wake and fault normally, ranges are unregistered. Idempotent. */
  close(): void {
    if (this.#released) return;
    this.#released = true;
    this.#control.close(() => {
      for (const wake of this.#wakers) wake();
      for (const it of this.#iterators) void it.close();
    });
  }

  /** Closes the fd (`using uffd = UserfaultFd.open()`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #check(): void {
    if (this.#released || !this.#control.open) throw new ClosedError("UserfaultFd");
  }

  #checkReader(what: string): void {
    if (this.#control.reader !== READER_HANDLE) {
      throw new UmmuArgumentError(
        `${what}: a FaultHandler reads this UserfaultFd's messages (one reader per fd); use its onEvent option`,
      );
    }
  }

  #readInto(out: UffdEvent[]): void {
    for (;;) {
      const n = this.#calls.read(this.#msgs, BigInt(this.#msgs.length));
      if (n < 0) {
        if (-n === EAGAIN) return;
        if (-n === EBADF) throw new ClosedError("UserfaultFd");
        throw new UmmuError("read(userfaultfd)", -n);
      }
      for (let off = 0; off < n; off += u.SIZEOF_UFFD_MSG) {
        out.push(decodeEvent(this.#msgView, off));
      }
      if (n < this.#msgs.length) return;
    }
  }

  /**
   * A resolving call met EAGAIN with no progress: a non-cooperative event is
   * pending. If this handle is the reader, read it (readEvents() returns it
   * later, page faults included); if a FaultHandler is, it will read it:
   * wait. Gives up after EAGAIN_WAIT_MS.
   */
  readonly #onEagain = (): boolean => {
    const now = Date.now();
    if (this.#stallDeadline === 0) this.#stallDeadline = now + EAGAIN_WAIT_MS;
    else if (now > this.#stallDeadline) return false;
    if (this.#control.reader === READER_HANDLE) this.#readInto(this.#pending);
    sched();
    return true;
  };

  #resolve(
    request: number,
    call: string,
    address: Address,
    length: number,
    src: number,
    mode: number,
  ): number {
    this.#check();
    const start = v.address("address", address, PAGE_SIZE);
    const len = v.byteLength("length", length, PAGE_SIZE);
    this.#stallDeadline = 0;
    // EEXIST skips one page of the memory's own size: look it up only for
    // memory that is not plain 4 KiB pages (hugetlb), and only when needed.
    let pageSize = PAGE_SIZE;
    for (;;) {
      const r = this.#calls.resolve(request, start, len, src, mode, pageSize, this.#onEagain);
      if (r >= 0) return r;
      if (-r === EINVAL && pageSize === PAGE_SIZE) {
        const ps = vmaAt(start)?.pageSize ?? PAGE_SIZE;
        if (ps !== PAGE_SIZE) {
          if (start % ps !== 0 || len % ps !== 0) {
            throw new UmmuArgumentError(
              `${call}: 0x${start.toString(16)}+${len} is hugetlb memory with ${
                ps >> 10
              } KiB pages: address and length must be multiples of that`,
            );
          }
          pageSize = ps;
          continue;
        }
      }
      this.#fail(call, -r, start, len);
    }
  }

  #rangeCall(request: number, call: string, address: Address, length: number): void {
    this.#check();
    const start = v.address("address", address, PAGE_SIZE);
    const len = v.byteLength("length", length, PAGE_SIZE);
    this.#calls.setRange(start, len);
    const r = this.#calls.ioctl(request);
    if (r < 0) this.#fail(call, -r, start, len);
  }

  /** Throws the error of a failed call, precise where the memory explains it. */
  #fail(call: string, e: number, start: number, len: number): never {
    if (e === EBADF && !this.#control.open) throw new ClosedError("UserfaultFd");
    if (e === EINVAL || e === ENOMEM) {
      const vmas = vmasOverlapping(start, start + len);
      let at = start;
      for (const vma of vmas) {
        if (vma.start > at) break;
        at = vma.end;
      }
      if (at < start + len) {
        throw new UmmuError(
          call,
          e,
          "",
          `0x${at.toString(16)} (in 0x${start.toString(16)}+${len}) is not mapped`,
        );
      }
      const huge = vmas.find((vma) => vma.pageSize !== PAGE_SIZE);
      if (huge && call === "ioctl(UFFDIO_ZEROPAGE)") {
        throw new UmmuError(
          call,
          e,
          "copy() a buffer of zeros instead",
          "hugetlb memory has no zero page",
        );
      }
      if (huge && (start % huge.pageSize !== 0 || len % huge.pageSize !== 0)) {
        throw new UmmuError(
          call,
          e,
          "",
          `the range is hugetlb memory with ${
            huge.pageSize >> 10
          } KiB pages: address and length must be multiples of that`,
        );
      }
    }
    throw new UmmuError(call, e);
  }
}

/** Builder for {@link UserfaultFd}, in the style of the userfaultfd crate. */
export class UffdBuilder {
  #opts: UserfaultFdOptions & { features: FeatureName[] } = { features: [] };
  /** Requests features (fails at create() if the kernel lacks one). */
  require(...features: FeatureName[]): this {
    featureMask(features); // an unknown name fails here, where it was written
    this.#opts.features.push(...features);
    return this;
  }
  /** UFFD_USER_MODE_ONLY: only faults raised in user mode (allowed unprivileged). */
  userModeOnly(on = true): this {
    this.#opts.userModeOnly = v.boolean("userModeOnly", on, true);
    return this;
  }
  /** O_NONBLOCK on the fd (default on). */
  nonBlocking(on = true): this {
    this.#opts.nonBlocking = v.boolean("nonBlocking", on, true);
    return this;
  }
  /** O_CLOEXEC on the fd (default on). */
  closeOnExec(on = true): this {
    this.#opts.closeOnExec = v.boolean("closeOnExec", on, true);
    return this;
  }
  /** Where the fd comes from: "syscall", "device" (/dev/userfaultfd) or "auto" (default). */
  via(source: UffdSource): this {
    this.#opts.via = v.oneOf("via", source, SOURCES);
    return this;
  }
  /** Opens the userfaultfd with everything set so far (see {@link UserfaultFd.open}). */
  create(): UserfaultFd {
    return UserfaultFd.open(this.#opts);
  }
}
