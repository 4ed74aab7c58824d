/**
 * The fault-handler Worker. It owns no memory that can fault: it polls the
 * uffd and an eventfd, reads up to 64 messages per read(), and resolves each
 * fault with one ioctl from buffers allocated once. Numbers only on the hot
 * path: 64-bit fields are read and written as two 32-bit halves.
 */
import * as u from "../../ffi/userfaultfd.ts";
import * as m from "../../ffi/mman.ts";
import { runtime } from "../../ffi/platform.ts";
import { errno, libc, pollPair } from "../libc.ts";
import { decodeEvent } from "./events.ts";
import type { HandlerInit, HandlerMessage, RangeSpec } from "./protocol.ts";
import { COMMAND_SWEEP, STATE_FAILED, STATE_RUNNING, STATE_STOPPED, STATUS } from "./protocol.ts";
import type { PageSourceModule } from "./sources.ts";
import { announceLoaded, onWorkerMessage, postFromWorker } from "../worker.ts";

const EAGAIN = 11, EEXIST = 17, ENOENT = 2, ESRCH = 3, EINTR = 4;
const MSG = u.SIZEOF_UFFD_MSG;
const BATCH = 64;
const TWO32 = 2 ** 32;

const post = (msg: HandlerMessage) => postFromWorker(msg);

// 64-bit FFI parameters (the ioctl request, read's length, poll's nfds) are
// passed as BigInt constants made once: Deno's fast FFI path takes a 64-bit
// parameter only as a BigInt (a Number deoptimizes the caller and takes the
// slow path, ~110 ns more per call); Bun takes either at the same speed.
const REQ_COPY = BigInt(u.UFFDIO_COPY);
const REQ_ZEROPAGE = BigInt(u.UFFDIO_ZEROPAGE);
const REQ_WAKE = BigInt(u.UFFDIO_WAKE);
const REQ_WRITEPROTECT = BigInt(u.UFFDIO_WRITEPROTECT);
const REQ_CONTINUE = BigInt(u.UFFDIO_CONTINUE);
const REQ_POISON = BigInt(u.UFFDIO_POISON);
const REQ_MOVE = BigInt(u.UFFDIO_MOVE);
const requestArg = (request: number): bigint =>
  request === u.UFFDIO_COPY
    ? REQ_COPY
    : request === u.UFFDIO_ZEROPAGE
    ? REQ_ZEROPAGE
    : request === u.UFFDIO_CONTINUE
    ? REQ_CONTINUE
    : request === u.UFFDIO_POISON
    ? REQ_POISON
    : request === u.UFFDIO_MOVE
    ? REQ_MOVE
    : BigInt(request);
const BATCH_BYTES = BigInt(MSG * BATCH);
const NFDS = 2n;
const EIGHT = 8n;

function put64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v >>> 0, true);
  dv.setUint32(off + 4, Math.floor(v / TWO32), true);
}
function get64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * TWO32;
}
/** The signed result field of a resolving ioctl (bytes done, or -errno). */
function getS64(dv: DataView, off: number): number {
  return dv.getInt32(off + 4, true) * TWO32 + dv.getUint32(off, true);
}

interface Range extends RangeSpec {
  end: number;
  sharedAddr: number;
  module: PageSourceModule | null;
  view: Uint8Array | null; // the registered memory, for snapshots
  snapshotBytes: Uint8Array | null;
  resolved: Uint8Array; // one byte per page: 1 once resolved (bounds readahead)
  copied: Uint8Array; // snapshot ranges: 1 once the page's original bytes are in the snapshot
}

