/**
 * The userfaultfd backend's monitor Worker: reads the non-cooperative events
 * (UNMAP, REMOVE, REMAP) of the ranges registered on the uffd and applies
 * each as one invalidation to the shared table (queue.ts).
 *
 * Rules it keeps:
 * - BUSY is published before every read(2) that can take an event: the
 *   thread that unmapped is released by that read, and its next changed()
 *   must see the change (it sees BUSY and waits for publish()).
 * - It never waits on the owning thread: events are read off the uffd (which
 *   releases their threads) before the table lock is taken, and while the
 *   lock is busy it keeps reading. The owner never blocks while holding it.
 * - It touches no watched memory and allocates nothing per event on its loop
 *   (64-bit fields are read as two 32-bit halves).
 * - If it fails, it closes the uffd (every blocked unmapper returns) and
 *   marks the counter DEAD.
 */
import * as u from "../../ffi/userfaultfd.ts";
import * as m from "../../ffi/mman.ts";
import { errno, libc, pollPair } from "../libc.ts";
import {
  CTL,
  RegionTable,
  STATE_FAILED,
  STATE_RUNNING,
  STATE_STOPPED,
  type TableBuffers,
} from "./queue.ts";
import { announceLoaded, onWorkerMessage, postFromWorker } from "../worker.ts";
import { FdControl, type FdShare } from "../fd_control.ts";

/** The owner grew the table: a larger data buffer to adopt (see RegionTable.adoptLocked). */
export interface AdoptMessage {
  type: "adopt";
  data: SharedArrayBuffer;
  cap: number;
}

/** The init message from uffd_backend.ts. */
export interface MonitorInit {
  type: "init";
  /** The userfaultfd and its control: every call on the fd is bracketed, so a closed number is never used. */
  uffd: FdShare;
  wakeFd: number;
  buffers: TableBuffers;
  pageSize: number;
  /** Keep polling (poll with timeout 0) this long after the last event before sleeping. */
  spinMicros: number;
  /** Tests only: skip the BUSY marker, to show that the no-window stress test catches the window. */
  unsafeNoBusyMarker?: boolean;
}

const EAGAIN = 11, EINTR = 4;
const MSG = u.SIZEOF_UFFD_MSG;
const BATCH = 64;
const TWO32 = 2 ** 32;
const O = u.UFFD_MSG_OFF;

/** Data buffers posted by the owner, in order; and who waits for the next. */
const adoptions: AdoptMessage[] = [];
let adoptionArrived: (() => void) | null = null;

async function nextAdoption(): Promise<AdoptMessage> {
  while (adoptions.length === 0) await new Promise<void>((r) => (adoptionArrived = r));
  return adoptions.shift()!;
}

const ADOPT = 2;
/**
 * poll(2) returns at least this often even with nothing to read: a thread in a
 * system call cannot be terminated, and Node joins Worker threads at exit, so
 * the Worker comes back to JavaScript (where terminate() takes effect) even if
 * a wake-up through the eventfd were ever missed (as every library Worker does).
 */
const IDLE_POLL_MS = 1000;

