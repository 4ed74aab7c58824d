/**
 * The AUX data of a tracing PMU, decoded as it arrives: the area is read in
 * pieces (what the PMU wrote since the last read, one or two chunks where it
 * wraps), and a BTS record or Intel PT packet may be cut by the end of a
 * piece. The cut bytes wait for the next piece; the PT decoder keeps its
 * state (the last IP for compressed addresses, the block context) across
 * pieces, so a trace read in any pieces decodes as the whole would.
 * @module
 */
import type { BranchEvent, PtPacketEvent } from "./branch_events.ts";
import { decodeBts } from "./bts.ts";
import { PtPacketDecoder } from "./intel_pt/packets.ts";
import { invalid } from "../validate.ts";

/** Decodes one AUX area's stream, piece by piece. */
export class AuxStreamDecoder {
  /** "bts": 24-byte records; "pt": Intel PT packets. */
  readonly format: "bts" | "pt";
  #carry: Uint8Array = new Uint8Array(0);
  #pt: PtPacketDecoder | null = null;

  /** A decoder for one area's data. */
  constructor(format: "bts" | "pt") {
    if (format !== "bts" && format !== "pt") {
      invalid("AuxStreamDecoder format", format, '"bts" or "pt"');
    }
    this.format = format;
  }

  /** Bytes held back from the last piece (an incomplete record or packet). */
  get pending(): number {
    return this.#carry.length;
  }

  /**
   * Decodes the next bytes of the stream, `pieces` in order (each copied
   * out of the area first, or views valid for this call), the first at
   * stream offset `offset`. Returns the branches or packets complete so far.
   */
  push(pieces: readonly Uint8Array[], offset: number): (BranchEvent | PtPacketEvent)[] {
    if (!Array.isArray(pieces) || pieces.some((p) => !(p instanceof Uint8Array))) {
      invalid("AuxStreamDecoder.push pieces", pieces, "an array of Uint8Arrays");
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      invalid("AuxStreamDecoder.push offset", offset, "a stream offset (an integer >= 0)");
    }
    const parts = this.#carry.length ? [this.#carry, ...pieces] : pieces;
    const base = offset - this.#carry.length;
    const data = parts.length === 1 ? parts[0] : concat(parts);
    if (this.format === "bts") {
      const out: BranchEvent[] = [];
      const { trailingBytes } = decodeBts(data, (b) => {
        const { offset: _, ...entry } = b;
        out.push({ ...entry, kind: "branch", via: "bts" });
      });
      this.#carry = data.slice(data.length - trailingBytes);
      return out;
    }
    const d = this.#pt ??= new PtPacketDecoder(new Uint8Array(0));
    d.resume(data);
    const out: PtPacketEvent[] = [];
    let keepFrom = data.length;
    for (let p = d.next(); p !== undefined; p = d.next()) {
      if (p.kind === "bad" && p.badReason === "truncated") {
        keepFrom = p.offset;
        break;
      }
      out.push({ kind: "pt", packet: p.copy(), streamOffset: base + p.offset });
    }
    this.#carry = data.slice(keepFrom);
    return out;
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
