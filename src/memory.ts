/**
 * Mappings: anonymous, memfd (shmem) and hugetlb memory that the library maps,
 * with one zero-copy ArrayBuffer view each.
 *
 * The view rule: a Mapping hands out exactly one ArrayBuffer (`buffer`); every
 * typed array a program builds over it shares it. `close()` detaches that
 * buffer before it unmaps, so a stale view has length 0 and reads `undefined`
 * instead of touching unmapped memory (which would kill the process).
 */
import { runtime } from "../ffi/platform.ts";
import * as m from "../ffi/mman.ts";
import { check, closeFd, cstring, libc, madvise, mmap, mremap, munmap, PAGE_SIZE } from "./libc.ts";
import { ClosedError, UmmuArgumentError } from "./errors.ts";
import * as v from "./validate.ts";

const KINDS: readonly MappingKind[] = ["anonymous", "memfd", "hugetlb"];

/** Every open Mapping, by address: to refuse a range that starts in one and runs past its end. */
const live = new Map<number, WeakRef<Mapping>>();

/** What kind of memory to map. */
export type MappingKind = "anonymous" | "memfd" | "hugetlb";

/** Options of {@link Mapping.create}. */
export interface MappingOptions {
  /** Default "anonymous" (private). "memfd" is shared shmem; "hugetlb" is a hugetlbfs memfd. */
  kind?: MappingKind;
  /** Huge page size for "hugetlb" (default 2 MiB). */
  hugePageSize?: number;
  /**
   * Map exactly here (aligned to the page size), or fail with UmmuError
   * EEXIST if anything is mapped there already (MAP_FIXED_NOREPLACE: never
   * over what is there). Default: wherever the kernel chooses.
   */
  address?: bigint | number;
}

/** A memory mapping owned by ummu, with a zero-copy view. */
export class Mapping {
  #addr: number;
  #buffer: ArrayBuffer | null = null;
  #closed = false;
  #length: number;
  /** The memfd behind a "memfd" or "hugetlb" mapping, or -1. */
  readonly fd: number;
  /** What kind of memory this is. */
  readonly kind: MappingKind;
  /** The page size of this memory (4 KiB, or the huge page size). */
  readonly pageSize: number;
  readonly #ownsFd: boolean;

  private constructor(
    addr: number,
    length: number,
    fd: number,
    kind: MappingKind,
    pageSize: number,
    ownsFd: boolean,
  ) {
    this.#addr = addr;
    this.#length = length;
    this.fd = fd;
    this.kind = kind;
    this.pageSize = pageSize;
    this.#ownsFd = ownsFd;
    live.set(addr, new WeakRef(this));
  }

  /**
   * @internal Refuses [start, start+length) if it starts inside an open Mapping
   * and runs past its end (into whatever is mapped next to it), naming both.
   */
  static checkWithin(start: number, length: number, what: string): void {
    const end = start + length;
    for (const [addr, ref] of live) {
      const mp = ref.deref();
      if (mp === undefined || mp.#closed) {
        live.delete(addr);
        continue;
      }
      if (start >= addr && start < addr + mp.length && end > addr + mp.length) {
        throw new UmmuArgumentError(
          `${what}: 0x${start.toString(16)}+${length} runs ${
            end - addr - mp.length
          } bytes past the end of the Mapping at 0x${addr.toString(16)} (length ${mp.length})`,
        );
      }
    }
  }

  /**
   * Maps `length` bytes (rounded up to the page size), without populating them.
   * @example
   * ```ts
   * const mem = Mapping.create(1 << 20);
   * new Uint8Array(mem.buffer)[0] = 1;
   * mem.close();
   * ```
   */
  static create(length: number, options: MappingOptions = {}): Mapping {
    const o = v.options<MappingOptions>("Mapping.create options", options);
    const kind = o.kind === undefined ? "anonymous" : v.oneOf("options.kind", o.kind, KINDS);
    let pageSize = PAGE_SIZE;
    if (kind === "hugetlb") {
      pageSize = o.hugePageSize === undefined
        ? 2 << 20
        : v.integer("options.hugePageSize", o.hugePageSize, PAGE_SIZE * 2, 2 ** 34);
      if ((pageSize & (pageSize - 1)) !== 0) {
        v.invalid("options.hugePageSize", o.hugePageSize, "a power of two (2 MiB, 1 GiB...)");
      }
    } else if (o.hugePageSize !== undefined) {
      v.invalid("options.hugePageSize", o.hugePageSize, 'absent unless kind is "hugetlb"');
    }
    const len = Math.ceil(v.byteLength("length", length, 1, 2 ** 47) / pageSize) * pageSize;
    const at = o.address === undefined ? 0 : v.address("options.address", o.address, pageSize);
    const where = at === 0 ? 0 : m.MAP_FIXED_NOREPLACE;
    const hint = at === 0 ? "" : `something is mapped at 0x${at.toString(16)} already`;
    if (kind === "anonymous") {
      const addr = check(
        libc.mmap(
          at,
          len,
          m.PROT_READ | m.PROT_WRITE,
          m.MAP_PRIVATE | m.MAP_ANONYMOUS | m.MAP_NORESERVE | where,
          -1,
          0,
        ),
        "mmap",
        hint,
      );
      return new Mapping(addr, len, -1, kind, pageSize, false);
    }
    const flags = m.MFD_CLOEXEC |
      (kind === "hugetlb" ? m.MFD_HUGETLB | (Math.log2(pageSize) << 26) : 0);
    const fd = check(
      libc.memfd_create(cstring(`ummu-${kind}`), flags),
      "memfd_create",
      kind === "hugetlb" ? "no huge pages of that size: echo N > /proc/sys/vm/nr_hugepages" : "",
    );
    try {
      check(libc.ftruncate(fd, len), "ftruncate(memfd)");
      const addr = check(
        libc.mmap(at, len, m.PROT_READ | m.PROT_WRITE, m.MAP_SHARED | where, fd, 0),
        "mmap",
        hint ||
          (kind === "hugetlb"
            ? `not enough free ${pageSize >> 20} MiB huge pages: raise /proc/sys/vm/nr_hugepages`
            : ""),
      );
      return new Mapping(addr, len, fd, kind, pageSize, true);
    } catch (e) {
      libc.close(fd);
      throw e;
    }
  }