async function run(init: MonitorInit, control: FdControl): Promise<void> {
  const { wakeFd } = init;
  const uffd = control.fd;
  const table = new RegionTable(init.buffers);
  const ctl = table.i32;
  const msgs = new Uint8Array(MSG * BATCH);
  const mdv = new DataView(msgs.buffer);
  const eventfdBuf = new Uint8Array(8);
  const arg = new Uint8Array(u.SIZEOF_UFFDIO_WRITEPROTECT);
  const adv = new DataView(arg.buffer);
  const pollfds = pollPair(uffd, wakeFd);
  const pdv = new DataView(pollfds.buffer);
  // Invalidations read but not yet applied (start, end pairs): filled while the lock is busy.
  let pending = new Float64Array(2 * BATCH * 4);
  let npending = 0;

  const get64 = (off: number) => mdv.getUint32(off, true) + mdv.getUint32(off + 4, true) * TWO32;

  function push(start: number, end: number): void {
    if (npending * 2 + 2 > pending.length) {
      const bigger = new Float64Array(pending.length * 2);
      bigger.set(pending);
      pending = bigger;
    }
    pending[npending * 2] = start;
    pending[npending * 2 + 1] = end;
    npending++;
  }

  /** Reads every message ready (non-blocking). Returns how many were read. */
  function readAll(): number {
    let total = 0;
    for (;;) {
      const n = libc.read(uffd, msgs, msgs.length);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN || e === EINTR) return total;
        throw new Error(`read(userfaultfd) failed: errno ${e}`);
      }
      for (let off = 0; off < n; off += MSG) {
        const type = msgs[off + O.event];
        if (type === u.UFFD_EVENT_UNMAP || type === u.UFFD_EVENT_REMOVE) {
          push(get64(off + O.remove_start), get64(off + O.remove_end));
        } else if (type === u.UFFD_EVENT_REMAP) {
          const from = get64(off + O.remap_from),
            to = get64(off + O.remap_to),
            len = get64(off + O.remap_len);
          push(from, from + len);
          // The moved vmas stay registered on our uffd at `to`: the owner unregisters what no one watches.
          table.pushStale(to, len);
        } else if (type === u.UFFD_EVENT_PAGEFAULT) {
          // Never expected (no page is write-protected, no MISSING mode): unblock it anyway.
          const addr = get64(off + O.pagefault_address);
          const page = addr - (addr % init.pageSize);
          adv.setUint32(0, page >>> 0, true);
          adv.setUint32(4, Math.floor(page / TWO32), true);
          adv.setUint32(8, init.pageSize, true);
          adv.setUint32(12, 0, true);
          adv.setUint32(16, 0, true); // mode 0: un-write-protect and wake
          adv.setUint32(20, 0, true);
          libc.ioctl(uffd, u.UFFDIO_WRITEPROTECT, arg);
        } else if (type === u.UFFD_EVENT_FORK) {
          libc.close(mdv.getUint32(off + O.fork_ufd, true)); // not requested; never leak it
        }
      }
      total += n / MSG;
      Atomics.add(ctl, CTL.messages, n / MSG);
      if (n < msgs.length) return total;
    }
  }

  /** Applies the pending invalidations under the table lock, reading on while the owner holds it. */
  function apply(): void {
    while (!table.tryLock()) {
      readAll();
      table.waitLock(0.05);
    }
    let hits = 0;
    try {
      for (let i = 0; i < npending; i++) {
        if (table.invalidateLocked(pending[2 * i], pending[2 * i + 1])) hits++;
      }
    } finally {
      table.unlock();
    }
    npending = 0;
    if (hits) Atomics.add(ctl, CTL.hits, hits);
  }

  Atomics.store(ctl, CTL.state, STATE_RUNNING);
  Atomics.notify(ctl, CTL.state);
  table.publish();
  postFromWorker({ type: "ready" });

  const spinMs = init.spinMicros / 1000;
  const noBusy = init.unsafeNoBusyMarker === true;
  let timeout = IDLE_POLL_MS;
  let spinUntil = 0;

  /**
   * One wakeup: false when told to stop. The loop body is its own function
   * so that V8 optimizes it as an ordinary hot function, not by on-stack
   * replacement of a never-ending loop (which it kept recompiling).
   */
  function step(): boolean | typeof ADOPT {
    // Every call on the uffd happens inside enter()/leave(): once the owner closed it, none.
    if (!control.enter()) return false;
    try {
      return stepOpen();
    } finally {
      control.leave();
    }
  }

  function stepOpen(): boolean | typeof ADOPT {
    pdv.setInt16(6, 0, true);
    pdv.setInt16(14, 0, true);
    const r = libc.poll(pollfds, 2, timeout);
    if (r < 0) {
      if (errno() === EINTR) return true;
      throw new Error(`poll failed: errno ${errno()}`);
    }
    if (r === 0) {
      // Spinning: poll(…, 0) found nothing.
      if (performance.now() < spinUntil) libc.sched_yield();
      else timeout = IDLE_POLL_MS;
      return true;
    }
    if (pdv.getInt16(14, true) !== 0) {
      libc.read(wakeFd, eventfdBuf, 8);
      if (Atomics.load(ctl, CTL.crash)) throw new Error("monitor crash requested (test hook)");
      if (Atomics.load(ctl, CTL.stop)) return false;
      if (Atomics.load(ctl, CTL.adoptCap) !== table.capacity) return ADOPT;
    }
    const ur = pdv.getInt16(6, true);
    if (ur & (m.POLLERR | m.POLLNVAL)) throw new Error("userfaultfd poll error (closed?)");
    if (ur & m.POLLIN) {
      if (Atomics.load(ctl, CTL.stop)) return false;
      if (!noBusy) table.markBusy(); // before read(2) releases anyone
      readAll();
      if (npending > 0) apply();
      table.publish();
      if (spinMs > 0) {
        spinUntil = performance.now() + spinMs;
        timeout = 0;
      }
    }
    return true;
  }

  for (;;) {
    const r = step();
    if (r === false) return;
    if (r === ADOPT) {
      // The owner grew the table and waits for us; its message is already on the way (it
      // was posted before the eventfd was signalled), so this waits for nobody else.
      // Events that come meanwhile stay queued; their threads wait this long only.
      const msg = await nextAdoption();
      while (!table.tryLock()) table.waitLock(0.05);
      try {
        table.adoptLocked(msg.data, msg.cap);
      } finally {
        table.unlock();
      }
      Atomics.add(ctl, CTL.adopted, 1);
      Atomics.notify(ctl, CTL.adopted);
    }
  }
}

onWorkerMessage<MonitorInit | AdoptMessage>(async (msg) => {
  if (msg.type === "adopt") {
    adoptions.push(msg);
    adoptionArrived?.();
    return;
  }
  const init = msg;
  const ctl = new Int32Array(init.buffers.control);
  const control = new FdControl(init.uffd);
  try {
    await run(init, control);
    Atomics.store(ctl, CTL.state, STATE_STOPPED);
    Atomics.notify(ctl, CTL.state);
    postFromWorker({ type: "stopped" });
  } catch (err) {
    // Nobody may stay blocked on an event this Worker can no longer read: close
    // the uffd (blocked unmappers return, the ranges are unregistered) unless
    // the owner already did, and answer "changed" to every check from now on.
    control.close(); // once: FdControl lets exactly one thread close the fd
    new RegionTable(init.buffers).markDead();
    Atomics.store(ctl, CTL.state, STATE_FAILED);
    Atomics.notify(ctl, CTL.state);
    postFromWorker({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
  }
});

announceLoaded();
