/**
 * FirecrackerHandler: the page-fault handler of Firecracker's Uffd memory
 * backend (docs/snapshotting/handling-page-faults-on-snapshot-resume.md in
 * firecracker-microvm/firecracker). When a snapshot is loaded with
 * `mem_backend: { backend_type: "Uffd", backend_path: SOCKET }`, Firecracker
 * connects to SOCKET (SOCK_STREAM) and sends, in one sendmsg, a JSON array
 * of GuestRegionUffdMapping `{ base_host_virt_addr, size, offset, page_size }`
 * (older versions also `page_size_kib`, which despite its name holds bytes)
 * with its userfaultfd (UFFDIO_API done, regions registered for MISSING) as
 * SCM_RIGHTS. Newer versions may add more fds (guest_memfd); those are
 * closed. Faults are served from the snapshot's memory file (region
 * `offset` + fault offset), REMOVE (the balloon) makes pages zero-filled
 * afterwards, and the session ends when Firecracker exits (its pidfd).
 */
import { statSync } from "node:fs";
import process from "node:process";
import { UmmuArgumentError } from "../errors.ts";
import { libc } from "../libc.ts";
import * as v from "../validate.ts";
import {
  UnixListener,
  type UnixListener as Listener,
  type UnixSocket,
} from "../unix_socket/socket.ts";
import { FaultHandler, type FaultHandlerStats, type HandlerEnd } from "./handler.ts";
import { sources } from "./sources.ts";
import { UserfaultFd } from "./uffd.ts";

/** One region of guest memory, as Firecracker describes it. */
export interface GuestRegionUffdMapping {
  /** Where the region starts in Firecracker's address space. */
  base_host_virt_addr: number;
  /** Its length in bytes. */
  size: number;
  /** Where its bytes start in the memory file. */
  offset: number;
  /** Its page size in bytes (4096, or a huge page's); from `page_size_kib` (bytes too) when older. */
  page_size: number;
}

/** A VM being served. */
export interface FirecrackerSession {
  /** Firecracker's pid (SO_PEERCRED). */
  pid: number;
  /** Firecracker's uid (SO_PEERCRED). */
  uid: number;
  /** Its guest memory, as its message said. */
  regions: GuestRegionUffdMapping[];
  /** The handler serving it (stats, errors; it ends when the VM exits). */
  handler: FaultHandler;
}

/** How a session ended. */
export interface FirecrackerSessionEnd {
  /** Firecracker's pid. */
  pid: number;
  /** "peer-exited" (the VM's process exited), "closed" (the handler was closed) or "failed". */
  reason: HandlerEnd;
  /** The session's last counters. */
  stats: FaultHandlerStats;
  /** What went wrong while serving (source errors, a fatal Worker error). */
  errors: Error[];
}

/** Options of {@link FirecrackerHandler.listen}. */
export interface FirecrackerHandlerOptions {
  /** The snapshot's memory file (Firecracker's `mem_file_path`). */
  memoryFile: string;
  /** Peer uids allowed to connect (default: this process's uid, and root). */
  allowUids?: number[];
  /** Pages resolved per fault (default 1; 16 serves sequential touches 16 times faster). */
  readahead?: number;
  /** Remove a stale socket file at the path first (default true). */
  replace?: boolean;
  /** How long to wait for the region message and its fd after a connection (ms, default 5000). */
  messageTimeoutMs?: number;
  /** A VM connected and is being served. */
  onSession?: (session: FirecrackerSession) => void;
  /** A VM's session ended (its process exited, or close()). */
  onSessionEnd?: (end: FirecrackerSessionEnd) => void;
  /** A connection refused (bad message, no fd, a region the file cannot back, a uid not allowed). */
  onError?: (error: Error) => void;
}

const MAX_MESSAGE = 64 * 1024;

type CheckedOptions =
  & Required<
    Omit<FirecrackerHandlerOptions, "onSession" | "onSessionEnd" | "onError">
  >
  & FirecrackerHandlerOptions;

/** Listens for Firecracker's connections and serves each VM's faults. */
export class FirecrackerHandler {
  readonly #listener: Listener;
  readonly #opts: CheckedOptions;
  readonly #fileSize: number;
  readonly #sessions = new Set<FaultHandler>();
  readonly #connections = new Set<UnixSocket>();
  #closed = false;
  readonly #loop: Promise<void>;
  /** Connections refused and session errors, newest last. */
  readonly errors: Error[] = [];

  private constructor(listener: Listener, opts: CheckedOptions, fileSize: number) {
    this.#listener = listener;
    this.#opts = opts;
    this.#fileSize = fileSize;
    this.#loop = this.#acceptLoop();
  }

