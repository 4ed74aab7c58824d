/**
 * The driver's registration table and report queue as a data structure over
 * SharedArrayBuffers, shared by the userfaultfd backend's monitor Worker
 * (which applies invalidations) and the owning thread (which registers,
 * unregisters and reads). The rules are kmod/ummunotify's:
 *
 * - one report slot per registration: the first invalidation queues it with
 *   HINT and the invalidated range clipped to the registration; a second
 *   before it is read clears HINT and widens it to the whole registration;
 * - one invalidation that overlaps several registrations queues one report
 *   each, in order of start address;
 * - the counter moves once per invalidation that overlapped at least one
 *   registration;
 * - a read drains the queue and, when it emptied it with room to spare, ends
 *   with LAST carrying the counter; if there was no room the LAST is owed;
 * - unregister drops the registration's queued report.
 *
 * Concurrency: every access to the slots, the sorted index and the queue
 * happens under one lock word (a futex-style mutex on the control buffer).
 * Neither side ever blocks in a system call while holding it. Only the owner
 * writes start/end and the sorted index, so it may read those without the
 * lock. The published counter word is separate (see the counter protocol at
 * the end of this file and counter.ts).
 */

/** Control buffer: BigInt64 words. */
export const BIG = {
  /** The counter as readers see it: the generation, or it with BUSY/DEAD flag bits set. */
  published: 0,
} as const;

/** Control buffer: Int32 words (indices into an Int32Array over the same buffer). */
export const CTL = {
  /** Bumped and notified at every publish of the counter (Atomics.wait/waitAsync here). */
  seq: 4,
  /** 0 free, 1 locked, 2 locked with waiters. */
  lock: 5,
  /** Monitor state: STATE_*. */
  state: 6,
  /** Set by the owner: the monitor stops at its next wakeup. */
  stop: 7,
  /** Live registrations. */
  nlive: 8,
  /** Queue head and tail slots, -1 when empty. */
  head: 9,
  tail: 10,
  /** A read took INVALs without room for the LAST: the next read returns it. */
  needLast: 11,
  /** Slots the table has room for (grows by doubling up to the cap). */
  cap: 12,
  /** Remap destinations the owner should unregister: ring write/read indices. */
  staleW: 13,
  staleR: 14,
  /** Test hook: the monitor throws at its next wakeup. */
  crash: 15,
  /** uffd messages read, and how many hit at least one registration. */
  messages: 16,
  hits: 17,
  /** Growth: the capacity of the data buffer the owner posted, and the monitor's count of adoptions. */
  adoptCap: 19,
  adopted: 20,
  /** TABLE_MAGIC: tells a counter handle's control buffer from any other SharedArrayBuffer. */
  magic: 21,
} as const;

/** CTL.magic of every control buffer ("umnt"). */
export const TABLE_MAGIC = 0x756d6e74;

/** Control buffer: Float64 words. */
export const F64 = {
  /** Upper bound of (end - start) over live registrations (lookup window). */
  maxLen: 16,
  /**
   * The generation, owned by the lock: a Number (exact to 2^53, centuries of
   * invalidations), so the monitor's hot path does no BigInt arithmetic; it
   * becomes a BigInt only where it is published.
   */
  gen: 17,
  /** Stale ring: STALE_SLOTS pairs (start, length) from this index on. */
  stale: 32,
} as const;

export const STALE_SLOTS = 32;
export const CONTROL_BYTES = (F64.stale + 2 * STALE_SLOTS) * 8;

export const STATE_STARTING = 0;
export const STATE_RUNNING = 1;
export const STATE_STOPPED = 2;
export const STATE_FAILED = 3;

/** Flag bits of the published counter (generation in bits 0..61). */
export const BUSY = -(1n << 63n);
export const DEAD_BIT = 1n << 62n;
export const GEN_MASK = DEAD_BIT - 1n;

