/**
 * examples/firecracker_handler.ts run as a Firecracker user runs it (a
 * process of its own, on the runtime under test), serving the C guest that
 * plays Firecracker (tests/fixtures/firecracker_guest.c); then SIGTERM ends
 * it cleanly and its socket file is gone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { cFixtureSkip, compileCFixture } from "./helpers.ts";

const compiled = import.meta.url.endsWith(".js");
// Compiled, the example is the installed package's, found from its package.json: the npm build
// rewrites every literal URL starting with ./ or ../ in a test into the package's esm/ folder,
// where examples/ is not (tests/perf_examples.test.ts meets the same rewrite).
const example = compiled
  ? new URL("examples/firecracker_handler.js", import.meta.resolve("ummu/package.json"))
  : new URL("../examples/firecracker_handler.ts", import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "ummu-fc-example-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const GUEST_C = fileURLToPath(new URL("./fixtures/firecracker_guest.c", import.meta.url));
const exported = "FirecrackerHandler" in (await import("ummu"));
const skip = cFixtureSkip(GUEST_C, "the Firecracker-like guest") ||
  (!exported
    ? "the package does not export FirecrackerHandler (mod.ts)"
    : !existsSync(fileURLToPath(example))
    ? `${fileURLToPath(example)} is missing`
    : false);
const guest = skip ? null : compileCFixture(GUEST_C, dir, ["-O1", "-pthread"]);

test(
  "examples/firecracker_handler: serves a guest's faults, then exits on SIGTERM",
  { skip },
  async () => {
    const socket = join(dir, "fc.sock"), memfile = join(dir, "mem.snap");
    writeFileSync(memfile, randomFillSync(new Uint8Array(1 << 20)));
    const path = fileURLToPath(example);
    const argv = "Deno" in globalThis
      ? ["run", "-A", "--no-check", path, socket, memfile, "--readahead", "4"]
      : [path, socket, memfile, "--readahead", "4"];
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stderr!.on("data", (d) => (err += d));
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const exited = new Promise<string>((res) =>
      child.on("close", (code, sig) => res(`${code} ${sig}`))
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (d) => {
          out += d;
          if (out.includes("listening on")) resolve();
        });
        child.on("close", () => reject(new Error(`the example ended:\n${out}${err}`)));
      });
      const run = spawnSync(guest!, [socket, memfile, "anon", "2"], { encoding: "utf8" });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /verified 256/);
      assert.match(run.stdout, /zeros 16/);
      const ended = Date.now() + 10_000;
      while (!/session end: pid \d+ peer-exited/.test(out) && Date.now() < ended) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(out, /session: firecracker pid \d+ \(uid \d+\), 2 regions, 1 MiB/);
      assert.match(
        out,
        /session end: pid \d+ peer-exited: \d+ faults, \d+ pages, 2 events, 0 errors/,
      );
      child.kill("SIGTERM");
      const status = await exited;
      assert.match(out, /closed\n/, "the example closed the handler on SIGTERM");
      // Deno's node:child_process reports a child it sent SIGTERM as ended by that signal even
      // when the child handled it and exited 0 (a shell sees 0): there, the "closed" line judges.
      if ("Deno" in globalThis) assert.match(status, /^(0 null|null SIGTERM)$/, `${out}${err}`);
      else assert.equal(status, "0 null", `${out}${err}`);
      assert.equal(existsSync(socket), false, "the socket file is removed");
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
    }
  },
);
