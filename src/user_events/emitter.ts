/**
 * The write side of one user_events registration: writev of {write index,
 * payload} through an iovec built once. Internal: Tracepoint and
 * EventHeaderEvent own one each; it is not exported from the package, and it
 * still checks every length against the buffer it points the kernel at, so no
 * caller can make it hand the kernel memory beyond the payload.
 */
import { runtime } from "../../ffi/platform.ts";
import { errno, libc } from "../libc.ts";
import { UmmuArgumentError } from "../errors.ts";
import { EBADF, writeError } from "./diagnose.ts";

/** Anything that encodes an event into a buffer whose address changes only when it grows. */
export interface EventBuffer {
  /** The encoded event; replaced (never resized in place) when it grows. */
  buf: Uint8Array;
  /** Changes whenever `buf` is replaced. */
  generation: number;
}

/**
 * fd, write index and a 2-entry iovec {write index, payload}. Entry 0 points
 * at the 4-byte index; entry 1 at the payload buffer, whose length is set per
 * event. No allocation per event.
 */
export class Emitter {
  /** The user_events_data fd written to. */
  readonly fd: number;
  /** The registration's write index: the kernel routes each write to the tracepoint by it. */
  readonly writeIndex: number;
  readonly #iov: Uint8Array;
  readonly #iov32: Uint32Array;
  readonly #src: EventBuffer;
  /** The buffer whose address is in the iovec: kept referenced, so it cannot be collected under it. */
  #buf: Uint8Array | null = null;
  readonly #label: string;

  /**
   * Builds the iovec once. `src` is the buffer the payload is encoded into
   * (its address is re-read whenever `src.buf` is another array); `label`
   * names the tracepoint in errors.
   */
  constructor(fd: number, writeIndex: number, src: EventBuffer, label: string) {
    this.fd = fd;
    this.writeIndex = writeIndex;
    this.#src = src;
    this.#label = label;
    // [iovec 0 (16)][iovec 1 (16)][write index (4) + pad]: one stable ArrayBuffer.
    const ab = new ArrayBuffer(40);
    this.#iov = new Uint8Array(ab);
    this.#iov32 = new Uint32Array(ab);
    const dv = new DataView(ab);
    dv.setUint32(32, writeIndex, true);
    const base = runtime.addressOf(this.#iov);
    dv.setBigUint64(0, BigInt(base + 32), true);
    dv.setBigUint64(8, 4n, true);
    this.#rebase();
  }

  #rebase(): void {
    const buf = this.#src.buf;
    if (!(buf instanceof Uint8Array)) {
      throw new UmmuArgumentError(
        `tracepoint ${this.#label}: the event buffer is not a Uint8Array`,
      );
    }
    new DataView(this.#iov.buffer).setBigUint64(16, BigInt(runtime.addressOf(buf)), true);
    this.#buf = buf;
  }

  /**
   * Writes the first `len` bytes of the buffer. true: written; false: nobody
   * listens (EBADF). `len` must be an integer within the buffer.
   */
  write(len: number): boolean {
    // Identity, not the generation counter: a buffer swapped in by any means is re-read.
    if (this.#buf !== this.#src.buf) this.#rebase();
    if (typeof len !== "number" || !(len >= 0 && len <= this.#buf!.length && len % 1 === 0)) {
      throw new UmmuArgumentError(
        `tracepoint ${this.#label}: payload length ${len} is not an integer within the ${
          this.#buf!.length
        }-byte event buffer`,
      );
    }
    this.#iov32[6] = len; // iovec 1 .iov_len (low word; the high word stays 0)
    if (libc.writev(this.fd, this.#iov, 2) >= 0) return true;
    const e = errno();
    if (e === EBADF) return false;
    throw writeError(e, this.#label);
  }
}
