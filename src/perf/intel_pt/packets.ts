/**
 * The Intel Processor Trace packet decoder: the bytes of an AUXTRACE payload
 * (or an AUX area) into packets, the way perf's intel-pt-pkt-decoder cuts them
 * (Intel SDM vol. 3, chapter "Intel Processor Trace", section "Packet
 * Definitions"), with the IP compression undone from the last IP.
 *
 * This is the packet level only: it does not walk the program's code, so it
 * cannot say which instruction a TNT bit belongs to (that needs the binary and
 * an instruction decoder; out of scope).
 *
 * Speed: one {@linkcode PtPacket} is reused for every packet (nothing is
 * allocated per packet unless a caller reads a bigint getter), payloads are
 * kept as two u32 halves. A packet passed to a callback is valid only inside
 * that callback; `copy()` it to keep it.
 */
import { invalid, oneOf, options as optionsOf } from "../../validate.ts";
import { BAD_TRUNCATED, BAD_UNKNOWN, IP_NONE, IP_UNKNOWN, IP_VALID, PtPacket } from "./packet.ts";

/** What to do after a bad packet. */
export type PtResync =
  /** Skip one byte and decode from the next one: `perf report -D`'s listing. */
  | "byte"
  /** Skip to the next PSB (one "bad" packet covers the bytes skipped): perf's decoder. */
  | "psb";

/** Options of {@linkcode decodePtPackets}, {@linkcode ptPackets} and {@linkcode PtPacketDecoder}. */
export interface PtDecodeOptions {
  /** After a bad packet: "psb" (default) or "byte" (perf report -D's listing). */
  resync?: PtResync;
}

// perf's packet context: after a BBP, a byte whose low 3 bits are 0b100 is a BIP.
const CTX_NONE = 0, CTX_BLK4 = 1, CTX_BLK8 = 2;

/** The bytes of a PSB: 02 82 repeated 8 times. */
function isPsbAt(b: Uint8Array, i: number, end: number): boolean {
  if (i + 16 > end) return false;
  for (let k = i; k < i + 16; k += 2) if (b[k] !== 0x02 || b[k + 1] !== 0x82) return false;
  return true;
}

/**
 * Decodes packets one at a time from `bytes` into one reused {@linkcode PtPacket}.
 * Keeps the last IP (for IP compression) and perf's block context (BIP after BBP).
 */
export class PtPacketDecoder {
  /** The reused packet `next()` fills. */
  readonly packet: PtPacket = new PtPacket();
  #bytes: Uint8Array;
  #pos = 0;
  #ctx = CTX_NONE;
  #lastLo = 0;
  #lastHi = 0;
  #lastKnown = false;
  #psbResync: boolean;
  /** The block context after the packet being decoded (-1: unchanged); applied only if it decodes. */
  #nextCtx = -1;

  /** A decoder of `bytes` from offset 0 (the bytes are read, never copied or changed). */
  constructor(bytes: Uint8Array, options: PtDecodeOptions = {}) {
    if (!(bytes instanceof Uint8Array)) invalid("bytes", bytes, "a Uint8Array");
    const o = optionsOf<PtDecodeOptions>("options", options);
    this.#psbResync =
      (o.resync === undefined
        ? "psb"
        : oneOf("options.resync", o.resync, ["byte", "psb"] as const)) === "psb";
    this.#bytes = bytes;
  }

