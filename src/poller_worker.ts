/** The Worker behind FdReadiness: poll(fd, eventfd) -> raise the word -> wait to be re-armed. */
import { errno, libc, pollPair } from "./libc.ts";
import { announceLoaded, onWorkerMessage } from "./worker.ts";
import { FdControl } from "./fd_control.ts";
import type { PollerInit } from "./poller.ts";

const ARMED = 0, READABLE = 1, STOPPED = 3;
const EINTR = 4;

onWorkerMessage<PollerInit>((init) => {
  const control = new FdControl(init.share);
  const word = new Int32Array(init.word);
  const fds = pollPair(control.fd, init.wakeFd);
  const dv = new DataView(fds.buffer);
  for (;;) {
    // Wait until armed (the caller drained the fd), unless told to stop.
    while (Atomics.load(word, 0) === READABLE) Atomics.wait(word, 0, READABLE, 1000);
    if (Atomics.load(word, 0) !== ARMED) break;
    dv.setInt16(6, 0, true);
    dv.setInt16(14, 0, true);
    if (!control.enter()) break; // the fd was closed: never poll its number again
    // Back to JavaScript at least once a second (see POLL_MS in handler_worker.ts):
    // a Worker in a system call cannot be terminated, and Node joins Workers at exit.
    const r = libc.poll(fds, 2, 1000);
    const e = r < 0 ? errno() : 0;
    control.leave();
    if (r < 0 && e === EINTR) continue;
    if (r < 0 || dv.getInt16(14, true) !== 0) break;
    if (r === 0) continue;
    if (dv.getInt16(6, true) !== 0 && Atomics.compareExchange(word, 0, ARMED, READABLE) === ARMED) {
      Atomics.notify(word, 0);
    }
  }
  Atomics.store(word, 0, STOPPED);
  Atomics.notify(word, 0);
});

announceLoaded();
