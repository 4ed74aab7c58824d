/**
 * Checked libc: each wrapper calls the symbol, reads errno at once on the same
 * thread if it failed, and throws UmmuError. Also the small encoders the calls
 * need (C strings, pollfd arrays).
 */
import { runtime } from "../ffi/platform.ts";
import { UmmuError } from "./errors.ts";
import * as m from "../ffi/mman.ts";

export const libc = runtime.libc;

// errno lives at a per-thread address; each thread (Worker) loads this module
// itself, so caching the view here is per thread. An adapter whose FFI saves
// errno itself (koffi) provides errno() instead.
const errnoView = runtime.errno
  ? null
  : new Int32Array(runtime.view(Number(libc.__errno_location()), 4));
/** The calling thread's errno. Read it right after the failing call. */
export const errno: () => number = errnoView ? () => errnoView[0] : runtime.errno!.bind(runtime);

/** Throws UmmuError for a -1 (or MAP_FAILED) result; returns the result as a number. */
export function check(result: number | bigint, call: string, hint?: string): number {
  const r = Number(result);
  if (r === -1 || r === 2 ** 64 - 1) throw new UmmuError(call, errno(), hint);
  return r;
}

const encoder = new TextEncoder();
/** A NUL-terminated copy of a string. */
export function cstring(s: string): Uint8Array {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

export const PAGE_SIZE: number = Number(libc.sysconf(m._SC_PAGESIZE));

export function openFile(path: string, flags: number, mode = 0o600): number {
  return check(libc.open(cstring(path), flags | m.O_CLOEXEC, mode), `open(${path})`);
}

export function closeFd(fd: number, what = "close"): void {
  check(libc.close(fd), what);
}

export function mmap(
  len: number,
  prot: number,
  flags: number,
  fd = -1,
  offset = 0,
  addr = 0,
): number {
  return check(libc.mmap(addr, len, prot, flags, fd, offset), "mmap");
}

export function munmap(addr: number, len: number): void {
  check(libc.munmap(addr, len), "munmap");
}

export function mprotect(addr: number, len: number, prot: number): void {
  check(libc.mprotect(addr, len, prot), "mprotect");
}

export function madvise(addr: number, len: number, advice: number): void {
  check(libc.madvise(addr, len, advice), "madvise");
}

export function mremap(
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr = 0,
): number {
  return check(libc.mremap(addr, oldLen, newLen, flags, newAddr), "mremap");
}

/** An eventfd: the library's way to wake a thread blocked in poll(). */
export function eventfd(flags = m.EFD_CLOEXEC | m.EFD_NONBLOCK): number {
  return check(libc.eventfd(0, flags), "eventfd");
}

const one = new Uint8Array(new BigUint64Array([1n]).buffer);
/** Adds 1 to an eventfd, waking its pollers. */
export function signalEventfd(fd: number): void {
  check(libc.write(fd, one, 8), "write(eventfd)");
}

/** Two-entry pollfd array: [fd0, fd1], both POLLIN. */
export function pollPair(fd0: number, fd1: number): Uint8Array {
  const b = new Uint8Array(2 * m.SIZEOF_POLLFD);
  const v = new DataView(b.buffer);
  v.setInt32(0, fd0, true);
  v.setInt16(4, m.POLLIN, true);
  v.setInt32(8, fd1, true);
  v.setInt16(12, m.POLLIN, true);
  return b;
}
