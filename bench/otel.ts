/**
 * bench/otel.ts: what ummu/otel costs on top of the OpenTelemetry logs SDK,
 * measured in one run without a kernel that has user_events (as
 * bench/user_events.ts does: the host has none, and the VM's emulated CPU
 * would time qemu). The tracepoints are bound to /dev/null (the same writev
 * the kernel's user_events_data takes) with an enable word this bench sets.
 *
 * The record: severity INFO, severity text, a string body and 5 attributes
 * (2 strings, an int, a double, a bool), written as Rust's layout has it
 * (__csver__, PartA {time, role, roleInstance}, PartC {5}, PartB {_typeName,
 * body, severityNumber, severityText}).
 *
 * - enabled: `logger.emit(record)` through the SDK's LoggerProvider into
 *   UserEventsLogProcessor, against the same fields written directly with an
 *   EventHeaderProvider event (EventHeaderEvent.emit with the time formatted
 *   by toISOString, the values in place): enabled_ratio = direct ns / SDK ns
 *   (target >= 0.5: the SDK path costs at most twice the bare write).
 * - disabled (the enable bit clear): `logger.emit(record)` with our processor
 *   against the same SDK with a processor that does nothing:
 *   disabled_ratio = ours ns / no-op ns (target <= 1.5).
 *
 * Prints one JSON line: {"bench":"otel","runtime":…,"cpus":…,"enabled_ratio":…,
 * "disabled_ratio":…, raw figures}. Environment: UMMU_BENCH_CPUS (reported),
 * UMMU_BENCH_EVENTS (default 200000), UMMU_BENCH_REPS (default 5).
 */
import process from "node:process";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { LoggerProvider } from "@opentelemetry/sdk-logs";
import { runtime } from "../ffi/platform.ts";
import { cstring, libc } from "../src/libc.ts";
import { O_CLOEXEC, O_WRONLY } from "../ffi/mman.ts";
import { Tracepoint } from "../src/user_events/tracepoint.ts";
import { EnableSlab } from "../src/user_events/slab.ts";
import { EVENTHEADER_COMMAND_TYPES, EventHeaderEvent } from "../src/user_events/eventheader.ts";
import { UserEventsLogProcessor } from "../src/otel/logs_processor.ts";

const env = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === "" ? dflt : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
};
const CPUS = env("UMMU_BENCH_CPUS", 2);
const EVENTS = Math.floor(env("UMMU_BENCH_EVENTS", 200_000));
const REPS = Math.max(3, Math.floor(env("UMMU_BENCH_REPS", 5)));
const log = (s: string) => process.stderr.write(`otel[${runtime.name}]: ${s}\n`);

// ---- tracepoints bound to /dev/null, one enable word we set -------------------------------------
const fd = libc.open(cstring("/dev/null"), O_WRONLY | O_CLOEXEC, 0);
if (fd < 0) throw new Error("open /dev/null failed");
const slab = new EnableSlab(1);
const BIT = 4;
const handle = (name: string) => ({
  name,
  fields: EVENTHEADER_COMMAND_TYPES,
  fd,
  writeIndex: 0,
  slab: slab.buffer,
  word: 0,
  bit: BIT,
  flags: 0,
});
const tracepoints = new Map(
  [1, 2, 3, 4, 5].map((l) => [l, Tracepoint.fromHandle(handle(`ummu_bench_L${l}K1`))]),
);
const setEnabled = (on: boolean) =>
  on ? Atomics.or(slab.words, 0, 1 << BIT) : Atomics.and(slab.words, 0, ~(1 << BIT));

// ---- the SDK with our processor, and with a no-op one ------------------------------------------
const resource = resourceFromAttributes({ "service.name": "bench", "service.instance.id": "1" });
const ours = new UserEventsLogProcessor("ummu_bench", {}, tracepoints);
const oursLogger = new LoggerProvider({ resource, processors: [ours] }).getLogger("bench");
let noopCalls = 0;
const noopLogger = new LoggerProvider({
  resource,
  processors: [{
    onEmit: () => void noopCalls++,
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  }],
}).getLogger("bench");
const RECORD = {
  severityNumber: 9,
  severityText: "INFO",
  body: "GET /api/v1/items/42 served",
  attributes: { route: "/api/v1/items/:id", method: "GET", status: 200, ms: 1.25, cached: true },
};

