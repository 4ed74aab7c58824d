/**
 * FaultHandler: serves a userfaultfd from a Worker that the library starts, so
 * that the JS main thread (or any thread) can touch registered memory: it
 * blocks in the kernel, and the Worker, which never touches that memory,
 * resolves the fault.
 */
import { eventfd, libc, mmap, munmap, openFile, PAGE_SIZE, signalEventfd } from "../libc.ts";
import * as mm from "../../ffi/mman.ts";
import { ClosedError, UmmuArgumentError } from "../errors.ts";
import { spawnWorker } from "../worker.ts";
import type { UffdEvent } from "./events.ts";
import type { UserfaultFd } from "./uffd.ts";
import type { PageSource } from "./sources.ts";
import {
  COMMAND_SWEEP,
  type HandlerInit,
  type HandlerMessage,
  type RangeSpec,
  type SourceErrorPolicy,
  STATE_FAILED,
  STATUS,
} from "./protocol.ts";

/** A registered range the handler serves. */
export interface HandledRange {
  /** Start (page-aligned) and length of memory already registered on the uffd. */
  address: bigint | number;
  /** Length in bytes (a multiple of the page size). */
  length: number;
  /** Where MISSING (and MINOR, with `alias`) pages come from. Default zero pages. */
  source?: PageSource;
  /** Pages to resolve per MISSING fault (default 1). */
  readahead?: number;
  /** WP faults: copy the page into this buffer (same offset) before the write lands. */
  snapshot?: SharedArrayBuffer;
  /** MINOR faults: a second mapping of the same memfd (Mapping.alias()) to fill through. */
  alias?: bigint | number;
  /** The memory's page size (default 4 KiB; the huge page size for hugetlb memory). */
  pageSize?: number;
}

/** Options of {@link FaultHandler.start}. */
export interface FaultHandlerOptions {
  /** The registered ranges to serve, each with its source. */
  ranges: HandledRange[];
  /**
   * Spin this long (µs) reading the fd before blocking in poll(). Saves the
   * handler's wakeup when faults come in bursts on another CPU. Default 0.
   */
  spinMicros?: number;
  /**
   * When a source throws: "zero" (default) maps a zero page and reports the
   * error (the toucher continues with zeros); "poison" marks the page
   * poisoned, so the access raises SIGBUS (fatal to a JS runtime: for native
   * code that handles it).
   */
  onSourceError?: SourceErrorPolicy;
  /** Non-cooperative events (unmap, remove, remap, fork) the Worker read. */
  onEvent?: (event: UffdEvent) => void;
  /** Close the UserfaultFd too when the handler closes (default true). */
  ownsUffd?: boolean;
}

/** Counters of a running handler. */
export interface FaultHandlerStats {
  /** Page faults read. */
  faults: number;
  /** Pages resolved (readahead counts each page). */
  pages: number;
  /** Write-protect faults served. */
  wpFaults: number;
  /** Minor faults served (UFFDIO_CONTINUE). */
  minorFaults: number;
  /** Non-cooperative events read (fork, remap, remove, unmap). */
  events: number;
  /** Page source failures. */
  errors: number;
  /** Faults found while spinning (see `spinMicros`). */
  spinHits: number;
}

const STOP_TIMEOUT_MS = 2000;

/** The operating-system resources a handler holds (for leak checks and diagnostics). */
export interface HandlerResources {
  /** File descriptors (eventfd, source files). */
  fds: number[];
  /** Mappings (the staging memory). */
  mappings: { address: number; length: number }[];
}

/** A running fault handler: one Worker serving one userfaultfd. */
export class FaultHandler {
  readonly #uffd: UserfaultFd;
  readonly #worker: Worker;
  readonly #status: Int32Array;
  readonly #wakeFd: number;
  readonly #owns: boolean;
  readonly #held: HandlerResources;
  #stopped: Promise<void>;
  #closed = false;
  /** The errors the handler met (source errors, a fatal Worker error); newest last. */
  readonly errors: Error[] = [];

