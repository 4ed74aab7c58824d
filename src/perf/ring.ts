/**
 * The perf ring buffer of one event fd: 1 + 2^n pages mapped shared, a
 * control page and a data area the kernel writes records into.
 *
 * The memory-ordering contract of <linux/perf_event.h> (struct
 * perf_event_mmap_page, data_head): the reader loads data_head, then reads
 * the records (an smp_rmb between), and publishes data_tail after it has
 * read them (an smp_mb before the store), so the kernel never overwrites
 * bytes still being read. Here data_head is read with Atomics.load and
 * data_tail written with Atomics.store on a BigUint64Array over the control
 * page: sequentially consistent accesses, which are at least those barriers.
 *
 * Forward mode (the default) loses nothing it has not said: when the reader
 * is slow the kernel drops records and writes a LOST record instead. The
 * overwrite mode (attr.writeBackward, mapped read-only) is a flight
 * recorder: the kernel keeps writing over the oldest records and the reader
 * takes a snapshot, newest first, with output paused while it reads.
 *
 * What a record callback gets: (bytes, offset, size) where `bytes` is either
 * the ring's data area itself or, for a record that wraps around the end of
 * the area, a scratch buffer the ring reuses. Both are valid only until the
 * callback returns: after that the kernel may overwrite the ring's bytes and
 * the next wrapping record the scratch. Copy what you keep.
 * @module
 */
import { runtime } from "../../ffi/platform.ts";
import * as pe from "../../ffi/perf_event.ts";
import * as m from "../../ffi/mman.ts";
import { check, libc, PAGE_SIZE } from "../libc.ts";
import { UmmuError } from "../errors.ts";
import { invalid } from "../validate.ts";
import { PerfAuxArea } from "./aux_area.ts";

const HEAD = pe.PERF_MMAP_PAGE_OFF.data_head / 8;
const TAIL = pe.PERF_MMAP_PAGE_OFF.data_tail / 8;
const MAX_RECORD = 0x10000;

/**
 * Called for each record: `bytes[offset .. offset + size)` is the record,
 * header included. Returning `false` stops the drain before this record
 * (it stays in the ring for the next drain).
 */
export type RecordCallback = (bytes: Uint8Array, offset: number, size: number) => void | boolean;

/** What another thread needs to read the same mapping (the ring's owner keeps it mapped). */
export interface RingShare {
  fd: number;
  address: number;
  length: number;
  dataPages: number;
}

/** The mapped ring of one perf event fd. */
export class PerfRing {
  /** The event fd this ring is mapped from (owned by the event, not the ring). */
  readonly fd: number;
  /** Bytes of the data area (a power of two). */
  readonly dataSize: number;
  /** True for a flight recorder (attr.writeBackward, read-only mapping). */
  readonly overwrite: boolean;
  readonly #addr: number;
  readonly #len: number;
  readonly #ctl: BigUint64Array;
  readonly #data: Uint8Array;
  readonly #dv: DataView;
  #scratch: Uint8Array | null = null;
  #tail = 0;
  #published = 0;
  #unmapped = false;
  /** Records the kernel reported dropped (PERF_RECORD_LOST), summed. */
  lost = 0;
  /** The AUX area beside this ring, once mapAux() mapped it. */
  aux: PerfAuxArea | null = null;

  readonly #dataPages: number;
  /** Whether this object mapped the ring (and unmaps it) or views another's mapping. */
  readonly #owner: boolean;

