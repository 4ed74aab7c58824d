#!/usr/bin/env node
/**
 * The `ummu` command (`npx ummu doctor`, `bunx ummu doctor`,
 * `deno run -A bin/ummu.ts doctor`). One subcommand for now: `doctor [--json]`,
 * which tells what this machine and process can use (see src/doctor.ts).
 * @module
 */
import process from "node:process";
import { DOCTOR_EXIT, main } from "../src/doctor.ts";

const [command, ...rest] = process.argv.slice(2);
if (command !== "doctor") {
  console.error(
    `usage: ummu doctor [--json]${command ? `\nummu: unknown command ${command}` : ""}`,
  );
  process.exit(DOCTOR_EXIT.USAGE);
}
process.exit(await main(rest));
