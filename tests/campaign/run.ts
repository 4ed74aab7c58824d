/**
 * The campaign's child process: random sequences of API calls for a number
 * of seconds (fast-check, model-based), each sequence followed by a leak
 * check of what it owned. Prints one JSON line: the seed, the counts, and the
 * first failure with its shrunk command sequence and the seed/path that
 * replays it.
 *
 *   <runtime> tests/campaign/run.ts --seconds 60 [--seed N] [--path P]
 */
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  commandArbitraries,
  progress,
  running,
  type Tally,
  World,
  writeSourceFile,
} from "./commands.ts";
import { idleWorker, spawnWorker } from "../../src/worker.ts";
import { readdirSync, readlinkSync } from "node:fs";
import { openEventfds } from "../../src/libc.ts";
import { liveWorkers } from "../../src/worker.ts";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const { values } = parseArgs({
  args: argv,
  options: {
    seconds: { type: "string", default: "30" },
    seed: { type: "string" },
    path: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const seed = values.seed !== undefined
  ? Number(values.seed)
  : Date.now() ^ (Math.random() * 2 ** 31);
const dir = mkdtempSync(join(tmpdir(), "ummu-campaign-"));
const file = join(dir, "source.bin");
writeSourceFile(file);
const moduleUrl = new URL("../fixtures/source_module.ts", import.meta.url);
const tally: Tally = { commands: 0, typedErrors: 0, untypedErrors: [], wrongBytes: [], touches: 0 };
let sequences = 0;
console.error(`campaign: seed ${seed}, ${seconds} s`);

// A hang names the command that hung (the watchdog kills the process after 30 s without progress).
const watchdog = await spawnWorker(new URL("./watchdog.ts", import.meta.url));
watchdog.postMessage({
  progress: progress.beat.buffer,
  text: progress.text.buffer,
  stallMs: 30_000,
});
idleWorker(watchdog);

// Warm the runtime up (its own lazily created threads and fds), then take the baseline.
{
  const w = new World(tally, file, moduleUrl);
  await fc.asyncModelRun(() => ({ model: {}, real: w }), [] as never[]);
  const { LazyMapping, sources } = await import("../../mod.ts");
  const l = await LazyMapping.create(4096, { source: sources.module(moduleUrl, { seed: 1 }) });
  new Uint8Array(l.buffer)[0];
  await l.close();
}
/**
 * What the library holds, counted by kind (never the whole process: the
 * runtimes open sockets, eventfds and threads of their own at any time).
 */
function owned(): Record<string, number> {
  const links: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      links.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch { /* closed meanwhile */ }
  }
  return {
    userfaultfds: links.filter((l) => l === "anon_inode:[userfaultfd]").length,
    memfds: links.filter((l) => l.startsWith("/memfd:ummu-")).length,
    sourceFiles: links.filter((l) => l === file).length,
    pagemaps: links.filter((l) => /^\/proc\/\d+\/pagemap$/.test(l)).length,
    eventfds: openEventfds(),
    workers: liveWorkers(),
  };
}
const baseline = owned();

const traced_ = new WeakSet<object>();
const property = fc.asyncProperty(
  fc.commands(commandArbitraries(), { maxCommands: 25 }),
  async (cmds) => {
    const world = new World(tally, file, moduleUrl);
    const before = { untyped: tally.untypedErrors.length, wrong: tally.wrongBytes.length };
    const traced = [...cmds].map((c) => {
      if (!traced_.has(c)) {
        traced_.add(c); // fast-check reuses commands while it shrinks: wrap once
        const run = c.run.bind(c);
        c.run = (m, r) => {
          running(`sequence ${sequences}: ${String(c)} (of ${String(cmds)})`);
          return run(m, r);
        };
      }
      return c;
    });
    try {
      await fc.asyncModelRun(() => ({ model: {}, real: world }), traced);
    } finally {
      tally.commands += traced.length;
      running(`sequence ${sequences}: closing`);
      await world.close();
    }
    sequences++;
    const problems: string[] = [
      ...tally.untypedErrors.slice(before.untyped).map((e) => `untyped error: ${e}`),
      ...tally.wrongBytes.slice(before.wrong).map((e) => `wrong result: ${e}`),
    ];
    for (const mp of world.leakedMappings) problems.push(`still mapped after close(): ${mp}`);
    // Worker threads end asynchronously after close(): give them a moment.
    let now = owned();
    const same = () => Object.keys(baseline).every((k) => now[k] <= baseline[k]);
    for (let i = 0; i < 100 && !same(); i++) {
      await new Promise((r) => setTimeout(r, 20));
      now = owned();
    }
    if (!same()) {
      problems.push(`leaked: ${JSON.stringify(now)} after, ${JSON.stringify(baseline)} before`);
    }
    if (problems.length) throw new Error(problems.join("\n"));
  },
);

const result = await fc.check(property, {
  seed,
  path: values.path,
  numRuns: values.path ? 1 : 1_000_000,
  interruptAfterTimeLimit: seconds * 1000,
  markInterruptAsFailure: false,
  endOnFailure: false,
});
rmSync(dir, { recursive: true, force: true });
const out = {
  seed,
  seconds,
  sequences,
  commands: tally.commands,
  touches: tally.touches,
  typedErrors: tally.typedErrors,
  untypedErrors: tally.untypedErrors.length,
  wrongResults: tally.wrongBytes.length,
  failed: result.failed,
  failure: result.failed
    ? {
      replay: `--seed ${result.seed} --path ${result.counterexamplePath}`,
      commands: String(result.counterexample?.[0] ?? ""),
      error: String(result.errorInstance).slice(0, 4000),
    }
    : null,
};
running("done");
console.log(JSON.stringify(out));
process.exit(result.failed ? 1 : 0);
