/**
 * Helpers of the ummunotify tests: which backends can run here, memory
 * operations, Workers, and a fork helper in C (a forked Deno or Bun must not
 * run JavaScript: Bun crashes in the child, so the child runs only C).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtime } from "../ffi/platform.ts";
import * as mm from "../ffi/mman.ts";
import { check, libc, mmap, mremap, PAGE_SIZE } from "../src/libc.ts";
import { spawnWorker } from "../src/worker.ts";
import type { BackendKind } from "../src/ummunotify/mod.ts";

export const P = PAGE_SIZE;

/** Why a backend cannot run here, or false. */
export function backendSkip(kind: BackendKind): string | false {
  if (kind === "device" && !existsSync("/dev/ummunotify")) {
    return "needs /dev/ummunotify: runs in the VM with kmod/ummunotify loaded";
  }
  return false;
}

/**
 * Which test pages are unmapped. Cleanup must never munmap an address the
 * test already gave back: another thread of the runtime may have been given
 * it since (a thread stack, a heap page), and unmapping that crashes the
 * process. So tests unmap with unmap() (or markGone() when something else
 * unmapped or moved the pages) and clean up with release().
 */
const gone = new Set<number>();

/** Anonymous read-write memory, touched so that every page is present. */
export function mapAnon(pages: number, touch = true): number {
  const a = mmap(pages * P, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_PRIVATE | mm.MAP_ANONYMOUS);
  markLive(a, pages * P);
  if (touch) new Uint8Array(runtime.view(a, pages * P)).fill(1);
  return a;
}

/** munmap, and remember that these pages are no longer ours. */
export function unmap(addr: number, len: number): void {
  check(libc.munmap(addr, len), "munmap");
  markGone(addr, len);
}

/** The pages were unmapped or moved away by someone else (a Worker, mremap). */
export function markGone(addr: number, len: number): void {
  for (let p = addr; p < addr + len; p += P) gone.add(p);
}

/** The pages are (again) ours: a mapping made by the test, or the destination of an mremap. */
export function markLive(addr: number, len: number): void {
  for (let p = addr; p < addr + len; p += P) gone.delete(p);
}

/** A mapping the test made itself (mmap): ours until unmapped. Returns `addr`. */
export function live(addr: number, len: number): number {
  markLive(addr, len);
  return addr;
}

/** Unmaps the pages of [addr, addr+len) that are still the test's. */
export function release(addr: number, len: number): void {
  let run = -1;
  for (let p = addr; p <= addr + len; p += P) {
    const live = p < addr + len && !gone.has(p);
    if (live && run < 0) run = p;
    if (!live && run >= 0) {
      libc.munmap(run, p - run);
      run = -1;
    }
  }
  for (let p = addr; p < addr + len; p += P) gone.delete(p);
}

/** mremap that keeps the bookkeeping: the source is gone, the destination ours. */
export function remap(
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr = 0,
): number {
  const to = mremap(addr, oldLen, newLen, flags, newAddr);
  if (to !== addr) markGone(addr, oldLen);
  else if (newLen < oldLen) markGone(addr + newLen, oldLen - newLen);
  markLive(to, newLen);
  return to;
}

export const big = (x: number): bigint => BigInt(x);

/** A library-style Worker for the ummunotify tests (tests/fixtures/ummunotify_worker.ts). */
export async function worker(): Promise<Worker> {
  return await spawnWorker(new URL("./fixtures/ummunotify_worker.ts", import.meta.url));
}

/**
 * Lets the runtime start the threads it keeps for good (Bun grows pools the
 * first time Workers come and go) before a leak check takes its baseline.
 */
export async function warmUp(kind: BackendKind): Promise<void> {
  const { Ummunotify } = await import("../src/ummunotify/mod.ts");
  for (let i = 0; i < 2; i++) {
    const un = await Ummunotify.open({ backend: kind });
    const w = await worker();
    await ask(w, { op: "check", handle: un.counter.handle, since: 0n });
    w.terminate();
    await un.close();
  }
}

/** Posts one command to a fixture Worker and resolves with its answer. */
export function ask<T>(w: Worker, msg: unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    w.onmessage = (e) => resolve(e.data as T);
    w.onerror = (e) => {
      e.preventDefault?.();
      reject(new Error(e.message));
    };
    w.postMessage(msg);
  });
}

// ---- fork without JavaScript in the child ------------------------------------------------------

const FORK_C = `
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
/* action: 0 exit at once; 1 munmap(addr, len) then exit; 2 write addr[0] then exit;
   3 stay alive (pause) until killed. */
/* The raw clone syscall, not glibc's fork(): fork() holds glibc's malloc locks
   across the clone, and with UFFD_FEATURE_EVENT_FORK the kernel makes clone wait
   until the FORK event is read; a reader thread in this process that needs
   malloc before its read() then deadlocks. Raw clone takes no user-space lock. */
int ummu_fork(uint64_t addr, uint64_t len, int action) {
  pid_t p = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
  if (p != 0) return p;
  if (action == 1) munmap((void *)addr, len);
  if (action == 2) *(volatile char *)addr = 2;
  if (action == 3) for (;;) pause();
  _exit(0);
}
int ummu_wait(int pid) { int st = 0; if (waitpid(pid, &st, 0) < 0) return -1; return st; }
int ummu_kill(int pid) { return kill(pid, SIGKILL); }
`;

export interface Forker {
  /** Forks this process; the child does `action` natively and exits. Returns the pid. */
  fork(addr: number, len: number, action: 0 | 1 | 2 | 3): number;
  /** waitpid status. */
  wait(pid: number): number;
  kill(pid: number): void;
}

