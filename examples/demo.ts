/**
 * The demo: every example, end to end, on the runtime that runs it.
 *
 *   deno run -A examples/demo.ts      bun examples/demo.ts              (a checkout)
 *   node node_modules/ummu/examples/demo.js                             (the npm package;
 *   bun node_modules/ummu/examples/demo.js, deno run -A node_modules/ummu/examples/demo.js)
 *
 * `npm run demo` in a checkout runs it under Deno, Bun and Node. user_events
 * needs a kernel that has it (Linux 6.4+ with CONFIG_USER_EVENTS): where this
 * one does not, the demo runs that example inside the project's test VM
 * (tests/vm/run.sh of a checkout, with qemu and the test kernel), and
 * otherwise says why it did not run it. It ends with one line,
 * `demo (RUNTIME): N passed, M failed, K skipped`, and exits 1 if an example failed.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { UserEvents } from "ummu/user_events";
import { main as lazyFile } from "./lazy_file.ts";
import { main as liveSnapshot } from "./live_snapshot.ts";
import { main as dirtyTracking } from "./dirty_tracking.ts";
import { main as registrationCache } from "./registration_cache.ts";
import { main as userEventsTrace } from "./user_events_trace.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** The command that runs one example file under this runtime. */
function commandFor(file: string): string[] {
  return runtime === "deno"
    ? [process.execPath, "run", "-A", "--no-check", file]
    : [process.execPath, file];
}

/** tests/vm/run.sh of a checkout: beside examples/ (the sources), or in the working directory (`npm run demo`). */
function vmHarness(): string | null {
  const candidates = [
    fileURLToPath(new URL("../tests/vm/run.sh", import.meta.url)),
    join(process.cwd(), "tests", "vm", "run.sh"),
  ];
  return candidates.find((f) => existsSync(f)) ?? null;
}

/** Runs the user_events example here, or in the test VM, or says why it cannot. */
function userEvents(): "passed" | "skipped" {
  if (UserEvents.available()) {
    userEventsTrace();
    return "passed";
  }
  const harness = vmHarness();
  if (harness === null) {
    console.log(
      "user_events: skipped: this kernel has no user_events (Linux 6.4+ with CONFIG_USER_EVENTS), " +
        "and the test VM (tests/vm/run.sh, in a checkout of the repository) is not here",
    );
    return "skipped";
  }
  console.log("user_events: this kernel has none; running the example in the test VM (Linux 6.12)");
  const example = fileURLToPath(new URL("./user_events_trace.ts", import.meta.url));
  // Without a prebuilt test kernel the harness would build one (about 12 minutes): the demo
  // does not; it says how instead (UMMU_VM_BUILD=1 lets it).
  const env = { ...process.env, UMMU_VM_BUILD: process.env.UMMU_VM_BUILD ?? "0" };
  const r = spawnSync(harness, ["--", ...commandFor(example)], { stdio: "inherit", env });
  if (r.status === 77) {
    console.log("user_events: skipped (the line above says what the test VM needs)");
    return "skipped";
  }
  if (r.status !== 0) {
    throw new Error(`user_events example failed in the test VM (exit ${r.status})`);
  }
  return "passed";
}

/**
 * Runs a perf example (top-level code) as a child of this runtime: "passed",
 * or "skipped" where this process may not use perf events (the line says why).
 */
function perfExample(name: string): () => "passed" | "skipped" {
  return () => {
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    const file = fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
    const r = spawnSync(commandFor(file)[0], commandFor(file).slice(1), { encoding: "utf8" });
    process.stdout.write(r.stdout);
    if (r.status === 0) return "passed";
    if (/EACCES|EPERM/.test(r.stderr)) {
      console.log(
        `${name}: skipped: ${r.stderr.trim().split("\n").find((l) => /EACCES|EPERM/.test(l))}`,
      );
      return "skipped";
    }
    throw new Error(`${name} exited ${r.status}: ${r.stderr}`);
  };
}

/**
 * The OpenTelemetry example: its @opentelemetry packages are optional peers of
 * ummu/otel, so an installed ummu may not have them: then it is skipped, saying so.
 */
async function otelService(): Promise<"passed" | "skipped"> {
  let main: () => Promise<void>;
  try {
    ({ main } = await import("./otel_service.ts"));
  } catch (e) {
    if (/@opentelemetry/.test(String(e))) {
      console.log(
        "otel service: skipped: the OpenTelemetry packages are not installed (npm install @opentelemetry/api @opentelemetry/sdk-logs @opentelemetry/sdk-trace @opentelemetry/sdk-metrics @opentelemetry/resources @opentelemetry/core @opentelemetry/otlp-transformer)",
      );
      return "skipped";
    }
    throw e;
  }
  await main();
  return "passed";
}

console.log(`ummu demo (${runtime})`);
const count = { passed: 0, failed: 0, skipped: 0 };
const examples: [string, () => unknown][] = [
  ["lazy file", lazyFile],
  ["live snapshot", liveSnapshot],
  ["dirty tracking", dirtyTracking],
  ["registration cache", registrationCache],
  ["perf: page faults", perfExample("perf_page_faults")],
  ["perf: watchpoint", perfExample("perf_watchpoint")],
  ["user_events", userEvents],
  ["otel service", otelService],
];
for (const [name, run] of examples) {
  try {
    count[(await run()) === "skipped" ? "skipped" : "passed"]++;
  } catch (e) {
    count.failed++;
    console.log(`${name}: FAILED: ${e instanceof Error ? e.stack : e}`);
  }
}
console.log(
  `demo (${runtime}): ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped`,
);
if (count.failed > 0) process.exitCode = 1;
