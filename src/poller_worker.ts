/** The Worker behind FdReadiness: poll(fds..., eventfd) -> raise the word -> wait to be re-armed. */
import { errno, libc, pollFds } from "./libc.ts";
import { announceLoaded, onWorkerMessage } from "./worker.ts";
import { FdControl } from "./fd_control.ts";
import type { PollerInit } from "./poller.ts";
import { POLLERR, POLLHUP, POLLIN } from "../ffi/mman.ts";

const ARMED = 0, READABLE = 1, STOPPED = 3;
const EINTR = 4;

onWorkerMessage<PollerInit>((init) => {
  const controls = init.shares.map((s) => new FdControl(s));
  const word = new Int32Array(init.word);
  const n = controls.length;
  const fds = pollFds([...controls.map((c) => c.fd), init.wakeFd]);
  const dv = new DataView(fds.buffer);
  const revents = (i: number) => dv.getInt16(i * 8 + 6, true);
  // Enters every fd's control, or none (then one of them was closed).
  const enterAll = () => {
    for (let i = 0; i < n; i++) {
      if (!controls[i].enter()) {
        for (let j = 0; j < i; j++) controls[j].leave();
        return false;
      }
    }
    return true;
  };
  for (;;) {
    // Wait until armed (the caller drained the fd), unless told to stop.
    while (Atomics.load(word, 0) === READABLE) Atomics.wait(word, 0, READABLE, 1000);
    if (Atomics.load(word, 0) !== ARMED) break;
    for (let i = 0; i <= n; i++) dv.setInt16(i * 8 + 6, 0, true);
    if (!enterAll()) break; // an fd was closed: never poll its number again
    // Back to JavaScript at least once a second (see POLL_MS in handler_worker.ts):
    // a Worker in a system call cannot be terminated, and Node joins Workers at exit.
    const r = libc.poll(fds, n + 1, 1000);
    const e = r < 0 ? errno() : 0;
    for (const c of controls) c.leave();
    if (r < 0 && e === EINTR) continue;
    if (r < 0 || revents(n) !== 0) break;
    if (r === 0) {
      // A tick: readable once a second even without POLLIN (records below a perf ring's
      // watermark wake nobody; the owner drains them at least this often).
      if (init.tick && Atomics.compareExchange(word, 0, ARMED, READABLE) === ARMED) {
        Atomics.notify(word, 0);
      }
      continue;
    }
    let ready = false;
    for (let i = 0; i < n; i++) {
      const ev = revents(i);
      if (ev === 0) continue;
      ready = true;
      if (init.dropHungUp && !(ev & POLLIN) && ev & (POLLHUP | POLLERR)) {
        // Hung up (a perf event whose task exited): poll ignores a negative fd from now on.
        // Only where the owner asked: a userfaultfd says POLLERR for other reasons (blocking
        // mode, no API handshake yet) and its reader must still be woken every time.
        dv.setInt32(i * 8, -1, true);
        Atomics.add(word, 1, 1);
      }
    }
    if (ready && Atomics.compareExchange(word, 0, ARMED, READABLE) === ARMED) {
      Atomics.notify(word, 0);
    }
  }
  Atomics.store(word, 0, STOPPED);
  Atomics.notify(word, 0);
});

announceLoaded();
