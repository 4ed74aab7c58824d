/**
 * The calls on a userfaultfd that resolve faults, shared by the handle (any
 * thread) and the FaultHandler Worker: one preallocated argument buffer per
 * instance, numbers only, every call bracketed by the fd's control (so none
 * ever reaches an fd number that was closed and reused).
 *
 * The progress rules of COPY, ZEROPAGE, CONTINUE, POISON and MOVE, in one place:
 * - partial progress (-1 with EAGAIN and a positive count) is resumed;
 * - EEXIST: the page is already there (a racing resolution): its waiters are
 *   woken and it counts as resolved; the skip is one page of the memory's own
 *   size (a hugetlb range steps by its huge page);
 * - EAGAIN with no progress: a non-cooperative event (munmap, madvise,
 *   mremap, fork in another thread) is pending; the caller's `onEagain` makes
 *   it go away (reads it, or waits for the reader) and the call is retried;
 * - ENOENT: the range was unmapped or unregistered meanwhile; the threads
 *   that faulted there are woken (nothing else would wake them) and the call
 *   reports it.
 */
import * as u from "../../ffi/userfaultfd.ts";
import { errno, libc } from "../libc.ts";
import type { FdControl } from "../fd_control.ts";

export const EAGAIN = 11, EEXIST = 17, ENOENT = 2, ESRCH = 3, EBADF = 9, EINTR = 4;
const TWO32 = 2 ** 32;
const DONTWAKE = 1; // bit 0 of every resolving ioctl's mode

// 64-bit FFI parameters as BigInt constants made once: Deno's fast FFI path
// takes a 64-bit parameter only as a BigInt (a Number deoptimizes the caller
// and takes the slow path, ~110 ns more per call); Bun takes either.
const REQ = new Map<number, bigint>(
  [
    u.UFFDIO_COPY,
    u.UFFDIO_ZEROPAGE,
    u.UFFDIO_WAKE,
    u.UFFDIO_WRITEPROTECT,
    u.UFFDIO_CONTINUE,
    u.UFFDIO_POISON,
    u.UFFDIO_MOVE,
    u.UFFDIO_REGISTER,
    u.UFFDIO_UNREGISTER,
  ].map((r) => [r, BigInt(r)]),
);
const REQ_COPY = REQ.get(u.UFFDIO_COPY)!;
const REQ_WAKE = REQ.get(u.UFFDIO_WAKE)!;
const REQ_WRITEPROTECT = REQ.get(u.UFFDIO_WRITEPROTECT)!;

/** Resolving calls on one userfaultfd, for one thread. */
export class UffdCalls {
  readonly #c: FdControl;
  readonly #fd: number;
  readonly arg = new Uint8Array(64);
  readonly #a32 = new Uint32Array(this.arg.buffer);
  readonly #dv = new DataView(this.arg.buffer);

  constructor(control: FdControl) {
    this.#c = control;
    this.#fd = control.fd;
  }

