/**
 * LazyMapping and LiveSnapshot: the two things most programs want from
 * userfaultfd, each one call: memory whose pages are produced on first touch,
 * and a copy of memory as it was at one instant while writes go on.
 */
import { Mapping, type MappingKind } from "../memory.ts";
import { UserfaultFd } from "./uffd.ts";
import { FaultHandler, type FaultHandlerStats, type HandlerResources } from "./handler.ts";
import type { PageSource } from "./sources.ts";
import type { SourceErrorPolicy } from "./protocol.ts";
import { UmmuError } from "../errors.ts";
import * as v from "../validate.ts";

const EBUSY = 16;

/** Options of {@link LazyMapping.create}. */
export interface LazyMappingOptions {
  /** Where pages come from (see `sources`). */
  source: PageSource;
  /** Pages resolved per fault (default 1). */
  readahead?: number;
  /** µs the handler spins before sleeping (default 0). */
  spinMicros?: number;
  /** What a toucher gets when the source throws (default "zero"). */
  onSourceError?: SourceErrorPolicy;
  /** "anonymous" (default), "memfd" (shmem) or "hugetlb" (needs /proc/sys/vm/nr_hugepages > 0). */
  kind?: MappingKind;
  /**
   * Open the userfaultfd with UFFD_USER_MODE_ONLY, which an unprivileged
   * process may do: faults from JS code are served, but a system call that
   * writes into the memory (e.g. read(2)) fails with EFAULT instead.
   */
  userModeOnly?: boolean;
  /** Deadline of one fill of a module source (ms; see FaultHandlerOptions.sourceTimeoutMs). */
  sourceTimeoutMs?: number;
}

/** Memory whose pages are produced by a source the first time any thread touches them. */
export class LazyMapping {
  /** The memory. */
  readonly mapping: Mapping;
  readonly #handler: FaultHandler;
  #stopped = false;

  private constructor(mapping: Mapping, handler: FaultHandler) {
    this.mapping = mapping;
    this.#handler = handler;
  }

  /**
   * Maps `length` bytes and serves their faults from `source` in a Worker.
   * @example
   * ```ts
   * const lazy = await LazyMapping.create(64 << 20, { source: sources.file("big.bin"), readahead: 16 });
   * const bytes = new Uint8Array(lazy.buffer); // reading bytes[i] loads its pages
   * console.log(bytes[12345], lazy.stats.pages);
   * await lazy.close();
   * ```
   */
  static async create(length: number, options: LazyMappingOptions): Promise<LazyMapping> {
    const o = v.options<LazyMappingOptions>("LazyMapping options", options);
    if (o.source === undefined) {
      v.invalid("options.source", undefined, "a page source (see sources)");
    }
    const mapping = Mapping.create(length, { kind: o.kind });
    let uffd: UserfaultFd | null = null;
    try {
      uffd = UserfaultFd.open({
        features: mapping.kind === "memfd"
          ? ["MISSING_SHMEM"]
          : mapping.kind === "hugetlb"
          ? ["MISSING_HUGETLBFS"]
          : [],
        userModeOnly: o.userModeOnly,
      });
      uffd.register(mapping.address, mapping.length, ["missing"]);
      const handler = await FaultHandler.start(uffd, {
        ranges: [{
          address: mapping.address,
          length: mapping.length,
          source: o.source,
          readahead: o.readahead,
          pageSize: mapping.pageSize,
        }],
        spinMicros: o.spinMicros,
        onSourceError: o.onSourceError,
        sourceTimeoutMs: o.sourceTimeoutMs,
      });
      return new LazyMapping(mapping, handler);
    } catch (e) {
      uffd?.close();
      mapping.close();
      throw e;
    }
  }

  /** The zero-copy view (detached by close()). */
  get buffer(): ArrayBuffer {
    return this.mapping.buffer;
  }

  /** Faults served and pages produced so far. */
  get stats(): FaultHandlerStats {
    return this.#handler.stats;
  }

  /** Errors the source raised (each page that failed was zero-filled or poisoned). */
  get errors(): readonly Error[] {
    return this.#handler.errors;
  }

