/**
 * Intel PT packets as `perf report -D` prints them (perf's intel_pt_pkt_desc
 * and intel_pt_dump), so that ummu's listing can be compared with perf's
 * line for line.
 */
import { invalid } from "../../validate.ts";
import { PtPacket } from "./packet.ts";

/** A u64 from two u32 halves in hex, no leading zeros (C's %llx). */
function hex64(lo: number, hi: number): string {
  return hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, "0");
}

/** %02x of every byte, made once (the listing formats every byte of a trace). */
const HEX2: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);
/** " %02x" of every byte. */
const SPACED: readonly string[] = HEX2.map((h) => " " + h);
/** perf's blank columns after a packet of n < 16 bytes. */
const BLANK: readonly string[] = Array.from({ length: 17 }, (_, n) => "   ".repeat(16 - n));

function hex2(n: number): string {
  return HEX2[n];
}

/**
 * The packet's mnemonic and payload as perf prints them, e.g. `TNT TTNTTT (6)`,
 * `TIP.PGE 0xffffb960d302` (IP packets print the raw, compressed bytes, as perf
 * does), `MODE.Exec IF:0 64`; a bad packet is `Bad packet!`.
 */
export function formatPtPacket(p: PtPacket): string {
  if (!(p instanceof PtPacket)) invalid("packet", p, "a PtPacket");
  const lo = p.lo, hi = p.hi;
  switch (p.kind) {
    case "bad":
      return "Bad packet!";
    case "PAD":
    case "PSB":
    case "PSBEND":
    case "TraceSTOP":
    case "OVF":
      return p.kind;
    case "TNT": {
      let s = "TNT ";
      for (let bit = p.count - 1; bit >= 0; bit--) {
        const t = bit < 32 ? (lo >>> bit) & 1 : (hi >>> (bit - 32)) & 1;
        s += t ? "T" : "N";
      }
      return `${s} (${p.count})`;
    }
    case "TIP":
    case "TIP.PGE":
    case "TIP.PGD":
    case "FUP":
      if (p.count === 0) return `${p.kind} no ip`;
      return `${p.kind} 0x${hex64(lo, hi)}`;
    case "CYC":
    case "VMCS":
    case "MTC":
    case "MNT":
    case "CBR":
    case "TSC":
      return `${p.kind} 0x${hex64(lo, hi)}`;
    case "TMA":
      return `TMA CTC 0x${lo.toString(16)} FC 0x${p.count.toString(16)}`;
    case "MODE.Exec":
      return `MODE.Exec IF:${(p.count & 4) ? 1 : 0} ${lo}`;
    case "MODE.TSX":
      return `MODE.TSX TXAbort:${(lo >>> 1) & 1} InTX:${lo & 1}`;
    case "PIP": {
      // perf prints the payload without the NR bit, shifted right by one: CR3 >> 5.
      const shifted = hi * 2147483648 + (lo >>> 1); // (payload >> 1), < 2^47
      return `PIP 0x${shifted.toString(16)} (NR=${lo & 1})`;
    }
    case "PTWRITE":
      return `PTWRITE 0x${hex64(lo, hi)} IP:${p.ipFollowsBit}`;
    case "BEP":
    case "EXSTOP":
      return `${p.kind} IP:${p.ipFollowsBit}`;
    case "MWAIT":
      return `MWAIT 0x${hex64(lo, hi)} Hints 0x${(lo & 0xff).toString(16)} Extensions 0x${
        (hi & 3).toString(16)
      }`;
    case "PWRE":
      return `PWRE 0x${hex64(lo, hi)} HW:${(lo & 0x80) ? 1 : 0} CState:${
        (lo >>> 12) & 0xf
      } Sub-CState:${(lo >>> 8) & 0xf}`;
    case "PWRX":
      return `PWRX 0x${hex64(lo, hi)} Last CState:${(lo >>> 4) & 0xf} Deepest CState:${
        lo & 0xf
      } Wake Reason 0x${((lo >>> 8) & 0xf).toString(16)}`;
    case "BBP":
      return `BBP SZ ${p.count ? "4" : "8"}-byte Type 0x${lo.toString(16)}`;
    case "BIP":
      return `BIP ID 0x${hex2(p.count)} Value 0x${hex64(lo, hi)}`;
    case "CFE":
      return `CFE IP:${p.ipFollowsBit} Type 0x${hex2(p.count)} Vector 0x${lo.toString(16)}`;
    case "EVD":
      return `EVD Type 0x${hex2(p.count)} Payload 0x${hex64(lo, hi)}`;
  }
}

/**
 * The packet's whole line of `perf report -D`: `.  OFFSET:  BYTES...  TEXT`,
 * the offset in 8 hex digits, the packet's bytes (its trailing PAD bytes
 * included, as perf shows them) padded to 16 columns. `bytes` are the bytes
 * the packet was decoded from.
 */
export function formatPtDumpLine(p: PtPacket, bytes: Uint8Array): string {
  if (!(p instanceof PtPacket)) invalid("packet", p, "a PtPacket");
  if (!(bytes instanceof Uint8Array)) invalid("bytes", bytes, "a Uint8Array");
  const n = p.length + p.padding;
  if (p.offset + n > bytes.length) {
    invalid("bytes", `${bytes.length} bytes`, `the bytes packet at ${p.offset} was decoded from`);
  }
  let s = ".  " + p.offset.toString(16).padStart(8, "0") + ": ";
  // perf prints a packet of more than 16 bytes whole (none is: PSB, the longest, is 16; a
  // "bad" run of bytes up to a PSB can be).
  for (let i = 0; i < n; i++) s += SPACED[bytes[p.offset + i]];
  if (n < 16) s += BLANK[n];
  return s + " " + formatPtPacket(p);
}
