/**
 * The property-based campaign (tests/campaign/): random sequences of public
 * API calls with hostile arguments mixed in, against the real kernel, in a
 * child process of this runtime, so that a crash or a hang is a result with
 * the seed that reproduces it. Bounded in time here (UMMU_CAMPAIGN_SECONDS,
 * default 20); run it longer on demand:
 *
 *   UMMU_CAMPAIGN_SECONDS=600 deno test -A tests/campaign.test.ts
 *   deno run -A tests/campaign/run.ts --seconds 600 [--seed N --path P]   # replay
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runChild } from "./helpers.ts";

const seconds = Number(process.env.UMMU_CAMPAIGN_SECONDS ?? 20);
const seed = process.env.UMMU_CAMPAIGN_SEED;

test(`campaign: ${seconds} s of random API sequences, hostile arguments mixed in`, {
  timeout: (seconds + 120) * 1000, // bun test would stop it at 5 s
}, async () => {
  const args = ["--seconds", String(seconds), ...(seed ? ["--seed", seed] : [])];
  const r = await runChild(
    new URL("./campaign/run.ts", import.meta.url),
    args,
    (seconds + 90) * 1000,
  );
  const started = /campaign: seed (\d+)/.exec(r.stderr)?.[1] ?? "?";
  const where = `seed ${started} (replay: tests/campaign/run.ts --seed ${started})`;
  assert.equal(r.hung, false, `the campaign hung: ${where}\n${r.stderr.slice(-2000)}`);
  assert.equal(
    r.signal,
    null,
    `the campaign crashed (${r.signal}): ${where}\n${r.stderr.slice(-2000)}`,
  );
  const last = r.stdout.trim().split("\n").pop() ?? "";
  let out;
  try {
    out = JSON.parse(last);
  } catch {
    assert.fail(`no report (exit ${r.code}): ${where}\n${r.stderr.slice(-2000)}`);
  }
  console.log(
    `campaign: seed ${out.seed}, ${out.sequences} sequences, ${out.commands} commands, ` +
      `${out.touches} checked touches, ${out.typedErrors} typed errors`,
  );
  assert.equal(out.failed, false, `${where}: ${JSON.stringify(out.failure, null, 2)}`);
  assert.equal(out.untypedErrors, 0);
  assert.equal(out.wrongResults, 0);
  assert.equal(r.code, 0);
  assert.ok(out.commands > 0, "it ran commands");
});
