/**
 * The handler Worker's table of what it serves, kept in step with the
 * address space: REMAP moves (part of) a range to its new address with the
 * same source offsets, UNMAP drops the unmapped part, REMOVE makes pages
 * fault again. A range split by an event becomes several pieces; each piece
 * knows where its first page sits in the original range (`rangeOffset`),
 * which is the offset its source, snapshot and alias are indexed by.
 * Plain data and arithmetic: no system call happens here.
 */
import type { RangeSpec } from "./protocol.ts";

/** A contiguous part of one handled range, at its current address. */
export interface Piece {
  /** Current start and end (page-aligned to `spec.pageSize`). */
  start: number;
  end: number;
  /** Offset of `start` within the original range (its source, snapshot and alias). */
  rangeOffset: number;
  /** The range's options as given (source, readahead, page size...). */
  spec: RangeSpec;
  /** One byte per page of the piece: 1 once resolved (bounds readahead). */
  resolved: Uint8Array;
  /** Snapshot ranges: 1 once the page's original bytes are in the snapshot. */
  copied: Uint8Array;
  /** Ranges with afterRemove "zero": 1 once REMOVE dropped the page (its next fault gets zeros). */
  removed: Uint8Array;
}

/** The pieces being served, with lookups by address. */
export class HandledRanges {
  pieces: Piece[];

  constructor(specs: RangeSpec[]) {
    this.pieces = specs.map((spec) => ({
      start: spec.start,
      end: spec.start + spec.length,
      rangeOffset: 0,
      spec,
      resolved: new Uint8Array(spec.length / spec.pageSize),
      copied: new Uint8Array(spec.snapshot ? spec.length / spec.pageSize : 0),
      removed: new Uint8Array(spec.afterRemove === "zero" ? spec.length / spec.pageSize : 0),
    }));
  }

  /** The piece containing `addr`, or null. */
  find(addr: number): Piece | null {
    const ps = this.pieces;
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i];
      if (addr >= p.start && addr < p.end) return p;
    }
    return null;
  }

  /**
   * REMOVE (madvise DONTNEED/REMOVE): pages of [start, end) are gone and will
   * fault again; in an afterRemove "zero" range, to be zero-filled then.
   */
  remove(start: number, end: number): void {
    for (const p of this.pieces) {
      const a = Math.max(start, p.start), b = Math.min(end, p.end);
      if (a < b) {
        const ps = p.spec.pageSize;
        const first = Math.floor((a - p.start) / ps), last = Math.ceil((b - p.start) / ps);
        p.resolved.fill(0, first, last);
        if (p.removed.length) p.removed.fill(1, first, last);
      }
    }
  }

  /** UNMAP: [start, end) no longer exists. */
  unmap(start: number, end: number): void {
    this.#carve(start, end, null);
  }

  /** REMAP: [from, from+length) now lives at `to`. */
  remap(from: number, to: number, length: number): void {
    this.#carve(from, from + length, to - from);
  }

  /**
   * Cuts [start, end) out of every piece; with a `shift`, the cut part moves
   * by it (REMAP), else it is dropped (UNMAP). Moved parts are inserted after
   * the cut, so a later event sees them at their new address.
   */
  #carve(start: number, end: number, shift: number | null): void {
    const out: Piece[] = [];
    const moved: Piece[] = [];
    for (const p of this.pieces) {
      const a = Math.max(start, p.start), b = Math.min(end, p.end);
      if (a >= b) {
        out.push(p);
        continue;
      }
      if (p.start < a) out.push(slice(p, p.start, a));
      if (shift !== null) {
        const part = slice(p, a, b);
        part.start += shift;
        part.end += shift;
        moved.push(part);
      }
      if (b < p.end) out.push(slice(p, b, p.end));
    }
    // A moved part lands where nothing we serve was (mremap unmapped the
    // destination first, with its own UNMAP event): no overlap to resolve.
    this.pieces = out.concat(moved);
  }
}

/** The part [a, b) of a piece, as a piece of its own (bitmaps copied). */
function slice(p: Piece, a: number, b: number): Piece {
  const ps = p.spec.pageSize;
  // Events come in whole base pages; a huge-page piece is cut at its own page boundaries.
  const first = Math.floor((a - p.start) / ps), last = Math.ceil((b - p.start) / ps);
  return {
    start: p.start + first * ps,
    end: p.start + last * ps,
    rangeOffset: p.rangeOffset + first * ps,
    spec: p.spec,
    resolved: p.resolved.slice(first, last),
    copied: p.copied.length ? p.copied.slice(first, last) : p.copied,
    removed: p.removed.length ? p.removed.slice(first, last) : p.removed,
  };
}
