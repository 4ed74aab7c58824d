/**
 * The fault-handler Worker. It owns no memory that can fault and runs none of
 * the user's code (module sources run in their own Worker): it polls the
 * uffd and an eventfd, reads up to 64 messages per read(), and resolves each
 * fault from buffers allocated once. Numbers only on the hot path.
 *
 * It follows the address space: REMAP moves a handled range, UNMAP drops it,
 * REMOVE makes its pages fault again (handled_ranges.ts). It reads memory
 * that another thread may unmap (a snapshot's pages, a MINOR alias) only
 * through process_vm_readv/writev, which fail instead of faulting.
 */
import process from "node:process";
import * as u from "../../ffi/userfaultfd.ts";
import * as m from "../../ffi/mman.ts";
import { runtime } from "../../ffi/platform.ts";
import { cstring, errno, libc, pollFds, pollPair, sched } from "../libc.ts";
import { vmaAt } from "../maps.ts";
import { ProcessMemory } from "../process_memory.ts";
import { decodeEvent } from "./events.ts";
import { EAGAIN, EBADF, EINTR, ENOENT, ESRCH, UffdCalls } from "./calls.ts";

const EFAULT = 14;
import { FdControl } from "../fd_control.ts";
import { HandledRanges, type Piece } from "./handled_ranges.ts";
import type { HandlerInit, HandlerMessage } from "./protocol.ts";
import { COMMAND_SWEEP, STATE_FAILED, STATE_RUNNING, STATE_STOPPED, STATUS } from "./protocol.ts";
import { FILL_DEAD, FILL_OK, FILL_STOPPING, SourceClient } from "./source_link.ts";
import { announceLoaded, onWorkerMessage, postFromWorker } from "../worker.ts";

const EINVAL = 22;
const MSG = u.SIZEOF_UFFD_MSG;
const BATCH = 64;
const TWO32 = 2 ** 32;
const BATCH_BYTES = BigInt(MSG * BATCH);
const NFDS = 2n;
const EIGHT = 8n;
/**
 * poll(2) returns at least this often (ms) even with nothing to do: a thread
 * in a system call cannot be terminated, and Node joins Worker threads at
 * exit, so a Worker must come back to JavaScript now and then whatever
 * happened to the eventfd that should have woken it.
 */
const POLL_MS = 1000;
/** Errors of faults outside every range are reported this many times (then only counted). */
const OUTSIDE_REPORTS = 8;

const post = (msg: HandlerMessage) => postFromWorker(msg);

function get64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * TWO32;
}

/** Thrown when the uffd was closed under us (by the owner): the Worker just stops. */
class Closed extends Error {}

const statBuf = new Uint8Array(256);

