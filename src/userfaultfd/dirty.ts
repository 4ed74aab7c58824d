/**
 * DirtyTracker: which pages of a range were written since the last reset,
 * with no fault delivered to anyone: userfaultfd WP_ASYNC write-protects the
 * range and the kernel itself resolves each first write, and PAGEMAP_SCAN on
 * /proc/self/pagemap reads (and optionally re-protects) the written pages.
 */
import * as fs from "../../ffi/fs.ts";
import * as m from "../../ffi/mman.ts";
import { runtime } from "../../ffi/platform.ts";
import { closeFd, errno, libc, openFile, PAGE_SIZE } from "../libc.ts";
import { ClosedError, UmmuError } from "../errors.ts";
import * as v from "../validate.ts";
import { UserfaultFd } from "./uffd.ts";

/** A run of written pages: [start, end). */
export interface DirtyRange {
  /** First address of the run. */
  start: bigint;
  /** End of the run (exclusive). */
  end: bigint;
}

const VEC = 256;

/** Tracks writes to one page-aligned range (anonymous or shmem memory). */
export class DirtyTracker {
  readonly #uffd: UserfaultFd;
  readonly #pagemap: number;
  readonly #start: number;
  readonly #length: number;
  readonly #arg = new Uint8Array(fs.SIZEOF_PM_SCAN_ARG);
  readonly #dv = new DataView(this.#arg.buffer);
  readonly #vec = new Uint8Array(fs.SIZEOF_PAGE_REGION * VEC);
  readonly #vdv = new DataView(this.#vec.buffer);
  #closed = false;

  private constructor(uffd: UserfaultFd, pagemap: number, start: number, length: number) {
    this.#uffd = uffd;
    this.#pagemap = pagemap;
    this.#start = start;
    this.#length = length;
  }

  /**
   * Starts tracking [address, address+length): every page counts as clean now.
   * Needs Linux 6.7+ (WP_ASYNC, PAGEMAP_SCAN).
   * @example
   * ```ts
   * const mem = Mapping.create(64 * 4096);
   * const tracker = DirtyTracker.start(mem.address, mem.length);
   * new Uint8Array(mem.buffer)[5 * 4096] = 1;
   * tracker.dirtyPages(); // [5n * 4096n + mem.address]
   * tracker.close();
   * ```
   */
  static start(address: bigint | number, length: number): DirtyTracker {
    v.address("address", address, PAGE_SIZE);
    v.byteLength("length", length, PAGE_SIZE);
    const uffd = UserfaultFd.open({ features: ["WP_ASYNC", "WP_UNPOPULATED"] });
    let pagemap = -1;
    try {
      uffd.register(address, length, ["wp"]);
      uffd.writeProtect(address, length, true);
      pagemap = openFile("/proc/self/pagemap", m.O_RDONLY);
      return new DirtyTracker(uffd, pagemap, Number(address), length);
    } catch (e) {
      if (pagemap >= 0) libc.close(pagemap);
      uffd.close();
      throw e;
    }
  }

  /** The written runs since the last reset (merged, page-aligned). */
  dirty(): DirtyRange[] {
    return this.#scan(false);
  }

  /** The written runs, and re-protects them in the same walk (no write is lost between the two). */
  dirtyAndReset(): DirtyRange[] {
    return this.#scan(true);
  }

  /** Each written page's address. */
  dirtyPages(): bigint[] {
    const out: bigint[] = [];
    for (const r of this.dirty()) {
      for (let a = r.start; a < r.end; a += BigInt(PAGE_SIZE)) out.push(a);
    }
    return out;
  }

  /** Marks every page clean again. */
  reset(): void {
    if (this.#closed) throw new ClosedError("DirtyTracker");
    this.#uffd.writeProtect(this.#start, this.#length, true);
  }

  /** Unregisters and closes the userfaultfd and the pagemap fd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#pagemap, "close(/proc/self/pagemap)");
    this.#uffd.close();
  }

  /** Stops tracking (`using tracker = DirtyTracker.start(...)`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #scan(reprotect: boolean): DirtyRange[] {
    if (this.#closed) throw new ClosedError("DirtyTracker");
    const O = fs.PM_SCAN_ARG_OFF;
    const dv = this.#dv;
    const out: DirtyRange[] = [];
    let start = this.#start;
    const end = this.#start + this.#length;
    while (start < end) {
      this.#arg.fill(0);
      dv.setBigUint64(O.size, BigInt(fs.SIZEOF_PM_SCAN_ARG), true);
      dv.setBigUint64(
        O.flags,
        BigInt(reprotect ? fs.PM_SCAN_WP_MATCHING | fs.PM_SCAN_CHECK_WPASYNC : 0),
        true,
      );
      dv.setBigUint64(O.start, BigInt(start), true);
      dv.setBigUint64(O.end, BigInt(end), true);
      dv.setBigUint64(O.vec, BigInt(runtime.addressOf(this.#vec)), true);
      dv.setBigUint64(O.vec_len, BigInt(VEC), true);
      dv.setBigUint64(O.category_mask, BigInt(fs.PAGE_IS_WRITTEN), true);
      dv.setBigUint64(O.return_mask, BigInt(fs.PAGE_IS_WRITTEN), true);
      const n = libc.ioctl(this.#pagemap, fs.PAGEMAP_SCAN, this.#arg);
      if (n < 0) {
        const e = errno();
        throw new UmmuError(
          "ioctl(PAGEMAP_SCAN)",
          e,
          e === 25 /* ENOTTY */ ? "PAGEMAP_SCAN needs Linux 6.7+" : "",
        );
      }
      for (let i = 0; i < n; i++) {
        const s = this.#vdv.getBigUint64(i * fs.SIZEOF_PAGE_REGION, true);
        const e = this.#vdv.getBigUint64(i * fs.SIZEOF_PAGE_REGION + 8, true);
        const last = out[out.length - 1];
        if (last && last.end === s) last.end = e;
        else out.push({ start: s, end: e });
      }
      const walkEnd = Number(dv.getBigUint64(O.walk_end, true));
      if (walkEnd <= start) break;
      start = walkEnd;
    }
    return out;
  }
}
