/**
 * What a branch tracer yields: one union, discriminated by `kind`.
 * @module
 */
import type { PtPacket } from "./intel_pt/packet.ts";
import type { BranchEntry } from "./records.ts";

/** A branch (LBR entry or BTS record). */
export interface BranchEvent extends BranchEntry {
  /** Always "branch". */
  kind: "branch";
  /** Where it came from. */
  via: "lbr" | "bts";
  /** LBR: the sample's process (entries of one sample share it). */
  pid?: number;
  /** LBR: the sample's thread. */
  tid?: number;
  /** LBR: the sample's time (perf clock, ns). */
  time?: bigint;
  /** BTS: tracing began here (from = 0). */
  traceBegin?: boolean;
  /** BTS: tracing ended here (to = 0). */
  traceEnd?: boolean;
}

/** An Intel PT packet (an owning copy). */
export interface PtPacketEvent {
  /** Always "pt". */
  kind: "pt";
  /** The packet (an owning copy; its `offset` is within the piece read, see streamOffset). */
  packet: PtPacket;
  /** Where the packet begins in the AUX area's stream since it was mapped. */
  streamOffset: number;
}

/** A PERF_RECORD_AUX that reports trouble (truncated, partial, collision, overwrite): the tracer yields only those. */
export interface AuxEvent {
  /** Always "aux". */
  kind: "aux";
  /** Where the data the record reports begins in the AUX stream. */
  offset: bigint;
  /** Its size. */
  size: bigint;
  /** The AUX area was full: data after `offset + size` was dropped. */
  truncated: boolean;
  /** Snapshot mode data. */
  overwrite: boolean;
  /** The PMU stopped mid-record. */
  partial: boolean;
  /** The PMU's own sample collided with another (e.g. a PT PSB cut short). */
  collision: boolean;
}

/** Ring records the kernel dropped (the reader was too slow). */
export interface LostEvent {
  /** Always "lost". */
  kind: "lost";
  /** How many records. */
  lost: bigint;
}

/** What a branch tracer yields. */
export type BranchTraceEvent = BranchEvent | PtPacketEvent | AuxEvent | LostEvent;
