/**
 * The demo: every example, end to end. `npm run demo` runs it under Deno and Bun.
 * user_events needs a kernel that has it: where this one does not, the
 * example runs inside the test VM (tests/vm/run.sh) if qemu and the kernel
 * are there, and otherwise the demo says what is missing.
 *
 *   deno run -A examples/demo.ts      bun examples/demo.ts
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { main as lazyFile } from "./lazy_file.ts";
import { main as liveSnapshot } from "./live_snapshot.ts";
import { main as dirtyTracking } from "./dirty_tracking.ts";
import { main as registrationCache } from "./registration_cache.ts";
import { main as userEventsTrace } from "./user_events_trace.ts";
import { UserEvents } from "ummu/user_events";

const isBun = "Bun" in globalThis;
console.log(`ummu demo (${isBun ? "bun" : "deno"})`);
for (const example of [lazyFile, liveSnapshot, dirtyTracking, registrationCache]) await example();

if (UserEvents.available()) {
  userEventsTrace();
} else {
  const harness = new URL("../tests/vm/run.sh", import.meta.url).pathname;
  const example = new URL("./user_events_trace.ts", import.meta.url).pathname;
  const cmd = isBun
    ? [process.execPath, example]
    : [process.execPath, "run", "-A", "--no-check", example];
  console.log("user_events: this kernel has none; running the example in the test VM (Linux 6.12)");
  const r = spawnSync(harness, ["--", ...cmd], { stdio: "inherit" });
  if (r.status === 77) {
    console.log("user_events: skipped (see the line above for what the VM needs)");
  } else if (r.status !== 0) {
    throw new Error(`user_events example failed in the VM (exit ${r.status})`);
  }
}
