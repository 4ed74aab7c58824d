/**
 * The branches a program's native code took, through whichever of the
 * three hardware ways this machine has:
 *
 *   "lbr"  branch stacks in samples: every `period` cycles, the last 8-32
 *          taken branches (a sampled view, cheap enough to leave on)
 *   "bts"  Intel BTS: every taken branch, 24 bytes each, into an AUX area
 *          (complete, and slow: the CPU stores each branch to memory)
 *   "pt"   Intel PT: every branch, compressed into packets in an AUX area
 *          (complete and fast; yields packets: indirect branch targets and
 *          the taken/not-taken bits of conditional ones. Rebuilding each
 *          branch needs the code itself and is out of scope.)
 *   "auto" the first available of pt, lbr, bts (found by probing the kernel)
 *
 * One handle (BranchTracer), one event union (BranchTraceEvent), read with
 * `for await` like every perf event's records: the 2007 review of ptrace BTS
 * asked for a reliable stream and buffers "large enough"; here the AUX area
 * is read in full-trace mode (the kernel stops rather than overwrite unread
 * data) and every loss is an event: `lost` (ring records dropped), `aux`
 * with `truncated` (AUX data dropped), `collision`, `partial`.
 *
 * Where no method is available, BranchTracingUnavailableError says which
 * PMUs exist, that virtual machines usually hide the PMU, and what
 * perf_event_paranoid allows.
 * @module
 */
import type { ChildProcess } from "node:child_process";
import { UmmuError } from "../errors.ts";
import { integer, invalid } from "../validate.ts";
import { branchSampleType } from "./branch_filter.ts";
import {
  type BranchMethod,
  branchMethodAttr,
  type BranchSupport,
  probeBranchTracing,
} from "./branch_support.ts";
import { PerfEvent } from "./event.ts";
import type { PerfAuxArea } from "./aux_area.ts";
import { AuxStreamDecoder } from "./aux_stream.ts";
import type { BranchTraceEvent } from "./branch_events.ts";
export type {
  AuxEvent,
  BranchEvent,
  BranchTraceEvent,
  LostEvent,
  PtPacketEvent,
} from "./branch_events.ts";
import { heldCommand, type PerfTarget, releaseCommand } from "./target.ts";

/** What BranchTracer.open records. */
export interface BranchTracerOptions {
  /** Which method (default "auto": pt, then lbr, then bts, the first the kernel accepts). */
  via?: BranchMethod | "auto";
  /**
   * Whose branches: a PerfTarget (default `{ thread: 0 }`, the calling
   * thread), or `{ command: [file, ...args] }`: a command this starts,
   * traced from its exec.
   */
  target?: PerfTarget | { command: readonly string[] };
  /** LBR: the branch filter, perf's -j words (default "any,u"). */
  filter?: string | readonly string[];
  /** LBR: cycles between samples (default 100003). */
  period?: number;
  /** PT: intel_pt format terms, as perf writes them between the slashes ("cyc=1,noretcomp=1"). */
  ptConfig?: string;
  /** PT/BTS: an address filter (PERF_EVENT_IOC_SET_FILTER), e.g. "filter main @ /usr/bin/foo". */
  addressFilter?: string;
  /** Ring data pages (default 64). */
  pages?: number;
  /** PT/BTS: AUX area pages per ring (default 256: 1 MiB). */
  auxPages?: number;
}

/** No method of recording branches is available (or the one asked for is not). */
export class BranchTracingUnavailableError extends UmmuError {
  /** Always "BranchTracingUnavailableError". */
  override name = "BranchTracingUnavailableError";
  /** What the probe found, method by method. */
  readonly support: BranchSupport;
  /** The error for the method `asked` (or every method, for "auto"), from what the probe found. */
  constructor(asked: BranchMethod | "auto", support: BranchSupport) {
    const methods = asked === "auto" ? (["pt", "lbr", "bts"] as const) : [asked];
    const why = methods.map((m) => `${m}: ${support[m].detail}`).join("; ");
    const errno = methods.some((m) => ["EACCES", "EPERM"].includes(support[m].outcome))
      ? 13
      : methods.some((m) => support[m].outcome === "EBUSY")
      ? 16
      : 2;
    super(
      `BranchTracer.open(via: ${asked})`,
      errno,
      `PMUs here: ${support.pmus.join(" ") || "none"}${
        support.hypervisor
          ? ". This is a virtual machine: hypervisors usually hide the PMU (a KVM guest needs -cpu host and a virtual PMU; most cloud instances have none)"
          : ""
      }. kernel.perf_event_paranoid = ${
        support.paranoid ?? "unknown"
      }: branch tracing of one's own process needs <= 2, of another user's or the kernel's, root or CAP_PERFMON`,
      why,
    );
    this.support = support;
  }
}

function chooseMethod(via: BranchMethod | "auto", support: BranchSupport): BranchMethod {
  if (via !== "auto") {
    if (!support[via].available) throw new BranchTracingUnavailableError(via, support);
    return via;
  }
  for (const m of ["pt", "lbr", "bts"] as const) if (support[m].available) return m;
  throw new BranchTracingUnavailableError("auto", support);
}

/** Per AUX area: its decoder. */
interface AuxStream {
  area: PerfAuxArea;
  decoder: AuxStreamDecoder;
}

/** A branch tracer on one target. */
export class BranchTracer {
  /** The method in use. */
  readonly via: BranchMethod;
  /** The perf event underneath (its ring, AUX areas, ioctls). */
  readonly event: PerfEvent;
  /** The command started for `{ command }`, else null. */
  readonly child: ChildProcess | null;
  readonly #streams: AuxStream[];