  /** What this holds: the handler's fds and mappings, and the memory itself. */
  resources(): HandlerResources & { mapping: { address: number; length: number } } {
    return {
      ...this.#handler.resources(),
      mapping: { address: this.mapping.base, length: this.mapping.length },
    };
  }

  /**
   * Stops serving: the handler Worker stops and the userfaultfd closes, so a
   * thread blocked on a fault wakes and gets an ordinary (zero) page. The
   * memory stays mapped. Use it before close() when other threads may still
   * be touching the memory: join them, then close().
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#handler.close();
  }

  /**
   * stop(), then unmap (views are detached). A thread blocked on a fault of
   * this memory is a thread still using it, and unmapping would pull the
   * memory from under it: close() then refuses (UmmuError EBUSY) and changes
   * nothing. The explicit order for memory other threads touch: stop()
   * (their faults are answered with ordinary pages), join the threads, then
   * close().
   */
  async close(): Promise<void> {
    if (this.mapping.closed) return;
    if (!this.#stopped) {
      const n = this.#handler.faultsInFlight();
      if (n > 0) {
        throw new UmmuError(
          "LazyMapping.close",
          EBUSY,
          "stop() first (blocked threads wake and get ordinary pages), join the threads that touch this memory, then close()",
          `${n} fault${n === 1 ? " is" : "s are"} in flight: a thread is still using this memory`,
        );
      }
    }
    await this.stop();
    this.mapping.close();
  }

  /** Closes it (`await using lazy = await LazyMapping.create(...)`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * A copy of a range as it was when the snapshot started, taken while the
 * program keeps writing: every page is write-protected, and the handler
 * Worker copies each page into the snapshot before its first write lands.
 */
export class LiveSnapshot {
  readonly #handler: FaultHandler;
  readonly #buffer: SharedArrayBuffer;
  #finished = false;

  private constructor(handler: FaultHandler, buffer: SharedArrayBuffer) {
    this.#handler = handler;
    this.#buffer = buffer;
  }

  /**
   * Starts a snapshot of [address, address+length) (page-aligned; anonymous or shmem memory).
   * @example
   * ```ts
   * const snap = await LiveSnapshot.start(mem.address, mem.length);
   * bytes[0] = 99;                        // the writer waits while page 0 is copied out
   * const copy = await snap.finish();     // the memory as it was at start()
   * await snap.close();
   * ```
   */
  static async start(address: bigint | number, length: number): Promise<LiveSnapshot> {
    v.address("address", address, 1);
    v.byteLength("length", length);
    // The unmap, remove and remap events keep the handler's view of the range
    // true while the program changes its mappings (a page about to be dropped
    // is copied out first; an unmapped range is no longer read).
    const uffd = UserfaultFd.open({
      features: [
        "PAGEFAULT_FLAG_WP",
        "WP_UNPOPULATED",
        "EVENT_UNMAP",
        "EVENT_REMOVE",
        "EVENT_REMAP",
      ],
    });
    try {
      uffd.register(address, length, ["wp"]);
      const buffer = new SharedArrayBuffer(length);
      const handler = await FaultHandler.start(uffd, {
        ranges: [{ address, length, snapshot: buffer }],
      });
      // Protect only once the handler serves: a write from now on waits for its copy-out.
      uffd.writeProtect(address, length, true);
      return new LiveSnapshot(handler, buffer);
    } catch (e) {
      uffd.close();
      throw e;
    }
  }

  /** Pages copied because a write hit them (the rest are copied by finish()). */
  get pagesCopiedOnWrite(): number {
    return this.#handler.stats.wpFaults;
  }

  /** Copies the pages never written, unprotects, and returns the snapshot. */
  async finish(): Promise<SharedArrayBuffer> {
    if (!this.#finished) {
      await this.#handler.sweepSnapshots();
      this.#finished = true;
    }
    return this.#buffer;
  }

  /** Stops the handler and closes the userfaultfd (unprotecting everything). */
  async close(): Promise<void> {
    await this.#handler.close();
  }

  /** Closes it (`await using snap = await LiveSnapshot.start(...)`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
