/**
 * The write side of an OpenTelemetry tracepoint: one writev of three iovecs,
 * {write index, header + metadata, data}, straight from the builder's two
 * buffers, so the data is never copied behind the metadata (what
 * eventheader_dynamic's write does with its descriptors). The iovec array is
 * built once; its addresses are re-read only when a buffer was replaced (it
 * grew). Like user_events' own Emitter, it checks every length against the
 * buffer it points the kernel at.
 */
import { runtime } from "../../ffi/platform.ts";
import { errno, libc } from "../libc.ts";
import { UmmuArgumentError } from "../errors.ts";
import { EBADF, writeError } from "../user_events/diagnose.ts";
import type { GrowableBuffer } from "../user_events/buffer.ts";

export class EventHeaderEmitter {
  /** The user_events_data fd. */
  readonly fd: number;
  readonly #iov: Uint8Array;
  readonly #iov32: Uint32Array;
  readonly #head: GrowableBuffer;
  readonly #data: GrowableBuffer;
  /** The buffers whose addresses are in the iovec: kept referenced, so they cannot be collected. */
  #headBuf: Uint8Array | null = null;
  #dataBuf: Uint8Array | null = null;
  readonly #label: string;

  /** `head`: header + metadata; `data`: the values; `label` names the tracepoint in errors. */
  constructor(
    fd: number,
    writeIndex: number,
    head: GrowableBuffer,
    data: GrowableBuffer,
    label: string,
  ) {
    this.fd = fd;
    this.#head = head;
    this.#data = data;
    this.#label = label;
    // [iovec 0][iovec 1][iovec 2] (16 bytes each), then the write index: one stable ArrayBuffer.
    const ab = new ArrayBuffer(56);
    this.#iov = new Uint8Array(ab);
    this.#iov32 = new Uint32Array(ab);
    const dv = new DataView(ab);
    dv.setUint32(48, writeIndex, true);
    dv.setBigUint64(0, BigInt(runtime.addressOf(this.#iov) + 48), true);
    dv.setBigUint64(8, 4n, true);
    this.#rebase();
  }

  #rebase(): void {
    const dv = new DataView(this.#iov.buffer);
    this.#headBuf = this.#head.buf;
    this.#dataBuf = this.#data.buf;
    dv.setBigUint64(16, BigInt(runtime.addressOf(this.#headBuf)), true);
    dv.setBigUint64(32, BigInt(runtime.addressOf(this.#dataBuf)), true);
  }

  /**
   * Writes the first `headLen` bytes of head and `dataLen` of data. true:
   * written; false: nobody listens (EBADF). Other errors throw UmmuError.
   */
  write(headLen: number, dataLen: number): boolean {
    if (this.#headBuf !== this.#head.buf || this.#dataBuf !== this.#data.buf) this.#rebase();
    if (
      !(headLen >= 0 && headLen <= this.#headBuf!.length && headLen % 1 === 0) ||
      !(dataLen >= 0 && dataLen <= this.#dataBuf!.length && dataLen % 1 === 0)
    ) {
      throw new UmmuArgumentError(
        `tracepoint ${this.#label}: lengths ${headLen} and ${dataLen} are not within the event's buffers`,
      );
    }
    this.#iov32[6] = headLen; // iovec 1 .iov_len (low word; the high word stays 0)
    this.#iov32[10] = dataLen; // iovec 2 .iov_len
    if (libc.writev(this.fd, this.#iov, 3) >= 0) return true;
    const e = errno();
    if (e === EBADF) return false;
    throw writeError(e, this.#label);
  }
}