  /**
   * Listens at `socketPath` (Firecracker's `backend_path`) and serves every
   * VM that connects, until close().
   */
  static listen(socketPath: string, options: FirecrackerHandlerOptions): FirecrackerHandler {
    const o = v.options<FirecrackerHandlerOptions>("FirecrackerHandler options", options);
    const memoryFile = v.string("options.memoryFile", o.memoryFile);
    let fileSize: number;
    try {
      const st = statSync(memoryFile);
      if (!st.isFile()) throw new Error("not a regular file");
      fileSize = st.size;
    } catch (e) {
      throw new UmmuArgumentError(
        `options.memoryFile ${JSON.stringify(memoryFile)} cannot be used: ${(e as Error).message}`,
      );
    }
    const uid = process.getuid?.() ?? 0;
    const opts = {
      memoryFile,
      allowUids: o.allowUids === undefined
        ? [...new Set([uid, 0])]
        : v.list("options.allowUids", o.allowUids, (x, i) =>
          v.integer(`allowUids[${i}]`, x, 0, 2 ** 32 - 1)),
      readahead: o.readahead === undefined
        ? 1
        : v.integer("options.readahead", o.readahead, 1, 512),
      replace: v.boolean("options.replace", o.replace, true),
      messageTimeoutMs: v.milliseconds("options.messageTimeoutMs", o.messageTimeoutMs, 5000, false),
      onSession: v.optionalFunction<FirecrackerHandlerOptions["onSession"]>(
        "options.onSession",
        o.onSession,
      ),
      onSessionEnd: v.optionalFunction<FirecrackerHandlerOptions["onSessionEnd"]>(
        "options.onSessionEnd",
        o.onSessionEnd,
      ),
      onError: v.optionalFunction<FirecrackerHandlerOptions["onError"]>(
        "options.onError",
        o.onError,
      ),
    };
    const listener = UnixListener.listen(socketPath, { replace: opts.replace });
    return new FirecrackerHandler(listener, opts, fileSize);
  }

  /** The socket path. */
  get path(): string {
    return this.#listener.path;
  }

