/**
 * The runtime boundary. Everything above ffi/ sees only this interface; one
 * small adapter per runtime implements it (ffi/deno.ts, ffi/bun.ts, ffi/node.ts).
 * @module
 */
import type { libcSymbols } from "./symbols.ts";

type Num = number | bigint;
/** libc, called with numbers and Uint8Arrays; 64-bit results may come back as bigint. */
export interface Libc {
  open(path: Uint8Array, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, len: Num): number;
  write(fd: number, buf: Uint8Array, len: Num): number;
  writev(fd: number, iov: Uint8Array, iovcnt: number): number;
  pread(fd: number, buf: Uint8Array, len: number, offset: Num): number;
  ftruncate(fd: number, len: Num): number;
  ioctl(fd: number, request: Num, arg: Uint8Array): number;
  ioctl_int(fd: number, request: Num, arg: number): number;
  mmap(addr: number, len: number, prot: number, flags: number, fd: number, off: Num): Num;
  munmap(addr: number, len: number): number;
  mprotect(addr: number, len: number, prot: number): number;
  madvise(addr: number, len: number, advice: number): number;
  msync(addr: number, len: number, flags: number): number;
  mremap(old: number, oldLen: number, newLen: number, flags: number, newAddr: number): Num;
  memcpy(dst: number, src: number, len: number): Num;
  poll(fds: Uint8Array, nfds: Num, timeoutMs: number): number;
  syscall(nr: Num, a: Num, b: Num, c: Num, d: Num, e: Num): Num;
  memfd_create(name: Uint8Array, flags: number): number;
  eventfd(initval: number, flags: number): number;
  sysconf(name: number): Num;
  getpid(): number;
  gettid(): number;
  sched_yield(): number;
  __errno_location(): Num;
  statx(dirfd: number, path: Uint8Array, flags: number, mask: number, buf: Uint8Array): number;
  process_vm_readv(
    pid: number,
    local: Uint8Array,
    liovcnt: Num,
    remote: Uint8Array,
    riovcnt: Num,
    flags: Num,
  ): number;
  process_vm_writev(
    pid: number,
    local: Uint8Array,
    liovcnt: Num,
    remote: Uint8Array,
    riovcnt: Num,
    flags: Num,
  ): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrlen: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, addr: Uint8Array, addrlen: Uint8Array, flags: number): number;
  connect(fd: number, addr: Uint8Array, addrlen: number): number;
  sendmsg(fd: number, msg: Uint8Array, flags: number): number;
  recvmsg(fd: number, msg: Uint8Array, flags: number): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint8Array): number;
}

// Compile-time check that the interface names exactly the symbols of the table.
type _SameNames = keyof typeof libcSymbols extends keyof Libc
  ? keyof Libc extends keyof typeof libcSymbols ? true : never
  : never;
const _sameNames: _SameNames = true;
void _sameNames;

/** What each runtime's FFI provides: libc, zero-copy views, and addresses. */
export interface RuntimeAdapter {
  /** "deno" | "bun" | "node" */
  readonly name: string;
  readonly libc: Libc;
  /** An ArrayBuffer aliasing `length` bytes of process memory at `address` (zero-copy). */
  view(address: number, length: number): ArrayBuffer;
  /** The address of the first byte of a typed array (its backing store must not move). */
  addressOf(view: ArrayBufferView): number;
  /** CPU architecture in Node's naming: "x64", "arm64". */
  readonly arch: string;
  /**
   * The calling thread's errno after a failed call, where the FFI saves it
   * (koffi). Absent on Deno and Bun: src/libc.ts reads `__errno_location()`
   * through a view cached per thread instead.
   */
  errno?(): number;
  /** Detaches an ArrayBuffer made by view() (its typed arrays become empty), before the memory is unmapped. */
  detach(buffer: ArrayBuffer): void;
}
