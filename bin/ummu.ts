#!/usr/bin/env node
/**
 * The `ummu` command (`npx ummu doctor`, `bunx ummu doctor`,
 * `deno run -A bin/ummu.ts doctor`): `ummu doctor [--json]`, `ummu --help`,
 * `ummu --version` (see src/doctor/cli.ts).
 * @module
 */
import process from "node:process";
import { main } from "../src/doctor/cli.ts";

process.exit(
  await main(process.argv.slice(2), {
    commandRequired: true,
    // Loaded only for the doctor itself: --help and --version need no FFI.
    doctor: async () => (await import("../src/doctor.ts")).doctor(),
  }),
);
