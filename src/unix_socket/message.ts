/**
 * The bytes of sendmsg/recvmsg: a msghdr with one iovec and an SCM_RIGHTS
 * control message, and sockaddr_un. The msghdr points at the iovec and the
 * control buffer by address, so every buffer here is the module's own,
 * allocated once per socket and kept alive by it (addresses of a caller's
 * arrays are never stored).
 */
import * as s from "../../ffi/socket.ts";
import { SIZEOF_IOVEC } from "../../ffi/uio.ts";
import { runtime } from "../../ffi/platform.ts";
import { UmmuArgumentError } from "../errors.ts";

const encoder = new TextEncoder();

/**
 * A buffer whose address may be stored: made from an ArrayBuffer, so its
 * bytes never move (Bun keeps a small `new Uint8Array(n)` inside the object
 * and moves it out on the first `.buffer`, after its address was taken).
 */
function stable(n: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(n));
}

/** CMSG_SPACE(n): a control message of n data bytes with its padding. */
export function cmsgSpace(n: number): number {
  const a = s.CMSG_ALIGN_TO;
  return s.SIZEOF_CMSGHDR + Math.ceil(n / a) * a;
}

/** struct sockaddr_un for a filesystem path, and the length to pass with it. */
export function sockaddrUn(path: string, what: string): { addr: Uint8Array; len: number } {
  if (typeof path !== "string" || path.length === 0) {
    throw new UmmuArgumentError(`${what} must be a non-empty path string, got ${typeof path}`);
  }
  const bytes = encoder.encode(path);
  if (bytes.includes(0)) {
    throw new UmmuArgumentError(`${what} ${JSON.stringify(path)} contains a NUL byte`);
  }
  if (bytes.length >= s.UNIX_PATH_MAX) {
    throw new UmmuArgumentError(
      `${what} ${
        JSON.stringify(path.slice(0, 40))
      }… is ${bytes.length} bytes: a unix socket path ` +
        `must be shorter than ${s.UNIX_PATH_MAX} bytes (sun_path); use a shorter directory`,
    );
  }
  const addr = new Uint8Array(s.SIZEOF_SOCKADDR_UN);
  new DataView(addr.buffer).setUint16(s.SOCKADDR_UN_OFF.sun_family, s.AF_UNIX, true);
  addr.set(bytes, s.SOCKADDR_UN_OFF.sun_path);
  return { addr, len: s.SOCKADDR_UN_OFF.sun_path + bytes.length + 1 };
}

/**
 * One socket's message buffers: a msghdr, its iovec, a data buffer and a
 * control buffer, grown when a bigger message is asked for.
 */
export class MessageBuffers {
  readonly msg = stable(s.SIZEOF_MSGHDR);
  readonly #mdv = new DataView(this.msg.buffer);
  readonly #iov = stable(SIZEOF_IOVEC);
  readonly #idv = new DataView(this.#iov.buffer);
  data = stable(0);
  control = stable(0);

  /** Prepares the msghdr for `dataLength` bytes of data and room for `fdCount` fds. */
  prepare(dataLength: number, fdCount: number): void {
    if (this.data.length < dataLength) this.data = stable(Math.max(dataLength, 256));
    const controlLength = fdCount > 0 ? cmsgSpace(4 * fdCount) : 0;
    if (this.control.length < controlLength) this.control = stable(controlLength);
    this.msg.fill(0);
    this.#idv.setBigUint64(0, BigInt(dataLength > 0 ? runtime.addressOf(this.data) : 0), true);
    this.#idv.setBigUint64(8, BigInt(dataLength), true);
    const O = s.MSGHDR_OFF;
    this.#mdv.setBigUint64(O.msg_iov, BigInt(runtime.addressOf(this.#iov)), true);
    this.#mdv.setBigUint64(O.msg_iovlen, 1n, true);
    if (controlLength > 0) {
      this.control.fill(0, 0, controlLength);
      this.#mdv.setBigUint64(O.msg_control, BigInt(runtime.addressOf(this.control)), true);
      this.#mdv.setBigUint64(O.msg_controllen, BigInt(controlLength), true);
    }
  }

  /** Writes one SCM_RIGHTS message carrying `fds` (after prepare with their count). */
  putFds(fds: readonly number[]): void {
    const dv = new DataView(this.control.buffer);
    const C = s.CMSGHDR_OFF;
    dv.setBigUint64(C.cmsg_len, BigInt(s.SIZEOF_CMSGHDR + 4 * fds.length), true);
    dv.setInt32(C.cmsg_level, s.SOL_SOCKET, true);
    dv.setInt32(C.cmsg_type, s.SCM_RIGHTS, true);
    fds.forEach((fd, i) => dv.setInt32(s.SIZEOF_CMSGHDR + 4 * i, fd, true));
  }

  /** msg_flags after recvmsg (MSG_TRUNC, MSG_CTRUNC). */
  get flags(): number {
    return this.#mdv.getInt32(s.MSGHDR_OFF.msg_flags, true);
  }

  /** Every fd of every SCM_RIGHTS message recvmsg wrote into the control buffer. */
  takeFds(): number[] {
    const used = Number(this.#mdv.getBigUint64(s.MSGHDR_OFF.msg_controllen, true));
    const dv = new DataView(this.control.buffer);
    const fds: number[] = [];
    for (let off = 0; off + s.SIZEOF_CMSGHDR <= used;) {
      const len = Number(dv.getBigUint64(off + s.CMSGHDR_OFF.cmsg_len, true));
      if (len < s.SIZEOF_CMSGHDR) break;
      const level = dv.getInt32(off + s.CMSGHDR_OFF.cmsg_level, true);
      const type = dv.getInt32(off + s.CMSGHDR_OFF.cmsg_type, true);
      if (level === s.SOL_SOCKET && type === s.SCM_RIGHTS) {
        const n = (len - s.SIZEOF_CMSGHDR) >> 2;
        for (let i = 0; i < n; i++) fds.push(dv.getInt32(off + s.SIZEOF_CMSGHDR + 4 * i, true));
      }
      off += cmsgSpace(len - s.SIZEOF_CMSGHDR);
    }
    return fds;
  }
}
