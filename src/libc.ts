/**
 * Checked libc: each wrapper calls the symbol, reads errno at once on the same
 * thread if it failed, and throws UmmuError. Also the small encoders the calls
 * need (C strings, pollfd arrays).
 */
import { runtime } from "../ffi/platform.ts";
import { UmmuError } from "./errors.ts";
import * as m from "../ffi/mman.ts";
import * as st from "../ffi/stat.ts";

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

const eventfds = new Set<number>();

/** An eventfd: the library's way to wake a thread blocked in poll(). Close it with closeEventfd(). */
export function eventfd(flags = m.EFD_CLOEXEC | m.EFD_NONBLOCK): number {
  const fd = check(libc.eventfd(0, flags), "eventfd");
  eventfds.add(fd);
  return fd;
}

/** Closes an eventfd made by eventfd(). */
export function closeEventfd(fd: number): void {
  eventfds.delete(fd);
  libc.close(fd);
}

/**
 * How many eventfds the library holds open in this thread's view (tests:
 * the runtimes make eventfds of their own, so a count of all of them says
 * nothing about ours).
 */
export function openEventfds(): number {
  return eventfds.size;
}

const one = new Uint8Array(new BigUint64Array([1n]).buffer);
/** Adds 1 to an eventfd, waking its pollers. */
export function signalEventfd(fd: number): void {
  check(libc.write(fd, one, 8), "write(eventfd)");
}

/** A pollfd array of these fds, each POLLIN. */
export function pollFds(fds: readonly number[]): Uint8Array {
  const b = new Uint8Array(fds.length * m.SIZEOF_POLLFD);
  const v = new DataView(b.buffer);
  fds.forEach((fd, i) => {
    v.setInt32(i * m.SIZEOF_POLLFD, fd, true);
    v.setInt16(i * m.SIZEOF_POLLFD + 4, m.POLLIN, true);
  });
  return b;
}

/** Two-entry pollfd array: [fd0, fd1], both POLLIN. */
export function pollPair(fd0: number, fd1: number): Uint8Array {
  return pollFds([fd0, fd1]);
}

/** What statx(2) says of a file. */
export interface FileStat {
  /** The S_IFMT bits: S_IFREG, S_IFDIR, S_IFCHR... (ffi/stat.ts). */
  type: number;
  /** The inode number. */
  ino: bigint;
  /** Size in bytes. */
  size: bigint;
  /** The device the file lives on (major, minor). */
  dev: [number, number];
  /** A device file's own device number (major, minor). */
  rdev: [number, number];
}

function decodeStatx(buf: Uint8Array): FileStat {
  const dv = new DataView(buf.buffer);
  const O = st.STATX_OFF;
  return {
    type: dv.getUint16(O.stx_mode, true) & st.S_IFMT,
    ino: dv.getBigUint64(O.stx_ino, true),
    size: dv.getBigUint64(O.stx_size, true),
    dev: [dv.getUint32(O.stx_dev_major, true), dv.getUint32(O.stx_dev_minor, true)],
    rdev: [dv.getUint32(O.stx_rdev_major, true), dv.getUint32(O.stx_rdev_minor, true)],
  };
}

const STATX_WANT = st.STATX_TYPE | st.STATX_MODE | st.STATX_INO | st.STATX_SIZE;

/** statx of an open fd. */
export function statFd(fd: number, call = "statx"): FileStat {
  const buf = new Uint8Array(st.SIZEOF_STATX);
  check(libc.statx(fd, new Uint8Array(1), st.AT_EMPTY_PATH, STATX_WANT, buf), call);
  return decodeStatx(buf);
}

/** statx of a path (follows symlinks). */
export function statPath(path: string): FileStat {
  const buf = new Uint8Array(st.SIZEOF_STATX);
  check(libc.statx(st.AT_FDCWD, cstring(path), 0, STATX_WANT, buf), `statx(${path})`);
  return decodeStatx(buf);
}

/** A whole file read with read(2) (for /proc files, whose size stat does not know). */
export function readWholeFile(path: string): Uint8Array {
  const fd = openFile(path, m.O_RDONLY);
  try {
    let buf = new Uint8Array(65536);
    let len = 0;
    for (;;) {
      if (buf.length - len < 4096) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf.subarray(0, len));
        buf = bigger;
      }
      const n = check(libc.read(fd, buf.subarray(len), buf.length - len), `read(${path})`);
      if (n === 0) return buf.slice(0, len);
      len += n;
    }
  } finally {
    libc.close(fd);
  }
}

/** Gives up the CPU once (sched_yield). */
export function sched(): void {
  libc.sched_yield();
}