  private constructor(via: BranchMethod, event: PerfEvent, child: ChildProcess | null) {
    this.via = via;
    this.event = event;
    this.child = child;
    this.#streams = event.auxAreas.map((area) => ({
      area,
      decoder: new AuxStreamDecoder(via === "bts" ? "bts" : "pt"),
    }));
  }

  /**
   * Opens a tracer (enabled; a command starts at once and is traced from its
   * exec). Throws BranchTracingUnavailableError when no method is available.
   */
  static open(options: BranchTracerOptions = {}): BranchTracer {
    if (options === null || typeof options !== "object") {
      invalid("BranchTracer.open options", options, "an object");
    }
    const via = options.via ?? "auto";
    if (!["auto", "lbr", "bts", "pt"].includes(via as string)) {
      invalid("BranchTracer.open via", via, '"lbr", "bts", "pt" or "auto"');
    }
    const filter = options.filter === undefined ? undefined : branchSampleType(options.filter);
    const period = options.period === undefined
      ? undefined
      : integer("BranchTracer.open period", options.period, 1, Number.MAX_SAFE_INTEGER);
    if (options.ptConfig !== undefined && typeof options.ptConfig !== "string") {
      invalid(
        "BranchTracer.open ptConfig",
        options.ptConfig,
        'intel_pt terms like "cyc=1,noretcomp=1"',
      );
    }
    if (options.addressFilter !== undefined && typeof options.addressFilter !== "string") {
      invalid(
        "BranchTracer.open addressFilter",
        options.addressFilter,
        'a filter string like "filter main @ /usr/bin/foo"',
      );
    }
    const command = options.target && "command" in options.target ? options.target.command : null;
    if (
      command !== null &&
      (!Array.isArray(command) || command.length === 0 ||
        command.some((c) => typeof c !== "string"))
    ) {
      invalid("BranchTracer.open target.command", command, "a non-empty array of strings");
    }
    const method = chooseMethod(via, probeBranchTracing());
    const attr = branchMethodAttr(method, undefined, {
      period,
      branchSampleType: filter,
    });
    if (attr === null) throw new BranchTracingUnavailableError(method, probeBranchTracing());
    // Held before its exec until the event is open: tracing starts at the exec.
    const child = command ? heldCommand(command, "inherit") : null;
    const target: PerfTarget = child
      ? { process: child.pid! }
      : (options.target as PerfTarget | undefined) ?? { thread: 0 };
    let event: PerfEvent;
    try {
      event = PerfEvent.open(
        method === "pt" && options.ptConfig ? `intel_pt/${options.ptConfig}/u` : attr,
        {
          target,
          name: method === "lbr" ? "cycles (branch stack)" : `intel_${method}`,
          ring: {
            pages: options.pages ?? 64,
            ...(method === "lbr" ? {} : { aux: { pages: options.auxPages ?? 256 } }),
          },
          attr: {
            ...(method === "pt" && options.ptConfig ? {} : attr),
            disabled: true,
            enableOnExec: child !== null,
            sampleIdAll: true,
          },
        },
      );
      if (options.addressFilter !== undefined) event.setFilter(options.addressFilter);
    } catch (e) {
      child?.kill("SIGKILL");
      throw e;
    }
    const tracer = new BranchTracer(method, event, child);
    if (child) releaseCommand(child);
    else event.enable();
    return tracer;
  }

  /**
   * Every branch (LBR, BTS), packet (PT), loss and AUX report, in order, until
   * close() or until every traced task has exited.
   */
  async *events(): AsyncGenerator<BranchTraceEvent, void, undefined> {
    for await (const r of this.event.records()) {
      if (r.kind === "sample" && r.branchStack) {
        for (const e of r.branchStack.entries) {
          yield { kind: "branch", via: "lbr", ...e, pid: r.pid, tid: r.tid, time: r.time };
        }
      } else if (r.kind === "lost") {
        yield { kind: "lost", lost: r.lost };
      } else if (r.kind === "aux") {
        if (r.truncated || r.partial || r.collision || r.overwrite) {
          yield {
            kind: "aux",
            offset: r.auxOffset,
            size: r.auxSize,
            truncated: r.truncated,
            overwrite: r.overwrite,
            partial: r.partial,
            collision: r.collision,
          };
        }
        for (const s of this.#streams) yield* this.#readAux(s);
      }
    }
    // The AUX data written after the last AUX record (the task's exit flushes it).
    for (const s of this.#streams) yield* this.#readAux(s);
  }

  /** Reads what an AUX area holds past the last read and decodes it (see AuxStreamDecoder). */
  *#readAux(s: AuxStream): Generator<BranchTraceEvent> {
    if (this.event.closed) return;
    const pieces: Uint8Array[] = [];
    let offset = -1;
    s.area.read((bytes, at) => {
      if (offset < 0) offset = at;
      pieces.push(bytes.slice()); // out of the area before aux_tail releases it
    });
    if (offset >= 0) yield* s.decoder.push(pieces, offset);
  }

  /** Stops recording (the event stays open; events() still yields what was recorded). */
  disable(): void {
    this.event.disable();
  }

  /** Starts recording again. */
  enable(): void {
    this.event.enable();
  }

  /** Closes the event (its rings and AUX areas) and kills a command still running. */
  async close(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
    }
    await this.event.close();
  }
}
