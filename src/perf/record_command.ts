/**
 * `ummu perf record`: events recorded into a perf.data file that Debian's
 * perf reads (`perf report`, `perf script`), and `ummu perf decode` too.
 *
 *   ummu perf record [-e EVENT[,EVENT...]] [-c PERIOD | -F FREQ] [-g] [-d]
 *                    [-o FILE] (-p PID | -a | -- CMD [ARGS...])
 *
 * A command is started stopped before its exec (a shell waits on a pipe,
 * then execs it), the events are opened on that process with enable_on_exec,
 * and the pipe released: recording starts at the command's exec, as perf's
 * does, and ends when every task of it has exited. With -p or -a, recording
 * ends at SIGINT/SIGTERM (or after --duration seconds).
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import * as pe from "../../ffi/perf_event.ts";
import { ClosedError, UmmuArgumentError } from "../errors.ts";
import { PerfEvent } from "./event.ts";
import { parseEventList } from "./event_names.ts";
import { branchSampleType } from "./branch_filter.ts";
import { PerfDataWriter } from "./perf_data/writer.ts";
import {
  kernelTextRange,
  RecordSynthesizer,
  synthesizeAllProcesses,
  synthesizeProcess,
} from "./perf_data/synthesize.ts";
import { heldCommand, type PerfTarget, releaseCommand } from "./target.ts";

export const RECORD_USAGE =
  `usage: ummu perf record [-e EVENT[,EVENT...]] [-c PERIOD | -F FREQ] [-g] [-d] [-j FILTER]
                        [-o FILE] [--duration SECONDS] (-p PID | -a | -- CMD [ARGS...])

  -e, --event      events to record (default cpu-clock): perf's names, SYSTEM:TRACEPOINT,
                   mem:ADDR[/LEN][:rwx], PMU/terms/; modifiers :u :k :p
  -c, --count      sample every PERIOD events (default: -F 4000 for clocks, -c 1 otherwise)
  -F, --freq       samples per second
  -g               record callchains
  -d, --data       record sample addresses (PERF_SAMPLE_ADDR)
  -j, --branch-filter  record branch stacks (LBR), perf's filter words: any, any_call,
                   any_ret, ind_call, ind_jmp, call, cond, call_stack, u, k, hv, in_tx,
                   no_tx, abort_tx, save_type, priv (needs a PMU with branch stacks)
  -o, --output     the perf.data file (default perf.data); - writes pipe mode to stdout
                   (the command's stdout then goes to stderr, as perf does)
  -p, --pid        record an existing process (all its threads) until SIGINT
  -a, --all-cpus   record every CPU until SIGINT
      --duration   stop after SECONDS (with -p or -a)
`;

/** Runs `ummu perf record ARGS`; returns the exit status. */
export async function recordCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        event: { type: "string", short: "e", multiple: true },
        count: { type: "string", short: "c" },
        freq: { type: "string", short: "F" },
        g: { type: "boolean", short: "g" },
        data: { type: "boolean", short: "d" },
        "branch-filter": { type: "string", short: "j" },
        output: { type: "string", short: "o" },
        pid: { type: "string", short: "p" },
        "all-cpus": { type: "boolean", short: "a" },
        duration: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    process.stderr.write(
      `ummu perf record: ${e instanceof Error ? e.message : e}\n${RECORD_USAGE}`,
    );
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(RECORD_USAGE);
    return 0;
  }
  const cmd = parsed.positionals;
  const modes = [cmd.length > 0, v.pid !== undefined, v["all-cpus"] === true].filter(Boolean);
  const usage = (m: string) => {
    process.stderr.write(`ummu perf record: ${m}\n${RECORD_USAGE}`);
    return 2;
  };
  if (modes.length !== 1) return usage("give exactly one of -p PID, -a, or a command after --");
  const num = (s: string | undefined, what: string) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new UmmuArgumentError(`${what} must be a positive integer, got ${JSON.stringify(s)}`);
    }
    return n;
  };
  let period: number | undefined,
    freq: number | undefined,
    pid: number | undefined,
    duration: number | undefined;
  try {
    period = num(v.count, "-c");
    freq = num(v.freq, "-F");
    pid = num(v.pid, "-p");
    duration = num(v.duration, "--duration");
  } catch (e) {
    return usage((e as Error).message);
  }
  if (period !== undefined && freq !== undefined) return usage("-c and -F exclude each other");
  let branchFilter: number | undefined;
  try {
    branchFilter = v["branch-filter"] === undefined
      ? undefined
      : branchSampleType(v["branch-filter"]);
  } catch (e) {
    return usage(`-j: ${(e as Error).message}`);
  }
  const output = v.output ?? "perf.data";
  try {
    return await record({
      events: (v.event ?? ["cpu-clock"]).join(","),
      period,
      freq,
      callchain: v.g === true,
      addresses: v.data === true,
      branchFilter,
      output,
      pid,
      allCpus: v["all-cpus"] === true,
      duration,
      command: cmd,
    });
  } catch (e) {
    process.stderr.write(`ummu perf record: ${e instanceof Error ? e.message : e}\n`);
    return 1;
  }
}

