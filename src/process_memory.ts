/**
 * Reading and writing this process's memory without the risk of a fault:
 * process_vm_readv/writev on our own pid copy through the kernel, which
 * answers EFAULT for an address that is not mapped (any more) where a plain
 * load through a view would kill the process. Library Workers use it for
 * memory another thread may unmap at any moment (a snapshot's source, a MINOR
 * range's alias). One instance per thread: its iovecs are reused.
 */
import { runtime } from "../ffi/platform.ts";
import { SIZEOF_IOVEC } from "../ffi/uio.ts";
import { errno, libc } from "./libc.ts";

const EFAULT = 14, ENOMEM = 12, ESRCH = 3;
const ONE = 1n, ZERO = 0n;

/** Fault-free copies between this process's memory and buffers. */
export class ProcessMemory {
  readonly #pid = libc.getpid();
  readonly #local = new Uint8Array(SIZEOF_IOVEC);
  readonly #remote = new Uint8Array(SIZEOF_IOVEC);
  readonly #l = new DataView(this.#local.buffer);
  readonly #r = new DataView(this.#remote.buffer);

  /**
   * Copies `length` bytes at `address` into `dest` at `offset`. Returns false
   * if part of the source is not mapped (nothing to trust in `dest` then).
   */
  read(address: number, dest: Uint8Array, offset: number, length: number): boolean {
    return this.#move(false, address, dest, offset, length);
  }

  /** Copies `length` bytes of `src` at `offset` to `address`. False if the destination is not mapped. */
  write(address: number, src: Uint8Array, offset: number, length: number): boolean {
    return this.#move(true, address, src, offset, length);
  }

  #move(write: boolean, address: number, buf: Uint8Array, offset: number, length: number): boolean {
    if (length === 0) return true;
    if (offset < 0 || offset + length > buf.byteLength) {
      throw new RangeError(`ProcessMemory: ${length} bytes at ${offset} exceed the buffer`);
    }
    const base = runtime.addressOf(buf) + offset;
    let done = 0;
    while (done < length) {
      this.#r.setBigUint64(0, BigInt(address + done), true);
      this.#r.setBigUint64(8, BigInt(length - done), true);
      this.#l.setBigUint64(0, BigInt(base + done), true);
      this.#l.setBigUint64(8, BigInt(length - done), true);
      const n = write
        ? libc.process_vm_writev(this.#pid, this.#local, ONE, this.#remote, ONE, ZERO)
        : libc.process_vm_readv(this.#pid, this.#local, ONE, this.#remote, ONE, ZERO);
      if (n > 0) {
        done += n;
        continue;
      }
      const e = n < 0 ? errno() : EFAULT;
      if (e === EFAULT || e === ENOMEM || e === ESRCH) return false;
      throw new Error(`process_vm_${write ? "writev" : "readv"} failed: errno ${e}`);
    }
    return true;
  }
}
