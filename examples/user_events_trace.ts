/**
 * A tracepoint from user space, watched by ftrace: the kernel sets the enable
 * bit in our memory when ftrace enables the event, we emit, ftrace shows it.
 * Needs user_events (Linux 6.4+) and root; `npm run demo` runs this inside the
 * test VM when this kernel lacks it.
 *
 *   deno run -A examples/user_events_trace.ts      bun examples/user_events_trace.ts
 */
import { clearTrace, parseTrace, readTrace, setFtraceEnabled, UserEvents } from "ummu/user_events";

const runtimeName = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

export function main(): void {
  const events = UserEvents.open();
  const tp = events.register("ummu_demo", "u32 n; __data_loc char[] msg");
  const before = tp.enabled;
  clearTrace();
  setFtraceEnabled("user_events", "ummu_demo", true); // the kernel writes our enable bit now
  const during = tp.enabled;
  for (let n = 1; n <= 3; n++) {
    tp.emit(n, `hello from ${runtimeName} #${n}`);
  }
  setFtraceEnabled("user_events", "ummu_demo", false);
  const after = tp.enabled;
  const lines = parseTrace(readTrace(), "ummu_demo");
  console.log(
    `user_events: enabled before/while/after ftrace: ${before}/${during}/${after}; ftrace recorded:`,
  );
  for (const l of lines) console.log(`  ${l.task}-${l.pid} ${l.event}: ${l.body}`);
  events.close();
  if (before || !during || after || lines.length !== 3) {
    throw new Error("user_events: unexpected result");
  }
}

if (import.meta.main) main();