interface RecordPlan {
  events: string;
  period?: number;
  freq?: number;
  callchain: boolean;
  addresses: boolean;
  /** branch_sample_type: record branch stacks. */
  branchFilter?: number;
  output: string;
  pid?: number;
  allCpus: boolean;
  duration?: number;
  command: string[];
}

async function record(plan: RecordPlan): Promise<number> {
  const parsed = parseEventList(plan.events);
  let sampleType = pe.PERF_SAMPLE_IP | pe.PERF_SAMPLE_TID | pe.PERF_SAMPLE_TIME |
    pe.PERF_SAMPLE_PERIOD | pe.PERF_SAMPLE_CPU | pe.PERF_SAMPLE_IDENTIFIER;
  if (plan.callchain) sampleType |= pe.PERF_SAMPLE_CALLCHAIN;
  if (plan.addresses) sampleType |= pe.PERF_SAMPLE_ADDR;
  if (plan.branchFilter !== undefined) sampleType |= pe.PERF_SAMPLE_BRANCH_STACK;
  // The child, held before its exec until the events are open.
  const child = plan.command.length
    // Pipe mode: stdout is the stream, so the command writes to stderr (perf's dup2(2, 1)).
    ? heldCommand(plan.command, plan.output === "-" ? 2 : "inherit")
    : null;
  const target: PerfTarget = child
    ? { process: child.pid! }
    : plan.pid !== undefined
    ? { process: plan.pid }
    : { cpu: "all" };
  const events: PerfEvent[] = [];
  try {
    parsed.forEach((p, i) => {
      const isClock = p.attr.type === pe.PERF_TYPE_SOFTWARE &&
        (p.attr.config === BigInt(pe.PERF_COUNT_SW_CPU_CLOCK) ||
          p.attr.config === BigInt(pe.PERF_COUNT_SW_TASK_CLOCK));
      const freq = plan.freq ?? (plan.period === undefined && isClock ? 4000 : undefined);
      events.push(PerfEvent.open(p, {
        target,
        name: p.name,
        ring: { pages: 64 },
        attr: {
          ...(freq !== undefined
            ? { sampleFreq: BigInt(freq) }
            : { samplePeriod: BigInt(plan.period ?? 1) }),
          sampleType,
          ...(plan.branchFilter !== undefined ? { branchSampleType: plan.branchFilter } : {}),
          sampleIdAll: true,
          // The first event also records what a report needs to name code: mmaps, comms, tasks.
          ...(i === 0 ? { mmap: true, mmap2: true, comm: true, commExec: true, task: true } : {}),
          disabled: true,
          enableOnExec: child !== null,
          wakeupWatermark: 64 * 4096 / 4,
        },
      }));
    });
  } catch (e) {
    child?.kill("SIGKILL");
    for (const ev of events) await ev.close();
    throw e;
  }
  const attrs = events.map((ev, i) => ({ attr: ev.attr, ids: ev.ids(), name: parsed[i].name }));
  const options = { cmdline: ["ummu", "perf", "record", ...process.argv.slice(2)] };
  const writer = plan.output === "-"
    ? PerfDataWriter.createPipe(1, attrs, options)
    : PerfDataWriter.create(plan.output, attrs, options);
  let written = 0;
  // The kernel's text map first in every mode (kernel samples resolve by kallsyms).
  const synth = new RecordSynthesizer({ attr: events[0].attr, id: events[0].ids()[0] });
  const emit = (r: Uint8Array) => (writer.writeRecord(r), written++);
  const kernel = kernelTextRange();
  if (kernel) emit(synth.kernelMmap(kernel.start, kernel.end));
  /**
   * One pass over every event's rings, then a FINISHED_ROUND (pipe mode): perf sorts each
   * round by time and assumes a round holds everything written before it, in every ring,
   * as perf record's own pass does. (A round per ring let a sample of one event reach perf
   * before the COMM in another event's ring that names its task.)
   */
  const drainAll = () => {
    for (const ev of events) {
      if (ev.closed) continue;
      ev.drain((bytes, off, size) => {
        writer.writeRecord(bytes.subarray(off, off + size));
        written++;
      });
    }
    writer.finishedRound();
  };
  // Stopping (a signal, the duration): stop counting, take what the rings hold, close
  // (which ends the waits below).
  let stopping: Promise<unknown> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      for (const ev of events) if (!ev.closed) ev.disable();
      drainAll();
      await Promise.all(events.map((ev) => ev.close()));
    })();
    return stopping;
  };
  const onSignal = () => void stop();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const timer = plan.duration ? setTimeout(onSignal, plan.duration * 1000) : null;
  const lostBefore = () => events.reduce((n, ev) => n + ev.lost, 0);
  let lost = 0;
  try {
    if (child) releaseCommand(child);
    else {
      // Tasks running before recording started: their COMM and MMAP2 (and, system-wide,
      // FORK) records from /proc, as perf synthesizes them. Enabled first, so a task that
      // starts meanwhile is in the kernel's records if not in /proc's; written before any
      // kernel record (the rings are drained after), with time 0 as perf's own.
      for (const ev of events) ev.enable();
      if (plan.pid !== undefined) synthesizeProcess(synth, plan.pid, emit);
      else synthesizeAllProcesses(synth, emit);
      writer.finishedRound();
    }
    // Wait for any event's rings; each wakeup is one pass over all of them. An event is done
    // when every task it watches has exited (readable() says false) or it was closed (stop).
    const live = new Set(events);
    const waits = new Map<PerfEvent, Promise<[PerfEvent, boolean]>>();
    for (;;) {
      drainAll();
      if (live.size === 0 || stopping !== null) break;
      for (const ev of live) {
        if (!waits.has(ev)) {
          waits.set(
            ev,
            ev.readable().then(
              (more): [PerfEvent, boolean] => [ev, more],
              (e): [PerfEvent, boolean] => {
                if (e instanceof ClosedError) return [ev, false];
                throw e;
              },
            ),
          );
        }
      }
      const [ev, more] = await Promise.race(waits.values());
      waits.delete(ev);
      if (!more) live.delete(ev);
    }
    lost = lostBefore();
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (timer) clearTimeout(timer);
    await stop();
    writer.close();
    process.stderr.write(
      `ummu perf record: ${written} records written to ${plan.output}${
        lost ? `, ${lost} lost` : ""
      }\n`,
    );
  }
  if (child && child.exitCode === null) await new Promise((r) => child.on("exit", r));
  return child && child.exitCode !== 0 ? 1 : 0;
}