  private constructor(
    uffd: UserfaultFd,
    worker: Worker,
    status: Int32Array,
    wakeFd: number,
    owns: boolean,
    held: HandlerResources,
    stopped: Promise<void>,
  ) {
    this.#uffd = uffd;
    this.#held = held;
    this.#worker = worker;
    this.#status = status;
    this.#wakeFd = wakeFd;
    this.#owns = owns;
    this.#stopped = stopped;
  }

  /**
   * Starts the Worker and resolves once it serves faults.
   * @example
   * ```ts
   * const mem = Mapping.create(1 << 20);
   * const uffd = UserfaultFd.open();
   * uffd.register(mem.address, mem.length, ["missing"]);
   * const handler = await FaultHandler.start(uffd, { ranges: [{ address: mem.address, length: mem.length }] });
   * new Uint8Array(mem.buffer)[4096]; // faults, served by the Worker with a zero page
   * await handler.close();
   * mem.close();
   * ```
   */
  static async start(uffd: UserfaultFd, options: FaultHandlerOptions): Promise<FaultHandler> {
    const validated = options.ranges.map((r) => {
      const start = Number(r.address);
      const pageSize = r.pageSize ?? PAGE_SIZE;
      if (!(pageSize >= PAGE_SIZE) || (pageSize & (pageSize - 1)) !== 0) {
        throw new UmmuArgumentError(
          `pageSize must be a power of two ≥ ${PAGE_SIZE}, got ${pageSize}`,
        );
      }
      if (start % pageSize !== 0 || !(r.length > 0) || r.length % pageSize !== 0) {
        throw new UmmuArgumentError(
          `handled range 0x${
            start.toString(16)
          }+${r.length} must be aligned to its page size (${pageSize}) and non-empty`,
        );
      }
      const readahead = r.readahead ?? 1;
      if (!Number.isInteger(readahead) || readahead < 1 || readahead > 512) {
        throw new UmmuArgumentError(`readahead must be an integer in 1..512, got ${readahead}`);
      }
      return {
        start,
        length: r.length,
        pageSize,
        source: r.source ?? { kind: "zero" },
        readahead,
        snapshot: r.snapshot,
        alias: r.alias === undefined ? undefined : Number(r.alias),
      };
    });
    // Everything the Worker uses is opened here, so that close() can release
    // it even if the Worker had to be terminated mid-fill.
    const held: HandlerResources = { fds: [], mappings: [] };
    const release = () => {
      for (const fd of held.fds) libc.close(fd);
      for (const mp of held.mappings) libc.munmap(mp.address, mp.length);
    };
    let ranges: RangeSpec[];
    let staging: number, stagingLength: number;
    try {
      ranges = validated.map((r) => {
        const fileFd = r.source.kind === "file" ? openFile(r.source.path, mm.O_RDONLY) : -1;
        if (fileFd >= 0) held.fds.push(fileFd);
        return { ...r, fileFd };
      });
      stagingLength = Math.max(...ranges.map((r) => r.readahead * r.pageSize));
      staging = mmap(
        stagingLength,
        mm.PROT_READ | mm.PROT_WRITE,
        mm.MAP_PRIVATE | mm.MAP_ANONYMOUS,
      );
      held.mappings.push({ address: staging, length: stagingLength });
    } catch (e) {
      release();
      throw e;
    }
    const status = new Int32Array(new SharedArrayBuffer(4 * STATUS.words));
    let worker: Worker;
    let wakeFd: number;
    try {
      wakeFd = eventfd();
      held.fds.push(wakeFd);
      worker = await spawnWorker(new URL("./handler_worker.ts", import.meta.url));
    } catch (e) {
      release();
      throw e;
    }
    let handler: FaultHandler | null = null;
    let readyResolve!: () => void, readyReject!: (e: Error) => void, stoppedResolve!: () => void;
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    const stopped = new Promise<void>((res) => {
      stoppedResolve = res;
    });
    const errorsBeforeReady: Error[] = [];
    worker.onmessage = (e: MessageEvent<HandlerMessage>) => {
      const msg = e.data;
      if (msg.type === "ready") readyResolve();
      else if (msg.type === "stopped") stoppedResolve();
      else if (msg.type === "event") options.onEvent?.(msg.event as UffdEvent);
      else {
        const err = new Error(
          msg.type === "fatal"
            ? `fault handler failed: ${msg.message}`
            : `page source failed at offset ${msg.offset}: ${msg.message}`,
        );
        (handler ? handler.errors : errorsBeforeReady).push(err);
        if (msg.type === "fatal") {
          // The Worker closed the uffd before saying so: forget the number now, it may be reused.
          uffd.markClosed();
          readyReject(err);
        }
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault?.();
      const err = new Error(`fault handler Worker error: ${e.message}`);
      (handler ? handler.errors : errorsBeforeReady).push(err);
      readyReject(err);
      stoppedResolve();
    };
    const init: HandlerInit = {
      uffd: uffd.fd,
      wakeFd,
      status: status.buffer as SharedArrayBuffer,
      ranges,
      spinMicros: options.spinMicros ?? 0,
      onSourceError: options.onSourceError ?? "zero",
      pageSize: PAGE_SIZE,
      staging,
      stagingLength,
    };
    worker.postMessage(init);
    handler = new FaultHandler(
      uffd,
      worker,
      status,
      wakeFd,
      options.ownsUffd ?? true,
      held,
      stopped,
    );
    handler.errors.push(...errorsBeforeReady);
    try {
      await ready;
    } catch (e) {
      await handler.close();
      throw e;
    }
    return handler;
  }

  /** Counters, read from shared memory (each wraps at 2^32). */
  get stats(): FaultHandlerStats {
    const s = this.#status;
    const at = (i: number) => Atomics.load(s, i) >>> 0;
    return {
      faults: at(STATUS.faults),
      pages: at(STATUS.pages),
      wpFaults: at(STATUS.wpFaults),
      minorFaults: at(STATUS.minorFaults),
      events: at(STATUS.events),
      errors: at(STATUS.errors),
      spinHits: at(STATUS.spinHits),
    };
  }

  /**
   * Snapshot ranges: the Worker copies every page not yet copied into its
   * snapshot and unprotects the ranges. Resolves when done.
   */
  async sweepSnapshots(): Promise<void> {
    if (this.#closed) throw new ClosedError("FaultHandler");
    Atomics.store(this.#status, STATUS.command, COMMAND_SWEEP);
    signalEventfd(this.#wakeFd);
    while (Atomics.load(this.#status, STATUS.command) === COMMAND_SWEEP) {
      if (this.failed) throw this.errors.at(-1) ?? new Error("fault handler failed");
      const r = Atomics.waitAsync(this.#status, STATUS.command, COMMAND_SWEEP, 100);
      if (r.async) await r.value;
    }
  }

  /** True once the Worker failed and closed the uffd (faults then resolve as ordinary memory). */
  get failed(): boolean {
    return Atomics.load(this.#status, STATUS.state) === STATE_FAILED;
  }

  /**
   * Stops the Worker, then closes the uffd (if owned): every thread still
   * blocked on a fault wakes and faults normally. Releases the eventfd and
   * the Worker. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    signalEventfd(this.#wakeFd);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.#stopped.then(() => false),
      new Promise<boolean>((res) => {
        timer = setTimeout(() => res(true), STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.errors.push(
        new Error("fault handler did not stop in time (a page source hung); terminated"),
      );
    }
    this.#worker.terminate();
    // If the Worker failed, it closed the fd itself: never close a number that may be reused.
    if (Atomics.load(this.#status, STATUS.state) === STATE_FAILED) {
      this.#uffd.markClosed();
    } else if (this.#owns) this.#uffd.close();
    for (const fd of this.#held.fds) libc.close(fd);
    for (const mp of this.#held.mappings) munmap(mp.address, mp.length);
  }

  /** The fds and mappings this handler holds besides the uffd (all released by close()). */
  resources(): HandlerResources {
    return { fds: [...this.#held.fds], mappings: this.#held.mappings.map((mp) => ({ ...mp })) };
  }

  /** Closes the handler (`await using handler = await FaultHandler.start(...)`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
