/**
 * FaultHandler: serves a userfaultfd from a Worker that the library starts, so
 * that the JS main thread (or any thread) can touch registered memory: it
 * blocks in the kernel, and the Worker, which never touches that memory,
 * resolves the fault.
 *
 * Everything is checked before anything is created (handler_options.ts), and
 * everything created is undone on every failure path. The Worker owns
 * nothing: the files, the staging memory and the eventfd are this side's.
 * The fd is shared through its control (fd_control.ts): closed once, by
 * whoever comes first, never used after. However the Worker ends, this side
 * notices, and nothing stays blocked on a fault nobody serves.
 */
import { existsSync } from "node:fs";
import * as mm from "../../ffi/mman.ts";
import * as st from "../../ffi/stat.ts";
import {
  closeEventfd,
  errno,
  eventfd,
  libc,
  mmap,
  openFile,
  PAGE_SIZE,
  signalEventfd,
  statFd,
} from "../libc.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import { __NR_pidfd_open } from "../../ffi/socket.ts";
import {
  atProcessExit,
  idleWorker,
  keepAlive,
  onWorkerExit,
  retireWorker,
  spawnWorker,
} from "../worker.ts";
import type { UffdEvent } from "./events.ts";
import { uffdInternals, type UserfaultFd } from "./uffd.ts";
import { type CheckedOptions, checkOptions, type FaultHandlerOptions } from "./handler_options.ts";
import {
  COMMAND_SWEEP,
  type DeferredFault,
  type HandlerInit,
  type HandlerMessage,
  type RangeSpec,
  STATE_FAILED,
  STATE_RUNNING,
  STATUS,
  type WorkerSource,
} from "./protocol.ts";
import { createLink, endLink, LINK_DEAD, LINK_STOP, type SourceLinkInit } from "./source_link.ts";
import type { SourceWorkerInit, SourceWorkerMessage } from "./source_worker.ts";
import { hugePageSizes } from "./huge_pages.ts";

export type { FaultHandlerOptions, HandledRange } from "./handler_options.ts";

/** Why a handler ended (see {@link FaultHandler.ended}). */
export type HandlerEnd = "closed" | "peer-exited" | "failed";

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
  /** Faults outside every handled range (served a zero page, reported in `errors`). */
  outside: number;
}

/** How long close() waits for the Worker to stop (it runs no user code: it stops at once). */
const STOP_TIMEOUT_MS = 2000;
/** How long close() waits for the source Worker to end once terminated. */
const SOURCE_EXIT_MS = 1000;
/** `errors` keeps the newest this many. */
const ERRORS_KEPT = 1000;

/** The operating-system resources a handler holds (for leak checks and diagnostics). */
export interface HandlerResources {
  /** File descriptors (eventfd, source files). */
  fds: number[];
  /** Mappings (the staging memory, the zero reservation). */
  mappings: { address: number; length: number }[];
}

/** What start() creates, released in one place on every path. */
class Held implements HandlerResources {
  fds: number[] = [];
  mappings: { address: number; length: number }[] = [];
  wakeFd = -1;
  release(): void {
    for (const fd of this.fds.splice(0)) {
      if (fd === this.wakeFd) closeEventfd(fd);
      else libc.close(fd);
    }
    for (const mp of this.mappings.splice(0)) libc.munmap(mp.address, mp.length);
  }
}