  /**
   * Maps `dataPages` (a power of two) + 1 pages of `fd`; or, given `share`,
   * views a mapping another thread made (for a Worker-hosted reader: the
   * owner unmaps it only after that reader has stopped).
   */
  constructor(fd: number, dataPages: number, overwrite: boolean, share?: RingShare) {
    this.fd = fd;
    this.overwrite = overwrite;
    this.#dataPages = dataPages;
    this.#len = (1 + dataPages) * PAGE_SIZE;
    this.#owner = share === undefined;
    const prot = overwrite ? m.PROT_READ : m.PROT_READ | m.PROT_WRITE;
    this.#addr = share?.address ?? check(
      libc.mmap(0, this.#len, prot, m.MAP_SHARED, fd, 0),
      `mmap(perf ring, ${dataPages} + 1 pages)`,
      "each perf ring is locked memory: kernel.perf_event_mlock_kb (default 516 KiB per user, more for CAP_IPC_LOCK) bounds the total; use fewer pages, or raise the sysctl",
    );
    const ab = runtime.view(this.#addr, this.#len);
    this.#ctl = new BigUint64Array(ab, 0, PAGE_SIZE / 8);
    const ctl = new DataView(ab, 0, PAGE_SIZE);
    const off = Number(ctl.getBigUint64(pe.PERF_MMAP_PAGE_OFF.data_offset, true)) || PAGE_SIZE;
    this.dataSize = Number(ctl.getBigUint64(pe.PERF_MMAP_PAGE_OFF.data_size, true)) ||
      dataPages * PAGE_SIZE;
    this.#data = new Uint8Array(ab, off, this.dataSize);
    this.#dv = new DataView(ab, off, this.dataSize);
    this.#tail = Number(Atomics.load(this.#ctl, TAIL));
    this.#published = this.#tail;
  }

  /** What a Worker needs to read this ring (forward mode) while this object keeps it mapped. */
  get share(): RingShare {
    return { fd: this.fd, address: this.#addr, length: this.#len, dataPages: this.#dataPages };
  }

  /** Bytes written and not yet read (forward mode). */
  get pending(): number {
    return Number(Atomics.load(this.#ctl, HEAD)) - this.#tail;
  }

  /**
   * Reads every record the kernel has published, oldest first, calling
   * `each` for each (at most `max`); returns how many. Frees the space as it
   * goes (data_tail is published every quarter ring and at the end), so a
   * long drain does not make the kernel drop records.
   */
  drain(each: RecordCallback, max = Infinity): number {
    if (this.#unmapped) return 0;
    if (this.overwrite) {
      throw new UmmuError("PerfRing.drain", 22, "an overwrite ring is read with snapshot()");
    }
    const size = this.dataSize;
    const mask = size - 1;
    // Atomics.load: the records below are read after head (the smp_rmb of the contract).
    const head = Number(Atomics.load(this.#ctl, HEAD));
    let tail = this.#tail;
    let n = 0;
    const quarter = size >>> 2;
    while (tail < head && n < max) {
      const start = tail & mask;
      let recSize: number;
      let type: number;
      if (start + 8 <= size) {
        type = this.#dv.getUint32(start, true);
        recSize = this.#dv.getUint16(start + 6, true);
      } else {
        const s = this.#copy(start, 8);
        type = s[0] | s[1] << 8 | s[2] << 16 | s[3] << 24;
        recSize = s[6] | s[7] << 8;
      }
      if (recSize < 8 || tail + recSize > head) {
        // Not a record the kernel could have written: skip what was published, say so.
        this.lost++;
        tail = head;
        break;
      }
      if (start + recSize <= size) {
        if (type === pe.PERF_RECORD_LOST) {
          this.lost += Number(this.#dv.getBigUint64(start + 16, true));
        }
        each(this.#data, start, recSize);
      } else {
        const s = this.#copy(start, recSize);
        if (type === pe.PERF_RECORD_LOST) {
          this.lost += Number(new DataView(s.buffer, 0, recSize).getBigUint64(16, true));
        }
        each(s, 0, recSize);
      }
      tail += recSize;
      n++;
      if (tail - this.#published >= quarter) this.#publish(tail);
    }
    this.#tail = tail;
    this.#publish(tail);
    return n;
  }

  /**
   * Overwrite mode: pauses output, reads the records from the newest back to
   * the oldest still in the ring (at most one ring's worth), resumes output.
   * Returns how many. Forward mode: the same as drain().
   */
  snapshot(each: RecordCallback, max = Infinity): number {
    if (!this.overwrite) return this.drain(each, max);
    if (this.#unmapped) return 0;
    const size = this.dataSize;
    const mask = size - 1;
    check(
      libc.ioctl_int(this.fd, pe.PERF_EVENT_IOC_PAUSE_OUTPUT, 1),
      "ioctl(PERF_EVENT_IOC_PAUSE_OUTPUT, 1)",
    );
    try {
      // With write_backward the head moves down from 0: as a signed number, -bytes written.
      const head = Number(BigInt.asIntN(64, Atomics.load(this.#ctl, HEAD)));
      let pos = head;
      let n = 0;
      while (n < max && pos - head < size) {
        const start = ((pos % size) + size) & mask;
        const hdr = start + 8 <= size ? null : this.#copy(start, 8);
        const recSize = hdr ? (hdr[6] | hdr[7] << 8) : this.#dv.getUint16(start + 6, true);
        // An empty header: the ring has not been filled this far yet.
        if (recSize < 8 || pos - head + recSize > size) break;
        const stop = start + recSize <= size
          ? each(this.#data, start, recSize)
          : each(this.#copy(start, recSize), 0, recSize);
        if (stop === false) break;
        pos += recSize;
        n++;
      }
      return n;
    } finally {
      libc.ioctl_int(this.fd, pe.PERF_EVENT_IOC_PAUSE_OUTPUT, 0);
    }
  }

  #publish(tail: number): void {
    if (tail === this.#published) return;
    // Atomics.store: every read above happens before the kernel sees the space free (the smp_mb).
    Atomics.store(this.#ctl, TAIL, BigInt(tail));
    this.#published = tail;
  }

  /** `n` bytes from ring offset `start`, wrapping, into the reused scratch buffer. */
  #copy(start: number, n: number): Uint8Array {
    const s = this.#scratch ??= new Uint8Array(MAX_RECORD);
    const first = Math.min(n, this.dataSize - start);
    s.set(this.#data.subarray(start, start + first), 0);
    if (n > first) s.set(this.#data.subarray(0, n - first), first);
    return s;
  }

  /**
   * Maps the AUX area of this ring's event (a tracing PMU's data: Intel PT,
   * BTS), `pages` a power of two, read-only in snapshot mode. See aux_area.ts.
   */
  mapAux(pages: number, snapshot: boolean): PerfAuxArea {
    if (this.#unmapped || !this.#owner) {
      throw new UmmuError("PerfRing.mapAux", 22, "the ring is unmapped, or a view of another's");
    }
    if (this.aux) throw new UmmuError("PerfRing.mapAux", 17, "this ring's AUX area is mapped");
    if (!Number.isSafeInteger(pages) || pages < 1 || pages > 1 << 20 || (pages & (pages - 1))) {
      invalid("PerfRing.mapAux pages", pages, "a power of two of pages in 1..2^20");
    }
    if (typeof snapshot !== "boolean") invalid("PerfRing.mapAux snapshot", snapshot, "a boolean");
    this.aux = new PerfAuxArea(this.fd, this.#ctl, this.#len, pages, snapshot);
    return this.aux;
  }

  /** Unmaps the ring and its AUX area (the fd stays open: its event owns it); a viewer only stops reading. Idempotent. */
  unmap(): void {
    if (this.#unmapped) return;
    this.#unmapped = true;
    this.aux?.unmap();
    if (this.#owner) libc.munmap(this.#addr, this.#len);
  }
}
