/**
 * UnixSocket and UnixListener: AF_UNIX stream and seqpacket sockets that
 * pass file descriptors (SCM_RIGHTS) and say who the peer is (SO_PEERCRED).
 *
 * No runtime can pass fds over a unix socket, so this is libc like the rest.
 * Sockets are non-blocking: accept() and receive() are awaited through
 * FdReadiness (src/poller.ts), a Worker that blocks in poll(2) on the fd and
 * an eventfd. Why poll and not the call itself in a Worker: a Worker blocked
 * in accept(2) or recvmsg(2) cannot be woken by closing the fd (close(2)
 * does not interrupt them) nor terminated, while the poller is woken by its
 * eventfd and comes back every second anyway; and every call on the fd stays
 * on the calling thread, which reads its errno and owns what it received.
 * Sends are synchronous: a unix socket's buffer takes a control message at
 * once, and a peer that reads nothing gets EAGAIN after a bounded wait.
 */
import * as s from "../../ffi/socket.ts";
import { check, errno, libc, pollFds } from "../libc.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import { FdControl } from "../fd_control.ts";
import { FdReadiness } from "../poller.ts";
import * as v from "../validate.ts";
import { MessageBuffers, sockaddrUn } from "./message.ts";
import { statSync, unlinkSync } from "node:fs";

const EAGAIN = 11, EINTR = 4, EMSGSIZE = 90;
const POLLOUT = 0x004;
/** How long send() waits for room in the peer's buffer before it fails with EAGAIN. */
const SEND_WAIT_MS = 5000;
/** The most fds one message may carry (the kernel's SCM_MAX_FD). */
export const MAX_FDS_PER_MESSAGE = 253;

/** Socket types: "stream" (SOCK_STREAM, a byte stream) or "seqpacket" (SOCK_SEQPACKET, messages). */
export type UnixSocketType = "stream" | "seqpacket";
const TYPES: readonly UnixSocketType[] = ["stream", "seqpacket"];
const typeNumber = (t: UnixSocketType) => (t === "stream" ? s.SOCK_STREAM : s.SOCK_SEQPACKET);

/** Who is at the other end (SO_PEERCRED: as of connect/listen). */
export interface PeerCredentials {
  /** The peer's process id. */
  pid: number;
  /** Its user id. */
  uid: number;
  /** Its group id. */
  gid: number;
}

/** What receive() got: the bytes, the fds (yours to close) and whether the peer is gone. */
export interface ReceivedMessage {
  /** The data (empty at end of stream, or for a seqpacket message of fds only). */
  bytes: Uint8Array;
  /** Received fds, close-on-exec, owned by the caller from now on. */
  fds: number[];
  /** The peer closed its end (or exited) and nothing more will come. */
  eof: boolean;
}

/**
 * Closes an fd received in a message (or taken with Pidfd.getFd): Deno's
 * node:fs does not know fds it did not open, so this is libc's close(2).
 * EBADF if it is not open.
 */
export function closeFd(fd: number): void {
  check(libc.close(v.integer("fd", fd, 0, 2 ** 31 - 1)), `close(${fd})`);
}

const held = new Set<number>();
/** How many socket fds the library holds open (tests count their own before and after). */
export function openSocketFds(): number {
  return held.size;
}

function newSocket(type: UnixSocketType, call: string): FdControl {
  const fd = check(
    libc.socket(s.AF_UNIX, typeNumber(type) | s.SOCK_NONBLOCK | s.SOCK_CLOEXEC, 0),
    call,
  );
  held.add(fd);
  return FdControl.create(fd);
}

/** Closes a socket's fd once (after its poller is stopped). */
function release(control: FdControl): void {
  const fd = control.fd;
  if (control.close()) held.delete(fd);
}

const HINTS: Record<number, string> = {
  2: "no socket at this path: is the listener running, and is the path right?",
  111: "the path is a socket nobody listens on (a listener that exited left it behind)",
  13:
    "connecting needs write permission on the socket file and search permission on its directories",
  98:
    "something already exists at this path: remove a stale socket first (UnixListener.listen(path, { replace: true }))",
};

