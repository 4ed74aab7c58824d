/** Test helpers: resource counting from /proc/self, waiting, and the toucher Worker. */
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { drainWorkerPool, spawnWorker } from "../src/worker.ts";
import { runtime } from "../ffi/platform.ts";

/**
 * Open fds and threads of this process. Mappings are not counted in total:
 * the runtimes grow their own heaps at will; tests check that each mapping
 * the library made is gone instead (see isMapped).
 */
export interface ProcessResources {
  fds: number;
  threads: number;
}

export function resources(): ProcessResources {
  return {
    fds: readdirSync("/proc/self/fd").length,
    threads: readdirSync("/proc/self/task").length,
  };
}

/** True if any mapping of this process overlaps [address, address+length). */
export function isMapped(address: number | bigint, length: number): boolean {
  const a = BigInt(address), b = a + BigInt(length);
  for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
    if (m && BigInt("0x" + m[1]) < b && BigInt("0x" + m[2]) > a) return true;
  }
  return false;
}

/**
 * The lines of /proc/self/maps that overlap [address, address+length): a
 * mapping's own lines, taken before it is closed. After the close, check that
 * these exact lines are gone (`stillMapped`), not that nothing is mapped at
 * the address: a runtime thread may map the freed range at once.
 */
export function mapsLines(address: number | bigint, length: number): string[] {
  const a = BigInt(address), b = a + BigInt(length);
  return readFileSync("/proc/self/maps", "utf8").split("\n").filter((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
    return m !== null && BigInt("0x" + m[1]) < b && BigInt("0x" + m[2]) > a;
  });
}

/** Which of these maps lines (from mapsLines before a close) are still there. */
export function stillMapped(lines: readonly string[]): string[] {
  const now = new Set(readFileSync("/proc/self/maps", "utf8").split("\n"));
  return lines.filter((l) => now.has(l));
}

/** Polls `cond` every 10 ms until true or `ms` passed; returns its last value. */
export async function waitFor(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * The process's resources once they stop changing (the threads of Workers
 * terminated earlier exit asynchronously): the baseline for a leak check.
 */
export async function quiescent(): Promise<ProcessResources> {
  await drainWorkerPool(); // idle Workers kept for reuse (Node) are not a leak, but they are threads
  let last = resources();
  let stable = 0;
  for (let i = 0; i < 100 && stable < 5; i++) {
    await new Promise((r) => setTimeout(r, 40));
    const now = resources();
    stable = now.fds === last.fds && now.threads === last.threads ? stable + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * Asserts that resources come back to `before` (threads of terminated
 * Workers exit asynchronously, so this waits a little for them).
 */
export async function settledTo(before: ProcessResources): Promise<ProcessResources> {
  await drainWorkerPool();
  let now = resources();
  await waitFor(() => {
    now = resources();
    return now.fds <= before.fds && now.threads <= before.threads;
  }, 5000);
  return now;
}

/**
 * Waits for resources to come back to `before` and asserts that nothing was
 * left: no more fds and no more threads than then. (Fewer is no leak: a
 * runtime may retire a thread of its own pool meanwhile.)
 */
export async function assertNoLeak(
  before: ProcessResources,
  what = "fds or threads",
): Promise<void> {
  const after = await settledTo(before);
  if (after.fds > before.fds || after.threads > before.threads) {
    throw new Error(
      `leaked ${what}: ${after.fds - before.fds} fds, ${after.threads - before.threads} threads ` +
        `(before ${JSON.stringify(before)}, after ${JSON.stringify(after)})`,
    );
  }
}

export interface TouchResult {
  values: number[];
  tid: number;
}

/** Starts a Worker that reads (or writes, then reads) one byte at each address; resolves with what it saw. */
export async function touchFromWorker(
  addresses: number[],
  write?: number,
  dontneed?: { address: number; length: number },
): Promise<TouchResult> {
  const worker = await spawnWorker(new URL("./fixtures/toucher.ts", import.meta.url));
  return new Promise<TouchResult>((resolve, reject) => {
    worker.onmessage = (e) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(e.message));
    };
    worker.postMessage({ addresses, write, dontneed });
  });
}