// Slot fields.
const SF = 4; // Float64 per slot: start, end, hintStart, hintEnd
const F_START = 0, F_END = 1, F_HS = 2, F_HE = 3;
const SI = 4; // Int32 per slot: live, queued, next, prev (hint flag folded into queued: 1 hint, 2 no hint)
const I_LIVE = 0, I_QUEUED = 1, I_NEXT = 2, I_PREV = 3;
const Q_NONE = 0, Q_HINT = 1, Q_WHOLE = 2;

const INITIAL_SLOTS = 64;

/**
 * The shared buffers of one table (postMessage them to the monitor). The
 * slots live in one fixed-size `data` buffer for `CTL.cap` slots; growing
 * means a new, larger one that the monitor adopts (see adoptLocked). Fixed
 * and small: a notifier with few registrations allocates a few KiB from the
 * runtime's heap, and no mapping that only a garbage collection would free.
 */
export interface TableBuffers {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  /** Maximum registrations (ENOSPC beyond). */
  maxRegistrations: number;
}

/** Bytes of a data buffer for `cap` slots: Float64 fields, then Int32 fields, then the sorted order. */
export function dataBytes(cap: number): number {
  return cap * (SF * 8 + SI * 4 + 4);
}

/** Allocates the buffers of an empty table. */
export function createTableBuffers(maxRegistrations: number): TableBuffers {
  const first = Math.min(INITIAL_SLOTS, maxRegistrations);
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const i32 = new Int32Array(control);
  i32[CTL.head] = -1;
  i32[CTL.tail] = -1;
  i32[CTL.cap] = first;
  i32[CTL.adoptCap] = first;
  i32[CTL.magic] = TABLE_MAGIC;
  return { control, data: new SharedArrayBuffer(dataBytes(first)), maxRegistrations };
}

/** True if `control` is a table's control buffer (the right size, with the magic). */
export function isTableControl(control: unknown): control is SharedArrayBuffer {
  return control instanceof SharedArrayBuffer && control.byteLength === CONTROL_BYTES &&
    Atomics.load(new Int32Array(control), CTL.magic) === TABLE_MAGIC;
}

/** The capacity after `cap` when a slot beyond it is needed (doubling, up to the cap). */
export function nextCapacity(cap: number, max: number): number {
  return Math.min(cap * 2, max);
}

/**
 * One view of a table. Both sides construct one from the same buffers; the
 * methods say which side calls them.
 */
export class RegionTable {
  readonly i32: Int32Array;
  readonly big: BigInt64Array;
  readonly f64: Float64Array;
  #sf!: Float64Array;
  #si!: Int32Array;
  #order!: Int32Array;
  #data: SharedArrayBuffer;
  readonly #buffers: TableBuffers;

  constructor(buffers: TableBuffers) {
    this.#buffers = buffers;
    this.#data = buffers.data;
    this.i32 = new Int32Array(buffers.control);
    this.big = new BigInt64Array(buffers.control);
    this.f64 = new Float64Array(buffers.control);
    this.#views(this.i32[CTL.cap]);
  }