/** A connected unix socket. */
export class UnixSocket {
  readonly #control: FdControl;
  /** "stream" or "seqpacket". */
  readonly type: UnixSocketType;
  readonly #buffers = new MessageBuffers();
  #readiness: FdReadiness | null = null;
  #pending = false;
  #closed = false;

  /** @internal */
  constructor(control: FdControl, type: UnixSocketType) {
    this.#control = control;
    this.type = type;
  }

  /**
   * Connects to the socket at `path`. A missing path is ENOENT, a path
   * nobody listens on ECONNREFUSED, a socket this user may not write EACCES.
   */
  static connect(path: string, options: { type?: UnixSocketType } = {}): UnixSocket {
    const o = v.options<{ type?: UnixSocketType }>("UnixSocket.connect options", options);
    const type = o.type === undefined ? "stream" : v.oneOf("options.type", o.type, TYPES);
    const { addr, len } = sockaddrUn(path, "path");
    const control = newSocket(type, "socket(AF_UNIX)");
    const r = libc.connect(control.fd, addr, len);
    if (r !== 0) {
      const e = errno();
      release(control);
      throw new UmmuError(`connect(${path})`, e, HINTS[e] ?? "");
    }
    return new UnixSocket(control, type);
  }

  /** The fd (for poll sets, or to hand to a child). Throws once closed. */
  get fd(): number {
    if (this.#closed || !this.#control.open) throw new ClosedError("UnixSocket");
    return this.#control.fd;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The peer's pid, uid and gid (SO_PEERCRED), as of when it connected. */
  peerCredentials(): PeerCredentials {
    const fd = this.#enter();
    try {
      const ucred = new Uint8Array(s.SIZEOF_UCRED);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, s.SIZEOF_UCRED, true);
      check(
        libc.getsockopt(fd, s.SOL_SOCKET, s.SO_PEERCRED, ucred, len),
        "getsockopt(SO_PEERCRED)",
      );
      const dv = new DataView(ucred.buffer);
      return {
        pid: dv.getInt32(s.UCRED_OFF.pid, true),
        uid: dv.getUint32(s.UCRED_OFF.uid, true),
        gid: dv.getUint32(s.UCRED_OFF.gid, true),
      };
    } finally {
      this.#control.leave();
    }
  }

  /**
   * Sends `bytes` (and `fds`, which stay yours: the peer gets copies) in one
   * sendmsg(2). A stream socket needs at least one byte to carry fds. Returns
   * the bytes sent: all of them on a seqpacket socket; on a stream socket
   * the rest (never the fds) is sent by more calls before returning.
   */
  send(bytes: Uint8Array | string, fds: readonly number[] = []): number {
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    if (!(data instanceof Uint8Array)) v.invalid("bytes", bytes, "a Uint8Array or a string");
    const list = v.list("fds", fds, (f, i) => v.integer(`fds[${i}]`, f, 0, 2 ** 31 - 1));
    if (list.length > MAX_FDS_PER_MESSAGE) {
      v.invalid("fds", fds, `at most ${MAX_FDS_PER_MESSAGE} fds (SCM_MAX_FD)`);
    }
    if (list.length > 0 && data.length === 0 && this.type === "stream") {
      throw new UmmuArgumentError(
        "send: fds on a stream socket need at least one byte of data (the kernel drops a message of 0 bytes)",
      );
    }
    const fd = this.#enter();
    try {
      let sent = 0;
      let withFds = list;
      const deadline = Date.now() + SEND_WAIT_MS;
      do {
        const n = Math.min(data.length - sent, 1 << 20);
        const b = this.#buffers;
        b.prepare(n, withFds.length);
        b.data.set(data.subarray(sent, sent + n));
        if (withFds.length > 0) b.putFds(withFds);
        const r = libc.sendmsg(fd, b.msg, s.MSG_NOSIGNAL);
        if (r >= 0) {
          sent += r;
          withFds = [];
          continue;
        }
        const e = errno();
        if (e === EINTR) continue;
        if (e !== EAGAIN || Date.now() > deadline) {
          throw new UmmuError(
            "sendmsg",
            e,
            e === EAGAIN
              ? `the peer has read nothing for ${SEND_WAIT_MS} ms (its buffer is full)`
              : "",
          );
        }
        // Room comes when the peer reads: wait for it in bounded steps.
        const p = pollFds([fd]);
        new DataView(p.buffer).setInt16(4, POLLOUT, true);
        libc.poll(p, 1n, 100);
      } while (sent < data.length);
      return sent;
    } finally {
      this.#control.leave();
    }
  }

  /**
   * Receives one message (seqpacket) or what is there (stream), waiting
   * without blocking the thread. A message bigger than `maxBytes`, or with
   * more than `maxFds` fds, fails with EMSGSIZE (the fds it carried are
   * closed): nothing is truncated silently. At end of stream: `eof`, no
   * bytes, no fds.
   */
  async receive(options: { maxBytes?: number; maxFds?: number } = {}): Promise<ReceivedMessage> {
    const o = v.options<{ maxBytes?: number; maxFds?: number }>("receive options", options);
    const maxBytes = o.maxBytes === undefined
      ? 65536
      : v.integer("options.maxBytes", o.maxBytes, 1, 1 << 26);
    const maxFds = o.maxFds === undefined
      ? 16
      : v.integer("options.maxFds", o.maxFds, 0, MAX_FDS_PER_MESSAGE);
    if (this.#pending) {
      throw new UmmuArgumentError("receive: another accept/receive on this socket is pending");
    }
    this.#pending = true;
    try {
      for (;;) {
        const got = this.#tryReceive(maxBytes, maxFds);
        if (got !== null) return got;
        await this.#wait();
      }
    } finally {
      this.#pending = false;
    }
  }

  #tryReceive(maxBytes: number, maxFds: number): ReceivedMessage | null {
    const fd = this.#enter();
    try {
      const b = this.#buffers;
      // One more fd slot than allowed: a message with too many is then seen (CTRUNC or count).
      b.prepare(maxBytes, maxFds + 1);
      const r = libc.recvmsg(fd, b.msg, s.MSG_CMSG_CLOEXEC | s.MSG_DONTWAIT);
      if (r < 0) {
        const e = errno();
        if (e === EAGAIN || e === EINTR) return null;
        throw new UmmuError("recvmsg", e);
      }
      const fds = b.takeFds();
      const flags = b.flags;
      if (flags & (s.MSG_TRUNC | s.MSG_CTRUNC) || fds.length > maxFds) {
        for (const f of fds) libc.close(f);
        throw new UmmuError(
          "recvmsg",
          EMSGSIZE,
          "",
          flags & s.MSG_TRUNC
            ? `the message was longer than maxBytes (${maxBytes}); its fds were closed`
            : `the message carried more fds than maxFds (${maxFds}); they were closed`,
        );
      }
      return { bytes: b.data.slice(0, r), fds, eof: r === 0 && fds.length === 0 };
    } finally {
      this.#control.leave();
    }
  }

