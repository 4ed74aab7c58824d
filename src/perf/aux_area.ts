/**
 * The AUX area of a perf event: a second shared mapping beside the ring
 * buffer where a PMU that traces (Intel PT, Intel BTS, Arm SPE/CoreSight)
 * writes its own data stream, while the ring carries PERF_RECORD_AUX
 * records that say which bytes are new and whether any were lost.
 *
 * This is the 2007 review's "reliable stream, large enough, without
 * copying" (../shared/seeds/002): the hardware writes straight into pages
 * the reader has mapped, and nothing is overwritten that the reader has not
 * released, unless the reader asked for a flight recorder.
 *
 * How it is mapped (struct perf_event_mmap_page): the reader writes
 * aux_offset (past the ring's data area) and aux_size (a power of two of
 * pages) into the ring's control page, then maps the event fd at that offset.
 * Mapped writable, the area is in full-trace mode: the kernel stops writing
 * (and flags the next AUX record TRUNCATED) rather than overwrite bytes the
 * reader has not released by moving aux_tail. Mapped read-only, it is in
 * snapshot mode: the PMU keeps overwriting, and the reader copies what is
 * there when it wants (perf's `-S`).
 *
 * aux_head is read with Atomics.load before the bytes it covers are read,
 * aux_tail published with Atomics.store after (the same contract as the
 * ring's data_head/data_tail, ring.ts).
 * @module
 */
import { runtime } from "../../ffi/platform.ts";
import * as pe from "../../ffi/perf_event.ts";
import * as m from "../../ffi/mman.ts";
import { check, libc, PAGE_SIZE } from "../libc.ts";
import { UmmuError } from "../errors.ts";

const AUX_HEAD = pe.PERF_MMAP_PAGE_OFF.aux_head / 8;
const AUX_TAIL = pe.PERF_MMAP_PAGE_OFF.aux_tail / 8;
const AUX_OFFSET = pe.PERF_MMAP_PAGE_OFF.aux_offset / 8;
const AUX_SIZE = pe.PERF_MMAP_PAGE_OFF.aux_size / 8;

/** How the AUX area of a ring is made. */
export interface PerfAuxOptions {
  /** Pages, a power of two (default 64: 256 KiB). */
  pages?: number;
  /**
   * A flight recorder (perf's snapshot mode): the PMU overwrites the oldest
   * data and snapshot() copies what the area holds. Default false: full-trace
   * mode, read() in order, the kernel stops rather than overwrite.
   */
  snapshot?: boolean;
}

/**
 * Called with AUX data in stream order: `bytes` is a view of the mapped
 * area (valid only until the callback returns; copy what you keep) and
 * `offset` its position in the stream since the area was mapped.
 */
export type AuxChunkCallback = (bytes: Uint8Array, offset: number) => void;

/**
 * The chunks of a ring of `size` bytes that hold stream bytes [tail, head):
 * one, or two when they wrap past the end. Pure arithmetic, exported for its test.
 */
export function auxChunks(tail: number, head: number, size: number): [number, number][] {
  if (head <= tail) return [];
  const mask = size - 1;
  // More than a ring's worth cannot be in the ring: only its last `size` bytes are.
  const from = head - tail > size ? head - size : tail;
  const start = from & mask;
  const n = head - from;
  return start + n <= size ? [[start, n]] : [[start, size - start], [0, n - (size - start)]];
}

/** The AUX area of one ring. */
export class PerfAuxArea {
  /** Bytes of the area (a power of two). */
  readonly size: number;
  /** True in snapshot (overwrite) mode. */
  readonly snapshotMode: boolean;
  readonly #addr: number;
  readonly #ctl: BigUint64Array;
  readonly #data: Uint8Array;
  #tail: number;
  #unmapped = false;

  /**
   * Maps the AUX area of the event `fd` whose ring's control page is `ctl`
   * and whose ring (control page + data) is `ringBytes` long. Used by PerfRing.mapAux.
   */
  constructor(
    fd: number,
    ctl: BigUint64Array,
    ringBytes: number,
    pages: number,
    snapshot: boolean,
  ) {
    this.size = pages * PAGE_SIZE;
    this.snapshotMode = snapshot;
    this.#ctl = ctl;
    // The kernel reads these two words at mmap time; they must be set first.
    Atomics.store(ctl, AUX_OFFSET, BigInt(ringBytes));
    Atomics.store(ctl, AUX_SIZE, BigInt(this.size));
    const prot = snapshot ? m.PROT_READ : m.PROT_READ | m.PROT_WRITE;
    this.#addr = check(
      libc.mmap(0, this.size, prot, m.MAP_SHARED, fd, ringBytes),
      `mmap(perf AUX area, ${pages} pages at offset ${ringBytes})`,
      "EOPNOTSUPP: this event's PMU writes no AUX data (only tracing PMUs do: intel_pt, intel_bts, cs_etm, arm_spe); EINVAL: aux_offset overlaps the ring or the size is not a power of two of pages; ENOMEM/EPERM: the AUX area is locked memory like the ring (kernel.perf_event_mlock_kb)",
    );
    this.#data = new Uint8Array(runtime.view(this.#addr, this.size));
    this.#tail = Number(Atomics.load(ctl, AUX_TAIL));
  }

  /** The stream position the PMU has written up to (aux_head). */
  get head(): number {
    return Number(Atomics.load(this.#ctl, AUX_HEAD));
  }

  /** Bytes written and not yet read (full-trace mode). */
  get pending(): number {
    return this.head - this.#tail;
  }

  /**
   * Full-trace mode: passes the bytes written since the last read to `each`
   * (one chunk, or two when they wrap), then releases them to the kernel by
   * publishing aux_tail. Returns how many bytes.
   */
  read(each: AuxChunkCallback): number {
    if (this.#unmapped) return 0;
    if (this.snapshotMode) {
      throw new UmmuError(
        "PerfAuxArea.read",
        22,
        "a snapshot-mode AUX area is read with snapshot()",
      );
    }
    // Atomics.load: the bytes below are read after aux_head (the contract's smp_rmb).
    const head = this.head;
    const chunks = auxChunks(this.#tail, head, this.size);
    // The stream offset of the first byte still in the area (auxChunks drops what was overrun).
    let at = head - chunks.reduce((sum, [, n]) => sum + n, 0);
    for (const [start, n] of chunks) {
      each(this.#data.subarray(start, start + n), at);
      at += n;
    }
    const n = head - this.#tail;
    this.#tail = head;
    // Atomics.store: every read above happens before the kernel may write there (the smp_mb).
    Atomics.store(this.#ctl, AUX_TAIL, BigInt(head));
    return n;
  }

  /**
   * Snapshot mode: a copy of what the area holds, oldest byte first, ending
   * at aux_head. Until the PMU has written a whole area this is the bytes up
   * to aux_head; after, the whole area rotated so that the newest byte is
   * last. Pause the event's output first (PerfEvent pauseOutput / the
   * aux_pause attr bits) if the PMU must not write during the copy.
   */
  snapshot(): Uint8Array {
    if (this.#unmapped) return new Uint8Array(0);
    const head = this.head;
    const out = new Uint8Array(Math.min(head, this.size));
    let p = 0;
    for (const [start, n] of auxChunks(Math.max(0, head - this.size), head, this.size)) {
      out.set(this.#data.subarray(start, start + n), p);
      p += n;
    }
    return out;
  }

  /** Unmaps the area (its ring unmaps it first, as perf does). Idempotent. */
  unmap(): void {
    if (this.#unmapped) return;
    this.#unmapped = true;
    libc.munmap(this.#addr, this.size);
  }
}