  #views(cap: number): void {
    this.#sf = new Float64Array(this.#data, 0, cap * SF);
    this.#si = new Int32Array(this.#data, cap * SF * 8, cap * SI);
    this.#order = new Int32Array(this.#data, cap * (SF * 8 + SI * 4), cap);
  }

  /** Slots the data buffer in use has room for. */
  get capacity(): number {
    return this.#order.length;
  }

  /**
   * Monitor, under the lock: copies everything into `data` (room for `cap`
   * slots) and uses it from now on. The owner prepared it and waits.
   */
  adoptLocked(data: SharedArrayBuffer, cap: number): void {
    const old = { sf: this.#sf, si: this.#si, order: this.#order };
    this.#data = data;
    this.#views(cap);
    this.#sf.set(old.sf);
    this.#si.set(old.si);
    this.#order.set(old.order);
    Atomics.store(this.i32, CTL.cap, cap);
  }

  /** Owner, once the monitor adopted `data`: use it too (no copy: the monitor made it). */
  switchTo(data: SharedArrayBuffer, cap: number): void {
    this.#data = data;
    this.#views(cap);
    this.#buffers.data = data;
  }

  get buffers(): TableBuffers {
    return this.#buffers;
  }

  // ---- the lock -------------------------------------------------------------------------------

  /** Takes the lock, sleeping while the other side holds it (it never blocks while holding it). */
  lock(): void {
    const w = this.i32;
    let c = Atomics.compareExchange(w, CTL.lock, 0, 1);
    if (c === 0) return;
    for (let spin = 0; spin < 100; spin++) {
      c = Atomics.compareExchange(w, CTL.lock, 0, 1);
      if (c === 0) return;
    }
    do {
      if (c === 2 || Atomics.compareExchange(w, CTL.lock, 1, 2) !== 0) {
        Atomics.wait(w, CTL.lock, 2, 50);
      }
    } while ((c = Atomics.compareExchange(w, CTL.lock, 0, 2)) !== 0);
  }

  /** Takes the lock if it is free. */
  tryLock(): boolean {
    return Atomics.compareExchange(this.i32, CTL.lock, 0, 1) === 0;
  }

  /** Marks the lock contended and sleeps up to `ms` for it (the monitor, between reads). */
  waitLock(ms: number): void {
    const w = this.i32;
    if (Atomics.compareExchange(w, CTL.lock, 1, 2) !== 0 || Atomics.load(w, CTL.lock) === 2) {
      Atomics.wait(w, CTL.lock, 2, ms);
    }
  }

  unlock(): void {
    if (Atomics.sub(this.i32, CTL.lock, 1) !== 1) {
      Atomics.store(this.i32, CTL.lock, 0);
      Atomics.notify(this.i32, CTL.lock, 1);
    }
  }

  // ---- owner side -----------------------------------------------------------------------------

  /** Live registrations. */
  get count(): number {
    return Atomics.load(this.i32, CTL.nlive);
  }

  /** Adds a registration in a free `slot` (under the lock); the caller enforces the cap. */
  insert(slot: number, start: number, end: number): void {
    this.lock();
    try {
      if (slot >= this.capacity) {
        throw new RangeError(`ummunotify table: slot ${slot} beyond the capacity ${this.capacity}`);
      }
      const sf = this.#sf, si = this.#si, b = slot * SF, bi = slot * SI;
      sf[b + F_START] = start;
      sf[b + F_END] = end;
      sf[b + F_HS] = 0;
      sf[b + F_HE] = 0;
      si[bi + I_LIVE] = 1;
      si[bi + I_QUEUED] = Q_NONE;
      si[bi + I_NEXT] = -1;
      si[bi + I_PREV] = -1;
      const n = this.i32[CTL.nlive];
      // After every registration with the same start: equal starts keep registration order.
      const at = this.#firstStartAbove(start, n);
      this.#order.copyWithin(at + 1, at, n);
      this.#order[at] = slot;
      this.i32[CTL.nlive] = n + 1;
      if (end - start > this.f64[F64.maxLen]) this.f64[F64.maxLen] = end - start;
    } finally {
      this.unlock();
    }
  }

  /** Removes a live registration and its queued report (under the lock). */
  remove(slot: number): void {
    this.lock();
    try {
      const si = this.#si, bi = slot * SI;
      const start = this.#sf[slot * SF + F_START];
      const n = this.i32[CTL.nlive];
      let at = this.#firstStartAtLeast(start, n);
      while (at < n && this.#order[at] !== slot) at++;
      if (at === n) throw new Error(`ummunotify table: slot ${slot} is not live`);
      this.#order.copyWithin(at, at + 1, n);
      this.i32[CTL.nlive] = n - 1;
      if (si[bi + I_QUEUED] !== Q_NONE) this.#unqueue(slot);
      si[bi + I_LIVE] = 0;
      if (n === 1) this.f64[F64.maxLen] = 0;
    } finally {
      this.unlock();
    }
  }

  /** Start and end of a live slot (owner: no lock needed, it is the only writer). */
  range(slot: number): [number, number] {
    return [this.#sf[slot * SF + F_START], this.#sf[slot * SF + F_END]];
  }

  /** True if a read would return something: a queued report, or an owed LAST. */
  readable(): boolean {
    return Atomics.load(this.i32, CTL.head) !== -1 || Atomics.load(this.i32, CTL.needLast) !== 0;
  }

  /**
   * Moves up to `room` events into `dv` at `off` (32 bytes each), under the
   * lock: INVALs in queue order, then LAST if the queue emptied with room
   * left. Returns the number of events (0: nothing to read). `write`
   * encodes one event (a slot for an INVAL, the generation for the LAST).
   */
  drain(
    room: number,
    write: (
      index: number,
      last: boolean,
      hint: boolean,
      start: number,
      end: number,
      slotOrGen: number | bigint,
    ) => void,
  ): number {
    this.lock();
    try {
      const si = this.#si, sf = this.#sf, w = this.i32;
      let cur = w[CTL.head];
      if (cur === -1 && w[CTL.needLast] === 0) return 0;
      let n = 0;
      while (cur !== -1 && n < room) {
        const bi = cur * SI, b = cur * SF;
        write(n, false, si[bi + I_QUEUED] === Q_HINT, sf[b + F_HS], sf[b + F_HE], cur);
        const next = si[bi + I_NEXT];
        si[bi + I_QUEUED] = Q_NONE;
        si[bi + I_NEXT] = -1;
        si[bi + I_PREV] = -1;
        cur = next;
        n++;
      }
      Atomics.store(w, CTL.head, cur);
      if (cur === -1) Atomics.store(w, CTL.tail, -1);
      else si[cur * SI + I_PREV] = -1;
      const ninval = n;
      if (cur === -1 && n < room) {
        write(n, true, false, 0, 0, BigInt(this.f64[F64.gen]));
        n++;
        Atomics.store(w, CTL.needLast, 0);
      } else if (ninval > 0) {
        Atomics.store(w, CTL.needLast, 1);
      }
      return n;
    } finally {
      this.unlock();
    }
  }

  /**
   * The parts of [start, end) (page-aligned) that no live registration's
   * page-rounded range covers, as [start, end) pairs. Owner side, no lock.
   */
  uncovered(start: number, end: number, pageSize: number): Array<[number, number]> {
    const n = this.i32[CTL.nlive];
    const maxLen = this.f64[F64.maxLen];
    const covers: Array<[number, number]> = [];
    const hi = this.#firstStartAtLeast(end, n);
    const lo = this.#firstStartAbove(start - maxLen - pageSize, n);
    for (let i = lo; i < hi; i++) {
      const b = this.#order[i] * SF;
      const s = Math.floor(this.#sf[b + F_START] / pageSize) * pageSize;
      const e = Math.ceil(this.#sf[b + F_END] / pageSize) * pageSize;
      if (e > start && s < end) covers.push([Math.max(s, start), Math.min(e, end)]);
    }
    covers.sort((a, b) => a[0] - b[0]);
    const out: Array<[number, number]> = [];
    let at = start;
    for (const [s, e] of covers) {
      if (s > at) out.push([at, s]);
      if (e > at) at = e;
    }
    if (at < end) out.push([at, end]);
    return out;
  }

  /** Drains the stale ring (remap destinations still registered with the uffd). */
  takeStale(): Array<[number, number]> {
    const w = this.i32;
    const out: Array<[number, number]> = [];
    let r = Atomics.load(w, CTL.staleR);
    const wr = Atomics.load(w, CTL.staleW);
    while (r !== wr) {
      const k = F64.stale + 2 * (r % STALE_SLOTS);
      out.push([this.f64[k], this.f64[k + 1]]);
      r = (r + 1) | 0;
    }
    Atomics.store(w, CTL.staleR, r);
    return out;
  }

  // ---- monitor side ---------------------------------------------------------------------------

  /**
   * Applies one invalidation of [start, end) (under the lock, which the
   * caller holds). Returns true if it overlapped a registration (the
   * generation moved).
   */
  invalidateLocked(start: number, end: number): boolean {
    const n = this.i32[CTL.nlive];
    if (n === 0 || end <= start) return false;
    const sf = this.#sf, si = this.#si, order = this.#order;
    const hi = this.#firstStartAtLeast(end, n);
    const lo = this.#firstStartAbove(start - this.f64[F64.maxLen], n);
    let hit = false;
    for (let i = lo; i < hi; i++) {
      const slot = order[i], b = slot * SF, bi = slot * SI;
      const rs = sf[b + F_START], re = sf[b + F_END];
      if (re <= start) continue;
      hit = true;
      if (si[bi + I_QUEUED] === Q_NONE) {
        si[bi + I_QUEUED] = Q_HINT;
        sf[b + F_HS] = rs > start ? rs : start;
        sf[b + F_HE] = re < end ? re : end;
        const tail = this.i32[CTL.tail];
        si[bi + I_PREV] = tail;
        si[bi + I_NEXT] = -1;
        if (tail === -1) Atomics.store(this.i32, CTL.head, slot);
        else si[tail * SI + I_NEXT] = slot;
        this.i32[CTL.tail] = slot;
      } else {
        si[bi + I_QUEUED] = Q_WHOLE;
        sf[b + F_HS] = rs;
        sf[b + F_HE] = re;
      }
    }
    if (hit) this.f64[F64.gen]++;
    return hit;
  }

  /** Records a remap destination for the owner to unregister (drops it if the ring is full). */
  pushStale(start: number, length: number): void {
    const w = this.i32;
    const wr = w[CTL.staleW];
    if (((wr - Atomics.load(w, CTL.staleR)) | 0) >= STALE_SLOTS) return;
    const k = F64.stale + 2 * (wr % STALE_SLOTS);
    this.f64[k] = start;
    this.f64[k + 1] = length;
    Atomics.store(w, CTL.staleW, (wr + 1) | 0);
  }

  // ---- the counter protocol -------------------------------------------------------------------

  /** Monitor: before read(2) takes events off the uffd, so a reader released by it waits for us. */
  markBusy(): void {
    Atomics.store(this.big, BIG.published, BigInt(this.f64[F64.gen]) | BUSY);
  }

  /** Monitor: publishes the generation (clears BUSY) and wakes waiters. */
  publish(): void {
    Atomics.store(this.big, BIG.published, BigInt(this.f64[F64.gen]));
    Atomics.add(this.i32, CTL.seq, 1);
    Atomics.notify(this.i32, CTL.seq);
  }

  /** Either side: nothing is watched any more; every changed() answers true from now on. */
  markDead(): void {
    Atomics.store(
      this.big,
      BIG.published,
      (BigInt(this.f64[F64.gen]) & GEN_MASK) | BUSY | DEAD_BIT,
    );
    Atomics.add(this.i32, CTL.seq, 1);
    Atomics.notify(this.i32, CTL.seq);
  }

  // ---- internals ------------------------------------------------------------------------------

  /** First index in the sorted order whose start is >= x. */
  #firstStartAtLeast(x: number, n: number): number {
    const order = this.#order, sf = this.#sf;
    let lo = 0, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sf[order[mid] * SF + F_START] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index in the sorted order whose start is > x. */
  #firstStartAbove(x: number, n: number): number {
    const order = this.#order, sf = this.#sf;
    let lo = 0, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sf[order[mid] * SF + F_START] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #unqueue(slot: number): void {
    const si = this.#si, bi = slot * SI, w = this.i32;
    const prev = si[bi + I_PREV], next = si[bi + I_NEXT];
    if (prev === -1) Atomics.store(w, CTL.head, next);
    else si[prev * SI + I_NEXT] = next;
    if (next === -1) w[CTL.tail] = prev;
    else si[next * SI + I_PREV] = prev;
    si[bi + I_QUEUED] = Q_NONE;
    si[bi + I_NEXT] = -1;
    si[bi + I_PREV] = -1;
  }
}