  /** VMs being served now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let conn: UnixSocket;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed) return;
        this.#report(e as Error);
        continue;
      }
      this.#connections.add(conn);
      void this.#serve(conn).catch((e) => this.#report(e as Error)).finally(async () => {
        this.#connections.delete(conn);
        await conn.close();
      });
    }
  }

  #report(e: Error): void {
    this.errors.push(e);
    if (this.errors.length > 1000) this.errors.splice(0, this.errors.length - 1000);
    try {
      this.#opts.onError?.(e);
    } catch { /* a throwing callback changes nothing here */ }
  }

  /** One connection: credentials, the message and its fd, then a FaultHandler until the VM exits. */
  async #serve(conn: UnixSocket): Promise<void> {
    const creds = conn.peerCredentials();
    if (!this.#opts.allowUids.includes(creds.uid)) {
      throw new Error(
        `firecracker handler: refused pid ${creds.pid}: uid ${creds.uid} is not in allowUids [${
          this.#opts.allowUids.join(", ")
        }]`,
      );
    }
    const { text, fds } = await this.#receiveMessage(conn, creds.pid);
    // Firecracker sends the uffd first; a newer one may add guest_memfd fds we do not use.
    for (const extra of fds.slice(1)) libc.close(extra);
    const uffdFd = fds[0];
    let uffd: UserfaultFd | null = null;
    let started = false;
    try {
      const regions = this.#parseRegions(text, creds.pid);
      uffd = UserfaultFd.fromFd(uffdFd);
      const handler = await FaultHandler.start(uffd, {
        peer: { pid: creds.pid },
        ranges: regions.map((r) => ({
          address: r.base_host_virt_addr,
          length: r.size,
          pageSize: r.page_size,
          source: sources.file(this.#opts.memoryFile, r.offset),
          readahead: this.#opts.readahead,
          afterRemove: "zero" as const,
        })),
      });
      uffd = null; // the handler owns it now
      started = true;
      this.#sessions.add(handler);
      try {
        this.#opts.onSession?.({ pid: creds.pid, uid: creds.uid, regions, handler });
      } catch (e) {
        this.#report(e as Error);
      }
      // The connection stays open while the VM runs; the pidfd tells the handler it exited.
      const reason = await handler.ended;
      this.#sessions.delete(handler);
      for (const e of handler.errors) this.errors.push(e);
      try {
        this.#opts.onSessionEnd?.({
          pid: creds.pid,
          reason,
          stats: handler.stats,
          errors: handler.errors,
        });
      } catch (e) {
        this.#report(e as Error);
      }
    } catch (e) {
      // Not served: the fd is closed here (by its handle, or as a bare number before one existed).
      if (uffd) uffd.close();
      else if (!started) libc.close(uffdFd);
      throw e;
    }
  }

  /**
   * The JSON and its fd. On a stream socket the bytes may come in pieces,
   * and a recvmsg may return bytes without the fd (Firecracker's handlers
   * retry): read until the fd came and the JSON parses, the peer closes, or
   * the deadline passes.
   */
  async #receiveMessage(conn: UnixSocket, pid: number): Promise<{ text: string; fds: number[] }> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const fds: number[] = [];
    const deadline = Date.now() + this.#opts.messageTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((res) => {
      timer = setTimeout(() => res("timeout"), this.#opts.messageTimeoutMs);
    });
    const fail = (why: string): never => {
      for (const fd of fds) libc.close(fd);
      throw new Error(`firecracker handler: pid ${pid}: ${why}`);
    };
    try {
      for (;;) {
        const receiving = conn.receive({ maxBytes: MAX_MESSAGE, maxFds: 4 });
        receiving.catch(() => {}); // after a timeout, the close of the connection rejects it
        const got = await Promise.race([receiving, timeout]);
        if (got === "timeout" || Date.now() > deadline) {
          return fail(
            size > 0 && fds.length === 0
              ? `the message came without a userfaultfd (no SCM_RIGHTS fd within ${this.#opts.messageTimeoutMs} ms): ${
                JSON.stringify(decode(chunks, size).slice(0, 80))
              }`
              : `no complete region message with a userfaultfd within ${this.#opts.messageTimeoutMs} ms`,
          );
        }
        fds.push(...got.fds);
        chunks.push(got.bytes);
        size += got.bytes.length;
        if (size > MAX_MESSAGE) return fail(`the region message exceeds ${MAX_MESSAGE} bytes`);
        const text = decode(chunks, size);
        // Firecracker sends the JSON and the fd in one sendmsg, and the bytes of that
        // sendmsg arrive with its fd: once the fd is here, so is the whole message.
        if (fds.length > 0) return { text, fds };
        if (got.eof) {
          return fail(
            size === 0
              ? "connected and closed without sending anything"
              : `the message came without a userfaultfd (no SCM_RIGHTS fd): ${
                JSON.stringify(text.slice(0, 80))
              }`,
          );
        }
        // Bytes without the fd: retry the recvmsg, as Firecracker's own handlers do.
      }
    } finally {
      clearTimeout(timer);
    }
  }

  #parseRegions(text: string, pid: number): GuestRegionUffdMapping[] {
    const bad = (why: string): never => {
      throw new Error(`firecracker handler: pid ${pid}: ${why}`);
    };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return bad(
        `the region message is not JSON (${(e as Error).message}): ${
          JSON.stringify(text.slice(0, 80))
        }`,
      );
    }
    if (!Array.isArray(value) || value.length === 0) {
      return bad(
        `the region message must be a non-empty JSON array of GuestRegionUffdMapping, got ${
          text.slice(0, 80)
        }`,
      );
    }
    const regions = value.map((r: Record<string, unknown>, i) => {
      const field = (name: string) => {
        const x = r?.[name];
        if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) {
          bad(`region ${i}: ${name} must be a non-negative integer, got ${JSON.stringify(x)}`);
        }
        return x as number;
      };
      // page_size (bytes); older Firecracker sent only page_size_kib, which held bytes too.
      const pageSize = r?.page_size !== undefined ? field("page_size") : field("page_size_kib");
      return {
        base_host_virt_addr: field("base_host_virt_addr"),
        size: field("size"),
        offset: field("offset"),
        page_size: pageSize,
      };
    });
    let total = 0;
    for (const [i, r] of regions.entries()) {
      if (r.offset + r.size > this.#fileSize) {
        bad(
          `region ${i} (offset ${r.offset}, size ${r.size}) ends past the memory file ` +
            `${this.#opts.memoryFile} (${this.#fileSize} bytes): is it this VM's snapshot?`,
        );
      }
      total += r.size;
    }
    if (total !== this.#fileSize) {
      bad(
        `the regions add up to ${total} bytes, the memory file ${this.#opts.memoryFile} has ${this.#fileSize}: ` +
          `is it this VM's snapshot?`,
      );
    }
    return regions;
  }

  /** Stops listening, ends every session (their VMs' faults then fail) and releases everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener.close();
    await this.#loop;
    await Promise.all([...this.#sessions].map((h) => h.close()));
    await Promise.all([...this.#connections].map((c) => c.close()));
  }
}

function decode(chunks: Uint8Array[], size: number): string {
  return new TextDecoder().decode(concat(chunks, size));
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
