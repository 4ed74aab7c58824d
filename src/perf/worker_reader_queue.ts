/**
 * The queue between a Worker-hosted perf reader and the main thread: one
 * producer (the Worker), one consumer (the main thread), records copied
 * into a SharedArrayBuffer as [u32 size, u32 0, record bytes padded to 8].
 *
 * Words (Int32Array over the first 32 bytes): HEAD and TAIL are byte counts
 * modulo 2^32 (capacity a power of two, at most 2^30), published with
 * Atomics.store and read with Atomics.load, so a side sees the bytes before
 * the count that covers them. An entry never wraps: a WRAP marker (size
 * 0xffffffff) sends the reader to the start. STATE says whether the Worker
 * runs; LOST counts records the kernel reported lost; the consumer waits on
 * HEAD with Atomics.waitAsync, the producer on TAIL with Atomics.wait.
 * FLUSH_REQ/FLUSH_DONE: the consumer asks for a drain now (records below the
 * ring's watermark wake nobody) and waits until the Worker has done one.
 * @module
 */
export const HEAD = 0, TAIL = 1, STATE = 2, LOST = 3, FLUSH_REQ = 4, FLUSH_DONE = 5;
export const WORDS_BYTES = 32;
export const RUNNING = 0, STOP = 1, STOPPED = 2, HUNG_UP = 3;
export const WRAP = 0xffffffff;

/** The shared memory of one queue. */
export interface QueueShare {
  words: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

/** A new queue of `bytes` (a power of two) of records. */
export function createQueue(bytes: number): QueueShare {
  return { words: new SharedArrayBuffer(WORDS_BYTES), data: new SharedArrayBuffer(bytes) };
}

/** Space one record takes in the queue. */
export const entrySize = (size: number): number => 8 + ((size + 7) & ~7);
