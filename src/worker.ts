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
  exited = false;
  #holds = 0;
  #idle = false;

  constructor(url: URL) {
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
}

let live = 0;

/** Library Workers (and test Workers spawned here) whose thread has not ended yet. */
export function liveWorkers(): number {
  return live;
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
