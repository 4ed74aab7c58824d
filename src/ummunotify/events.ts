/**
 * The ummunotify event union, and the 32-byte `struct ummunotify_event` that
 * both backends produce (the device in read(2), the userfaultfd backend from
 * its shared queue), so the two are byte-identical.
 */
import * as n from "../../ffi/ummunotify.ts";

/**
 * A registered range was invalidated: its memory was unmapped, freed,
 * remapped or (device backend) had its translation changed.
 */
export interface InvalidateEvent {
  /** The union's tag. */
  kind: "invalidate";
  /** The cookie the range was registered with. */
  cookie: bigint;
  /**
   * With the HINT flag: exactly the invalidated part of the registration
   * (the invalidation clipped to it). Absent when more than one invalidation
   * hit the registration before this report was read: then the whole
   * registered range must be considered changed.
   */
  hint?: { start: bigint; end: bigint };
}

/** The read emptied the queue; `generation` is the counter at that moment. */
export interface LastEvent {
  /** The union's tag. */
  kind: "last";
  /** The counter when the queue was emptied: compare it with changed() later. */
  generation: bigint;
}

/** One event read from a notifier. */
export type UmmunotifyEvent = InvalidateEvent | LastEvent;

const O = n.UMMUNOTIFY_EVENT_OFF;
const TWO32 = 2 ** 32;

/** Writes one event struct; addresses are numbers (< 2^53), the cookie or counter a bigint. */
export function encodeEvent(
  dv: DataView,
  off: number,
  type: number,
  flags: number,
  hintStart: number,
  hintEnd: number,
  cookieOrCounter: bigint,
): void {
  dv.setUint32(off + O.type, type, true);
  dv.setUint32(off + O.flags, flags, true);
  dv.setUint32(off + O.hint_start, hintStart >>> 0, true);
  dv.setUint32(off + O.hint_start + 4, Math.floor(hintStart / TWO32), true);
  dv.setUint32(off + O.hint_end, hintEnd >>> 0, true);
  dv.setUint32(off + O.hint_end + 4, Math.floor(hintEnd / TWO32), true);
  dv.setBigUint64(off + O.user_cookie_counter, BigInt.asUintN(64, cookieOrCounter), true);
}

/** Decodes `bytes` (a multiple of 32) of event structs. */
export function decodeEvents(buf: Uint8Array, bytes: number): UmmunotifyEvent[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, bytes);
  const out: UmmunotifyEvent[] = [];
  for (let off = 0; off + n.SIZEOF_UMMUNOTIFY_EVENT <= bytes; off += n.SIZEOF_UMMUNOTIFY_EVENT) {
    out.push(decodeEvent(dv, off));
  }
  return out;
}

/** Decodes the event struct at `off`. */
export function decodeEvent(dv: DataView, off: number): UmmunotifyEvent {
  const type = dv.getUint32(off + O.type, true);
  const value = dv.getBigUint64(off + O.user_cookie_counter, true);
  if (type === n.UMMUNOTIFY_EVENT_TYPE_LAST) return { kind: "last", generation: value };
  if (type !== n.UMMUNOTIFY_EVENT_TYPE_INVAL) {
    throw new RangeError(`unknown ummunotify event type ${type}`);
  }
  const ev: InvalidateEvent = { kind: "invalidate", cookie: value };
  if (dv.getUint32(off + O.flags, true) & n.UMMUNOTIFY_EVENT_FLAG_HINT) {
    ev.hint = {
      start: dv.getBigUint64(off + O.hint_start, true),
      end: dv.getBigUint64(off + O.hint_end, true),
    };
  }
  return ev;
}

/** Writes a `struct ummunotify_register_ioctl`. */
export function encodeRegister(
  dv: DataView,
  start: bigint,
  end: bigint,
  cookie: bigint,
  flags = 0,
): void {
  const R = n.UMMUNOTIFY_REGISTER_IOCTL_OFF;
  dv.setBigUint64(R.start, BigInt.asUintN(64, start), true);
  dv.setBigUint64(R.end, BigInt.asUintN(64, end), true);
  dv.setBigUint64(R.user_cookie, BigInt.asUintN(64, cookie), true);
  dv.setUint32(R.flags, flags, true);
  dv.setUint32(R.reserved, 0, true);
}
