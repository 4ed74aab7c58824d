/**
 * Intel Processor Trace at the packet level: {@linkcode decodePtPackets} (a
 * reused packet per callback), {@linkcode ptPackets} (owning copies),
 * {@linkcode PtPacketDecoder} (one packet at a time) and perf's text of a
 * packet ({@linkcode formatPtPacket}, {@linkcode formatPtDumpLine}).
 */
export {
  decodePtPackets,
  isIpKind,
  type PtBadReason,
  type PtDecodeOptions,
  type PtIpState,
  PtPacket,
  PtPacketDecoder,
  type PtPacketKind,
  ptPackets,
  type PtResync,
} from "./packets.ts";
export { formatPtDumpLine, formatPtPacket } from "./format.ts";
