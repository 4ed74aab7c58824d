/**
 * Keeping the process alive while a caller awaits an event. Library Workers
 * are unref'd (a program that forgets close() must still exit), and a pending
 * Atomics.waitAsync keeps no runtime alive (Deno, Bun and Node all exit with
 * it pending). So a wait that only another thread can end holds a timer for
 * as long as it is pending: the program stays alive exactly while it waits.
 */

/** Runs `fn`, keeping the event loop of this thread alive until it settles. */
export async function whileWaiting<T>(fn: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1 << 30);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
