/**
 * One Intel PT packet, as the decoder in packets.ts leaves it: perf's fields
 * (`count`, the payload as two u32 halves) and getters that name them by kind.
 * The decoder reuses one object; `copy()` keeps a packet.
 */
import { invalid } from "../../validate.ts";

/** Packet kinds, named as perf prints them (`perf report -D`); "bad" is perf's "Bad packet!". */
export type PtPacketKind =
  | "PAD"
  | "PSB"
  | "PSBEND"
  | "TNT"
  | "TIP"
  | "TIP.PGE"
  | "TIP.PGD"
  | "FUP"
  | "MODE.Exec"
  | "MODE.TSX"
  | "PIP"
  | "TSC"
  | "TMA"
  | "MTC"
  | "CYC"
  | "CBR"
  | "OVF"
  | "VMCS"
  | "TraceSTOP"
  | "MNT"
  | "PTWRITE"
  | "EXSTOP"
  | "MWAIT"
  | "PWRE"
  | "PWRX"
  | "BBP"
  | "BIP"
  | "BEP"
  | "CFE"
  | "EVD"
  | "bad";

/** Why a packet is "bad": its header is not a packet's, or the bytes end inside it. */
export type PtBadReason = "unknown" | "truncated";

/** The state of an IP packet's reconstructed address. */
export type PtIpState =
  /** Not an IP packet, or IPBytes 0b000: the IP is suppressed (not in the packet). */
  | "none"
  /** The full address is known. */
  | "valid"
  /** A compressed IP with no last IP to complete it (before the first PSB or full IP). */
  | "unknown";

const TWO32 = 4294967296;
/** ipCode values (see PtPacket.ipState). */
export const IP_NONE = 0, IP_VALID = 1, IP_UNKNOWN = 2;
const IP_STATES: readonly PtIpState[] = ["none", "valid", "unknown"];
/** count values of a "bad" packet (see PtPacket.badReason). */
export const BAD_UNKNOWN = 0, BAD_TRUNCATED = 1;

