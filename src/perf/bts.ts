/**
 * Intel BTS (Branch Trace Store) records, as the `intel_bts` PMU writes them
 * into its AUX area: 24 bytes per taken branch, little-endian (Intel SDM
 * vol. 3B, "Branch Trace Store (BTS)", the 64-bit record format):
 *
 *   bytes 0-7    the branch's source address ("last branch from")
 *   bytes 8-15   its target ("last branch to")
 *   bytes 16-23  flags: bit 4 set when the branch was predicted
 *
 * The kernel's driver adds two conventions perf decodes (tools/perf/util/
 * intel-bts.c): a record of two zero addresses is padding, a zero source is
 * where tracing began and a zero target where it ended.
 *
 * Decoded into the same BranchEntry as an LBR entry, so that one consumer
 * reads both. BTS has no cycle counts, branch types or transaction bits: those
 * fields are 0/false. Tested against perf's own dump of records laid out from
 * the SDM; no recording from BTS hardware exists to test on (see the docs).
 * @module
 */
import type { BranchEntry } from "./records.ts";
import { invalid } from "../validate.ts";

/** Bytes per BTS record. */
export const BTS_RECORD_SIZE = 24;
/** The flags bit that says the branch was predicted. */
export const BTS_FLAG_PREDICTED = 0x10;

/** A BTS branch: a BranchEntry plus where tracing began or ended. */
export interface BtsBranch extends BranchEntry {
  /** Offset of the record in the bytes given. */
  offset: number;
  /** The source is 0: tracing (re)started here; `to` is the first address traced. */
  traceBegin: boolean;
  /** The target is 0: tracing stopped after `from`. */
  traceEnd: boolean;
}

/** What a decode found besides branches. */
export interface BtsDecodeSummary {
  /** Branches passed to the callback. */
  branches: number;
  /** Records of two zero addresses (padding), skipped. */
  padding: number;
  /** Bytes at the end that do not make a whole record (0 for whole records). */
  trailingBytes: number;
}

function fresh(): BtsBranch {
  return {
    from: 0n,
    to: 0n,
    mispred: false,
    predicted: false,
    inTx: false,
    abort: false,
    cycles: 0,
    type: 0,
    spec: 0,
    newType: 0,
    priv: 0,
    offset: 0,
    traceBegin: false,
    traceEnd: false,
  };
}

/**
 * Decodes BTS records, calling `each` for every branch with one reused
 * object (valid only inside the callback: copy it with `{ ...b }` to keep
 * it). Returning `false` from `each` stops the decode.
 */
export function decodeBts(
  bytes: Uint8Array,
  each: (branch: BtsBranch) => void | boolean,
): BtsDecodeSummary {
  if (!(bytes instanceof Uint8Array)) invalid("decodeBts bytes", bytes, "a Uint8Array");
  if (typeof each !== "function") invalid("decodeBts each", each, "a function");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const whole = bytes.length - (bytes.length % BTS_RECORD_SIZE);
  const b = fresh();
  const out: BtsDecodeSummary = { branches: 0, padding: 0, trailingBytes: bytes.length - whole };
  for (let p = 0; p < whole; p += BTS_RECORD_SIZE) {
    const from = dv.getBigUint64(p, true);
    const to = dv.getBigUint64(p + 8, true);
    if (from === 0n && to === 0n) {
      out.padding++;
      continue;
    }
    const predicted = (dv.getUint32(p + 16, true) & BTS_FLAG_PREDICTED) !== 0;
    b.from = from;
    b.to = to;
    b.predicted = predicted;
    b.mispred = !predicted;
    b.offset = p;
    b.traceBegin = from === 0n;
    b.traceEnd = to === 0n;
    out.branches++;
    if (each(b) === false) break;
  }
  return out;
}

/** Every branch of `bytes` as its own object (convenient; decodeBts allocates nothing per branch). */
export function btsBranches(bytes: Uint8Array): BtsBranch[] {
  const out: BtsBranch[] = [];
  decodeBts(bytes, (b) => {
    out.push({ ...b });
  });
  return out;
}

/** Encodes branches as BTS records (for tests and tools that write AUX data perf reads). */
export function encodeBts(
  branches: readonly { from: bigint; to: bigint; predicted?: boolean }[],
): Uint8Array {
  if (!Array.isArray(branches)) {
    invalid("encodeBts branches", branches, "an array of { from, to, predicted? }");
  }
  branches.forEach((b, i) => {
    if (
      b === null || typeof b !== "object" || typeof b.from !== "bigint" || typeof b.to !== "bigint"
    ) {
      invalid(`encodeBts branches[${i}]`, b, "{ from: bigint, to: bigint, predicted?: boolean }");
    }
  });
  const out = new Uint8Array(branches.length * BTS_RECORD_SIZE);
  const dv = new DataView(out.buffer);
  branches.forEach((b, i) => {
    dv.setBigUint64(i * BTS_RECORD_SIZE, BigInt.asUintN(64, b.from), true);
    dv.setBigUint64(i * BTS_RECORD_SIZE + 8, BigInt.asUintN(64, b.to), true);
    dv.setBigUint64(i * BTS_RECORD_SIZE + 16, b.predicted ? BigInt(BTS_FLAG_PREDICTED) : 0n, true);
  });
  return out;
}