  /**
   * A second mapping of the same memfd (MINOR faults are served by writing the
   * page through one mapping and UFFDIO_CONTINUE on the other). The alias does
   * not own the fd: close it before or after the original, either order.
   */
  alias(): Mapping {
    if (this.fd < 0) throw new UmmuArgumentError("only memfd and hugetlb mappings have aliases");
    this.#checkOpen();
    const addr = mmap(this.length, m.PROT_READ | m.PROT_WRITE, m.MAP_SHARED, this.fd, 0);
    return new Mapping(addr, this.length, this.fd, this.kind, this.pageSize, false);
  }

  /** Length in bytes (a multiple of the page size). */
  get length(): number {
    return this.#length;
  }

  /**
   * Gives pages back to the kernel (madvise(MADV_DONTNEED)): anonymous
   * memory reads zeros afterwards (a userfaultfd sees REMOVE and the pages
   * fault again), shared memory keeps its bytes in the memfd. What a
   * program's free() of a large block does.
   */
  discard(offset = 0, length: number = this.#length - offset): void {
    this.#checkOpen();
    const off = v.integer("offset", offset, 0, this.#length);
    const len = v.byteLength("length", length, this.pageSize, this.#length - off);
    if (off % this.pageSize !== 0) {
      v.invalid("offset", offset, `a multiple of the page size (${this.pageSize})`);
    }
    madvise(this.#addr + off, len, m.MADV_DONTNEED);
  }

  /**
   * Grows or shrinks an anonymous mapping (mremap(MREMAP_MAYMOVE)): it may
   * move, as realloc() of a large block does. The old view is detached (its
   * typed arrays become empty); `buffer` is the new one.
   */
  resize(length: number): void {
    this.#checkOpen();
    if (this.kind !== "anonymous") {
      throw new UmmuArgumentError(`resize() is for anonymous mappings, not ${this.kind}`);
    }
    const len = Math.ceil(v.byteLength("length", length, 1, 2 ** 47) / this.pageSize) *
      this.pageSize;
    const addr = mremap(this.#addr, this.#length, len, m.MREMAP_MAYMOVE);
    if (this.#buffer) runtime.detach(this.#buffer);
    this.#buffer = null;
    live.delete(this.#addr);
    this.#addr = addr;
    this.#length = len;
    live.set(addr, new WeakRef(this));
  }

  /** Start address, as a bigint. */
  get address(): bigint {
    return BigInt(this.#addr);
  }

  /** Start address as a number (exact: user addresses are below 2^47). */
  get base(): number {
    this.#checkOpen();
    return this.#addr;
  }

  /** The one zero-copy view of this mapping; detached by close(). */
  get buffer(): ArrayBuffer {
    this.#checkOpen();
    return this.#buffer ??= runtime.view(this.#addr, this.length);
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Detaches the view, unmaps, and closes the memfd it owns. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this.#addr);
    if (this.#buffer) runtime.detach(this.#buffer); // detach: stale views become empty, not dangling
    this.#buffer = null;
    munmap(this.#addr, this.length);
    if (this.#ownsFd) closeFd(this.fd, "close(memfd)");
  }

  /** Unmaps (`using mem = Mapping.create(n)`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError("Mapping");
  }
}

/**
 * The address of a view's first byte (an ArrayBuffer's or SharedArrayBuffer's
 * memory does not move while the buffer lives): for a watchpoint on a word a
 * Worker writes, or a sample address to match. Keep the buffer alive while
 * the address is in use.
 */
export function addressOf(view: ArrayBufferView): bigint {
  if (!ArrayBuffer.isView(view)) v.invalid("addressOf: view", view, "a typed array or DataView");
  if (view.byteLength === 0) {
    v.invalid(
      "addressOf: view",
      view,
      "a view of at least one byte (a detached or empty one has no address)",
    );
  }
  return BigInt(runtime.addressOf(view));
}
