/**
 * The userfaultfd backend: ummunotify's interface on stock kernels.
 *
 * Watched ranges (rounded out to pages) are registered on one userfaultfd
 * opened with EVENT_UNMAP | EVENT_REMOVE | EVENT_REMAP in WP mode, and no
 * page is ever write-protected, so reads and writes never fault (WP_ASYNC,
 * where the kernel has it, also lets file-backed private mappings register).
 * The kernel blocks each thread that unmaps, frees (madvise) or remaps such
 * memory until the monitor Worker (monitor_worker.ts) has read the event; the
 * Worker applies it to the shared table (queue.ts) and publishes the counter.
 */
import { readFileSync } from "node:fs";
import { errno, eventfd, libc, PAGE_SIZE, signalEventfd } from "../libc.ts";
import { ClosedError, PROJECT_URL, UmmuError } from "../errors.ts";
import { uffdInternals, UserfaultFd } from "../userfaultfd/uffd.ts";
import type { FeatureName } from "../userfaultfd/features.ts";
import { atProcessExit, idleWorker, keepAlive, onWorkerExit, spawnWorker } from "../worker.ts";
import type { CheckedWait } from "./args.ts";
import { whileWaiting } from "./keep_alive.ts";
import { encodeEvent } from "./events.ts";
import * as n from "../../ffi/ummunotify.ts";
import { GenerationCounter } from "./counter.ts";
import type { Backend } from "./backend.ts";
import {
  createTableBuffers,
  CTL,
  dataBytes,
  F64,
  nextCapacity,
  RegionTable,
  STATE_FAILED,
  STATE_RUNNING,
} from "./queue.ts";
import type { AdoptMessage, MonitorInit } from "./monitor_worker.ts";

const EINVAL = 22, EAGAIN = 11, ENOSPC = 28, ENOMEM = 12, ENODEV = 19, EBUSY = 16, EPERM = 1;
const EACCES = 13;
const EV = n.SIZEOF_UMMUNOTIFY_EVENT;
const STOP_TIMEOUT_MS = 2000;

/** Options of the userfaultfd backend. */
export interface UffdBackendOptions {
  /** Registrations per notifier; REGISTER beyond it fails with ENOSPC (default 65536, as the driver). */
  maxRegistrations?: number;
  /**
   * After an event, the monitor keeps polling (without sleeping) this long
   * for the next one, saving the unmapper a thread wakeup. Default 0; useful
   * only with a CPU to spare.
   */
  spinMicros?: number;
  /**
   * UFFD_USER_MODE_ONLY. Default: a full userfaultfd where this process may
   * open one, else a user-mode-only one, which needs no privilege (Linux
   * 5.11+) and gives the backend the same events (it write-protects nothing,
   * so no fault, user or kernel, is ever raised). true: user-mode-only
   * always; false: never (fail without privilege).
   */
  userModeOnly?: boolean;
  /**
   * @internal Tests only: the monitor does not mark the counter BUSY before
   * read(2). This opens the window that the marker closes.
   */
  unsafeNoBusyMarker?: boolean;
}

/** Test hooks (not part of the public API). */
export const TEST_HOOKS = Symbol("ummunotify.uffdBackend.testHooks");

const FEATURES: readonly FeatureName[] = [
  "EVENT_UNMAP",
  "EVENT_REMOVE",
  "EVENT_REMAP",
  "PAGEFAULT_FLAG_WP",
];

function openWith(userModeOnly: boolean): UserfaultFd {
  const features = [...FEATURES];
  // WP_ASYNC (6.7+) lets WP-only registrations cover file-backed memory too;
  // with no page write-protected it changes nothing else.
  try {
    if (UserfaultFd.probe({ userModeOnly }).features.has("WP_ASYNC")) features.push("WP_ASYNC");
  } catch { /* open() below reports why userfaultfd is unavailable */ }
  return UserfaultFd.open({ features, userModeOnly });
}

