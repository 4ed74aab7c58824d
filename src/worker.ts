/**
 * Starting library Workers safely on every runtime.
 *
 * Why a handshake: on Bun, a message posted to a Worker whose module is still
 * evaluating (top-level await, as ffi/platform.ts uses) is lost while another
 * Worker is blocked in a system call or the main thread has an
 * Atomics.waitAsync pending. So every library Worker calls announceLoaded()
 * as its last statement, and spawnWorker() resolves only after that message;
 * nothing is posted to a Worker before.
 */
const LOADED = "ummu:loaded";
const LOAD_TIMEOUT_MS = 30_000;

/** Starts a module Worker and resolves once its module has fully evaluated. */
export function spawnWorker(url: URL): Promise<Worker> {
  const worker = new Worker(url, { type: "module" });
  return new Promise<Worker>((resolve, reject) => {
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error(`Worker ${url.pathname} did not load within ${LOAD_TIMEOUT_MS} ms`));
    }, LOAD_TIMEOUT_MS);
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

/** The last statement of every library Worker module. */
export function announceLoaded(): void {
  (self as unknown as Worker).postMessage(LOADED);
}

/** Sets a library Worker's message handler (typed once here, for every Worker module). */
export function onWorkerMessage<T>(handler: (data: T) => void | Promise<void>): void {
  (self as unknown as Worker).onmessage = (e: MessageEvent<T>) => void handler(e.data);
}

/** Posts from inside a library Worker. */
export function postFromWorker(message: unknown): void {
  (self as unknown as Worker).postMessage(message);
}