export const PAGE = 4096;

/**
 * Mappings the FFI layer keeps per Worker thread after the thread exits,
 * measured now: 0 on Deno and Bun; on Node, koffi 3 keeps its per-thread call
 * memory (about 3 mappings per Worker that called through it, linear in the
 * number of Workers: a koffi leak, not ummu's). Leak tests that count
 * /proc/self/maps allow exactly this much per library Worker they start.
 */
export async function ffiMapsPerWorker(): Promise<number> {
  if (runtime.name !== "node") return 0;
  const maps = () => readFileSync("/proc/self/maps", "utf8").split("\n").length;
  const once = async () => {
    const w = await spawnWorker(new URL("./fixtures/ffi_worker.ts", import.meta.url));
    await new Promise<void>((resolve) => {
      w.onmessage = () => resolve();
      w.postMessage(null);
    });
    await w.terminate();
  };
  await once(); // warm up
  await new Promise((r) => setTimeout(r, 200));
  const before = maps();
  const n = 8;
  for (let i = 0; i < n; i++) await once();
  await new Promise((r) => setTimeout(r, 300));
  return Math.max(0, Math.ceil((maps() - before) / n));
}

/** What a child process did. */
export interface ChildResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True if it was still running after the timeout (then killed with SIGKILL). */
  hung: boolean;
}

/**
 * Runs a script under this test's own runtime (Deno with -A, Bun, or Node on
 * the compiled package) and waits for it to end, killing it after
 * `timeoutMs`: a hang is a result, never a hung test.
 */
export function runChild(
  script: URL,
  args: string[] = [],
  timeoutMs = 20_000,
): Promise<ChildResult> {
  const path = fileURLToPath(script);
  const argv = "Deno" in globalThis ? ["run", "-A", "--no-check", path, ...args] : [path, ...args];
  return new Promise((resolve) => {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1" };
    delete env.FORCE_COLOR; // Deno colours its output when FORCE_COLOR is set at all, even to "0"
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "", stderr = "", hung = false;
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, hung });
    });
  });
}

/**
 * How many userfaultfds this process has open: the runtimes make none, so
 * every one is ours (a count of what the test owns, not of all fds).
 */
export function openUserfaultfds(): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:[userfaultfd]") n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

/**
 * Makes `n` free 2 MiB huge pages available (as root, raising
 * vm.nr_hugepages); returns the function that restores the setting, or the
 * reason it cannot (then skip, saying it).
 */
export function reserveHugePages(n: number): (() => void) | string {
  const NR = "/proc/sys/vm/nr_hugepages";
  const free = Number(
    /HugePages_Free:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0,
  );
  if (free >= n) return () => {};
  if (process.getuid?.() !== 0) {
    return `needs ${n} free 2 MiB huge pages (echo ${n} > ${NR}) or root`;
  }
  const before = readFileSync(NR, "utf8").trim();
  writeFileSync(NR, String(Number(before) + n - free));
  const now = Number(
    /HugePages_Free:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0,
  );
  if (now < n) {
    writeFileSync(NR, before);
    return `the kernel gave only ${now} of ${n} free 2 MiB huge pages (memory fragmented?)`;
  }
  return () => writeFileSync(NR, before);
}

/** The C compiler the tests use for their C fixtures ($CC, default cc). */
const CC = process.env.CC || "cc";

/**
 * Why the tests that need the C fixture `source` skip (it was not copied beside the tests, or
 * there is no compiler: `what` names the program in the message), or false.
 */
export function cFixtureSkip(source: string, what: string): string | false {
  return !existsSync(source)
    ? `${source} is not beside the tests (a build that copied only the .ts files)`
    : spawnSync(CC, ["--version"]).status !== 0
    ? `needs a C compiler (cc) for ${what}`
    : false;
}

/** The C fixture `source` compiled into `dir` (a compiler that fails on it throws: no reason to skip). */
export function compileCFixture(source: string, dir: string, flags: readonly string[]): string {
  const bin = join(dir, basename(source, ".c"));
  const r = spawnSync(CC, [...flags, "-o", bin, source], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${CC} ${source}: ${r.stderr}`);
  return bin;
}
