/**
 * GrowableBuffer: the byte buffer an event is encoded into. It keeps its
 * address until it must grow; `generation` counts the moves, so an owner that
 * cached the address (in a prebuilt iovec) knows when to read it again.
 */
export class GrowableBuffer {
  /** The bytes. Replaced (never resized in place) when the buffer grows. */
  buf: Uint8Array;
  /** A DataView over `buf`. */
  dv: DataView;
  /** How many times `buf` moved. */
  generation = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(new ArrayBuffer(capacity));
    this.dv = new DataView(this.buf.buffer);
  }

  /** Grows the buffer (doubling) so that `need` bytes fit, keeping the content. */
  ensure(need: number): void {
    if (need <= this.buf.length) return;
    let cap = Math.max(this.buf.length * 2, 64); // an empty buffer doubles too
    while (cap < need) cap *= 2;
    const b = new Uint8Array(new ArrayBuffer(cap));
    b.set(this.buf);
    this.buf = b;
    this.dv = new DataView(b.buffer);
    this.generation++;
  }
}