  /** One ioctl with the argument buffer as it is; 0, or -errno (-EBADF once closed). */
  ioctl(request: number): number {
    if (!this.#c.enter()) return -EBADF;
    const r = libc.ioctl(this.#fd, REQ.get(request) ?? BigInt(request), this.arg);
    const e = r === 0 ? 0 : errno();
    this.#c.leave();
    return -e;
  }

  /** read(2) of messages into `buf`: bytes, or -errno. */
  read(buf: Uint8Array, len: bigint): number {
    if (!this.#c.enter()) return -EBADF;
    const n = libc.read(this.#fd, buf, len);
    const e = n < 0 ? errno() : 0;
    this.#c.leave();
    return n < 0 ? -e : n;
  }

  /** Writes a { start, len } range (and zeroes the rest) into the argument. */
  setRange(start: number, len: number): void {
    const a = this.#a32;
    a[0] = start >>> 0;
    a[1] = (start / TWO32) >>> 0;
    a[2] = len >>> 0;
    a[3] = (len / TWO32) >>> 0;
    for (let i = 4; i < 16; i++) a[i] = 0;
  }

  /** UFFDIO_WAKE over [start, start+len). */
  wake(start: number, len: number): void {
    this.setRange(start, len);
    if (!this.#c.enter()) return;
    libc.ioctl(this.#fd, REQ_WAKE, this.arg);
    this.#c.leave();
  }

  /**
   * One resolving ioctl over [dst, dst+len): bytes done (> 0) or -errno.
   * Every field is written and the result zeroed (the kernel leaves it
   * untouched when it rejects the arguments).
   */
  resolveOnce(request: number, dst: number, len: number, src: number, mode: number): number {
    const a = this.#a32;
    a[0] = dst >>> 0;
    a[1] = (dst / TWO32) >>> 0;
    let res: number;
    if (request === u.UFFDIO_COPY || request === u.UFFDIO_MOVE) {
      a[2] = src >>> 0;
      a[3] = (src / TWO32) >>> 0;
      a[4] = len >>> 0;
      a[5] = (len / TWO32) >>> 0;
      a[6] = mode;
      a[7] = 0;
      a[8] = 0;
      a[9] = 0;
      res = 32;
    } else {
      a[2] = len >>> 0;
      a[3] = (len / TWO32) >>> 0;
      a[4] = mode;
      a[5] = 0;
      a[6] = 0;
      a[7] = 0;
      res = 24;
    }
    if (!this.#c.enter()) return -EBADF;
    const r = libc.ioctl(
      this.#fd,
      request === u.UFFDIO_COPY ? REQ_COPY : REQ.get(request)!,
      this.arg,
    );
    const e = r === 0 ? 0 : errno();
    this.#c.leave();
    if (r === 0) return len;
    const n = this.#dv.getInt32(res + 4, true) * TWO32 + this.#dv.getUint32(res, true);
    return n > 0 ? n : -e;
  }

  /**
   * [dst, dst+len) resolved with the rules above: `len` when done, or
   * -errno (-ENOENT once the waiters were woken). `onEagain` returns false
   * to give up on a pending event (then -EAGAIN).
   */
  resolve(
    request: number,
    dst: number,
    len: number,
    src: number,
    mode: number,
    pageSize: number,
    onEagain: () => boolean,
  ): number {
    let done = 0;
    while (done < len) {
      const r = this.resolveOnce(request, dst + done, len - done, src ? src + done : 0, mode);
      if (r > 0) {
        done += r;
      } else if (r === -EEXIST) {
        if ((mode & DONTWAKE) === 0) this.wake(dst + done, pageSize);
        done += pageSize;
      } else if (r === -EAGAIN) {
        if (!onEagain()) return -EAGAIN;
      } else {
        if (r === -ENOENT) this.wake(dst + done, len - done);
        return r;
      }
    }
    return len;
  }

  /** UFFDIO_WRITEPROTECT over [start, start+len) with `mode`: 0 or -errno (EAGAIN as above). */
  writeProtect(start: number, len: number, mode: number, onEagain: () => boolean): number {
    for (;;) {
      this.setRange(start, len);
      this.#a32[4] = mode;
      if (!this.#c.enter()) return -EBADF;
      const r = libc.ioctl(this.#fd, REQ_WRITEPROTECT, this.arg);
      const e = r === 0 ? 0 : errno();
      this.#c.leave();
      if (r === 0) return 0;
      if (e !== EAGAIN || !onEagain()) return -e;
    }
  }

  /** The 64-bit field at `offset` of the argument (e.g. the ioctls a REGISTER returns). */
  get64(offset: number): bigint {
    return this.#dv.getBigUint64(offset, true);
  }

  /** Sets the 64-bit field at `offset` of the argument. */
  set64(offset: number, v: number | bigint): void {
    this.#dv.setBigUint64(offset, BigInt(v), true);
  }
}