  /**
   * Decodes `bytes` next, from their offset 0, as the continuation of the
   * trace so far: the last IP and the block context carry over (a trace read
   * in pieces, e.g. an AUX area drained as it fills, with a packet cut at the
   * end of one piece put at the start of the next).
   */
  resume(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array)) invalid("bytes", bytes, "a Uint8Array");
    this.#bytes = bytes;
    this.#pos = 0;
  }

  /** The offset of the next packet. */
  get position(): number {
    return this.#pos;
  }

  /** Decodes the next packet into `this.packet` and returns it; undefined at the end. */
  next(): PtPacket | undefined {
    const b = this.#bytes;
    const end = b.length;
    const at = this.#pos;
    if (at >= end) return undefined;
    const p = this.packet;
    p.offset = at;
    p.count = 0;
    p.lo = 0;
    p.hi = 0;
    p.ipCode = IP_NONE;
    p.ipFollowsBit = 0;
    this.#nextCtx = -1;
    const n = this.#decode(b, at, end, p);
    if (n <= 0) {
      p.kind = "bad";
      p.count = n === -1 ? BAD_TRUNCATED : BAD_UNKNOWN;
      p.padding = 0;
      let skip = 1;
      if (this.#psbResync) {
        let i = at + 1;
        while (i < end && !isPsbAt(b, i, end)) i++;
        skip = i - at;
        // The stream is lost until the PSB: its IP compression and block context too. (A
        // packet cut by the end of the bytes is no loss: resume() may bring the rest.)
        if (n !== -1) {
          this.#lastKnown = false;
          this.#ctx = CTX_NONE;
        }
      }
      p.length = skip;
      this.#pos = at + skip;
      return p;
    }
    if (this.#nextCtx >= 0) this.#ctx = this.#nextCtx;
    p.length = n;
    let pad = 0;
    while (n + pad < 8 && at + n + pad < end && b[at + n + pad] === 0) pad++;
    p.padding = pad;
    this.#pos = at + n + pad;
    return p;
  }

  /** perf's intel_pt_do_get_packet and intel_pt_upd_pkt_ctx: the packet's length, -1 truncated, 0 bad. */
  #decode(b: Uint8Array, at: number, end: number, p: PtPacket): number {
    const len = end - at;
    const byte = b[at];
    if (this.#ctx !== CTX_NONE && (byte & 7) === 4) {
      // BIP: ID in bits 7:3, then a 4- or 8-byte value.
      const size = this.#ctx === CTX_BLK4 ? 4 : 8;
      if (len < size + 1) return -1;
      p.kind = "BIP";
      p.count = byte >>> 3;
      p.lo = le32(b, at + 1);
      if (size === 8) p.hi = le32(b, at + 5);
      return size + 1; // BIP keeps the block context
    }
    if ((byte & 1) === 0) {
      if (byte === 0) {
        p.kind = "PAD";
        return 1;
      }
      if (byte === 2) return this.#ext(b, at, len, p);
      // Short TNT: a stop bit, then 1..6 branch bits, then a 0 in bit 0.
      const stop = 31 - Math.clz32(byte);
      const count = stop - 1;
      p.kind = "TNT";
      p.count = count;
      p.lo = (byte >>> 1) & ((1 << count) - 1);
      this.#nextCtx = CTX_NONE;
      return 1;
    }
    if ((byte & 2) !== 0) return this.#cyc(b, at, len, byte, p);
    switch (byte & 0x1f) {
      case 0x0d:
        p.kind = "TIP";
        this.#nextCtx = CTX_NONE;
        return this.#ip(b, at, len, byte, p);
      case 0x11:
        p.kind = "TIP.PGE";
        this.#nextCtx = CTX_NONE;
        return this.#ip(b, at, len, byte, p);
      case 0x01:
        p.kind = "TIP.PGD";
        this.#nextCtx = CTX_NONE;
        return this.#ip(b, at, len, byte, p);
      case 0x1d:
        p.kind = "FUP"; // FUP keeps the block context
        return this.#ip(b, at, len, byte, p);
      case 0x19:
        if (byte === 0x99) {
          if (len < 2) return -1;
          const m = b[at + 1];
          const sub = m >>> 5;
          if (sub === 0) {
            const cs = m & 3;
            if (cs === 3) return 0;
            p.kind = "MODE.Exec";
            p.count = m;
            p.lo = cs === 0 ? 16 : cs === 1 ? 64 : 32;
          } else if (sub === 1) {
            if ((m & 3) === 3) return 0;
            p.kind = "MODE.TSX";
            p.lo = m & 3;
          } else {
            return 0;
          }
          this.#nextCtx = CTX_NONE;
          return 2;
        }
        if (byte === 0x19) {
          if (len < 8) return -1;
          p.kind = "TSC";
          p.lo = le32(b, at + 1);
          p.hi = b[at + 5] | (b[at + 6] << 8) | (b[at + 7] << 16);
          return 8;
        }
        if (byte === 0x59) {
          if (len < 2) return -1;
          p.kind = "MTC";
          p.lo = b[at + 1];
          return 2;
        }
        return 0;
      default:
        return 0;
    }
  }

  /** TIP/TIP.PGE/TIP.PGD/FUP: IPBytes in bits 7:5, then 0, 2, 4, 6 or 8 bytes of IP. */
  #ip(b: Uint8Array, at: number, len: number, byte: number, p: PtPacket): number {
    const ipBytes = byte >>> 5;
    p.count = ipBytes;
    switch (ipBytes) {
      case 0: // suppressed: the IP is out of context (or filtered); last IP unchanged
        return 1;
      case 1: // the low 16 bits, the rest from the last IP
        if (len < 3) return -1;
        p.lo = b[at + 1] | (b[at + 2] << 8);
        if (this.#lastKnown) {
          this.#lastLo = ((this.#lastLo & 0xffff0000) | p.lo) >>> 0;
          p.ipCode = IP_VALID;
        } else {
          p.ipCode = IP_UNKNOWN;
        }
        break;
      case 2: // the low 32 bits
        if (len < 5) return -1;
        p.lo = le32(b, at + 1);
        if (this.#lastKnown) {
          this.#lastLo = p.lo;
          p.ipCode = IP_VALID;
        } else {
          p.ipCode = IP_UNKNOWN;
        }
        break;
      case 3: // 48 bits, sign-extended from bit 47
      case 4: // the low 48 bits, the high 16 from the last IP
        if (len < 7) return -1;
        p.lo = le32(b, at + 1);
        p.hi = b[at + 5] | (b[at + 6] << 8);
        if (ipBytes === 3) {
          this.#lastLo = p.lo;
          this.#lastHi = (p.hi & 0x8000) !== 0 ? (p.hi | 0xffff0000) >>> 0 : p.hi;
          this.#lastKnown = true;
          p.ipCode = IP_VALID;
        } else if (this.#lastKnown) {
          this.#lastLo = p.lo;
          this.#lastHi = ((this.#lastHi & 0xffff0000) | p.hi) >>> 0;
          p.ipCode = IP_VALID;
        } else {
          p.ipCode = IP_UNKNOWN;
        }
        break;
      case 6: // the full 64 bits
        if (len < 9) return -1;
        p.lo = le32(b, at + 1);
        p.hi = le32(b, at + 5);
        this.#lastLo = p.lo;
        this.#lastHi = p.hi;
        this.#lastKnown = true;
        p.ipCode = IP_VALID;
        break;
      default: // 0b101 and 0b111 are reserved
        return 0;
    }
    p.ipLo = this.#lastLo;
    p.ipHi = this.#lastHi;
    return ipBytes === 6 ? 9 : ipBytes === 1 ? 3 : ipBytes === 2 ? 5 : 7;
  }

  /** CYC: bits 7:3 of the header, then 7 bits a byte while bit 0 (of the previous byte) says more. */
  #cyc(b: Uint8Array, at: number, len: number, byte: number, p: PtPacket): number {
    let lo = byte >>> 3, hi = 0;
    let more = (byte & 4) !== 0;
    let offs = 1;
    for (let shift = 5; more; shift += 7) {
      if (offs > 9) return 0;
      if (offs >= len) return -1;
      const v = b[at + offs++];
      const bits = v >>> 1;
      // A u64 like perf's: bits shifted past 63 are lost.
      if (shift < 32) {
        lo |= bits << shift;
        if (shift + 7 > 32) hi |= bits >>> (32 - shift);
      } else {
        hi |= bits << (shift - 32);
      }
      more = (v & 1) !== 0;
    }
    p.kind = "CYC";
    p.lo = lo >>> 0;
    p.hi = hi >>> 0;
    return offs;
  }

  /** The packets whose header is 0x02 and a second byte. */
  #ext(b: Uint8Array, at: number, len: number, p: PtPacket): number {
    if (len < 2) return -1;
    const op = b[at + 1];
    if ((op & 0x1f) === 0x12) {
      // PTWRITE: IP bit 7, PayloadBytes bits 6:5 (0: 4 bytes, 1: 8 bytes).
      const size = (op >>> 5) & 3;
      p.kind = "PTWRITE";
      p.count = size;
      p.ipFollowsBit = op >>> 7;
      if (size === 0) {
        if (len < 6) return -1;
        p.lo = le32(b, at + 2);
        this.#nextCtx = CTX_NONE;
        return 6;
      }
      if (size === 1) {
        if (len < 10) return -1;
        p.lo = le32(b, at + 2);
        p.hi = le32(b, at + 6);
        this.#nextCtx = CTX_NONE;
        return 10;
      }
      return 0;
    }
    switch (op) {
      case 0xa3: { // long TNT: 6 bytes of bits, a stop bit above the newest 47 at most
        if (len < 8) return -1;
        const lo = le32(b, at + 2);
        const hi = b[at + 6] | (b[at + 7] << 8);
        const stop = hi !== 0 ? 32 + 31 - Math.clz32(hi) : 31 - Math.clz32(lo);
        const count = stop > 0 ? stop : 0; // perf counts 0 when no stop bit is above bit 0
        p.kind = "TNT";
        p.count = count;
        if (count >= 32) {
          p.lo = lo;
          p.hi = hi & ((1 << (count - 32)) - 1);
        } else {
          p.lo = count === 0 ? 0 : (lo & (2 ** count - 1)) >>> 0;
        }
        this.#nextCtx = CTX_NONE;
        return 8;
      }
      case 0x43: // PIP: NR in bit 0, CR3[51:5] in bits 47:1
        if (len < 8) return -1;
        p.kind = "PIP";
        p.lo = le32(b, at + 2);
        p.hi = b[at + 6] | (b[at + 7] << 8);
        this.#nextCtx = CTX_NONE;
        return 8;
      case 0x83:
        p.kind = "TraceSTOP";
        this.#nextCtx = CTX_NONE;
        return 2;
      case 0x03: // CBR: the core:bus ratio in byte 2
        if (len < 4) return -1;
        p.kind = "CBR";
        p.lo = b[at + 2] | (b[at + 3] << 8);
        return 4;
      case 0xc8: // VMCS: 5 bytes, the VMCS pointer's bits 51:12
        if (len < 7) return -1;
        p.kind = "VMCS";
        p.count = 5;
        p.lo = le32(b, at + 2);
        p.hi = b[at + 6];
        this.#nextCtx = CTX_NONE;
        return 7;
      case 0xf3:
        p.kind = "OVF";
        this.#nextCtx = CTX_NONE;
        return 2;
      case 0x82:
        if (len < 16) return -1;
        if (!isPsbAt(b, at, at + len)) return 0;
        p.kind = "PSB";
        // The SDM: the last IP is zero at a PSB (the first IP after it is complete or relative to 0).
        this.#lastLo = 0;
        this.#lastHi = 0;
        this.#lastKnown = true;
        this.#nextCtx = CTX_NONE;
        return 16;
      case 0x23:
        p.kind = "PSBEND";
        this.#nextCtx = CTX_NONE;
        return 2;
      case 0x73: // TMA: CTC[15:0] in bytes 2-3, FastCounter in byte 5 and bit 0 of byte 6
        if (len < 7) return -1;
        p.kind = "TMA";
        p.lo = b[at + 2] | (b[at + 3] << 8);
        p.count = b[at + 5] | ((b[at + 6] & 1) << 8);
        return 7;
      case 0xc3: // 3-byte header: MNT is 02 c3 88
        if (len < 3) return -1;
        if (b[at + 2] !== 0x88) return 0;
        if (len < 11) return -1;
        p.kind = "MNT";
        p.lo = le32(b, at + 3);
        p.hi = le32(b, at + 7);
        return 11;
      case 0x62:
      case 0xe2:
        p.kind = "EXSTOP";
        p.ipFollowsBit = op >>> 7;
        return 2;
      case 0xc2: // MWAIT: EAX hints in bytes 2-5, ECX extensions in 6-9
        if (len < 10) return -1;
        p.kind = "MWAIT";
        p.lo = le32(b, at + 2);
        p.hi = le32(b, at + 6);
        this.#nextCtx = CTX_NONE;
        return 10;
      case 0x22: // PWRE: 2 bytes
        if (len < 4) return -1;
        p.kind = "PWRE";
        p.lo = b[at + 2] | (b[at + 3] << 8);
        return 4;
      case 0xa2: // PWRX: 5 bytes
        if (len < 7) return -1;
        p.kind = "PWRX";
        p.lo = le32(b, at + 2);
        p.hi = b[at + 6];
        return 7;
      case 0x63: { // BBP: SZ in bit 7, Type in bits 4:0
        if (len < 3) return -1;
        const v = b[at + 2];
        p.kind = "BBP";
        p.count = v >>> 7;
        p.lo = v & 0x1f;
        this.#nextCtx = p.count ? CTX_BLK4 : CTX_BLK8;
        return 3;
      }
      case 0x33:
      case 0xb3:
        p.kind = "BEP";
        p.ipFollowsBit = op >>> 7;
        this.#nextCtx = CTX_NONE;
        return 2;
      case 0x13: { // CFE: IP bit 7 and Type 4:0 of byte 2, the vector in byte 3
        if (len < 4) return -1;
        const v = b[at + 2];
        p.kind = "CFE";
        p.ipFollowsBit = v >>> 7;
        p.count = v & 0x1f;
        p.lo = b[at + 3];
        this.#nextCtx = CTX_NONE;
        return 4;
      }
      case 0x53: // EVD: Type 5:0 of byte 2, an 8-byte payload
        if (len < 11) return -1;
        p.kind = "EVD";
        p.count = b[at + 2] & 0x3f;
        p.lo = le32(b, at + 3);
        p.hi = le32(b, at + 7);
        this.#nextCtx = CTX_NONE;
        return 11;
      default:
        return 0;
    }
  }
}

function le32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/**
 * Calls `onPacket` with every packet of `bytes`, in order. The packet object
 * is reused: it is valid only inside the callback (`p.copy()` keeps one).
 * Never throws on bad bytes: an unknown or truncated packet is a packet of
 * kind "bad" (see {@linkcode PtDecodeOptions.resync}). Returns the number of
 * packets.
 */
export function decodePtPackets(
  bytes: Uint8Array,
  onPacket: (p: PtPacket) => void,
  options?: PtDecodeOptions,
): number {
  if (typeof onPacket !== "function") invalid("onPacket", onPacket, "a function");
  const d = new PtPacketDecoder(bytes, options);
  let n = 0;
  for (let p = d.next(); p !== undefined; p = d.next()) {
    onPacket(p);
    n++;
  }
  return n;
}

/** Every packet of `bytes`, each an owning copy (convenient; allocates one object a packet). */
export function* ptPackets(bytes: Uint8Array, options?: PtDecodeOptions): Generator<PtPacket> {
  const d = new PtPacketDecoder(bytes, options);
  for (let p = d.next(); p !== undefined; p = d.next()) yield p.copy();
}
