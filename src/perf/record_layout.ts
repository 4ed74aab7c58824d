/**
 * What an attr says about the shape of its records (RecordLayout), and which
 * attr a record of a stream shared by several attrs belongs to: by its id,
 * found where perf finds it (tools/perf/util/evsel.c `__evsel__calc_id_pos` /
 * `__evsel__calc_is_pos`, evlist.c `evlist__event2evsel`).
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { type PerfEventAttrFields, validateAttr } from "./attr.ts";
import { UmmuArgumentError } from "../errors.ts";

/** The attr fields that shape records (a decoded attr has them all; absent ones are zero). */
export type LayoutAttr = Partial<
  Pick<
    PerfEventAttrFields,
    | "sampleType"
    | "readFormat"
    | "sampleIdAll"
    | "branchSampleType"
    | "sampleRegsUser"
    | "sampleRegsIntr"
  >
>;

/** The shape of the records of one attr. */
export interface RecordLayout {
  sampleType: number;
  readFormat: number;
  sampleIdAll: boolean;
  branchSampleType: number;
  /** The attr's register masks and how many registers each holds (its popcount). */
  regsUserMask: bigint;
  regsUserCount: number;
  regsIntrMask: bigint;
  regsIntrCount: number;
  /** Bytes of the sample_id_all trailer of non-SAMPLE records (0 without sampleIdAll). */
  sampleIdSize: number;
  /** The u64 index after the header of a SAMPLE's id (-1: no id). */
  idPos: number;
  /** The u64 index from the end of a non-SAMPLE record's id in its trailer (-1: no id). */
  isPos: number;
}

function popcount64(v: bigint): number {
  let n = 0;
  for (let x = BigInt.asUintN(64, v); x !== 0n; x &= x - 1n) n++;
  return n;
}

/** perf's __evsel__calc_id_pos: where a SAMPLE's id is, in u64s after the header. */
export function sampleIdPosition(sampleType: number): number {
  if (sampleType & pe.PERF_SAMPLE_IDENTIFIER) return 0;
  if (!(sampleType & pe.PERF_SAMPLE_ID)) return -1;
  let idx = 0;
  if (sampleType & pe.PERF_SAMPLE_IP) idx++;
  if (sampleType & pe.PERF_SAMPLE_TID) idx++;
  if (sampleType & pe.PERF_SAMPLE_TIME) idx++;
  if (sampleType & pe.PERF_SAMPLE_ADDR) idx++;
  return idx;
}

/** perf's __evsel__calc_is_pos: where a non-SAMPLE's id is, in u64s from the record's end. */
export function trailerIdPosition(sampleType: number): number {
  if (sampleType & pe.PERF_SAMPLE_IDENTIFIER) return 1;
  if (!(sampleType & pe.PERF_SAMPLE_ID)) return -1;
  let idx = 1;
  if (sampleType & pe.PERF_SAMPLE_CPU) idx++;
  if (sampleType & pe.PERF_SAMPLE_STREAM_ID) idx++;
  return idx;
}

/** The layout of an attr's records. */
export function recordLayout(given: LayoutAttr): RecordLayout {
  if (given === null || typeof given !== "object") {
    throw new UmmuArgumentError(`recordLayout: the attr must be an object, got ${String(given)}`);
  }
  // Only the fields that shape records, checked as the attr encoder checks them.
  const a = validateAttr({
    sampleType: given.sampleType,
    readFormat: given.readFormat,
    sampleIdAll: given.sampleIdAll,
    branchSampleType: given.branchSampleType,
    sampleRegsUser: given.sampleRegsUser,
    sampleRegsIntr: given.sampleRegsIntr,
  });
  const attr = {
    sampleType: a.sampleType ?? 0,
    readFormat: a.readFormat ?? 0,
    sampleIdAll: a.sampleIdAll ?? false,
    branchSampleType: a.branchSampleType ?? 0,
    sampleRegsUser: a.sampleRegsUser ?? 0n,
    sampleRegsIntr: a.sampleRegsIntr ?? 0n,
  };
  const st = attr.sampleType;
  let idWords = 0;
  for (
    const bit of [
      pe.PERF_SAMPLE_TID,
      pe.PERF_SAMPLE_TIME,
      pe.PERF_SAMPLE_ID,
      pe.PERF_SAMPLE_STREAM_ID,
      pe.PERF_SAMPLE_CPU,
      pe.PERF_SAMPLE_IDENTIFIER,
    ]
  ) if (st & bit) idWords++;
  return {
    sampleType: st,
    readFormat: attr.readFormat,
    sampleIdAll: attr.sampleIdAll,
    branchSampleType: attr.branchSampleType,
    regsUserMask: attr.sampleRegsUser,
    regsUserCount: popcount64(attr.sampleRegsUser),
    regsIntrMask: attr.sampleRegsIntr,
    regsIntrCount: popcount64(attr.sampleRegsIntr),
    sampleIdSize: attr.sampleIdAll ? idWords * 8 : 0,
    idPos: sampleIdPosition(st),
    isPos: trailerIdPosition(st),
  };
}