async function main(init: HandlerInit): Promise<void> {
  const { uffd, wakeFd } = init;
  const status = new Int32Array(init.status);
  const ranges: Range[] = [];
  // This Worker is the only writer of the counters: a plain read and an
  // atomic store publish each change (cheaper than a locked add, and ordered
  // before the ioctl that wakes a toucher).
  const bump = (i: number, n: number): void => {
    Atomics.store(status, i, (status[i] + n) | 0);
  };
  for (const r of init.ranges) {
    const range: Range = {
      ...r,
      end: r.start + r.length,
      sharedAddr: 0,
      module: null,
      view: null,
      snapshotBytes: r.snapshot ? new Uint8Array(r.snapshot) : null,
      resolved: new Uint8Array(r.length / r.pageSize),
      copied: new Uint8Array(r.snapshot ? r.length / r.pageSize : 0),
    };
    if (r.source.kind === "shared") {
      range.sharedAddr = runtime.addressOf(new Uint8Array(r.source.buffer)) +
        (r.source.offset ?? 0);
    } else if (r.source.kind === "module") {
      range.module = (await import(r.source.url)) as PageSourceModule;
      if (typeof range.module.fill !== "function") {
        throw new Error(`${r.source.url} does not export fill()`);
      }
      await range.module.init?.(r.source.options);
    }
    if (r.snapshot) range.view = new Uint8Array(runtime.view(r.start, r.length));
    ranges.push(range);
  }

  // Staging memory (mapped by the main side) for sources that produce bytes.
  const stagingAddr = init.staging;
  const staging = new Uint8Array(runtime.view(stagingAddr, init.stagingLength));

  const read = libc.read;
  const msgs = new Uint8Array(MSG * BATCH);
  const mdv = new DataView(msgs.buffer);
  const arg = new Uint8Array(64);
  const adv = new DataView(arg.buffer);
  // The ioctl argument as 32-bit words (x86_64 and arm64 are little-endian):
  // element stores are the cheapest way to pack it, and nothing is allocated.
  const a32 = new Uint32Array(arg.buffer);
  const pollfds = pollPair(uffd, wakeFd);
  const pdv = new DataView(pollfds.buffer);
  const eventBuf = new Uint8Array(8);

  // One resolving ioctl over [dst, dst+len); returns bytes done (>0), or -errno.
  // Every field is written, and the result field zeroed (the kernel leaves it
  // untouched when it rejects the arguments), so no fill() is needed.
  function resolve(request: number, dst: number, len: number, src: number, mode: number): number {
    a32[0] = dst >>> 0;
    a32[1] = (dst / TWO32) >>> 0;
    if (request === u.UFFDIO_COPY || request === u.UFFDIO_MOVE) {
      a32[2] = src >>> 0;
      a32[3] = (src / TWO32) >>> 0;
      a32[4] = len >>> 0;
      a32[5] = (len / TWO32) >>> 0;
      a32[6] = mode;
      a32[7] = 0;
      a32[8] = 0;
      a32[9] = 0;
      if (libc.ioctl(uffd, requestArg(request), arg) === 0) return len;
      const n = getS64(adv, 32);
      return n > 0 ? n : -errno();
    }
    a32[2] = len >>> 0;
    a32[3] = (len / TWO32) >>> 0;
    a32[4] = mode;
    a32[5] = 0;
    a32[6] = 0;
    a32[7] = 0;
    if (libc.ioctl(uffd, requestArg(request), arg) === 0) return len;
    const n = getS64(adv, 24);
    return n > 0 ? n : -errno();
  }

  function wake(dst: number, len: number): void {
    put64(adv, 0, dst);
    put64(adv, 8, len);
    libc.ioctl(uffd, REQ_WAKE, arg);
  }

  // Resolve [page, page+len) with a request, resuming partial progress and
  // skipping pages that are already there. Returns false if the range vanished.
  function resolveAll(
    request: number,
    page: number,
    len: number,
    src: number,
    mode: number,
    pageSize: number,
  ): boolean {
    let done = 0;
    let stalls = 0;
    while (done < len) {
      const r = resolve(request, page + done, len - done, src ? src + done : 0, mode);
      if (r > 0) {
        done += r;
      } else if (r === -EEXIST) {
        wake(page + done, pageSize);
        done += pageSize;
      } else if (r === -EAGAIN && stalls++ < 100_000) {
        // A non-cooperative event (another thread's munmap, madvise, mremap,
        // fork) is pending, and only this thread reads events: take them now
        // (faults among them are deferred), let that thread finish, retry.
        drainPending();
        libc.sched_yield();
      } else if (r === -ENOENT || r === -ESRCH || r === -EAGAIN) {
        return false; // unmapped or unregistered meanwhile: nothing waits on it any more
      } else {
        throw new Error(`resolving ioctl 0x${request.toString(16)} failed: errno ${-r}`);
      }
    }
    return true;
  }

  // A file source's pages into dest[0, len): synchronous, allocates nothing.
  function fillFromFile(range: Range, offset: number, dest: Uint8Array, len: number): void {
    const s = range.source as { path: string; offset?: number };
    const n = libc.pread(range.fileFd, dest, len, (s.offset ?? 0) + offset);
    if (n < 0) throw new Error(`pread(${s.path}) failed: errno ${errno()}`);
    if (n < len) dest.fill(0, n, len); // past the end of the file
  }

  // Zero pages: UFFDIO_ZEROPAGE, except on hugetlb (no zero huge page): COPY from zeroed staging.
  function zeroFill(page: number, len: number, pageSize = init.pageSize): boolean {
    if (pageSize === init.pageSize) return resolveAll(u.UFFDIO_ZEROPAGE, page, len, 0, 0, pageSize);
    staging.fill(0, 0, len);
    return resolveAll(u.UFFDIO_COPY, page, len, stagingAddr, 0, pageSize);
  }

  // MISSING: synchronous for the built-in sources (an await, even of a
  // non-promise, costs a microtask turn per fault); a Promise only for a
  // module source, whose fill() may be async.
  function onMissing(range: Range, page: number): Promise<void> | undefined {
    const pageSize = range.pageSize;
    const first = (page - range.start) / pageSize;
    // Readahead stops at the range end and at the first page already resolved.
    let count = 1;
    const limit = Math.min(range.readahead, range.resolved.length - first);
    while (count < limit && range.resolved[first + count] === 0) count++;
    const len = count * pageSize;
    const offset = page - range.start;
    const s = range.source;
    let ok: boolean;
    // Counted before the ioctl wakes the toucher, so its next read of stats is exact.
    bump(STATUS.pages, count);
    if (s.kind === "module") return onMissingModule(range, page, first, count, offset);
    try {
      if (s.kind === "zero") {
        ok = zeroFill(page, len, pageSize);
      } else if (s.kind === "shared") {
        const avail = s.buffer.byteLength - (s.offset ?? 0) - offset;
        if (avail >= len) {
          ok = resolveAll(u.UFFDIO_COPY, page, len, range.sharedAddr + offset, 0, pageSize);
        } else {
          const dest = staging.subarray(0, len);
          dest.fill(0);
          if (avail > 0) dest.set(new Uint8Array(s.buffer, (s.offset ?? 0) + offset, avail));
          ok = resolveAll(u.UFFDIO_COPY, page, len, stagingAddr, 0, pageSize);
        }
      } else {
        fillFromFile(range, offset, staging, len);
        ok = resolveAll(u.UFFDIO_COPY, page, len, stagingAddr, 0, pageSize);
      }
    } catch (e) {
      sourceFailed(range, page, first, count, offset, e);
      return;
    }
    missingDone(range, first, count, ok);
  }

  async function onMissingModule(
    range: Range,
    page: number,
    first: number,
    count: number,
    offset: number,
  ): Promise<void> {
    const len = count * range.pageSize;
    let ok: boolean;
    try {
      await range.module!.fill(offset, staging.subarray(0, len));
      ok = resolveAll(u.UFFDIO_COPY, page, len, stagingAddr, 0, range.pageSize);
    } catch (e) {
      sourceFailed(range, page, first, count, offset, e);
      return;
    }
    missingDone(range, first, count, ok);
  }

  function missingDone(range: Range, first: number, count: number, ok: boolean): void {
    if (ok) {
      if (count === 1) range.resolved[first] = 1;
      else range.resolved.fill(1, first, first + count);
    } else bump(STATUS.pages, -count);
  }

  // A source threw: report it, and resolve the faulting page as the policy says.
  function sourceFailed(
    range: Range,
    page: number,
    first: number,
    count: number,
    offset: number,
    e: unknown,
  ): void {
    const pageSize = range.pageSize;
    bump(STATUS.errors, 1);
    post({ type: "source-error", offset, message: e instanceof Error ? e.message : String(e) });
    bump(STATUS.pages, -count);
    if (init.onSourceError === "poison") {
      resolveAll(u.UFFDIO_POISON, page, pageSize, 0, 0, pageSize);
    } else zeroFill(page, pageSize);
    range.resolved[first] = 1;
  }

  // The snapshot is written by this thread only: a page is copied once, before any write lands.
  function copyOut(range: Range, off: number): void {
    const i = off / range.pageSize;
    if (range.copied[i]) return;
    range.snapshotBytes!.set(range.view!.subarray(off, off + range.pageSize), off);
    range.copied[i] = 1;
  }

  function unprotect(page: number, len: number): void {
    put64(adv, 0, page);
    put64(adv, 8, len);
    put64(adv, 16, 0); // mode 0: unprotect and wake
    for (let tries = 0; libc.ioctl(uffd, REQ_WRITEPROTECT, arg) !== 0; tries++) {
      const e = errno();
      if (e === ENOENT || e === ESRCH || (e === EAGAIN && tries > 100)) return;
      if (e !== EAGAIN) throw new Error(`UFFDIO_WRITEPROTECT failed: errno ${e}`);
    }
  }

  function sweep(): void {
    for (const r of ranges) {
      if (!r.snapshotBytes) continue;
      for (let off = 0; off < r.length; off += r.pageSize) copyOut(r, off);
      unprotect(r.start, r.length);
    }
  }

  function onWriteProtect(range: Range, page: number): void {
    if (range.snapshotBytes) copyOut(range, page - range.start);
    put64(adv, 0, page);
    put64(adv, 8, range.pageSize);
    put64(adv, 16, 0); // mode 0: unprotect and wake
    bump(STATUS.wpFaults, 1);
    for (let tries = 0; libc.ioctl(uffd, REQ_WRITEPROTECT, arg) !== 0; tries++) {
      const e = errno();
      if (e === ENOENT || e === ESRCH || (e === EAGAIN && tries > 100)) return;
      if (e !== EAGAIN) throw new Error(`UFFDIO_WRITEPROTECT failed: errno ${e}`);
    }
  }

  // MINOR: synchronous unless a module source fills the page.
  function onMinor(range: Range, page: number): Promise<void> | undefined {
    if (range.alias !== undefined && range.source.kind === "module") {
      return onMinorModule(range, page);
    }
    const pageSize = range.pageSize;
    const offset = page - range.start;
    if (range.alias !== undefined && range.source.kind !== "zero") {
      const alias = new Uint8Array(runtime.view(range.alias + offset, pageSize));
      try {
        if (range.source.kind === "shared") {
          alias.set(
            new Uint8Array(range.source.buffer, (range.source.offset ?? 0) + offset, pageSize),
          );
        } else fillFromFile(range, offset, alias, pageSize);
      } catch (e) {
        bump(STATUS.errors, 1);
        post({ type: "source-error", offset, message: e instanceof Error ? e.message : String(e) });
      }
    }
    bump(STATUS.minorFaults, 1);
    resolveAll(u.UFFDIO_CONTINUE, page, pageSize, 0, 0, pageSize);
  }

  async function onMinorModule(range: Range, page: number): Promise<void> {
    const pageSize = range.pageSize;
    const offset = page - range.start;
    if (range.alias !== undefined) {
      const alias = new Uint8Array(runtime.view(range.alias + offset, pageSize));
      try {
        await range.module!.fill(offset, alias);
      } catch (e) {
        bump(STATUS.errors, 1);
        post({ type: "source-error", offset, message: e instanceof Error ? e.message : String(e) });
      }
    }
    bump(STATUS.minorFaults, 1);
    resolveAll(u.UFFDIO_CONTINUE, page, pageSize, 0, 0, pageSize);
  }

  function findRange(addr: number): Range | null {
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i];
      if (addr >= r.start && addr < r.end) return r;
    }
    return null;
  }

  // Faults read while draining events for an EAGAIN retry: served next, in order.
  const deferred: Uint8Array[] = [];
  const drainBuf = new Uint8Array(MSG * BATCH);
  const drainView = new DataView(drainBuf.buffer);
  function drainPending(): void {
    for (;;) {
      const n = read(uffd, drainBuf, BATCH_BYTES);
      if (n <= 0) return;
      for (let off = 0; off < n; off += MSG) {
        if (drainBuf[off] === u.UFFD_EVENT_PAGEFAULT) deferred.push(drainBuf.slice(off, off + MSG));
        else onEvent(drainView, off);
      }
    }
  }

  function onEvent(view: DataView, off: number): void {
    const ev = decodeEvent(view, off);
    bump(STATUS.events, 1);
    if (ev.kind === "unmap" || ev.kind === "remove") {
      // Pages of the range are gone: they may fault again and must be served again.
      const s = Number(ev.start), e = Number(ev.end);
      for (const r of ranges) {
        const a = Math.max(s, r.start), b = Math.min(e, r.end);
        if (a < b) {
          r.resolved.fill(
            0,
            Math.floor((a - r.start) / r.pageSize),
            Math.ceil((b - r.start) / r.pageSize),
          );
        }
      }
    }
    post({ type: "event", event: ev });
  }

  // One message. Returns a Promise only when a module source is involved:
  // the caller awaits it then, and only then.
  function handle(bytes: Uint8Array, view: DataView, off: number): Promise<void> | undefined {
    if (bytes[off] !== u.UFFD_EVENT_PAGEFAULT) {
      onEvent(view, off);
      return;
    }
    const flags = view.getUint32(off + u.UFFD_MSG_OFF.pagefault_flags, true);
    const addr = get64(view, off + u.UFFD_MSG_OFF.pagefault_address);
    bump(STATUS.faults, 1);
    const range = findRange(addr);
    if (range === null) {
      // Registered by someone else on this fd: zero it rather than leave the thread blocked.
      const page = addr - (addr % init.pageSize);
      resolveAll(u.UFFDIO_ZEROPAGE, page, init.pageSize, 0, 0, init.pageSize);
      return;
    }
    const page = addr - ((addr - range.start) % range.pageSize);
    if (flags & u.UFFD_PAGEFAULT_FLAG_WP) onWriteProtect(range, page);
    else if (flags & u.UFFD_PAGEFAULT_FLAG_MINOR) return onMinor(range, page);
    else return onMissing(range, page);
  }

  Atomics.store(status, STATUS.state, STATE_RUNNING);
  post({ type: "ready" });

  const spinMs = init.spinMicros / 1000;
  for (;;) {
    while (deferred.length > 0) {
      const msg = deferred.shift()!;
      const p = handle(msg, new DataView(msg.buffer), 0);
      if (p !== undefined) await p;
    }
    const n = read(uffd, msgs, BATCH_BYTES);
    if (n > 0) {
      for (let off = 0; off < n; off += MSG) {
        const p = handle(msgs, mdv, off);
        if (p !== undefined) await p;
      }
      continue;
    }
    const e = errno();
    if (e !== EAGAIN && e !== EINTR) throw new Error(`read(userfaultfd) failed: errno ${e}`);
    if (spinMs > 0) {
      // Spin briefly: a fault that arrives now costs no wakeup of this thread.
      const until = performance.now() + spinMs;
      let got = 0;
      for (let i = 0;; i++) {
        got = read(uffd, msgs, BATCH_BYTES);
        if (got > 0 || ((i & 15) === 15 && performance.now() > until)) break;
        libc.sched_yield();
      }
      if (got > 0) {
        bump(STATUS.spinHits, 1);
        for (let off = 0; off < got; off += MSG) {
          const p = handle(msgs, mdv, off);
          if (p !== undefined) await p;
        }
        continue;
      }
    }
    const r = libc.poll(pollfds, NFDS, -1);
    if (r < 0 && errno() !== EINTR) throw new Error(`poll failed: errno ${errno()}`);
    if (pdv.getInt16(14, true) !== 0) {
      // The eventfd: a command, or stop.
      if (Atomics.load(status, STATUS.command) === COMMAND_SWEEP) {
        read(wakeFd, eventBuf, EIGHT);
        sweep();
        Atomics.store(status, STATUS.command, 0);
        Atomics.notify(status, STATUS.command);
        continue;
      }
      break;
    }
    if (pdv.getInt16(6, true) & (m.POLLERR | m.POLLNVAL)) throw new Error("userfaultfd poll error");
  }
}

onWorkerMessage<HandlerInit>(async (init) => {
  const status = new Int32Array(init.status);
  try {
    await main(init);
    Atomics.store(status, STATUS.state, STATE_STOPPED);
  } catch (err) {
    // Nobody may stay blocked on a fault this Worker can no longer serve:
    // closing the uffd wakes every faulter, and the memory faults normally.
    Atomics.store(status, STATUS.state, STATE_FAILED);
    libc.close(init.uffd);
    post({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
  }
  post({ type: "stopped" });
});

announceLoaded();