// ---- the same fields written directly with an EventHeaderProvider event ------------------------
const direct = EventHeaderEvent.fromHandle({
  tracepoint: handle("ummu_bench_L4K1"),
  def: {
    name: "Log",
    level: 4,
    keyword: 1,
    fields: [
      { name: "__csver__", type: "u32", format: 1 },
      {
        name: "PartA",
        type: "struct",
        fields: [
          { name: "time", type: "string" },
          { name: "ext_cloud_role", type: "string" },
          { name: "ext_cloud_roleInstance", type: "string" },
        ],
      },
      {
        name: "PartC",
        type: "struct",
        fields: [
          { name: "route", type: "string" },
          { name: "method", type: "string" },
          { name: "status", type: "i64" },
          { name: "ms", type: "f64" },
          { name: "cached", type: "bool8" },
        ],
      },
      {
        name: "PartB",
        type: "struct",
        fields: [
          { name: "_typeName", type: "string" },
          { name: "body", type: "string" },
          { name: "severityNumber", type: "i16" },
          { name: "severityText", type: "string" },
        ],
      },
    ],
  },
});
const partA = { time: "", ext_cloud_role: "bench", ext_cloud_roleInstance: "1" };
const partC = RECORD.attributes;
const partB = { _typeName: "Log", body: RECORD.body, severityNumber: 9, severityText: "INFO" };

function viaSdk(n: number): void {
  for (let i = 0; i < n; i++) oursLogger.emit(RECORD);
}
function viaNoop(n: number): void {
  for (let i = 0; i < n; i++) noopLogger.emit(RECORD);
}
function viaDirect(n: number): void {
  for (let i = 0; i < n; i++) {
    if (!direct.enabled) throw new Error("the direct event is not enabled");
    partA.time = new Date().toISOString();
    if (!direct.emit(0x400, partA, partC, partB)) throw new Error("write failed");
  }
}

/** Best (lowest) ns per iteration over REPS runs. */
function best(fn: (n: number) => unknown, n: number): number {
  fn(Math.max(1000, Math.floor(n / 10))); // warm up (JIT)
  let bestNs = Infinity;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    fn(n);
    const ns = ((performance.now() - t0) * 1e6) / n;
    if (ns < bestNs) bestNs = ns;
  }
  return bestNs;
}

setEnabled(true);
// A check that the SDK path writes: the processor's exporter takes a record.
if (!ours.exporter.enabledFor(9)) throw new Error("our processor does not see the enable bit");
const nsSdk = best(viaSdk, EVENTS);
const nsDirect = best(viaDirect, EVENTS);
setEnabled(false);
if (ours.exporter.enabledFor(9)) throw new Error("our processor still sees the enable bit");
const nsDisabled = best(viaSdk, EVENTS);
const nsNoop = best(viaNoop, EVENTS);
if (noopCalls === 0) throw new Error("the no-op processor was never called");
libc.close(fd);

const round = (x: number, d = 3) => Number(x.toFixed(d));
const result = {
  bench: "otel",
  runtime: runtime.name,
  cpus: CPUS,
  enabled_ratio: round(nsDirect / nsSdk),
  disabled_ratio: round(nsDisabled / nsNoop),
  sdk_ns_per_record: round(nsSdk, 1),
  direct_ns_per_record: round(nsDirect, 1),
  disabled_ns_per_record: round(nsDisabled, 1),
  noop_ns_per_record: round(nsNoop, 1),
  events: EVENTS,
  reps: REPS,
};
log(
  `enabled ${result.enabled_ratio} (target >= 0.5), disabled ${result.disabled_ratio} (target <= 1.5)`,
);
console.log(JSON.stringify(result));