/** Two layouts decode every record the same way. */
export function sameLayout(a: RecordLayout, b: RecordLayout): boolean {
  return a.sampleType === b.sampleType && a.readFormat === b.readFormat &&
    a.sampleIdAll === b.sampleIdAll && a.branchSampleType === b.branchSampleType &&
    a.regsUserMask === b.regsUserMask && a.regsIntrMask === b.regsIntrMask;
}

/** One attr of a stream and the ids of its events (from PERF_EVENT_IOC_ID or a perf.data file). */
export interface StreamAttr {
  attr: LayoutAttr;
  ids?: readonly bigint[];
}

/**
 * The attrs of one stream and how to tell which one a record belongs to.
 * One layout when there is one attr or all agree; otherwise every attr must
 * put its id at the same place (as perf requires: "non matching sample_type"),
 * and records are told apart by id.
 */
export class LayoutSelector {
  /** The layouts, in the attrs' order. */
  readonly layouts: readonly RecordLayout[];
  /** True when every attr has the same layout: no id lookup is needed to decode. */
  readonly uniform: boolean;
  readonly idPos: number;
  readonly isPos: number;
  /** Whether ids are known at all (a stream with no ids maps every record to attr 0); fixed at construction. */
  readonly hasIds: boolean;
  readonly #byId = new Map<bigint, number>();

  constructor(attrs: readonly StreamAttr[]) {
    if (!Array.isArray(attrs) || attrs.length === 0) {
      throw new UmmuArgumentError(
        `RecordDecoder: attrs must be a non-empty array of { attr, ids? }, got ${
          Array.isArray(attrs) ? "an empty array" : typeof attrs
        }`,
      );
    }
    this.layouts = attrs.map((a) => recordLayout(a.attr));
    attrs.forEach((a, i) => {
      for (const id of a.ids ?? []) if (!this.#byId.has(id)) this.#byId.set(id, i);
    });
    this.hasIds = this.#byId.size > 0;
    const first = this.layouts[0];
    this.uniform = this.layouts.every((l) => sameLayout(l, first));
    this.idPos = first.idPos;
    this.isPos = first.isPos;
    if (!this.uniform) {
      const bad = this.layouts.findIndex((l) =>
        l.idPos < 0 || l.isPos < 0 || l.idPos !== first.idPos || l.isPos !== first.isPos
      );
      if (bad >= 0) {
        throw new UmmuArgumentError(
          `RecordDecoder: attrs with different sample layouts must all carry an id at the same place ` +
            `(PERF_SAMPLE_IDENTIFIER in every sampleType), but attr ${bad} (sampleType 0x${
              this.layouts[bad].sampleType.toString(16)
            }) and attr 0 (0x${first.sampleType.toString(16)}) do not`,
        );
      }
    }
  }

  /** The index of the attr whose events have this id; undefined for an unknown id. */
  attrIndexOfId(id: bigint): number | undefined {
    return this.#byId.get(id);
  }

  /** Whether ids are known at all (a stream with no ids maps every record to attr 0). */
}
