/**
 * The Worker of a PerfWorkerReader: polls the rings' fds, drains each ring as
 * soon as the kernel wakes it (so the rings rarely fill while the main thread
 * is busy), and copies the records into the shared queue. When the queue is
 * full it stops draining: the ring fills and the kernel reports LOST records,
 * which reach the reader like any other record (nothing is dropped silently).
 *
 * The rings are the owner's mappings, viewed here; every drain is bracketed
 * by the ring fd's FdControl enter/leave, and the owner closes the fds (which
 * waits for a drain in flight) before it unmaps: this thread never reads a
 * ring that is gone.
 */
import { errno, libc, pollFds } from "../libc.ts";
import { announceLoaded, onWorkerMessage } from "../worker.ts";
import { FdControl, type FdShare } from "../fd_control.ts";
import { PerfRing, type RingShare } from "./ring.ts";
import {
  entrySize,
  FLUSH_DONE,
  FLUSH_REQ,
  HEAD,
  HUNG_UP,
  LOST,
  type QueueShare,
  RUNNING,
  STATE,
  STOPPED,
  TAIL,
  WRAP,
} from "./worker_reader_queue.ts";
import { POLLERR, POLLHUP, POLLIN } from "../../ffi/mman.ts";

/** The init message. */
export interface ReaderInit {
  rings: { ring: RingShare; control: FdShare }[];
  wakeFd: number;
  queue: QueueShare;
}

const EINTR = 4;

onWorkerMessage<ReaderInit>((init) => {
  const words = new Int32Array(init.queue.words);
  const data = new Uint8Array(init.queue.data);
  const dataView = new DataView(init.queue.data);
  const cap = data.length;
  const mask = cap - 1;
  const controls = init.rings.map((r) => new FdControl(r.control));
  // A view of a ring is made, like every read of it, only while its fd's control is entered:
  // the owner may have closed and unmapped it before this Worker got its first message.
  const rings: (PerfRing | null)[] = init.rings.map(() => null);
  const n = rings.length;
  const fds = pollFds([...init.rings.map((r) => r.ring.fd), init.wakeFd]);
  const pv = new DataView(fds.buffer);
  let head = Atomics.load(words, HEAD) >>> 0;
  let hungUp = 0;

  /** Copies one record into the queue; false when it does not fit (drain stops there). */
  const push = (bytes: Uint8Array, off: number, size: number): boolean => {
    const need = entrySize(size);
    const tail = Atomics.load(words, TAIL) >>> 0;
    let pos = head & mask;
    const wrap = pos + need > cap ? cap - pos : 0;
    if (((head - tail) >>> 0) + wrap + need > cap) return false;
    if (wrap) {
      if (cap - pos >= 4) dataView.setUint32(pos, WRAP, true);
      head = (head + wrap) >>> 0;
      pos = 0;
    }
    dataView.setUint32(pos, size, true);
    data.set(bytes.subarray(off, off + size), pos + 8);
    head = (head + need) >>> 0;
    return true;
  };
  const publish = () => {
    if ((Atomics.load(words, HEAD) >>> 0) !== head) {
      Atomics.store(words, HEAD, head | 0);
      Atomics.notify(words, HEAD);
    }
  };

  const eventfdValue = new Uint8Array(8);
  for (;;) {
    if (Atomics.load(words, STATE) !== RUNNING) break;
    const flushRequest = Atomics.load(words, FLUSH_REQ);
    let full = false;
    for (let i = 0; i < n; i++) {
      if (!controls[i].enter()) {
        Atomics.store(words, STATE, STOPPED);
        break;
      }
      try {
        const share = init.rings[i].ring;
        const ring = rings[i] ??= new PerfRing(share.fd, share.dataPages, false, share);
        const before = ring.lost;
        ring.drain((bytes, off, size) => {
          if (push(bytes, off, size)) return true;
          full = true;
          return false;
        });
        if (ring.lost !== before) Atomics.add(words, LOST, ring.lost - before);
      } finally {
        controls[i].leave();
      }
    }
    publish();
    // A drain pass answers a flush even when the queue filled (the reader must take first).
    if (Atomics.load(words, FLUSH_DONE) !== flushRequest) {
      Atomics.store(words, FLUSH_DONE, flushRequest);
      Atomics.notify(words, FLUSH_DONE);
    }
    if (Atomics.load(words, STATE) !== RUNNING) break;
    if (full) {
      // Wait for the reader to make room (bounded: come back to check STATE).
      Atomics.wait(words, TAIL, Atomics.load(words, TAIL), 200);
      continue;
    }
    if (hungUp === n) {
      Atomics.store(words, STATE, HUNG_UP);
      Atomics.notify(words, HEAD);
      // Every task exited: nothing more will come; wait to be stopped.
      while (Atomics.load(words, STATE) === HUNG_UP) Atomics.wait(words, STATE, HUNG_UP, 1000);
      break;
    }
    for (let i = 0; i <= n; i++) pv.setInt16(i * 8 + 6, 0, true);
    let entered = 0;
    for (; entered < n; entered++) if (!controls[entered].enter()) break;
    if (entered < n) {
      for (let j = 0; j < entered; j++) controls[j].leave();
      break;
    }
    // At most a second in poll(2): this thread must come back to JavaScript to be joined.
    const r = libc.poll(fds, n + 1, 1000);
    const e = r < 0 ? errno() : 0;
    for (const c of controls) c.leave();
    if (r < 0 && e !== EINTR) break;
    if (pv.getInt16(n * 8 + 6, true) !== 0) {
      // Woken: to stop, or to drain now (a flush); the eventfd is read to re-arm it.
      libc.read(init.wakeFd, eventfdValue, 8);
      if (Atomics.load(words, STATE) !== RUNNING) break;
    }
    for (let i = 0; i < n; i++) {
      const ev = pv.getInt16(i * 8 + 6, true);
      if (!(ev & POLLIN) && ev & (POLLHUP | POLLERR)) {
        pv.setInt32(i * 8, -1, true); // its task exited: poll it no more
        hungUp++;
      }
    }
  }
  if (Atomics.load(words, STATE) !== HUNG_UP) publish();
  Atomics.store(words, STATE, STOPPED);
  Atomics.notify(words, HEAD);
  Atomics.notify(words, STATE);
});

announceLoaded();
