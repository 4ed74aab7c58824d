/**
 * The enable words. The kernel sets or clears one bit of a 32-bit word in our
 * memory when tracers attach or detach (DIAG_IOCSREG's enable_addr and
 * enable_bit). Those words live in a SharedArrayBuffer so that Workers can test
 * them too; one word hosts up to 32 tracepoints on distinct bits. The buffer
 * must stay alive (and mapped) while the kernel may write it: the slab is kept
 * referenced by every registration and by the UserEvents that owns them, and
 * registrations are undone (DIAG_IOCSUNREG) before it can be released.
 */
import { runtime } from "../../ffi/platform.ts";
import { UmmuArgumentError } from "../errors.ts";
import { describeValue } from "./values.ts";

/**
 * 32-bit enable words in a SharedArrayBuffer, with the bookkeeping of which
 * bits are taken. A UserEvents makes one of 16 words by default; pass your own
 * to give several UserEvents (or a known layout) the same words.
 *
 * @example
 * ```ts
 * import { EnableSlab, UserEvents } from "@ummu/ummu/user_events";
 *
 * const slab = new EnableSlab(1); // 1 word: up to 32 tracepoints
 * const events = UserEvents.open({ slab });
 * const a = events.register("myapp_a", "u32 x", { word: 0, bit: 0 });
 * const b = events.register("myapp_b", "u32 x", { word: 0, bit: 5 });
 * // One load tells which of the two a tracer listens to.
 * const word = Atomics.load(slab.words, 0);
 * console.log((word & (1 << a.bit)) !== 0, (word & (1 << b.bit)) !== 0);
 * events.close();
 * ```
 */
export class EnableSlab {
  /** The shared memory; hand it to Workers with the tracepoint handle. */
  readonly buffer: SharedArrayBuffer;
  /** The words, for Atomics.load. */
  readonly words: Int32Array;
  /** Address of word 0 (the kernel writes at address + 4 * word). */
  readonly address: number;
  readonly #used: Uint32Array;

  /** A slab of `words` 32-bit enable words (32 tracepoints each). */
  constructor(words = 16, buffer?: SharedArrayBuffer) {
    if (buffer !== undefined) {
      if (
        !(buffer instanceof SharedArrayBuffer) || buffer.byteLength === 0 ||
        buffer.byteLength % 4 !== 0
      ) {
        throw new UmmuArgumentError(
          `an enable slab's buffer must be a SharedArrayBuffer of whole 32-bit words, got ${
            describeValue(buffer)
          }`,
        );
      }
    } else if (!(Number.isInteger(words) && words >= 1 && words <= 65536)) {
      throw new UmmuArgumentError(
        `an enable slab has 1..65536 words (32 tracepoints each), got ${describeValue(words)}`,
      );
    }
    this.buffer = buffer ?? new SharedArrayBuffer(words * 4);
    this.words = new Int32Array(this.buffer);
    this.address = runtime.addressOf(this.words);
    this.#used = new Uint32Array(this.words.length);
    if (this.address % 4 !== 0) throw new Error("enable slab is not 4-byte aligned");
  }

  /** Wraps a slab received from another thread (no bits are allocated from it here). */
  static fromBuffer(buffer: SharedArrayBuffer): EnableSlab {
    if (buffer === undefined) {
      throw new UmmuArgumentError("EnableSlab.fromBuffer needs the slab's SharedArrayBuffer");
    }
    return new EnableSlab(0, buffer);
  }

  /** How many tracepoints the slab can host: 32 per word. */
  get capacity(): number {
    return this.words.length * 32;
  }

  /** Reserves a bit: the given one (throws if taken), else the lowest free one. */
  allocate(word?: number, bit?: number): { word: number; bit: number } {
    if (word !== undefined || bit !== undefined) {
      const w = word ?? 0;
      const b = bit ?? 31;
      if (
        !(w >= 0 && w < this.words.length && b >= 0 && b < 32 && Number.isInteger(w) &&
          Number.isInteger(b))
      ) {
        throw new UmmuArgumentError(
          `enable word ${w} bit ${b} is outside the slab (${this.words.length} words of 32 bits)`,
        );
      }
      if (this.#used[w] & (1 << b)) {
        throw new UmmuArgumentError(`enable word ${w} bit ${b} is already in use`);
      }
      this.#used[w] |= 1 << b;
      return { word: w, bit: b };
    }
    for (let w = 0; w < this.#used.length; w++) {
      if (this.#used[w] === 0xffffffff) continue;
      for (let b = 0; b < 32; b++) {
        if ((this.#used[w] & (1 << b)) === 0) {
          this.#used[w] |= 1 << b;
          return { word: w, bit: b };
        }
      }
    }
    throw new UmmuArgumentError(
      `enable slab is full (${this.capacity} tracepoints); pass a bigger slab`,
    );
  }

  /**
   * Frees a bit reserved by allocate(). Only after DIAG_IOCSUNREG: a bit the
   * kernel still updates would be shared by the next tracepoint given it.
   */
  release(word: number, bit: number): void {
    this.#checkBit(word, bit);
    this.#used[word] &= ~(1 << bit);
  }

  #checkBit(word: number, bit = 0): void {
    if (
      !(Number.isInteger(word) && word >= 0 && word < this.words.length && Number.isInteger(bit) &&
        bit >= 0 && bit < 32)
    ) {
      throw new UmmuArgumentError(
        `enable word ${describeValue(word)} bit ${
          describeValue(bit)
        } is outside the slab (${this.words.length} words of 32 bits)`,
      );
    }
  }

  /** Bits in use (for tests). */
  inUse(word: number): number {
    this.#checkBit(word);
    return this.#used[word];
  }
}
