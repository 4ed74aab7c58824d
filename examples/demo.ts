/**
 * The demo: every example, end to end. `npm run demo` runs it under Deno and Bun.
 *
 *   deno run -A examples/demo.ts      bun examples/demo.ts
 */
import { main as lazyFile } from "./lazy_file.ts";
import { main as liveSnapshot } from "./live_snapshot.ts";
import { main as dirtyTracking } from "./dirty_tracking.ts";

const runtime = "Bun" in globalThis ? "bun" : "deno";
console.log(`ummu demo (${runtime})`);
for (const example of [lazyFile, liveSnapshot, dirtyTracking]) await example();
