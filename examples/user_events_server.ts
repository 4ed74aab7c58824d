/**
 * A small HTTP server that emits a tracepoint per request: a raw user_events
 * tracepoint and an EventHeader event (with an activity id per request), each
 * emitted only while a tracer listens (one Atomics.load when nobody does).
 *
 *   deno run -A examples/user_events_server.ts [PORT]      (or: bun examples/user_events_server.ts)
 *   UMMU_DEMO_REQUESTS=5 deno run -A examples/user_events_server.ts   # serve 5 requests to itself, then exit
 *   (UMMU_DEMO_WAIT_ENABLED=1: first wait until a tracer enables the tracepoint)
 *
 * Needs a kernel with user_events (Linux 6.4+, CONFIG_USER_EVENTS; try it in
 * the test VM: tests/vm/run.sh -- deno run -A examples/user_events_server.ts)
 * and write access to /sys/kernel/tracing/user_events_data (root).
 *
 * Watch it with ftrace:
 *   echo 1 > /sys/kernel/tracing/events/user_events/ummu_http_request/enable
 *   cat /sys/kernel/tracing/trace_pipe
 *     ... ummu_http_request: status=0xc8 (200) method=GET path=/hello ms=...
 *   echo 0 > /sys/kernel/tracing/events/user_events/ummu_http_request/enable
 *
 * Or with perf (the raw event, and the EventHeader one decoded by Microsoft's
 * perf-decode from LinuxTracepoints):
 *   perf record -a -e user_events:ummu_http_request -e user_events:ummu_http_L4K1 -- sleep 10
 *   perf script                      # raw fields (-a: the events come from another process)
 *   perf-decode perf.data            # EventHeader: { "n": "ummu_http:Request", "status": 200, "path": "/hello", ... }
 *
 * The tracepoints are listed in /sys/kernel/tracing/user_events_status while
 * the server runs, with "# Used by ftrace perf" once a tracer is attached.
 */
import process from "node:process";
import { createServer } from "node:http";
import { EventHeaderProvider, Opcode, UserEvents } from "ummu/user_events";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const demoRequests = Number(process.env.UMMU_DEMO_REQUESTS ?? 0);

const events = UserEvents.open();
const request = events.register(
  "ummu_http_request",
  "u32 status; __data_loc char[] method; __data_loc char[] path; u32 ms",
);
const provider = new EventHeaderProvider("ummu_http", { userEvents: events });
const ehRequest = provider.defineEvent({
  name: "Request",
  level: 4,
  keyword: 1,
  opcode: Opcode.Info,
  activity: "id",
  fields: [
    { name: "status", type: "u32" },
    { name: "method", type: "string" },
    { name: "path", type: "string" },
    { name: "ms", type: "f64" },
  ],
});

console.error(
  `tracepoints: user_events:${request.name} (raw), user_events:${ehRequest.tracepoint.name} (EventHeader)`,
);

const activity = new Uint8Array(16);
const server = createServer((req, res) => {
  const t0 = performance.now();
  const status = req.url === "/missing" ? 404 : 200;
  res.writeHead(status, { "content-type": "text/plain" });
  res.end(status === 200 ? "hello\n" : "not found\n");
  const ms = performance.now() - t0;
  // A disabled tracepoint costs one load: test before encoding anything.
  if (request.enabled) request.emit(status, req.method ?? "", req.url ?? "", Math.round(ms));
  if (ehRequest.enabled) {
    crypto.getRandomValues(activity);
    ehRequest.emitActivity(activity, undefined, status, req.method ?? "", req.url ?? "", ms);
  }
});

function shutdown(): void {
  server.close();
  provider.close();
  events.close();
}
process.on("SIGINT", () => {
  shutdown();
  process.exit(0);
});

server.listen(port, async () => {
  console.error(`listening on http://localhost:${port}/`);
  if (demoRequests > 0) {
    // UMMU_DEMO_WAIT_ENABLED=1: wait (up to 60 s) for a tracer to attach first.
    for (let i = 0; process.env.UMMU_DEMO_WAIT_ENABLED && !request.enabled && i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let i = 0; i < demoRequests; i++) {
      const r = await fetch(`http://localhost:${port}/${i % 2 ? "hello" : "missing"}`);
      await r.text();
    }
    console.error(
      `served ${demoRequests} requests (raw enabled: ${request.enabled}, EventHeader enabled: ${ehRequest.enabled})`,
    );
    shutdown();
  }
});