/**
 * The backend's userfaultfd: a full one where this process may open one,
 * else (unless `mode` is false) a user-mode-only one. The backend never
 * write-protects a page, so no fault is raised in either mode and the events
 * (UNMAP, REMOVE, REMAP) are the same: user-mode-only only changes who may
 * open it.
 */
function openUffd(mode: boolean | undefined): { uffd: UserfaultFd; userModeOnly: boolean } {
  let full: UmmuError | null = null;
  if (mode !== true) {
    try {
      return { uffd: openWith(false), userModeOnly: false };
    } catch (e) {
      if (!(e instanceof UmmuError) || (e.errno !== EPERM && e.errno !== EACCES)) throw e;
      full = e;
    }
    if (mode === false) {
      throw new UmmuError(
        full.call,
        full.errno,
        `ummunotify needs the ummunotify driver (${DRIVER}) or a userfaultfd. A full userfaultfd needs root or CAP_SYS_PTRACE, \`sysctl -w vm.unprivileged_userfaultfd=1\`, or read-write access to /dev/userfaultfd; or leave userModeOnly unset: a user-mode-only userfaultfd gives this backend the same events without privilege (Linux 5.11+)`,
        "userModeOnly: false, and this process may not open a full userfaultfd",
      );
    }
  }
  try {
    return { uffd: openWith(true), userModeOnly: true };
  } catch (e) {
    if (!(e instanceof UmmuError)) throw e;
    throw new UmmuError(
      e.call,
      e.errno,
      `ummunotify needs the ummunotify driver (${DRIVER}) or a userfaultfd, and even a user-mode-only userfaultfd (which needs no privilege) was refused: ${
        e.hint || "see the errno"
      }`,
      full
        ? `a full userfaultfd failed with ${full.code}, a user-mode-only one with ${e.code}`
        : "",
    );
  }
}

const DRIVER = `/dev/ummunotify: load kmod/ummunotify from ${PROJECT_URL}`;

function maxMapCount(): string {
  try {
    return readFileSync("/proc/sys/vm/max_map_count", "utf8").trim();
  } catch {
    return "?";
  }
}

function hex(x: number): string {
  return "0x" + x.toString(16);
}

/** The userfaultfd backend of one notifier. */
export class UffdBackend implements Backend {
  readonly kind = "userfaultfd" as const;
  readonly counter: GenerationCounter;
  readonly #uffd: UserfaultFd;
  readonly #worker: Worker;
  readonly #table: RegionTable;
  readonly #wakeFd: number;
  readonly #cookies = new Map<bigint, number>();
  readonly #cookieOf: bigint[] = [];
  readonly #free: number[] = [];
  #nextSlot = 0;
  #closed = false;
  #fatal: string | null = null;
  readonly #stopped: Promise<void>;
  readonly #unhookExit: () => void;
  /** Features in effect on the uffd. */
  readonly features: ReadonlySet<FeatureName>;
  /** The uffd is UFFD_USER_MODE_ONLY (opened without privilege; the same events). */
  readonly userModeOnly: boolean;

