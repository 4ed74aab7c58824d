/**
 * The fds of one logical perf event (one per thread or CPU slot), each used
 * through its FdControl: every call is bracketed by enter/leave, so a close
 * on another path (or a Worker polling them) never meets a reused number.
 * @module
 */
import { check, errno, libc } from "../libc.ts";
import { ERRNO_NAMES } from "../../ffi/errno.ts";
import { ClosedError, UmmuError } from "../errors.ts";
import type { FdControl } from "../fd_control.ts";

/** The fds of an event and the calls on them. */
export class EventFds {
  readonly controls: readonly FdControl[];
  /** The event's name, for messages. */
  readonly name: string;

  constructor(name: string, controls: readonly FdControl[]) {
    this.name = name;
    this.controls = controls;
  }

  /** The fd numbers. */
  get fds(): number[] {
    return this.controls.map((c) => c.fd);
  }

  /** The control of an fd number. */
  controlOf(fd: number): FdControl {
    return this.controls.find((c) => c.fd === fd)!;
  }

  #on<T>(c: FdControl, what: string, call: () => T): T {
    if (!c.enter()) throw new ClosedError(`PerfEvent (${what})`);
    try {
      return call();
    } finally {
      c.leave();
    }
  }

  /** ioctl(request, integer arg) on every fd; `hints` by errno name for a failure. */
  ioctl(name: string, request: number, arg: number, hints: Record<string, string> = {}): void {
    for (const c of this.controls) {
      this.#on(c, name, () => {
        const r = libc.ioctl_int(c.fd, request, arg);
        if (r < 0) {
          const e = errno();
          throw new UmmuError(`ioctl(${name}) on ${this.name}`, e, hints[ERRNO_NAMES[e]] ?? "");
        }
      });
    }
  }

  /** ioctl(request, buffer) on every fd (or only the first). */
  ioctlBuffer(name: string, request: number, buf: Uint8Array, firstOnly = false): void {
    for (const c of firstOnly ? this.controls.slice(0, 1) : this.controls) {
      this.#on(
        c,
        name,
        () => check(libc.ioctl(c.fd, request, buf), `ioctl(${name}) on ${this.name}`),
      );
    }
  }

  /** PERF_EVENT_IOC_ID-style: one u64 out of each fd. */
  ioctlU64(name: string, request: number): bigint[] {
    return this.controls.map((c) => {
      const buf = new Uint8Array(8);
      this.#on(
        c,
        name,
        () => check(libc.ioctl(c.fd, request, buf), `ioctl(${name}) on ${this.name}`),
      );
      return new DataView(buf.buffer).getBigUint64(0, true);
    });
  }

  /** read(2) of `size` bytes from every fd. */
  read(size: number): DataView[] {
    return this.controls.map((c) => {
      const buf = new Uint8Array(size);
      const r = this.#on(c, "read", () => libc.read(c.fd, buf, size));
      if (r < 0) throw new UmmuError(`read(perf event ${this.name})`, errno());
      if (r < size) {
        throw new UmmuError(
          `read(perf event ${this.name})`,
          5,
          `short read: ${r} of ${size} bytes (the group changed since it was opened?)`,
        );
      }
      return new DataView(buf.buffer);
    });
  }

  /** Closes every fd once (`wake` first: Workers polling them return). */
  close(wake?: () => void): void {
    for (const c of this.controls) c.close(wake);
  }
}
