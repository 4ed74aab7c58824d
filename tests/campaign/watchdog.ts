/**
 * The campaign's watchdog, in a Worker of its own: if the main thread stops
 * making progress (blocked in a fault nobody serves, a deadlock), it writes
 * the command that was running to stderr and ends the process, so a hang
 * reports what hung instead of only that something did.
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { announceLoaded, onWorkerMessage } from "../../src/worker.ts";

onWorkerMessage<{ progress: SharedArrayBuffer; text: SharedArrayBuffer; stallMs: number }>(
  ({ progress, text, stallMs }) => {
    const beat = new Int32Array(progress);
    const bytes = new Uint8Array(text);
    let last = Atomics.load(beat, 0), since = Date.now();
    setInterval(() => {
      const now = Atomics.load(beat, 0);
      if (now !== last) {
        last = now;
        since = Date.now();
        return;
      }
      if (Date.now() - since < stallMs) return;
      const n = bytes.indexOf(0);
      const cmd = new TextDecoder().decode(bytes.slice(0, n < 0 ? bytes.length : n));
      writeSync(2, `campaign watchdog: no progress for ${stallMs} ms, in ${cmd}\n`);
      process.kill(process.pid, "SIGKILL");
    }, 500);
  },
);

announceLoaded();