  private constructor(
    uffd: UserfaultFd,
    userModeOnly: boolean,
    worker: Worker,
    table: RegionTable,
    wakeFd: number,
    stopped: Promise<void>,
  ) {
    this.#uffd = uffd;
    this.#worker = worker;
    this.#table = table;
    this.#wakeFd = wakeFd;
    this.#stopped = stopped;
    this.features = uffd.features;
    this.userModeOnly = userModeOnly;
    this.counter = GenerationCounter.ofTable(table.buffers.control);
    // Whoever closes the uffd (close(), a lost monitor, the process exit) stops the monitor first.
    uffdInternals.get(uffd)!.wakers.add(this.#wake);
    // At exit the runtime joins Worker threads, and a Worker blocked in poll(2)
    // cannot be terminated: close the uffd, which wakes the monitor and releases any
    // thread blocked in munmap on a watched range.
    this.#unhookExit = atProcessExit(() => this.#uffd.close());
  }

  readonly #wake = (): void => {
    Atomics.store(this.#table.i32, CTL.stop, 1);
    signalEventfd(this.#wakeFd);
  };

  /** Opens the uffd and starts the monitor; resolves once it reads events. Options are checked by the caller. */
  static async open(options: UffdBackendOptions = {}): Promise<UffdBackend> {
    const max = options.maxRegistrations ?? 65536;
    const { uffd, userModeOnly } = openUffd(options.userModeOnly);
    let wakeFd = -1;
    let worker: Worker | null = null;
    try {
      wakeFd = eventfd();
      const buffers = createTableBuffers(max);
      const table = new RegionTable(buffers);
      worker = await spawnWorker(new URL("./monitor_worker.ts", import.meta.url));
      let readyResolve!: () => void, readyReject!: (e: Error) => void, stoppedResolve!: () => void;
      const ready = new Promise<void>((res, rej) => {
        readyResolve = res;
        readyReject = rej;
      });
      const stopped = new Promise<void>((res) => {
        stoppedResolve = res;
      });
      let backend: UffdBackend | null = null;
      worker.onmessage = (e: MessageEvent<{ type: string; message?: string }>) => {
        const msg = e.data;
        if (msg.type === "ready") readyResolve();
        else if (msg.type === "stopped") stoppedResolve();
        else if (msg.type === "fatal") {
          const err = new Error(`ummunotify monitor failed: ${msg.message}`);
          if (backend) backend.#fatal = err.message;
          readyReject(err);
          stoppedResolve();
        }
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault?.();
        const err = new Error(`ummunotify monitor Worker error: ${e.message}`);
        if (backend) backend.#onMonitorLost(err.message);
        readyReject(err);
        stoppedResolve();
      };
      // However the Worker ends (terminated by the runtime, a fatal error), nobody may
      // stay blocked in munmap on an event it no longer reads.
      onWorkerExit(worker, (code) => {
        const why = `the monitor Worker exited (code ${code})`;
        if (backend && !backend.#closed) backend.#onMonitorLost(why);
        readyReject(new Error(`ummunotify monitor: ${why}`));
        stoppedResolve();
      });
      const init: MonitorInit = {
        type: "init",
        uffd: uffdInternals.get(uffd)!.control.share,
        wakeFd,
        buffers,
        pageSize: PAGE_SIZE,
        spinMicros: options.spinMicros ?? 0,
        unsafeNoBusyMarker: options.unsafeNoBusyMarker === true,
      };
      worker.postMessage(init);
      backend = new UffdBackend(uffd, userModeOnly, worker, table, wakeFd, stopped);
      // The monitor only serves: it must not keep a program that forgot close() alive.
      idleWorker(worker);
      await keepAlive(worker, () => ready);
      return backend;
    } catch (e) {
      worker?.terminate();
      uffd.close();
      if (wakeFd >= 0) libc.close(wakeFd);
      throw e;
    }
  }

  exchangeFeatures(_requested: number): number {
    this.#checkOpen();
    return 0; // none are defined: grant none, as the driver does
  }

  register(start: bigint, end: bigint, cookie: bigint): void {
    this.#checkOpen();
    const call = "register(ummunotify, userfaultfd backend)";
    if (start >= end) {
      throw new UmmuError(
        call,
        EINVAL,
        `start 0x${start.toString(16)} must be below end 0x${end.toString(16)} (end is exclusive)`,
      );
    }
    if (end > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new UmmuError(
        call,
        EINVAL,
        `end 0x${
          end.toString(16)
        } is past 2^53: the userfaultfd backend watches user addresses, which are below 2^47 (2^56 with 5-level paging)`,
      );
    }
    this.#sync();
    this.#checkAlive(call);
    if (this.#cookies.has(cookie)) {
      throw new UmmuError(
        call,
        EINVAL,
        `cookie ${cookie} is already registered: a cookie names one registration`,
      );
    }
    if (this.#cookies.size >= this.#table.buffers.maxRegistrations) {
      throw new UmmuError(
        call,
        ENOSPC,
        `this notifier already has ${this.#cookies.size} registrations (maxRegistrations); unregister some or open with a higher limit`,
      );
    }
    const s = Number(start), e = Number(end);
    const ps = Math.floor(s / PAGE_SIZE) * PAGE_SIZE;
    const pe = Math.ceil(e / PAGE_SIZE) * PAGE_SIZE;
    // userfaultfd can only watch memory that is mapped now: a hole would be silently unwatched.
    if (libc.msync(ps, pe - ps, 0) !== 0) {
      const err = errno();
      throw new UmmuError(
        call,
        err === ENOMEM ? ENOMEM : err,
        `[${hex(ps)}, ${
          hex(pe)
        }) is not entirely mapped: the userfaultfd backend can only watch memory that is mapped when it is registered (the device backend watches any range)`,
        "msync(MS_ASYNC=0) found a hole",
      );
    }
    try {
      this.#uffd.register(ps, pe - ps, ["wp"]);
    } catch (err) {
      if (!(err instanceof UmmuError)) throw err;
      throw new UmmuError(
        call,
        err.errno,
        this.#registerHint(err.errno, ps, pe),
        `ioctl(UFFDIO_REGISTER) of [${hex(ps)}, ${hex(pe)})`,
      );
    }
    const slot = this.#free.pop() ?? this.#nextSlot++;
    if (slot >= this.#table.capacity) {
      try {
        this.#grow();
      } catch (err) {
        this.#nextSlot--;
        this.#uffd.unregister(ps, pe - ps);
        throw err;
      }
    }
    this.#table.insert(slot, s, e);
    this.#cookies.set(cookie, slot);
    this.#cookieOf[slot] = cookie;
  }

  unregister(cookie: bigint): void {
    this.#checkOpen();
    this.#sync();
    const slot = this.#cookies.get(cookie);
    if (slot === undefined) {
      throw new UmmuError(
        "unregister(ummunotify, userfaultfd backend)",
        EINVAL,
        `cookie ${cookie} is not registered`,
      );
    }
    const [s, e] = this.#table.range(slot);
    this.#table.remove(slot);
    this.#cookies.delete(cookie);
    this.#free.push(slot);
    const ps = Math.floor(s / PAGE_SIZE) * PAGE_SIZE;
    const pe = Math.ceil(e / PAGE_SIZE) * PAGE_SIZE;
    this.#release(ps, pe);
  }

  readInto(buf: Uint8Array): number {
    this.#checkOpen();
    const call = "read(ummunotify, userfaultfd backend)";
    if (buf.byteLength < EV) {
      throw new UmmuError(
        call,
        EINVAL,
        `a read needs room for at least one ${EV}-byte event, got ${buf.byteLength} bytes`,
      );
    }
    this.#sync();
    this.#checkAlive(call);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const count = this.#table.drain(
      Math.floor(buf.byteLength / EV),
      (i, last, hint, hs, he, slotOrGen) => {
        if (last) {
          encodeEvent(
            dv,
            i * EV,
            n.UMMUNOTIFY_EVENT_TYPE_LAST,
            0,
            0,
            0,
            slotOrGen as bigint,
          );
        } else {
          encodeEvent(
            dv,
            i * EV,
            n.UMMUNOTIFY_EVENT_TYPE_INVAL,
            hint ? n.UMMUNOTIFY_EVENT_FLAG_HINT : 0,
            hs,
            he,
            this.#cookieOf[slotOrGen as number],
          );
        }
      },
    );
    if (count === 0) throw new UmmuError(call, EAGAIN, "nothing to read");
    return count * EV;
  }

  readable(): boolean {
    if (this.#closed) return false;
    this.#sync();
    return this.#table.readable();
  }

  async waitReadable(wait: CheckedWait): Promise<boolean> {
    const seq = this.#table.i32;
    const deadline = Date.now() + wait.timeoutMs;
    for (;;) {
      this.#checkOpen();
      wait.signal?.throwIfAborted();
      const s = Atomics.load(seq, CTL.seq);
      if (this.readable()) return true;
      this.#checkAlive("read(ummunotify, userfaultfd backend)");
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const r = Atomics.waitAsync(seq, CTL.seq, s, Math.min(left, 250));
      if (r.async) await r.value;
    }
  }

  waitReadableSync(timeoutMs: number): boolean {
    const seq = this.#table.i32;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.#checkOpen();
      const s = Atomics.load(seq, CTL.seq);
      if (this.readable()) return true;
      this.#checkAlive("read(ummunotify, userfaultfd backend)");
      const left = deadline - Date.now();
      if (left <= 0) return false;
      Atomics.wait(seq, CTL.seq, s, Math.min(left, 250));
    }
  }

  /** Counters of the monitor (for tests and diagnostics). */
  get stats(): { messages: number; hits: number; registrations: number } {
    const w = this.#table.i32;
    return {
      messages: Atomics.load(w, CTL.messages),
      hits: Atomics.load(w, CTL.hits),
      registrations: this.#cookies.size,
    };
  }

  /**
   * Stops the monitor, then closes the uffd (every range is unregistered with
   * it). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unhookExit();
    const w = this.#table.i32;
    this.#wake();
    // The monitor never waits on this thread, so it stops promptly.
    await keepAlive(this.#worker, async () => {
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (Atomics.load(w, CTL.state) === STATE_RUNNING && Date.now() < deadline) {
        const r = Atomics.waitAsync(w, CTL.state, STATE_RUNNING, 50);
        if (r.async) await r.value;
      }
    });
    this.#worker.terminate();
    this.#uffd.close();
    this.#table.markDead(); // counters held elsewhere answer "changed" from now on
    libc.close(this.#wakeFd);
  }

  // ---- test hooks ---------------------------------------------------------------------------

  /** @internal */
  get [TEST_HOOKS](): {
    kill(): void;
    crash(): void;
    state(): number;
    setGeneration(g: bigint): void;
    worker: Worker;
    stopped: Promise<void>;
  } {
    const stopped = this.#stopped;
    return {
      /** Terminates the monitor Worker as a crash would, and lets the backend react as it does to one. */
      kill: () => {
        this.#worker.terminate();
        this.#onMonitorLost("the monitor Worker was terminated");
      },
      /** Makes the monitor throw at its next wakeup. */
      crash: () => {
        Atomics.store(this.#table.i32, CTL.crash, 1);
        signalEventfd(this.#wakeFd);
      },
      state: () => Atomics.load(this.#table.i32, CTL.state),
      /** Sets the generation (to cross 2^32 in the tearing test). */
      setGeneration: (g: bigint) => {
        this.#sync();
        this.#table.lock();
        this.#table.f64[F64.gen] = Number(g);
        this.#table.unlock();
        this.#table.publish();
      },
      worker: this.#worker,
      /** Resolves when the monitor stopped; keeps the process alive meanwhile (the Worker is unref'd). */
      get stopped(): Promise<void> {
        return whileWaiting(() => stopped);
      },
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * The monitor is gone without having closed the uffd itself: close it here,
   * so no unmapper stays blocked on an event nobody reads, and mark the
   * counter DEAD.
   */
  #onMonitorLost(why: string): void {
    this.#fatal ??= why;
    Atomics.store(this.#table.i32, CTL.stop, 1);
    this.#uffd.close();
    this.#table.markDead();
    Atomics.store(this.#table.i32, CTL.state, STATE_FAILED);
  }

  /**
   * Waits until every event already taken off the uffd is applied (the
   * counter is not BUSY), then unregisters remap destinations nobody watches.
   */
  #sync(): void {
    void this.counter.generation; // waits while BUSY
    const stale = this.#table.takeStale();
    for (const [start, length] of stale) this.#release(start, start + length);
  }

  /**
   * Doubles the table: a larger data buffer, posted to the monitor, which
   * copies the table into it under the lock and says so; then this side
   * switches too. The monitor never waits for us; we wait for it (briefly).
   */
  #grow(): void {
    const w = this.#table.i32;
    const cap = nextCapacity(this.#table.capacity, this.#table.buffers.maxRegistrations);
    const data = new SharedArrayBuffer(dataBytes(cap));
    const before = Atomics.load(w, CTL.adopted);
    Atomics.store(w, CTL.adoptCap, cap);
    this.#worker.postMessage({ type: "adopt", data, cap } satisfies AdoptMessage);
    signalEventfd(this.#wakeFd);
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (Atomics.load(w, CTL.adopted) === before) {
      this.#checkAlive("register(ummunotify, userfaultfd backend)");
      if (Date.now() > deadline) {
        throw new Error("ummunotify monitor did not take the larger table in time");
      }
      Atomics.wait(w, CTL.adopted, before, 50);
    }
    this.#table.switchTo(data, cap);
  }

  /** Unregisters the pages of [ps, pe) that no live registration covers. */
  #release(ps: number, pe: number): void {
    if (this.#uffd.closed) return; // the uffd is gone, and every registration with it
    for (const [a, b] of this.#table.uncovered(ps, pe, PAGE_SIZE)) this.#unregisterRange(a, b);
  }

  /**
   * UFFDIO_UNREGISTER of [a, b). The kernel refuses (EINVAL, changing
   * nothing) when part of the range belongs to another userfaultfd (memory
   * unmapped and mapped again by someone else) or cannot be registered; then
   * each mapping in the range is unregistered on its own. Holes are fine.
   */
  #unregisterRange(a: number, b: number): void {
    try {
      this.#uffd.unregister(a, b - a);
      return;
    } catch (e) {
      if (!(e instanceof UmmuError) || e.errno !== EINVAL) return;
    }
    // The common case of a cache: the memory was freed, nothing is left to give back.
    if (b - a === PAGE_SIZE) return;
    if (b - a <= 64 * PAGE_SIZE) {
      for (let p = a; p < b; p += PAGE_SIZE) {
        try {
          this.#uffd.unregister(p, PAGE_SIZE);
        } catch { /* unmapped, another uffd's, or not registrable: not ours */ }
      }
      return;
    }
    for (const [s, t] of mappingsIn(a, b)) {
      try {
        this.#uffd.unregister(s, t - s);
      } catch { /* another uffd's, or not registrable: not ours */ }
    }
  }

  #registerHint(e: number, ps: number, pe: number): string {
    switch (e) {
      case EBUSY:
        return `part of [${hex(ps)}, ${
          hex(pe)
        }) is registered with another userfaultfd (a FaultHandler, LazyMapping, DirtyTracker or another program's): a range can belong to one userfaultfd only, so the userfaultfd backend cannot watch it (the device backend can)`;
      case EINVAL:
        return "userfaultfd cannot register this memory in WP mode: special mappings (vdso, vvar, VM_PFNMAP/VM_IO device memory), file-backed mappings when the kernel lacks WP_ASYNC (before 6.7), or hugetlb memory not aligned to its huge page size";
      case EPERM:
        return "a shared mapping whose file is not writable through it (opened read-only, or a write-sealed memfd): userfaultfd refuses it";
      case ENOMEM:
        return `registering splits mappings into separate VMAs and this would pass vm.max_map_count (${maxMapCount()}): register fewer or larger ranges, or raise the sysctl`;
      default:
        return "";
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("Ummunotify");
  }

  #checkAlive(call: string): void {
    if (Atomics.load(this.#table.i32, CTL.state) === STATE_FAILED || this.counter.dead) {
      throw new UmmuError(
        call,
        ENODEV,
        `the userfaultfd monitor is gone (${
          this.#fatal ?? "it failed"
        }); nothing is watched any more: drop every cached registration and open a new notifier`,
      );
    }
  }
}

/** The mappings of this process inside [a, b), clipped, from /proc/self/maps. */
function mappingsIn(a: number, b: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
    if (!m) continue;
    const s = parseInt(m[1], 16), e = parseInt(m[2], 16);
    if (s < b && e > a) out.push([Math.max(s, a), Math.min(e, b)]);
  }
  return out;
}
