/**
 * Starting library Workers safely on every runtime, and never letting one
 * keep the process alive or hang its exit.
 *
 * One flavour everywhere: `node:worker_threads`, which Deno, Bun and Node all
 * have, because it is the one whose Workers can be unref'd on all three (a
 * web Worker keeps a Deno process alive with no way out) and that reports a
 * Worker's end ('exit') however it ended.
 *
 * Why a handshake: on Bun, a message posted to a Worker whose module is still
 * evaluating (top-level await, as ffi/platform.ts uses) can be lost while
 * another Worker is blocked in a system call. So every library Worker calls
 * announceLoaded() as its last statement, and spawnWorker() resolves only
 * after that message; nothing is posted to a Worker before.
 *
 * Lifetime rules for library Workers:
 * - unref'd while idle (serving faults, polling: see {@link idleWorker}): a
 *   program that forgets close() still exits; ref'd while the main side
 *   awaits an answer (see {@link keepAlive});
 * - a Worker blocked in poll(2) cannot be terminated (terminate() interrupts
 *   JavaScript, not system calls), and Node joins every Worker thread at exit:
 *   so every owner registers a waker with {@link atProcessExit} (it signals
 *   the Worker's eventfd) and the exit never hangs.
 * @module
 */
import process from "node:process";
import { Worker as NodeWorker } from "node:worker_threads";
import * as threads from "node:worker_threads";

const LOADED = "ummu:loaded";
const LOAD_TIMEOUT_MS = 30_000;

/**
 * The part of a Worker that library code uses (the web Worker shape, so that
 * main-side code reads the same as before): messages arrive as `{ data }`.
 */
export interface LibraryWorker {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
  onerror: ((e: ErrorEvent) => void) | null;
  terminate(): void;
}

/** A web-Worker surface over a node:worker_threads Worker, with ref/unref and exit. */
class WorkerHandle implements LibraryWorker {
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  /** Called once when the thread has ended, however it ended. */
  onexit: ((code: number) => void) | null = null;
  readonly worker: NodeWorker;
  readonly url: string;
  exited = false;
  #holds = 0;
  #idle = false;

  constructor(url: URL) {
    this.url = url.href;
    this.worker = new NodeWorker(url);
    live++;
    this.worker.on("message", (data) => this.onmessage?.({ data } as MessageEvent));
    // Always listened to: an 'error' event nobody handles is rethrown on the main thread.
    this.worker.on("error", (err) => {
      const e = err instanceof Error ? err : new Error(String(err));
      this.onerror?.(
        { message: e.message, error: e, preventDefault() {} } as unknown as ErrorEvent,
      );
    });
    this.worker.on("exit", (code: number) => {
      this.exited = true;
      live--;
      this.onexit?.(code);
    });
  }

  postMessage(message: unknown, transfer?: Transferable[]): void {
    this.worker.postMessage(message, transfer as never);
  }

  terminate(): void {
    void this.worker.terminate();
  }