/** A running fault handler: one Worker serving one userfaultfd. */
export class FaultHandler {
  readonly #uffd: UserfaultFd;
  readonly #worker: Worker;
  readonly #source: { worker: Worker; link: SourceLinkInit; tid: number } | null;
  readonly #status: Int32Array;
  readonly #wakeFd: number;
  readonly #owns: boolean;
  readonly #held: Held;
  readonly #stopped: Promise<void>;
  readonly #unhook: () => void;
  readonly #waker: () => void;
  #closed = false;
  #endedResolve!: (reason: HandlerEnd) => void;
  /**
   * Resolves once the handler has stopped and released everything: "closed"
   * (close() was called), "peer-exited" (the `peer` process exited: the
   * handler closed itself), "failed" (closed after the Worker failed).
   */
  readonly ended: Promise<HandlerEnd> = new Promise((res) => (this.#endedResolve = res));
  /** The errors the handler met (source errors, a fatal Worker error); newest last. */
  readonly errors: Error[] = [];

  private constructor(
    uffd: UserfaultFd,
    worker: Worker,
    source: { worker: Worker; link: SourceLinkInit; tid: number } | null,
    status: Int32Array,
    wakeFd: number,
    owns: boolean,
    held: Held,
    stopped: Promise<void>,
  ) {
    this.#uffd = uffd;
    this.#worker = worker;
    this.#source = source;
    this.#status = status;
    this.#wakeFd = wakeFd;
    this.#owns = owns;
    this.#held = held;
    this.#stopped = stopped;
    // Stop the Worker (out of poll(2)) when the process exits, and when the
    // uffd is closed by its owner.
    this.#waker = () => this.#signalStop();
    this.#unhook = atProcessExit(this.#waker);
    uffdInternals.get(uffd)!.wakers.add(this.#waker);
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
    const internals = uffdInternals.get(uffd as UserfaultFd);
    if (internals === undefined) {
      throw new UmmuArgumentError("FaultHandler.start: the first argument must be a UserfaultFd");
    }
    if (uffd.closed) throw new ClosedError("UserfaultFd");
    const opts = checkOptions(options);
    if (!internals.control.claimReader()) {
      throw new UmmuArgumentError(
        "FaultHandler.start: another FaultHandler already serves this UserfaultFd (one reader per fd)",
      );
    }
    const held = new Held();
    const workers: Worker[] = [];
    try {
      return await FaultHandler.#start(uffd, opts, held, workers);
    } catch (e) {
      for (const w of workers) w.terminate();
      held.release();
      internals.control.releaseReader();
      throw e;
    }
  }

  static async #start(
    uffd: UserfaultFd,
    opts: CheckedOptions,
    held: Held,
    workers: Worker[],
  ): Promise<FaultHandler> {
    const internals = uffdInternals.get(uffd)!;
    // The ranges as the Worker sees them: files opened here, module sources numbered.
    const modules: { url: string; options: unknown }[] = [];
    let stagingLength = PAGE_SIZE, sourceLength = 0, maxPage = PAGE_SIZE;
    const ranges: RangeSpec[] = opts.ranges.map((r) => {
      let source: WorkerSource;
      const bytes = r.readahead * r.pageSize;
      maxPage = Math.max(maxPage, r.pageSize);
      if (r.source.kind === "file") {
        const fd = openFile(r.source.path, mm.O_RDONLY);
        held.fds.push(fd);
        const type = statFd(fd, `statx(${r.source.path})`).type;
        if (type !== st.S_IFREG && type !== st.S_IFCHR) {
          throw new UmmuArgumentError(
            `file source ${JSON.stringify(r.source.path)} is ${
              type === st.S_IFDIR ? "a directory" : "not a regular file"
            }`,
          );
        }
        // A regular file is also mapped read-only, so a fault is one UFFDIO_COPY straight from
        // the page cache (as Firecracker's own handler copies from its mapped memory file),
        // not a pread into staging and then a copy. Past the mapped size, pread fills staging.
        const size = type === st.S_IFREG ? Number(statFd(fd).size) : 0;
        const map = size > 0 ? mmap(size, mm.PROT_READ, mm.MAP_SHARED, fd) : 0;
        if (map) held.mappings.push({ address: map, length: size });
        source = {
          kind: "file",
          path: r.source.path,
          offset: r.source.offset ?? 0,
          fd,
          map,
          mapLength: map ? size : 0,
        };
        stagingLength = Math.max(stagingLength, bytes);
      } else if (r.source.kind === "module") {
        source = { kind: "module", url: r.source.url, index: modules.length };
        modules.push({ url: r.source.url, options: r.source.options });
        sourceLength = Math.max(sourceLength, bytes);
      } else if (r.source.kind === "shared") {
        source = { kind: "shared", buffer: r.source.buffer, offset: r.source.offset ?? 0 };
        stagingLength = Math.max(stagingLength, bytes);
      } else {
        source = { kind: "zero" };
      }
      return {
        start: r.start,
        length: r.length,
        pageSize: r.pageSize,
        source,
        readahead: r.readahead,
        snapshot: r.snapshot,
        alias: r.alias,
        writeProtect: r.writeProtect,
        afterRemove: r.afterRemove,
      };
    });
    const staging = mmap(
      stagingLength,
      mm.PROT_READ | mm.PROT_WRITE,
      mm.MAP_PRIVATE | mm.MAP_ANONYMOUS,
    );
    held.mappings.push({ address: staging, length: stagingLength });
    // Zeros to COPY from where ZEROPAGE cannot serve (hugetlb, write-protected
    // zero pages, faults outside every range): read-only address space, no memory.
    const zerosLength = Math.max(maxPage, ...hugePageSizes());
    const zeros = mmap(
      zerosLength,
      mm.PROT_READ,
      mm.MAP_PRIVATE | mm.MAP_ANONYMOUS | mm.MAP_NORESERVE,
    );
    held.mappings.push({ address: zeros, length: zerosLength });
    const wakeFd = eventfd();
    held.fds.push(wakeFd);
    held.wakeFd = wakeFd;
    // A peer is watched through a pidfd: readable once it exited (ESRCH: it already did).
    let peer: HandlerInit["peer"] = null;
    if (opts.peer) {
      const pidfd = Number(libc.syscall(__NR_pidfd_open, opts.peer.pid, 0, 0, 0, 0));
      if (pidfd < 0) throw new UmmuError(`pidfd_open(${opts.peer.pid})`, errno());
      held.fds.push(pidfd);
      peer = { pid: opts.peer.pid, exitFd: pidfd };
    }

    const errors: Error[] = [];
    let handler: FaultHandler | null = null;
    let peerExitedEarly = false;
    const report = (err: Error) => {
      const list = handler ? handler.errors : errors;
      list.push(err);
      if (list.length > ERRORS_KEPT) list.splice(0, list.length - ERRORS_KEPT);
    };

    // Module sources: their own Worker, loaded (imports, init) before anything serves.
    let source: { worker: Worker; link: SourceLinkInit; tid: number } | null = null;
    if (modules.length > 0) {
      const link = createLink(sourceLength, opts.sourceTimeoutMs);
      const worker = await spawnWorker(new URL("./source_worker.ts", import.meta.url));
      workers.push(worker);
      source = { worker, link, tid: 0 };
      const src = source;
      await keepAlive(worker, () =>
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (e: MessageEvent<SourceWorkerMessage>) => {
            const msg = e.data;
            if (msg.type === "ready") {
              src.tid = msg.tid;
              resolve();
            } else if (msg.type === "load-error") {
              reject(
                new UmmuArgumentError(`module source ${msg.url} could not be used: ${msg.message}`),
              );
            } else report(new Error(`page source: ${msg.message}`));
          };
          onWorkerExit(worker, (code) => {
            endLink(link, LINK_DEAD);
            reject(
              new UmmuArgumentError(`module source Worker ended (code ${code}) while loading`),
            );
          });
          worker.postMessage({ link, modules } satisfies SourceWorkerInit);
        }));
      onWorkerExit(worker, (code) => {
        endLink(link, LINK_DEAD);
        if (handler && !handler.#closed) {
          report(
            new Error(
              `the page source's Worker ended (code ${code}); its pages now get the onSourceError policy`,
            ),
          );
        }
      });
    }

    const status = new Int32Array(new SharedArrayBuffer(4 * STATUS.words));
    const worker = await spawnWorker(new URL("./handler_worker.ts", import.meta.url));
    workers.push(worker);
    let readyResolve!: () => void, readyReject!: (e: Error) => void, stoppedResolve!: () => void;
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    const stopped = new Promise<void>((res) => {
      stoppedResolve = res;
    });
    const deliver = (event: UffdEvent) => {
      if (opts.onEvent === undefined) return;
      try {
        opts.onEvent(event);
      } catch (e) {
        report(
          new Error(`onEvent threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e }),
        );
      }
    };
    worker.onmessage = (e: MessageEvent<HandlerMessage>) => {
      const msg = e.data;
      switch (msg.type) {
        case "ready":
          return readyResolve();
        case "stopped":
          return stoppedResolve();
        case "event":
          return deliver(msg.event as UffdEvent);
        case "source-error":
          return report(new Error(`page source failed at offset ${msg.offset}: ${msg.message}`));
        case "source-dead":
          report(new Error(msg.message));
          if (source) void terminateSource(source, report);
          return;
        case "error":
          return report(new Error(msg.message));
        case "peer-exited":
          // Everything is released by close(), here and now: nobody else will call it in time.
          if (handler) void handler.#close("peer-exited");
          else peerExitedEarly = true;
          return;
        case "fatal": {
          const err = new Error(`fault handler failed: ${msg.message}`);
          report(err);
          return readyReject(err);
        }
      }
    };
    worker.onerror = (e: ErrorEvent) =>
      report(new Error(`fault handler Worker error: ${e.message}`));
    onWorkerExit(worker, (code) => {
      // A Worker that ended while it was serving (not stopped by close(), not
      // failed, which closes the uffd itself): however it ended, nobody may
      // stay blocked on faults it will not serve.
      const serving = Atomics.load(status, STATUS.state) === STATE_RUNNING;
      if (serving && !(handler && handler.#closed) && internals.control.close()) {
        Atomics.store(status, STATUS.state, STATE_FAILED);
        report(
          new Error(
            `the fault handler Worker ended unexpectedly (code ${code}); the userfaultfd was closed`,
          ),
        );
      }
      readyReject(new Error("the fault handler Worker ended before it was ready"));
      stoppedResolve();
    });

    // Messages the handle read before: its page faults are served first, its events delivered.
    const deferred: DeferredFault[] = [];
    const early: UffdEvent[] = [];
    for (const ev of internals.takePending()) {
      if (ev.kind === "pagefault") {
        deferred.push({
          address: Number(ev.address),
          flags: (ev.write ? 1 : 0) | (ev.wp ? 2 : 0) | (ev.minor ? 4 : 0),
        });
      } else if (opts.onEvent !== undefined) early.push(ev);
      else if (ev.kind === "fork") libc.close(ev.ufd); // nobody will take it
    }
    const init: HandlerInit = {
      share: internals.control.share,
      wakeFd,
      status: status.buffer as SharedArrayBuffer,
      ranges,
      spinMicros: opts.spinMicros,
      onSourceError: opts.onSourceError,
      pageSize: PAGE_SIZE,
      staging,
      stagingLength,
      zeros,
      zerosLength,
      source: source?.link ?? null,
      deferred,
      closeForkFds: opts.onEvent === undefined,
      peer,
    };
    await keepAlive(worker, async () => {
      worker.postMessage(init);
      await ready;
    });
    // Serving our own memory, the Worker never keeps the process alive (the faulting thread is
    // ours). Serving a peer, it does, until the peer exits or close(): like a server's socket,
    // it is what the program is for, and `ended` is awaited with nothing else pending.
    if (!opts.peer) idleWorker(worker);
    if (source) idleWorker(source.worker);
    handler = new FaultHandler(uffd, worker, source, status, wakeFd, opts.ownsUffd, held, stopped);
    handler.errors.push(...errors);
    for (const ev of early) deliver(ev);
    if (peerExitedEarly) void handler.#close("peer-exited");
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
      outside: at(STATUS.outside),
    };
  }

  /**
   * Snapshot ranges: the Worker copies every page not yet copied into its
   * snapshot and unprotects the ranges. Resolves when done.
   */
  async sweepSnapshots(): Promise<void> {
    if (this.#closed) throw new ClosedError("FaultHandler");
    if (this.failed) throw this.errors.at(-1) ?? new Error("fault handler failed");
    Atomics.store(this.#status, STATUS.command, COMMAND_SWEEP);
    signalEventfd(this.#wakeFd);
    await keepAlive(this.#worker, async () => {
      while (Atomics.load(this.#status, STATUS.command) === COMMAND_SWEEP) {
        if (this.failed) throw this.errors.at(-1) ?? new Error("fault handler failed");
        const r = Atomics.waitAsync(this.#status, STATUS.command, COMMAND_SWEEP, 100);
        if (r.async) await r.value;
      }
    });
  }

  /** True once the Worker failed and the uffd was closed (faults then resolve as ordinary memory). */
  get failed(): boolean {
    return Atomics.load(this.#status, STATUS.state) === STATE_FAILED;
  }

  /**
   * Faults that threads are blocked on right now (read by the Worker and
   * being served, or not yet read): 0 means no thread waits on this handler.
   */
  faultsInFlight(): number {
    if (this.#closed || this.#uffd.closed) return 0;
    try {
      return this.#uffd.faultsInFlight().total;
    } catch (e) {
      if (e instanceof ClosedError) return 0;
      throw e;
    }
  }

  #signalStop(): void {
    Atomics.store(this.#status, STATUS.stop, 1);
    signalEventfd(this.#wakeFd);
    if (this.#source) endLink(this.#source.link, LINK_STOP);
  }

  /**
   * Stops the Worker, then closes the uffd (if owned): every thread still
   * blocked on a fault wakes and faults normally. Releases the eventfd, the
   * staging memory, the files and the Workers. Idempotent.
   */
  close(): Promise<void> {
    return this.#close(this.failed ? "failed" : "closed");
  }

  #closing: Promise<void> | null = null;
  #close(reason: HandlerEnd): Promise<void> {
    this.#closing ??= this.#release().then(() => this.#endedResolve(reason));
    return this.#closing;
  }

  async #release(): Promise<void> {
    this.#closed = true;
    this.#unhook();
    const internals = uffdInternals.get(this.#uffd)!;
    internals.wakers.delete(this.#waker);
    this.#signalStop();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await keepAlive(this.#worker, () =>
      Promise.race([
        this.#stopped.then(() => false),
        new Promise<boolean>((res) => {
          timer = setTimeout(() => res(true), STOP_TIMEOUT_MS);
        }),
      ]));
    clearTimeout(timer);
    if (timedOut) this.errors.push(new Error("fault handler did not stop in time; terminated"));
    retireWorker(this.#worker, !timedOut && !this.failed);
    if (this.#source) await terminateSource(this.#source, (e) => this.errors.push(e));
    internals.control.releaseReader();
    if (this.#owns) this.#uffd.close();
    this.#held.release();
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

/**
 * Terminates a source Worker and waits (briefly) for its thread to be gone.
 * Deno cannot stop a Worker that runs JavaScript that never yields (a source
 * spinning in a loop keeps its CPU until the process exits:
 * https://github.com/denoland/deno/pull/35657), and reports it ended anyway:
 * so the thread itself is looked for, and its survival reported.
 */
async function terminateSource(
  source: { worker: Worker; tid: number },
  report: (e: Error) => void,
): Promise<void> {
  source.worker.terminate();
  const alive = () => source.tid > 0 && existsSync(`/proc/self/task/${source.tid}`);
  const deadline = Date.now() + SOURCE_EXIT_MS;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (alive()) {
    report(
      new Error(
        "the page source's Worker did not end when terminated: it runs JavaScript that never yields " +
          "(this runtime cannot stop such a Worker; its thread keeps a CPU until the process exits)",
      ),
    );
  }
}
