/**
 * Intel Processor Trace at the packet level: {@linkcode decodePtPackets} (a
 * reused packet per callback), {@linkcode ptPackets} (owning copies),
 * {@linkcode PtPacketDecoder} (one packet at a time) and perf's text of a
 * packet ({@linkcode formatPtPacket}, {@linkcode formatPtDumpLine}).
 */
export {
  isIpKind,
  type PtBadReason,
  type PtIpState,
  PtPacket,
  type PtPacketKind,
} from "./packet.ts";
export {
  decodePtPackets,
  type PtDecodeOptions,
  PtPacketDecoder,
  ptPackets,
  type PtResync,
} from "./packets.ts";
export { formatPtDumpLine, formatPtPacket } from "./format.ts";