  async #wait(): Promise<void> {
    if (this.#readiness === null) this.#readiness = await FdReadiness.start(this.#control.share);
    if (this.#closed) throw new ClosedError("UnixSocket");
    await waitReadable(this.#readiness, "UnixSocket");
  }

  #enter(): number {
    if (this.#closed || !this.#control.enter()) throw new ClosedError("UnixSocket");
    return this.#control.fd;
  }

  /** Closes the socket (a pending receive() rejects with ClosedError). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const r = this.#readiness;
    this.#readiness = null;
    if (r) await r.close();
    release(this.#control);
  }
}

/** Options of {@link UnixListener.listen}. */
export interface UnixListenerOptions {
  /** "stream" (default) or "seqpacket". */
  type?: UnixSocketType;
  /** Pending connections the kernel queues (default 16). */
  backlog?: number;
  /** Remove a socket file already at the path (a listener that exited left it); never another kind of file. */
  replace?: boolean;
}

/** A listening unix socket at a filesystem path. */
export class UnixListener {
  readonly #control: FdControl;
  /** The path it listens at (removed by close()). */
  readonly path: string;
  /** "stream" or "seqpacket": the type of the sockets it accepts. */
  readonly type: UnixSocketType;
  readonly #ino: bigint;
  #readiness: FdReadiness | null = null;
  #pending = false;
  #closed = false;

  private constructor(control: FdControl, path: string, type: UnixSocketType, ino: bigint) {
    this.#control = control;
    this.path = path;
    this.type = type;
    this.#ino = ino;
  }

  /** Binds and listens at `path` (EADDRINUSE if something is there, unless `replace` and it is a socket). */
  static listen(path: string, options: UnixListenerOptions = {}): UnixListener {
    const o = v.options<UnixListenerOptions>("UnixListener.listen options", options);
    const type = o.type === undefined ? "stream" : v.oneOf("options.type", o.type, TYPES);
    const backlog = o.backlog === undefined ? 16 : v.integer("options.backlog", o.backlog, 1, 4096);
    const replace = v.boolean("options.replace", o.replace, false);
    const { addr, len } = sockaddrUn(path, "path");
    if (replace) removeStaleSocket(path);
    const control = newSocket(type, "socket(AF_UNIX)");
    try {
      if (libc.bind(control.fd, addr, len) !== 0) {
        const e = errno();
        throw new UmmuError(`bind(${path})`, e, HINTS[e] ?? "");
      }
      check(libc.listen(control.fd, backlog), `listen(${path})`);
      return new UnixListener(control, path, type, statSync(path, { bigint: true }).ino);
    } catch (e) {
      release(control);
      throw e;
    }
  }

  /** The listening fd. Throws once closed. */
  get fd(): number {
    if (this.#closed) throw new ClosedError("UnixListener");
    return this.#control.fd;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The next connection, awaited without blocking the thread. */
  async accept(): Promise<UnixSocket> {
    if (this.#pending) {
      throw new UmmuArgumentError("accept: another accept on this listener is pending");
    }
    this.#pending = true;
    try {
      for (;;) {
        if (this.#closed || !this.#control.enter()) throw new ClosedError("UnixListener");
        const r = libc.accept4(
          this.#control.fd,
          new Uint8Array(s.SIZEOF_SOCKADDR_UN),
          new Uint8Array(new Uint32Array([s.SIZEOF_SOCKADDR_UN]).buffer),
          s.SOCK_NONBLOCK | s.SOCK_CLOEXEC,
        );
        const e = r < 0 ? errno() : 0;
        this.#control.leave();
        if (r >= 0) {
          held.add(r);
          return new UnixSocket(FdControl.create(r), this.type);
        }
        // ECONNABORTED and friends: the connection went away before we took it; take the next.
        if (e !== EAGAIN && e !== EINTR && e !== 103 && e !== 71) {
          throw new UmmuError(`accept4(${this.path})`, e);
        }
        if (this.#readiness === null) {
          this.#readiness = await FdReadiness.start(this.#control.share);
        }
        if (this.#closed) throw new ClosedError("UnixListener");
        await waitReadable(this.#readiness, "UnixListener");
      }
    } finally {
      this.#pending = false;
    }
  }

  /** Stops listening and removes the socket file (if it is still ours). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const r = this.#readiness;
    this.#readiness = null;
    if (r) await r.close();
    release(this.#control);
    try {
      if (statSync(this.path, { bigint: true }).ino === this.#ino) unlinkSync(this.path);
    } catch { /* already gone */ }
  }
}

/**
 * Re-arms and waits; a poller closed under the wait (the socket's close()) is
 * the socket's ClosedError. The wait keeps the process alive, as a pending
 * accept or read of a Node socket does: a server that listens must not exit.
 */
async function waitReadable(readiness: FdReadiness, what: string): Promise<void> {
  readiness.rearm();
  try {
    await readiness.readable({ keepAlive: true });
  } catch (e) {
    if (e instanceof ClosedError) throw new ClosedError(what);
    throw e;
  }
}

/** Removes a socket file (only a socket) at `path`, if there is one. */
function removeStaleSocket(path: string): void {
  let socket: boolean;
  try {
    socket = statSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!socket) {
    throw new UmmuArgumentError(
      `options.replace: ${JSON.stringify(path)} exists and is not a socket; not removing it`,
    );
  }
  unlinkSync(path);
}
