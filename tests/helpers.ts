/** Test helpers: resource counting from /proc/self, waiting, and the toucher Worker. */
import { readdirSync, readFileSync } from "node:fs";
import { spawnWorker } from "../src/worker.ts";

/** Open fds, mappings and threads of this process. */
export interface ProcessResources {
  fds: number;
  maps: number;
  threads: number;
}

export function resources(): ProcessResources {
  return {
    fds: readdirSync("/proc/self/fd").length,
    maps: readFileSync("/proc/self/maps", "utf8").split("\n").filter(Boolean).length,
    threads: readdirSync("/proc/self/task").length,
  };
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
 * Asserts that resources come back to `before` (threads of terminated
 * Workers exit asynchronously, so this waits a little for them).
 */
export async function settledTo(before: ProcessResources): Promise<ProcessResources> {
  let now = resources();
  await waitFor(() => {
    now = resources();
    return now.fds <= before.fds && now.maps <= before.maps && now.threads <= before.threads;
  }, 5000);
  return now;
}

export interface TouchResult {
  values: number[];
  tid: number;
}

/** Starts a Worker that reads (or writes, then reads) one byte at each address; resolves with what it saw. */
export async function touchFromWorker(addresses: number[], write?: number): Promise<TouchResult> {
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
    worker.postMessage({ addresses, write });
  });
}

export const PAGE = 4096;