function main(init: HandlerInit): void {
  const { wakeFd } = init;
  const control = new FdControl(init.share);
  const calls = new UffdCalls(control);
  const status = new Int32Array(init.status);
  const ranges = new HandledRanges(init.ranges);
  const source = init.source
    ? new SourceClient(
      init.source,
      (tid) => libc.statx(-100, cstring(`/proc/self/task/${tid}`), 0, 0, statBuf) === 0,
    )
    : null;
  const sourceAddr = source ? runtime.addressOf(source.data) : 0;
  const memory = new ProcessMemory();
  // This Worker is the only writer of the counters: a plain read and an
  // atomic store publish each change (cheaper than a locked add, and ordered
  // before the ioctl that wakes a toucher).
  const bump = (i: number, n: number): void => {
    Atomics.store(status, i, (status[i] + n) | 0);
  };

  // Per range: where a shared source's bytes are, a snapshot's bytes.
  const sharedAddr = new Map<object, number>();
  const sharedBytes = new Map<object, Uint8Array>();
  const snapshotBytes = new Map<object, Uint8Array>();
  for (const r of init.ranges) {
    if (r.source.kind === "shared") {
      const bytes = new Uint8Array(r.source.buffer);
      sharedBytes.set(r, bytes);
      sharedAddr.set(r, runtime.addressOf(bytes));
    }
    if (r.snapshot) snapshotBytes.set(r, new Uint8Array(r.snapshot));
  }

  const stagingAddr = init.staging;
  const staging = new Uint8Array(runtime.view(stagingAddr, init.stagingLength));
  const msgs = new Uint8Array(MSG * BATCH);
  const mdv = new DataView(msgs.buffer);
  const exitFd = init.peer?.exitFd ?? -1;
  const pollfds = exitFd >= 0
    ? pollFds([control.fd, wakeFd, exitFd])
    : pollPair(control.fd, wakeFd);
  const nfds = exitFd >= 0 ? 3n : NFDS;
  const pdv = new DataView(pollfds.buffer);
  const eventBuf = new Uint8Array(8);

  let stalls = 0;
  // EAGAIN: a non-cooperative event (another thread's munmap, madvise,
  // mremap, fork) is pending, and only this thread reads events: take them
  // now (faults among them are deferred), let that thread finish, retry.
  const onEagain = (): boolean => {
    if (++stalls > 100_000) return false;
    drainPending();
    sched();
    return true;
  };

  /** Resolves with the progress rules of calls.ts; false if the range vanished or the fd closed. */
  function resolve(
    request: number,
    page: number,
    len: number,
    src: number,
    mode: number,
    pageSize: number,
  ): boolean {
    stalls = 0;
    return settled(
      calls.resolve(request, page, len, src, mode, pageSize, onEagain),
      request,
      page,
      len,
    );
  }

  /** A resolving ioctl's result: true when done, false when nothing is left to resolve; throws otherwise. */
  function settled(r: number, request: number, page: number, len: number): boolean {
    if (r >= 0) return true;
    if (r === -EBADF) throw new Closed();
    if (r === -ENOENT || r === -ESRCH || r === -EAGAIN) return false;
    throw new Error(
      `resolving ioctl 0x${request.toString(16)} at 0x${
        page.toString(16)
      }+${len} failed: errno ${-r}`,
    );
  }

  /** Unprotects [page, page+len) and wakes its writers. */
  function unprotect(page: number, len: number): void {
    stalls = 0;
    const r = calls.writeProtect(page, len, 0, onEagain);
    if (r === -EBADF) throw new Closed();
    if (r < 0 && r !== -ENOENT && r !== -ESRCH && r !== -EAGAIN) {
      throw new Error(`UFFDIO_WRITEPROTECT at 0x${page.toString(16)} failed: errno ${-r}`);
    }
  }

  // Zero pages: UFFDIO_ZEROPAGE where it can (4 KiB, not write-protected);
  // else COPY from the read-only reservation of zeros (hugetlb has no zero
  // page, and ZEROPAGE has no WP mode).
  function zeroFill(page: number, len: number, pageSize: number, wp: boolean): boolean {
    if (pageSize === init.pageSize && !wp) {
      return resolve(u.UFFDIO_ZEROPAGE, page, len, 0, 0, pageSize);
    }
    const mode = wp ? u.UFFDIO_COPY_MODE_WP : 0;
    for (let done = 0; done < len; done += init.zerosLength) {
      const n = Math.min(init.zerosLength, len - done);
      if (!resolve(u.UFFDIO_COPY, page + done, n, init.zeros, mode, pageSize)) return false;
    }
    return true;
  }

  // UFFDIO_COPY from the mapped file: as resolve(), or null when the kernel could not read
  // the source (EFAULT: the file shrank under its mapping), for the pread path to take over.
  function copyFromFileMap(
    page: number,
    len: number,
    src: number,
    mode: number,
    pageSize: number,
  ): boolean | null {
    stalls = 0;
    const r = calls.resolve(u.UFFDIO_COPY, page, len, src, mode, pageSize, onEagain);
    return r === -EFAULT ? null : settled(r, u.UFFDIO_COPY, page, len);
  }

  // A file source's pages into staging[0, len): synchronous, allocates nothing.
  function fillFromFile(p: Piece, offset: number, len: number): void {
    const s = p.spec.source as { path: string; offset: number; fd: number };
    const n = libc.pread(s.fd, staging, len, s.offset + offset);
    if (n < 0) throw new Error(`pread(${s.path}) failed: errno ${errno()}`);
    if (n < len) staging.fill(0, n, len); // past the end of the file
  }

  /** A module source's bytes into the link's data buffer; throws with its reason. */
  let sourceDeadReported = false;
  function fillFromModule(p: Piece, offset: number, len: number): void {
    const s = p.spec.source as { index: number };
    const r = source!.fill(s.index, offset, len);
    if (r === FILL_OK) return;
    if (r === FILL_STOPPING) throw new Closed();
    if (r === FILL_DEAD && !sourceDeadReported) {
      sourceDeadReported = true;
      post({ type: "source-dead", message: source!.message });
    }
    throw new Error(source!.message);
  }

  // MISSING: the page (and up to readahead-1 more) from the range's source.
  function onMissing(p: Piece, page: number): void {
    const spec = p.spec;
    const pageSize = spec.pageSize;
    const first = (page - p.start) / pageSize;
    const removed = p.removed;
    if (removed.length && removed[first]) {
      // Dropped by REMOVE in an afterRemove "zero" range: zeros, never the source again.
      bump(STATUS.pages, 1);
      if (zeroFill(page, pageSize, pageSize, spec.writeProtect)) p.resolved[first] = 1;
      else bump(STATUS.pages, -1);
      return;
    }
    // Readahead stops at the piece end and at the first page already resolved (or removed).
    let count = 1;
    const limit = Math.min(spec.readahead, p.resolved.length - first);
    if (removed.length) {
      while (count < limit && p.resolved[first + count] === 0 && removed[first + count] === 0) {
        count++;
      }
    } else while (count < limit && p.resolved[first + count] === 0) count++;
    const len = count * pageSize;
    const offset = p.rangeOffset + (page - p.start);
    const s = spec.source;
    const mode = spec.writeProtect ? u.UFFDIO_COPY_MODE_WP : 0;
    let ok: boolean;
    // Counted before the ioctl wakes the toucher, so its next read of stats is exact.
    bump(STATUS.pages, count);
    try {
      if (s.kind === "zero") {
        ok = zeroFill(page, len, pageSize, spec.writeProtect);
      } else if (s.kind === "shared") {
        const avail = s.buffer.byteLength - s.offset - offset;
        if (avail >= len) {
          ok = resolve(
            u.UFFDIO_COPY,
            page,
            len,
            sharedAddr.get(spec)! + s.offset + offset,
            mode,
            pageSize,
          );
        } else {
          staging.fill(0, 0, len);
          if (avail > 0) staging.set(sharedBytes.get(spec)!.subarray(s.offset + offset), 0);
          ok = resolve(u.UFFDIO_COPY, page, len, stagingAddr, mode, pageSize);
        }
      } else if (s.kind === "file") {
        const at = s.offset + offset;
        const copied = s.map && at + len <= s.mapLength
          ? copyFromFileMap(page, len, s.map + at, mode, pageSize)
          : null;
        if (copied !== null) ok = copied;
        else {
          fillFromFile(p, offset, len);
          ok = resolve(u.UFFDIO_COPY, page, len, stagingAddr, mode, pageSize);
        }
      } else {
        fillFromModule(p, offset, len);
        ok = resolve(u.UFFDIO_COPY, page, len, sourceAddr, mode, pageSize);
      }
    } catch (e) {
      if (e instanceof Closed) throw e;
      bump(STATUS.pages, -count);
      sourceFailed(p, page, first, offset, e);
      return;
    }
    if (ok) {
      if (count === 1) p.resolved[first] = 1;
      else p.resolved.fill(1, first, first + count);
    } else bump(STATUS.pages, -count);
  }

  // A source failed: report it, and resolve the faulting page as the policy says.
  function sourceFailed(p: Piece, page: number, first: number, offset: number, e: unknown): void {
    const pageSize = p.spec.pageSize;
    bump(STATUS.errors, 1);
    post({ type: "source-error", offset, message: e instanceof Error ? e.message : String(e) });
    if (init.onSourceError === "poison") {
      resolve(u.UFFDIO_POISON, page, pageSize, 0, 0, pageSize);
    } else zeroFill(page, pageSize, pageSize, p.spec.writeProtect);
    p.resolved[first] = 1;
  }

  // The snapshot is written by this thread only: a page is copied once,
  // before any write lands, through process_vm_readv (the memory may be
  // unmapped by another thread at any moment).
  function copyOut(p: Piece, i: number): void {
    if (p.copied[i]) return;
    const ps = p.spec.pageSize;
    const dest = snapshotBytes.get(p.spec)!;
    const off = p.rangeOffset + i * ps;
    if (memory.read(p.start + i * ps, dest, off, ps)) p.copied[i] = 1;
  }

  function sweep(): void {
    for (const p of ranges.pieces) {
      if (!p.spec.snapshot) continue;
      for (let i = 0; i < p.copied.length; i++) copyOut(p, i);
      unprotect(p.start, p.end - p.start);
    }
  }

  function onWriteProtect(p: Piece, page: number): void {
    if (p.spec.snapshot) copyOut(p, (page - p.start) / p.spec.pageSize);
    bump(STATUS.wpFaults, 1);
    unprotect(page, p.spec.pageSize);
  }

  // MINOR: write the page's bytes through the alias (if the source has any), then CONTINUE.
  function onMinor(p: Piece, page: number): void {
    const spec = p.spec;
    const pageSize = spec.pageSize;
    const offset = p.rangeOffset + (page - p.start);
    const s = spec.source;
    if (spec.alias !== undefined && s.kind !== "zero") {
      try {
        let ok: boolean;
        if (s.kind === "shared") {
          const bytes = sharedBytes.get(spec)!;
          const avail = Math.max(0, Math.min(pageSize, bytes.length - s.offset - offset));
          staging.fill(0, 0, pageSize);
          if (avail > 0) {
            staging.set(bytes.subarray(s.offset + offset, s.offset + offset + avail), 0);
          }
          ok = memory.write(spec.alias + offset, staging, 0, pageSize);
        } else if (s.kind === "file") {
          fillFromFile(p, offset, pageSize);
          ok = memory.write(spec.alias + offset, staging, 0, pageSize);
        } else {
          fillFromModule(p, offset, pageSize);
          ok = memory.write(spec.alias + offset, source!.data, 0, pageSize);
        }
        if (!ok) throw new Error(`the alias at 0x${spec.alias.toString(16)} is no longer mapped`);
      } catch (e) {
        if (e instanceof Closed) throw e;
        bump(STATUS.errors, 1);
        post({ type: "source-error", offset, message: e instanceof Error ? e.message : String(e) });
      }
    }
    bump(STATUS.minorFaults, 1);
    resolve(
      u.UFFDIO_CONTINUE,
      page,
      pageSize,
      0,
      spec.writeProtect ? u.UFFDIO_CONTINUE_MODE_WP : 0,
      pageSize,
    );
  }

  /**
   * A fault where no handled range is (registered on this fd by someone
   * else, or memory that moved without us): resolved so that nobody stays
   * blocked, at the memory's real page size, and reported.
   */
  function onOutside(addr: number, flags: number): void {
    bump(STATUS.outside, 1);
    if (Atomics.load(status, STATUS.outside) <= OUTSIDE_REPORTS) {
      post({
        type: "error",
        message: `a fault at 0x${addr.toString(16)} is outside every handled range: served as ${
          flags & u.UFFD_PAGEFAULT_FLAG_WP ? "unprotected" : "a zero page"
        }${
          Atomics.load(status, STATUS.outside) === OUTSIDE_REPORTS
            ? " (further ones are only counted in stats.outside)"
            : ""
        }`,
      });
    }
    let pageSize = init.pageSize;
    const align = (ps: number) => addr - (addr % ps);
    const base = (flags & (u.UFFD_PAGEFAULT_FLAG_WP | u.UFFD_PAGEFAULT_FLAG_MINOR)) === 0
      ? calls.resolveOnce(u.UFFDIO_ZEROPAGE, align(pageSize), pageSize, 0, 0)
      : -EINVAL;
    if (base > 0 || base === -ENOENT || base === -ESRCH) return;
    if (base === -EBADF) throw new Closed();
    // Another process's address means nothing in our maps: its ranges' largest page size.
    pageSize = init.peer
      ? Math.max(init.pageSize, ...init.ranges.map((r) => r.pageSize))
      : vmaAt(addr)?.pageSize ?? init.pageSize;
    const page = align(pageSize);
    if (flags & u.UFFD_PAGEFAULT_FLAG_WP) unprotect(page, pageSize);
    else if (flags & u.UFFD_PAGEFAULT_FLAG_MINOR) {
      resolve(u.UFFDIO_CONTINUE, page, pageSize, 0, 0, pageSize);
    } else zeroFill(page, pageSize, pageSize, false);
  }

  // Faults read while draining events for an EAGAIN retry: served next, in order.
  const deferred: { address: number; flags: number }[] = [...init.deferred];
  const drainBuf = new Uint8Array(MSG * BATCH);
  const drainView = new DataView(drainBuf.buffer);
  function drainPending(): void {
    for (;;) {
      const n = calls.read(drainBuf, BATCH_BYTES);
      if (n <= 0) return;
      for (let off = 0; off < n; off += MSG) {
        if (drainBuf[off] === u.UFFD_EVENT_PAGEFAULT) {
          deferred.push({
            address: get64(drainView, off + u.UFFD_MSG_OFF.pagefault_address),
            flags: drainView.getUint32(off + u.UFFD_MSG_OFF.pagefault_flags, true),
          });
        } else onEvent(drainView, off);
      }
    }
  }

  /** Calls fn(piece, pageIndex) for each snapshot page overlapping [start, end). */
  function forSnapshotPages(start: number, end: number, fn: (p: Piece, i: number) => void): void {
    for (const p of ranges.pieces) {
      if (!p.spec.snapshot) continue;
      const a = Math.max(start, p.start), b = Math.min(end, p.end);
      const ps = p.spec.pageSize;
      for (let i = Math.floor((a - p.start) / ps); a < b && p.start + i * ps < b; i++) fn(p, i);
    }
  }

  function onEvent(view: DataView, off: number): void {
    const ev = decodeEvent(view, off);
    bump(STATUS.events, 1);
    if (ev.kind === "remove") {
      // REMOVE arrives before the pages are dropped: a snapshot takes them now.
      const s = Number(ev.start), e = Number(ev.end);
      forSnapshotPages(s, e, (p, i) => copyOut(p, i));
      ranges.remove(s, e);
    } else if (ev.kind === "unmap") {
      // UNMAP arrives after the pages are gone: what a snapshot had not copied is lost.
      const s = Number(ev.start), e = Number(ev.end);
      let lost = 0;
      forSnapshotPages(s, e, (p, i) => {
        if (!p.copied[i]) lost++;
      });
      if (lost > 0) {
        bump(STATUS.errors, 1);
        post({
          type: "error",
          message: `snapshot: ${lost} page(s) at 0x${s.toString(16)}..0x${
            e.toString(16)
          } were unmapped before they were copied; the snapshot has zeros there`,
        });
      }
      ranges.unmap(s, e);
    } else if (ev.kind === "remap") ranges.remap(Number(ev.from), Number(ev.to), Number(ev.length));
    else if (ev.kind === "fork" && init.closeForkFds) {
      libc.close(ev.ufd); // the new fd is this thread's until handed on; nobody asked for it
    }
    post({ type: "event", event: ev });
  }

  function onFault(addr: number, flags: number): void {
    bump(STATUS.faults, 1);
    const p = ranges.find(addr);
    if (p === null) return onOutside(addr, flags);
    const page = addr - ((addr - p.start) % p.spec.pageSize);
    if (flags & u.UFFD_PAGEFAULT_FLAG_WP) onWriteProtect(p, page);
    else if (flags & u.UFFD_PAGEFAULT_FLAG_MINOR) onMinor(p, page);
    else onMissing(p, page);
  }

  function handle(view: DataView, off: number): void {
    if (view.getUint8(off) !== u.UFFD_EVENT_PAGEFAULT) return onEvent(view, off);
    onFault(
      get64(view, off + u.UFFD_MSG_OFF.pagefault_address),
      view.getUint32(off + u.UFFD_MSG_OFF.pagefault_flags, true),
    );
  }

  Atomics.store(status, STATUS.state, STATE_RUNNING);
  post({ type: "ready" });

  const spinMs = init.spinMicros / 1000;
  for (;;) {
    while (deferred.length > 0) {
      const f = deferred.shift()!;
      onFault(f.address, f.flags);
    }
    if (Atomics.load(status, STATUS.stop) !== 0) return;
    const n = calls.read(msgs, BATCH_BYTES);
    if (n > 0) {
      for (let off = 0; off < n; off += MSG) handle(mdv, off);
      continue;
    }
    if (n === -EBADF) return; // closed by its owner
    if (n !== -EAGAIN && n !== -EINTR) throw new Error(`read(userfaultfd) failed: errno ${-n}`);
    if (spinMs > 0) {
      // Spin briefly: a fault that arrives now costs no wakeup of this thread.
      const until = performance.now() + spinMs;
      let got = 0;
      for (let i = 0;; i++) {
        got = calls.read(msgs, BATCH_BYTES);
        if (got > 0 || ((i & 15) === 15 && performance.now() > until)) break;
        sched();
      }
      if (got > 0) {
        bump(STATUS.spinHits, 1);
        for (let off = 0; off < got; off += MSG) handle(mdv, off);
        continue;
      }
    }
    if (!control.enter()) return;
    const r = libc.poll(pollfds, nfds, POLL_MS);
    const e = r < 0 ? errno() : 0;
    control.leave();
    if (r < 0 && e !== EINTR) throw new Error(`poll failed: errno ${e}`);
    if (exitFd >= 0 && pdv.getInt16(22, true) !== 0) {
      // The peer exited: its address space is gone, nothing is left to serve.
      post({ type: "peer-exited" });
      return;
    }
    if (pdv.getInt16(14, true) !== 0) {
      // The eventfd: a command, or stop.
      libc.read(wakeFd, eventBuf, EIGHT);
      if (Atomics.load(status, STATUS.command) === COMMAND_SWEEP) {
        sweep();
        Atomics.store(status, STATUS.command, 0);
        Atomics.notify(status, STATUS.command);
      }
      continue;
    }
    if (pdv.getInt16(6, true) & m.POLLNVAL) return; // the number is no longer ours: stop
    if (pdv.getInt16(6, true) & m.POLLERR) throw new Error("userfaultfd poll error");
  }
}

// Nothing may end this Worker by accident (on Deno it would end the process).
const stray = (e: unknown) =>
  post({ type: "error", message: `fault handler: ${e instanceof Error ? e.message : String(e)}` });
process.on("uncaughtException", stray);
process.on("unhandledRejection", stray);

// One init per session: a pooled Worker (Node) serves several handlers, one after another.
onWorkerMessage<HandlerInit>((init) => {
  const status = new Int32Array(init.status);
  try {
    main(init);
    Atomics.store(status, STATUS.state, STATE_STOPPED);
  } catch (err) {
    if (err instanceof Closed) {
      Atomics.store(status, STATUS.state, STATE_STOPPED);
    } else {
      // Nobody may stay blocked on a fault this Worker can no longer serve:
      // closing the uffd wakes every faulter, and the memory faults normally.
      // Through the fd's control: closed once, by whoever comes first.
      Atomics.store(status, STATUS.state, STATE_FAILED);
      new FdControl(init.share).close();
      post({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
    }
  }
  post({ type: "stopped" });
});

announceLoaded();