  hold(): void {
    if (this.#holds++ === 0) this.worker.ref();
  }

  release(): void {
    if (--this.#holds === 0 && this.#idle) this.worker.unref();
  }

  idle(): void {
    this.#idle = true;
    if (this.#holds === 0) this.worker.unref();
  }

  notIdle(): void {
    this.#idle = false;
    this.worker.ref();
  }
}

let live = 0;

/**
 * Idle library Workers kept for reuse, on Node only. Why: koffi (Node's FFI)
 * keeps the per-thread call memory it maps for every thread that called
 * through it after the thread exits (three mappings per Worker; 3.3.4, the
 * newest, never frees its per-thread InstanceData), so a Node program that
 * starts and closes handlers over and over would grow without bound. Reusing
 * Workers bounds it by the most that were ever alive at once. Deno and Bun
 * keep nothing: no pool there.
 */
const POOL_SIZE = typeof (globalThis as { Deno?: unknown }).Deno === "undefined" &&
    typeof (globalThis as { Bun?: unknown }).Bun === "undefined"
  ? 2
  : 0;
const pool = new Map<string, WorkerHandle[]>();

/** Library Workers (and test Workers spawned here) whose thread has not ended, idle ones in the pool excepted. */
export function liveWorkers(): number {
  let idle = 0;
  for (const list of pool.values()) idle += list.length;
  return live - idle;
}

/**
 * Gives a Worker back when its owner is done with it: kept idle for the next
 * spawnWorker() of the same module where there is a pool (Node), else
 * terminated. Only for a Worker that finished its work (its module is back in
 * its message loop); one that may be busy is terminated instead.
 */
export function retireWorker(worker: Worker, finished: boolean): void {
  const w = handle(worker);
  const list = pool.get(w.url) ?? [];
  if (!finished || w.exited || list.length >= POOL_SIZE) {
    w.terminate();
    return;
  }
  w.onmessage = null;
  w.onerror = null;
  w.onexit = () => {
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
  };
  w.idle();
  list.push(w);
  pool.set(w.url, list);
}

/** Terminates the pooled idle Workers and waits for their threads to end (tests measure without them). */
export async function drainWorkerPool(): Promise<void> {
  const all = [...pool.values()].flat();
  pool.clear();
  await Promise.all(all.map((w) => w.worker.terminate()));
}

function handle(w: Worker): WorkerHandle {
  if (!(w instanceof WorkerHandle)) throw new TypeError("not a library Worker");
  return w;
}

/**
 * Starts a module Worker and resolves once its module has fully evaluated.
 * Use only the {@link LibraryWorker} members of the result. A library Worker
 * that then idles (serves, polls) is marked with {@link idleWorker}.
 */
export function spawnWorker(url: URL, loadTimeoutMs: number = LOAD_TIMEOUT_MS): Promise<Worker> {
  const reused = pool.get(url.href)?.pop();
  if (reused !== undefined) {
    reused.onexit = null;
    reused.notIdle(); // ref'd like a new one, until its owner marks it idle
    return Promise.resolve(reused as unknown as Worker);
  }
  const w = new WorkerHandle(url);
  const worker = w as unknown as Worker;
  return new Promise<Worker>((resolve, reject) => {
    const timer = setTimeout(() => {
      w.terminate();
      reject(new Error(`Worker ${url.pathname} did not load within ${loadTimeoutMs} ms`));
    }, loadTimeoutMs);
    w.onmessage = (e: MessageEvent) => {
      if (e.data !== LOADED) return;
      clearTimeout(timer);
      w.onmessage = null;
      w.onerror = null;
      w.onexit = null;
      resolve(worker);
    };
    w.onerror = (e: ErrorEvent) => {
      clearTimeout(timer);
      w.terminate();
      reject(new Error(`Worker ${url.pathname} failed to load: ${e.message}`));
    };
    w.onexit = (code) => {
      clearTimeout(timer);
      reject(new Error(`Worker ${url.pathname} exited (code ${code}) before it loaded`));
    };
  });
}

/**
 * The Worker no longer keeps the process alive on its own (a program that
 * forgets close() still exits), except while {@link keepAlive} holds it.
 */
export function idleWorker(worker: Worker): void {
  handle(worker).idle();
}

/**
 * Runs `fn` with the Worker ref'd: the process stays alive while the main
 * side awaits something only the Worker can answer (start, stop).
 */
export async function keepAlive<T>(worker: Worker, fn: () => Promise<T>): Promise<T> {
  const w = handle(worker);
  w.hold();
  try {
    return await fn();
  } finally {
    w.release();
  }
}

/** Calls `fn(code)` once the Worker's thread has ended (at once if it already has). */
export function onWorkerExit(worker: Worker, fn: (code: number) => void): void {
  const w = handle(worker);
  if (w.exited) {
    fn(-1);
    return;
  }
  const prev = w.onexit;
  w.onexit = (code) => {
    prev?.(code);
    fn(code);
  };
}

/** True once the Worker's thread has ended. */
export function workerExited(worker: Worker): boolean {
  return handle(worker).exited;
}

const exitHooks = new Set<() => void>();
let exitHooked = false;
/**
 * Runs `fn` when the process exits (normally, by process.exit(), or after an
 * uncaught exception), before the runtime joins Worker threads: a library
 * Worker blocked in poll(2) must be woken or the exit hangs (Node). Returns
 * the remover. `fn` must be synchronous and must not throw.
 */
export function atProcessExit(fn: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.on("exit", () => {
      for (const hook of exitHooks) {
        try {
          hook();
        } catch { /* exiting: nothing can be reported */ }
      }
    });
  }
  exitHooks.add(fn);
  return () => exitHooks.delete(fn);
}

/** The port a library Worker posts to and hears from. */
function port(): threads.MessagePort {
  if (threads.parentPort === null) {
    throw new Error("ummu: a Worker helper was called outside a Worker");
  }
  return threads.parentPort;
}

/** The last statement of every library Worker module. */
export function announceLoaded(): void {
  port().postMessage(LOADED);
}

/** Sets a library Worker's message handler (typed once here, for every Worker module). */
export function onWorkerMessage<T>(handler: (data: T) => void | Promise<void>): void {
  port().on("message", (data) => void handler(data as T));
}

/** Posts from inside a library Worker. */
export function postFromWorker(message: unknown): void {
  port().postMessage(message);
}
