/**
 * Starting library Workers safely on every runtime.
 *
 * Why a handshake: on Bun, a message posted to a Worker whose module is still
 * evaluating (top-level await, as ffi/platform.ts uses) is lost while another
 * Worker is blocked in a system call or the main thread has an
 * Atomics.waitAsync pending. So every library Worker calls announceLoaded()
 * as its last statement, and spawnWorker() resolves only after that message;
 * nothing is posted to a Worker before.
 *
 * This is the only module that knows the runtime's Worker flavour: Deno and
 * Bun have web Workers; on Node, spawnWorker() returns the same surface
 * (postMessage, onmessage, onerror, terminate) over `node:worker_threads`,
 * and the worker-side helpers use its `parentPort`.
 * @module
 */
const LOADED = "ummu:loaded";
const LOAD_TIMEOUT_MS = 30_000;

/**
 * The part of a web Worker that library code may use: on Node, the object
 * spawnWorker() returns has exactly these (it is typed as a Worker so that
 * main-side code reads the same on every runtime).
 */
export interface LibraryWorker {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
  onerror: ((e: ErrorEvent) => void) | null;
  terminate(): void;
}

// Node's worker_threads, only on Node (Deno and Bun take the web Worker path).
type NodePort = {
  postMessage(message: unknown, transfer?: unknown[]): void;
  on(event: string, listener: (value: unknown) => void): void;
};
type NodeWorker = NodePort & { terminate(): Promise<number>; unref(): void };
type NodeWorkerThreads = {
  Worker: new (url: URL, options?: Record<string, unknown>) => NodeWorker;
  parentPort: NodePort | null;
};
const g = globalThis as {
  Bun?: unknown;
  Deno?: unknown;
  process?: { versions?: { node?: string } };
};
const nodeThreads: NodeWorkerThreads | null = g.Deno === undefined && g.Bun === undefined &&
    g.process?.versions?.node !== undefined
  ? ((await import("node:worker_threads")) as unknown as NodeWorkerThreads)
  : null;

/** A web-Worker surface over a node:worker_threads Worker. */
class NodeWorkerAdapter implements LibraryWorker {
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  readonly #worker: NodeWorker;

  constructor(url: URL) {
    this.#worker = new nodeThreads!.Worker(url);
    this.#worker.on("message", (data) => this.onmessage?.({ data } as MessageEvent));
    // Always listened to: an 'error' event nobody handles is rethrown on the main thread.
    this.#worker.on("error", (err) => {
      const e = err instanceof Error ? err : new Error(String(err));
      this.onerror?.(
        { message: e.message, error: e, preventDefault() {} } as unknown as ErrorEvent,
      );
    });
  }

  postMessage(message: unknown, transfer?: Transferable[]): void {
    this.#worker.postMessage(message, transfer as unknown[] | undefined);
  }

  terminate(): void {
    void this.#worker.terminate();
  }
}

/**
 * Starts a module Worker and resolves once its module has fully evaluated.
 * Use only the {@link LibraryWorker} members of the result (on Node it is a
 * wrapper over `node:worker_threads` that has only those).
 */
export function spawnWorker(url: URL, loadTimeoutMs: number = LOAD_TIMEOUT_MS): Promise<Worker> {
  const worker: Worker = nodeThreads
    ? new NodeWorkerAdapter(url) as unknown as Worker
    : new Worker(url, { type: "module" });
  return new Promise<Worker>((resolve, reject) => {
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error(`Worker ${url.pathname} did not load within ${loadTimeoutMs} ms`));
    }, loadTimeoutMs);
    worker.onmessage = (e: MessageEvent) => {
      if (e.data !== LOADED) return;
      clearTimeout(timer);
      worker.onmessage = null;
      worker.onerror = null;
      resolve(worker);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault?.();
      clearTimeout(timer);
      worker.terminate();
      reject(new Error(`Worker ${url.pathname} failed to load: ${e.message}`));
    };
  });
}

/** The port a library Worker posts to and hears from. */
function port(): { postMessage(message: unknown): void } {
  if (!nodeThreads) return self as unknown as Worker;
  if (nodeThreads.parentPort === null) {
    throw new Error("ummu: a Worker helper was called outside a Worker");
  }
  return nodeThreads.parentPort;
}

/** The last statement of every library Worker module. */
export function announceLoaded(): void {
  port().postMessage(LOADED);
}

/** Sets a library Worker's message handler (typed once here, for every Worker module). */
export function onWorkerMessage<T>(handler: (data: T) => void | Promise<void>): void {
  if (!nodeThreads) {
    (self as unknown as Worker).onmessage = (e: MessageEvent<T>) => void handler(e.data);
    return;
  }
  if (nodeThreads.parentPort === null) {
    throw new Error("ummu: a Worker helper was called outside a Worker");
  }
  nodeThreads.parentPort.on("message", (data) => void handler(data as T));
}

/** Posts from inside a library Worker. */
export function postFromWorker(message: unknown): void {
  port().postMessage(message);
}
