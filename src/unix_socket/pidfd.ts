/**
 * Pidfd: a process as an fd (pidfd_open(2), Linux 5.3): it becomes readable
 * when the process exits, and pidfd_getfd(2) (Linux 5.6) copies one of the
 * process's fds into ours, which needs the right to ptrace it (same user and
 * a permissive ptrace scope, or CAP_SYS_PTRACE). Both go through syscall(2):
 * glibc wrappers exist only since 2.36.
 */
import { __NR_pidfd_getfd, __NR_pidfd_open } from "../../ffi/socket.ts";
import { POLLIN } from "../../ffi/mman.ts";
import { errno, libc, pollFds } from "../libc.ts";
import { ClosedError, UmmuError } from "../errors.ts";
import { FdControl } from "../fd_control.ts";
import * as v from "../validate.ts";

const held = new Set<number>();
/** How many pidfds the library holds open. */
export function openPidfds(): number {
  return held.size;
}

const HINTS: Record<number, string> = {
  3: "no such process (it exited)",
  1: "taking another process's fd needs the right to ptrace it: the same user with kernel.yama.ptrace_scope 0, or CAP_SYS_PTRACE",
  9: "the process has no such fd",
  38: "this kernel has no pidfd_open/pidfd_getfd (Linux 5.3 / 5.6)",
};

/** A process, as a pidfd. */
export class Pidfd {
  readonly #control: FdControl;
  /** The process id it was opened for. */
  readonly pid: number;
  #closed = false;

  private constructor(control: FdControl, pid: number) {
    this.#control = control;
    this.pid = pid;
  }

  /** Opens a pidfd for a running process. */
  static open(pid: number): Pidfd {
    const p = v.integer("pid", pid, 1, 2 ** 31 - 1);
    const r = Number(libc.syscall(__NR_pidfd_open, p, 0, 0, 0, 0));
    if (r < 0) {
      const e = errno();
      throw new UmmuError(`pidfd_open(${p})`, e, HINTS[e] ?? "");
    }
    held.add(r);
    return new Pidfd(FdControl.create(r), p);
  }

  /** The pidfd itself (poll it: readable once the process exited). */
  get fd(): number {
    if (this.#closed) throw new ClosedError("Pidfd");
    return this.#control.fd;
  }

  /** True once the process has exited (a zero-timeout poll). */
  get exited(): boolean {
    if (this.#closed || !this.#control.enter()) throw new ClosedError("Pidfd");
    try {
      const p = pollFds([this.#control.fd]);
      return libc.poll(p, 1n, 0) > 0 && (new DataView(p.buffer).getInt16(6, true) & POLLIN) !== 0;
    } finally {
      this.#control.leave();
    }
  }

  /**
   * A copy of the process's fd `targetFd` in this process (close-on-exec),
   * yours to close: the same open file, as SCM_RIGHTS would give.
   */
  getFd(targetFd: number): number {
    const t = v.integer("targetFd", targetFd, 0, 2 ** 31 - 1);
    if (this.#closed || !this.#control.enter()) throw new ClosedError("Pidfd");
    try {
      const r = Number(libc.syscall(__NR_pidfd_getfd, this.#control.fd, t, 0, 0, 0));
      if (r < 0) {
        const e = errno();
        throw new UmmuError(`pidfd_getfd(${this.pid}, ${t})`, e, HINTS[e] ?? "");
      }
      return r;
    } finally {
      this.#control.leave();
    }
  }

  /** Closes the pidfd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const fd = this.#control.fd;
    if (this.#control.close()) held.delete(fd);
  }
}
