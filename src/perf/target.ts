/**
 * What a perf event watches, and the perf_event_open (pid, cpu) pairs that
 * make it so. One logical event may need many fds: a process is every one of
 * its threads (now, plus the ones they create later, through inherit); a
 * system-wide event is one fd per CPU; sampling a process needs one fd per
 * (thread, CPU), because the kernel refuses to mmap an inherited event that
 * is not bound to a CPU (kernel/events/core.c, perf_mmap).
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import * as pe from "../../ffi/perf_event.ts";
import { invalid } from "../validate.ts";
import process from "node:process";
import { UmmuError } from "../errors.ts";
import type { OpenSlot } from "./open.ts";

/**
 * Where an event counts or samples:
 * - `{ thread: 0 }` (the default): the calling thread only (a Worker's work is not counted);
 * - `{ thread: tid }`: one thread of any process;
 * - `{ process: "self" | pid }`: every thread of a process, and (inherit) threads they create later;
 * - `{ cpu: n | [n, ...] | "all" }`: everything that runs on these CPUs (system-wide: CAP_PERFMON or paranoid ≤ 0);
 * - `{ cgroup: "/sys/fs/cgroup/x", cpu? }`: tasks of a cgroup (v2 directory), on each CPU.
 */
export type PerfTarget =
  | { thread: number }
  | { process: number | "self" }
  | { cpu: number | readonly number[] | "all" }
  | { cgroup: string; cpu?: number | readonly number[] | "all" };

/** Online CPU numbers, from /sys/devices/system/cpu/online ("0-3,6"). */
export function onlineCpus(): number[] {
  const out: number[] = [];
  for (const part of readFileSync("/sys/devices/system/cpu/online", "utf8").trim().split(",")) {
    const [a, b] = part.split("-").map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

/** The thread ids of a process (/proc/PID/task). */
export function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((t) => t > 0).sort((a, b) => a - b);
  } catch {
    throw new UmmuError(`perf target: /proc/${pid}/task`, 3, `no process ${pid}`);
  }
}

/** The resolved target: the slots to open, and a cgroup directory fd to close afterwards. */
export interface ResolvedTarget {
  slots: OpenSlot[];
  /** Whether the event follows threads created later (a process target sets inherit). */
  inherit: boolean;
  /** A cgroup directory fd (pid of every slot), closed by the caller after opening. */
  cgroupFd: number;
  /** For messages: "thread 1234", "process 99 (3 threads)", "CPU 0-1". */
  label: string;
  /** A process target's pid (its main thread must be there); -1 otherwise. */
  pid: number;
}

function cpuList(cpu: unknown, what: string): number[] {
  if (cpu === "all") return onlineCpus();
  const online = onlineCpus();
  const list = Array.isArray(cpu) ? cpu : [cpu];
  if (
    list.length === 0 ||
    list.some((c) => typeof c !== "number" || !Number.isInteger(c) || !online.includes(c)) ||
    new Set(list).size !== list.length
  ) {
    invalid(what, cpu, `"all", or online CPU numbers without repeats (${online.join(", ")})`);
  }
  return list as number[];
}

/**
 * Resolves a target into slots. `sampling`: the event has a ring buffer, so
 * a process target is opened per (thread, CPU).
 */
export function resolveTarget(target: PerfTarget | undefined, sampling: boolean): ResolvedTarget {
  const t = target ?? { thread: 0 };
  if (t === null || typeof t !== "object") {
    invalid("perf target", t, "an object: { thread }, { process }, { cpu } or { cgroup }");
  }
  const keys = Object.keys(t).filter((k) => (t as Record<string, unknown>)[k] !== undefined);
  const kind = keys.find((k) => k === "thread" || k === "process" || k === "cgroup") ??
    (keys.includes("cpu") ? "cpu" : undefined);
  const extra = keys.filter((k) => k !== kind && !(kind === "cgroup" && k === "cpu"));
  if (!kind || extra.length) {
    invalid(
      "perf target",
      t,
      `one of { thread }, { process }, { cpu }, { cgroup, cpu? }${
        extra.length ? ` (unexpected: ${extra.join(", ")})` : ""
      }`,
    );
  }
  const none = { flags: 0 };
  if (kind === "thread") {
    const tid = (t as { thread: unknown }).thread;
    if (typeof tid !== "number" || !Number.isInteger(tid) || tid < 0 || tid > 0x7fffffff) {
      invalid("perf target thread", tid, "a thread id (0: the calling thread)");
    }
    return {
      slots: [{ pid: tid as number, cpu: -1, ...none }],
      inherit: false,
      cgroupFd: -1,
      label: tid === 0 ? "this thread" : `thread ${tid}`,
      pid: -1,
    };
  }
  if (kind === "process") {
    const p = (t as { process: unknown }).process;
    if (
      p !== "self" && (typeof p !== "number" || !Number.isInteger(p) || p <= 0 || p > 0x7fffffff)
    ) {
      invalid("perf target process", p, `"self" or a process id`);
    }
    const pid = p === "self" ? process.pid : p as number;
    const tids = threadsOf(pid);
    const cpus = sampling ? onlineCpus() : [-1];
    const slots = tids.flatMap((tid) => cpus.map((cpu) => ({ pid: tid, cpu, ...none })));
    return {
      slots,
      inherit: true,
      cgroupFd: -1,
      label: `process ${pid} (${tids.length} threads)`,
      pid,
    };
  }
  if (kind === "cpu") {
    const cpus = cpuList((t as { cpu: unknown }).cpu, "perf target cpu");
    return {
      slots: cpus.map((cpu) => ({ pid: -1, cpu, ...none })),
      inherit: false,
      cgroupFd: -1,
      label: `CPU ${cpus.join(",")}`,
      pid: -1,
    };
  }
  const c = t as { cgroup: unknown; cpu?: unknown };
  if (typeof c.cgroup !== "string" || c.cgroup === "") {
    invalid("perf target cgroup", c.cgroup, "a cgroup directory path (/sys/fs/cgroup/...)");
  }
  let isDir = false;
  try {
    isDir = statSync(c.cgroup as string).isDirectory();
  } catch { /* reported below */ }
  if (!isDir) invalid("perf target cgroup", c.cgroup, "an existing cgroup directory");
  const cpus = cpuList(c.cpu ?? "all", "perf target cpu");
  const fd = openSync(c.cgroup as string, "r");
  return {
    slots: cpus.map((cpu) => ({ pid: fd, cpu, flags: pe.PERF_FLAG_PID_CGROUP })),
    inherit: false,
    cgroupFd: fd,
    label: `cgroup ${c.cgroup} on CPU ${cpus.join(",")}`,
    pid: -1,
  };
}

/** Closes a resolved target's cgroup fd (after every slot is open). */
export function releaseTarget(r: ResolvedTarget): void {
  if (r.cgroupFd >= 0) closeSync(r.cgroupFd);
}

/**
 * A command started held before its exec: a shell waits for a line on its
 * stdin, then execs the command (the same pid). Open the events on its pid
 * with enableOnExec, then releaseCommand(): counting starts at the command's
 * exec, as perf's own. `stdout`: the command's (a pipe-mode recorder gives
 * it stderr, as perf does).
 */
export function heldCommand(command: readonly string[], stdout: "inherit" | number): ChildProcess {
  return spawn("/bin/sh", ["-c", 'read _ && exec "$@"', "sh", ...command], {
    stdio: ["pipe", stdout, "inherit"],
  });
}

/** Lets a heldCommand() exec. */
export function releaseCommand(child: ChildProcess): void {
  child.stdin!.end("go\n");
}
