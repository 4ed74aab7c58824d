#!/usr/bin/env node
/**
 * The `ummu` command (`npx ummu doctor`, `bunx ummu doctor`,
 * `deno run -A bin/ummu.ts doctor`): `ummu doctor [--json]`, `ummu --help`,
 * `ummu --version` (see src/doctor/cli.ts); `ummu perf decode|record`
 * (see src/perf/cli.ts).
 * @module
 */
import process from "node:process";
import { main } from "../src/doctor/cli.ts";

// `ummu perf ...` (decode, record): its own command line (src/perf/cli.ts).
if (process.argv[2] === "perf") {
  process.exit(await (await import("../src/perf/cli.ts")).main(process.argv.slice(3)));
}

process.exit(
  await main(process.argv.slice(2), {
    commandRequired: true,
    // Loaded only for the doctor itself: --help and --version need no FFI.
    doctor: async () => (await import("../src/doctor.ts")).doctor(),
  }),
);