let forker: Forker | null | undefined;

/** Why the fork helper is unavailable (valid once getForker() returned null). */
export let forkUnavailable = "no C compiler for the fork helper";

/** The fork helper, compiled on first use; null (the reason in forkUnavailable) if it cannot be. */
export async function getForker(): Promise<Forker | null> {
  if (forker !== undefined) return forker;
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun === undefined && g.Deno === undefined) {
    forkUnavailable = "the fork helper is loaded with Deno.dlopen or bun:ffi (not on Node)";
    return (forker = null);
  }
  try {
    const dir = mkdtempSync(join(tmpdir(), "ummu-fork-"));
    writeFileSync(join(dir, "fork.c"), FORK_C);
    const so = join(dir, "fork.so");
    execFileSync(
      process.env.CC || "cc",
      ["-O1", "-shared", "-fPIC", "-o", so, join(dir, "fork.c")],
      { stdio: "pipe" },
    );
    forker = await loadForker(so);
  } catch {
    forker = null;
  }
  return forker;
}

declare const process: { env: Record<string, string | undefined> };

async function loadForker(so: string): Promise<Forker> {
  const g = globalThis as {
    Bun?: unknown;
    Deno?: {
      dlopen: (p: string, s: unknown) => { symbols: Record<string, (...a: unknown[]) => unknown> };
    };
  };
  if (g.Bun !== undefined) {
    const spec = "bun:ffi";
    const { dlopen } = await import(spec);
    const lib = dlopen(so, {
      ummu_fork: { args: ["u64", "u64", "i32"], returns: "i32" },
      ummu_wait: { args: ["i32"], returns: "i32" },
      ummu_kill: { args: ["i32"], returns: "i32" },
    });
    return {
      fork: (a, l, act) => lib.symbols.ummu_fork(a, l, act) as number,
      wait: (p) => lib.symbols.ummu_wait(p) as number,
      kill: (p) => void lib.symbols.ummu_kill(p),
    };
  }
  const lib = g.Deno!.dlopen(so, {
    ummu_fork: { parameters: ["u64", "u64", "i32"], result: "i32" },
    ummu_wait: { parameters: ["i32"], result: "i32" },
    ummu_kill: { parameters: ["i32"], result: "i32" },
  });
  return {
    fork: (a, l, act) => lib.symbols.ummu_fork(BigInt(a), BigInt(l), act) as number,
    wait: (p) => lib.symbols.ummu_wait(p) as number,
    kill: (p) => void lib.symbols.ummu_kill(p),
  };
}

/** Present-bit and PFN of each page from /proc/self/pagemap (PFNs need root). */
export function pagemap(
  addr: number,
  pages: number,
): { present: boolean; pfn: bigint; uffdWp: boolean }[] {
  const fd = libc.open(
    new TextEncoder().encode("/proc/self/pagemap\0"),
    mm.O_RDONLY | mm.O_CLOEXEC,
    0,
  );
  if (fd < 0) throw new Error("cannot open /proc/self/pagemap");
  try {
    const buf = new Uint8Array(8 * pages);
    const n = libc.pread(fd, buf, buf.length, (addr / P) * 8);
    if (n !== buf.length) throw new Error(`pagemap read ${n}`);
    const dv = new DataView(buf.buffer);
    const out = [];
    for (let i = 0; i < pages; i++) {
      const v = dv.getBigUint64(i * 8, true);
      out.push({
        present: (v >> 63n) === 1n,
        pfn: v & ((1n << 55n) - 1n),
        uffdWp: ((v >> 57n) & 1n) === 1n,
      });
    }
    return out;
  } finally {
    libc.close(fd);
  }
}

/**
 * A scratch directory on a file system with a page cache and writeback: the
 * host's tmpdir, or in the test VM (where /tmp is tmpfs and the root 9p) a
 * small ext4 on a loop device, set up once per boot.
 */
export function scratchDir(): string {
  if (process.env.UMMU_IN_VM === "1") {
    const mnt = "/mnt/ummu-ext4";
    vmSetup(
      mnt,
      `mkdir -p ${mnt} && dd if=/dev/zero of=/tmp/ummu-ext4.img bs=1M count=32 status=none && ` +
        `dev=$(losetup -f --show /tmp/ummu-ext4.img) && mkfs.ext4 -q "$dev" && mount "$dev" ${mnt}`,
    );
    if (existsSync(`${mnt}/lost+found`)) return mkdtempSync(join(mnt, "ummu-un-"));
  }
  return mkdtempSync(join(tmpdir(), "ummu-un-"));
}

/** In the test VM only: swap on a loop device over a tmpfs file (so anonymous pages can be swapped out). */
export function vmSwap(): void {
  if (process.env.UMMU_IN_VM !== "1") return;
  vmSetup(
    "swap",
    "dd if=/dev/zero of=/tmp/ummu-swap bs=1M count=64 status=none && " +
      'dev=$(losetup -f --show /tmp/ummu-swap) && mkswap -q "$dev" && swapon "$dev"',
  );
}

const done = new Set<string>();
function vmSetup(key: string, script: string): void {
  if (done.has(key)) return;
  done.add(key);
  if (key === "swap" && readFileSync("/proc/swaps", "utf8").trim().split("\n").length > 1) return;
  if (key !== "swap" && existsSync(`${key}/lost+found`)) return;
  try {
    execFileSync("sh", ["-c", script], { stdio: "pipe" });
  } catch { /* the rows that need it skip with the reason */ }
}