/** A u64 from two u32 halves. */
function u64(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * One packet. `count`, `lo`/`hi` are perf's `count` and `payload` fields
 * (meaning by kind, below); the getters give them their names. Reused by the
 * decoder: valid only until the next packet is decoded (see `copy()`).
 */
export class PtPacket {
  /** Byte offset of the packet in the decoded bytes. */
  offset = 0;
  /** Bytes of the packet itself. */
  length = 0;
  /**
   * PAD bytes (0x00) right after the packet that perf's listing shows on the
   * packet's line (perf folds zeros into a packet up to 8 bytes in all). The
   * next packet starts at `offset + length + padding`.
   */
  padding = 0;
  /** The packet's kind. */
  kind: PtPacketKind = "bad";
  /** perf's `count`: TNT bits, IPBytes, TMA FC, MODE.Exec's byte, BBP SZ, BIP ID, CFE/EVD type... */
  count = 0;
  /** Low 32 bits of the payload (see `payload`). */
  lo = 0;
  /** High 32 bits of the payload. */
  hi = 0;
  /** Low 32 bits of the reconstructed IP (IP packets, `ipState` "valid"). */
  ipLo = 0;
  /** High 32 bits of the reconstructed IP. */
  ipHi = 0;
  /** 0 none, 1 valid, 2 unknown (see `ipState`). */
  ipCode: number = IP_NONE;

  /**
   * The payload as perf's `payload` holds it, except TNT: the branch bits
   * (`tntBits`). IP packets: the raw (compressed) IP bytes. Allocates a bigint.
   */
  get payload(): bigint {
    return u64(this.lo, this.hi);
  }
  /** The payload as a number when it is below 2^53 (TSC, CYC, CBR, MTC, TMA CTC, PIP ...), else NaN. */
  get payloadNumber(): number {
    return this.hi < 0x200000 ? this.hi * TWO32 + this.lo : NaN;
  }

  // ---- TNT ----
  /** TNT: the number of branches (1..6 short, 0..47 long); undefined for other kinds. */
  get tntCount(): number | undefined {
    return this.kind === "TNT" ? this.count : undefined;
  }
  /**
   * TNT: the taken bits, the oldest branch in bit `tntCount - 1` (as in the
   * packet), the newest in bit 0: 1 taken, 0 not taken.
   */
  get tntBits(): number | undefined {
    return this.kind === "TNT" ? this.hi * TWO32 + this.lo : undefined;
  }
  /** TNT: whether branch `i` (0 = the oldest) was taken. */
  taken(i: number): boolean {
    if (this.kind !== "TNT") invalid("PtPacket.taken(i) on a packet of kind", this.kind, "TNT");
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      invalid("PtPacket.taken(i): i", i, `an integer in [0, ${this.count})`);
    }
    const bit = this.count - 1 - i;
    return (bit < 32 ? (this.lo >>> bit) & 1 : (this.hi >>> (bit - 32)) & 1) === 1;
  }

  // ---- TIP, TIP.PGE, TIP.PGD, FUP ----
  /**
   * IP packets: the IPBytes field (0b000 suppressed, 0b001 update 16 bits,
   * 0b010 update 32, 0b011 sign-extend 48, 0b100 update 48, 0b110 full 64).
   */
  get ipBytes(): number | undefined {
    return isIpKind(this.kind) ? this.count : undefined;
  }
  /** IP packets: the raw IP bytes of the packet (perf prints this). */
  get raw(): bigint | undefined {
    return isIpKind(this.kind) ? u64(this.lo, this.hi) : undefined;
  }
  /** IP packets: the full address from the last IP; undefined when suppressed or unknown. */
  get ip(): bigint | undefined {
    return this.ipCode === IP_VALID ? u64(this.ipLo, this.ipHi) : undefined;
  }
  /** IP packets: whether `ip` is known, suppressed ("none") or lacks a last IP ("unknown"). */
  get ipState(): PtIpState {
    return IP_STATES[this.ipCode];
  }

  // ---- MODE ----
  /** MODE.Exec: 16, 32 or 64 (the code's operand size). */
  get execMode(): number | undefined {
    return this.kind === "MODE.Exec" ? this.lo : undefined;
  }
  /** MODE.Exec: RFLAGS.IF (newer parts; 0 on older ones). */
  get interruptFlag(): boolean | undefined {
    return this.kind === "MODE.Exec" ? (this.count & 4) !== 0 : undefined;
  }
  /** MODE.TSX: in a transaction. */
  get inTransaction(): boolean | undefined {
    return this.kind === "MODE.TSX" ? (this.lo & 1) !== 0 : undefined;
  }
  /** MODE.TSX: the transaction aborted. */
  get transactionAbort(): boolean | undefined {
    return this.kind === "MODE.TSX" ? (this.lo & 2) !== 0 : undefined;
  }

  // ---- PIP ----
  /** PIP: CR3 (bits 51:5 from the packet). */
  get cr3(): bigint | undefined {
    return this.kind === "PIP" ? (u64(this.lo, this.hi) >> 1n) << 5n : undefined;
  }
  /** PIP: the NR bit (a VMX non-root guest's CR3). */
  get nonRoot(): boolean | undefined {
    return this.kind === "PIP" ? (this.lo & 1) !== 0 : undefined;
  }

  // ---- TMA ----
  /** TMA: CTC[15:0] of the crystal clock at the last TSC. */
  get ctc(): number | undefined {
    return this.kind === "TMA" ? this.lo : undefined;
  }
  /** TMA: the fast counter (9 bits). */
  get fastCounter(): number | undefined {
    return this.kind === "TMA" ? this.count : undefined;
  }

  // ---- PTWRITE, EXSTOP, BEP, CFE: the IP bit ----
  /** PTWRITE, EXSTOP, BEP, CFE: the IP bit (a FUP with the instruction's IP follows). */
  get ipFollows(): boolean | undefined {
    const k = this.kind;
    if (k === "PTWRITE" || k === "EXSTOP" || k === "BEP" || k === "CFE") {
      return (this.ipFollowsBit & 1) === 1;
    }
    return undefined;
  }
  /** The IP bit of PTWRITE, EXSTOP, BEP and CFE (0 for other kinds). */
  ipFollowsBit = 0;
  /** PTWRITE: payload bytes (4 or 8). */
  get ptwriteSize(): number | undefined {
    return this.kind === "PTWRITE" ? (this.count === 0 ? 4 : 8) : undefined;
  }

  // ---- MWAIT, PWRE, PWRX ----
  /** MWAIT: the hints (EAX[7:0]). */
  get mwaitHints(): number | undefined {
    return this.kind === "MWAIT" ? this.lo & 0xff : undefined;
  }
  /** MWAIT: the extensions (ECX[1:0]). */
  get mwaitExtensions(): number | undefined {
    return this.kind === "MWAIT" ? this.hi & 3 : undefined;
  }
  /** PWRE: the C-state was requested by hardware (HW bit). */
  get hardwareRequested(): boolean | undefined {
    return this.kind === "PWRE" ? (this.lo & 0x80) !== 0 : undefined;
  }
  /** PWRE: the resolved C-state (MWAIT hint). */
  get cState(): number | undefined {
    return this.kind === "PWRE" ? (this.lo >>> 12) & 0xf : undefined;
  }
  /** PWRE: the resolved sub-C-state. */
  get subCState(): number | undefined {
    return this.kind === "PWRE" ? (this.lo >>> 8) & 0xf : undefined;
  }
  /** PWRX: the last core C-state. */
  get lastCState(): number | undefined {
    return this.kind === "PWRX" ? (this.lo >>> 4) & 0xf : undefined;
  }
  /** PWRX: the deepest core C-state. */
  get deepestCState(): number | undefined {
    return this.kind === "PWRX" ? this.lo & 0xf : undefined;
  }
  /** PWRX: the wake reason bits. */
  get wakeReason(): number | undefined {
    return this.kind === "PWRX" ? (this.lo >>> 8) & 0xf : undefined;
  }

  // ---- BBP, BIP, CFE, EVD ----
  /** BBP: the size of each BIP's value (4 or 8 bytes). */
  get blockItemSize(): number | undefined {
    return this.kind === "BBP" ? (this.count ? 4 : 8) : undefined;
  }
  /** BBP: the block type; CFE and EVD: the type field. */
  get type(): number | undefined {
    const k = this.kind;
    if (k === "BBP") return this.lo;
    if (k === "CFE" || k === "EVD") return this.count;
    return undefined;
  }
  /** BIP: the item's ID. */
  get itemId(): number | undefined {
    return this.kind === "BIP" ? this.count : undefined;
  }

  // ---- bad ----
  /** "bad" packets: why. */
  get badReason(): PtBadReason | undefined {
    if (this.kind !== "bad") return undefined;
    return this.count === BAD_TRUNCATED ? "truncated" : "unknown";
  }

  /** An owning copy (the decoder reuses this object). */
  copy(): PtPacket {
    const c = new PtPacket();
    c.offset = this.offset;
    c.length = this.length;
    c.padding = this.padding;
    c.kind = this.kind;
    c.count = this.count;
    c.lo = this.lo;
    c.hi = this.hi;
    c.ipLo = this.ipLo;
    c.ipHi = this.ipHi;
    c.ipCode = this.ipCode;
    c.ipFollowsBit = this.ipFollowsBit;
    return c;
  }
}

/** TIP, TIP.PGE, TIP.PGD and FUP carry a (compressed) IP. */
export function isIpKind(kind: PtPacketKind): boolean {
  return kind === "TIP" || kind === "FUP" || kind === "TIP.PGE" || kind === "TIP.PGD";
}
