/** The userfaultfd event union, decoded from struct uffd_msg. */
import * as u from "../../ffi/userfaultfd.ts";

/** A page fault: MISSING (no flag), write-protect (`wp`) or minor (`minor`). */
export interface PageFaultEvent {
  /** Discriminant. */
  kind: "pagefault";
  /** The faulting address: page-aligned unless the EXACT_ADDRESS feature is on. */
  address: bigint;
  /** The fault was a write. */
  write: boolean;
  /** A write to a write-protected page. */
  wp: boolean;
  /** A minor fault: the page is in the page cache but not mapped here. */
  minor: boolean;
  /** The faulting thread's id, with the THREAD_ID feature (else 0). */
  threadId: number;
}
/** The process forked; `ufd` is a new userfaultfd for the child's copy of the ranges. */
export interface ForkEvent {
  /** Discriminant. */
  kind: "fork";
  /** The child's userfaultfd (an fd in this process; close it when done). */
  ufd: number;
}
/** mremap moved a registered range. */
export interface RemapEvent {
  /** Discriminant. */
  kind: "remap";
  /** The old start address. */
  from: bigint;
  /** The new start address. */
  to: bigint;
  /** The length moved, in bytes. */
  length: bigint;
}
/** madvise(DONTNEED or REMOVE) dropped pages of a registered range. */
export interface RemoveEvent {
  /** Discriminant. */
  kind: "remove";
  /** First address of the range. */
  start: bigint;
  /** End of the range (exclusive). */
  end: bigint;
}
/** munmap (or MAP_FIXED over, or mremap shrinking) unmapped part of a registered range. */
export interface UnmapEvent {
  /** Discriminant. */
  kind: "unmap";
  /** First address of the range. */
  start: bigint;
  /** End of the range (exclusive). */
  end: bigint;
}

/** One message read from a userfaultfd. */
export type UffdEvent = PageFaultEvent | ForkEvent | RemapEvent | RemoveEvent | UnmapEvent;

const O = u.UFFD_MSG_OFF;

/** Decodes the 32-byte uffd_msg at `offset` of `view`. */
export function decodeEvent(view: DataView, offset: number): UffdEvent {
  const type = view.getUint8(offset + O.event);
  switch (type) {
    case u.UFFD_EVENT_PAGEFAULT: {
      const flags = Number(view.getBigUint64(offset + O.pagefault_flags, true));
      return {
        kind: "pagefault",
        address: view.getBigUint64(offset + O.pagefault_address, true),
        write: (flags & u.UFFD_PAGEFAULT_FLAG_WRITE) !== 0,
        wp: (flags & u.UFFD_PAGEFAULT_FLAG_WP) !== 0,
        minor: (flags & u.UFFD_PAGEFAULT_FLAG_MINOR) !== 0,
        threadId: view.getUint32(offset + O.pagefault_ptid, true),
      };
    }
    case u.UFFD_EVENT_FORK:
      return { kind: "fork", ufd: view.getUint32(offset + O.fork_ufd, true) };
    case u.UFFD_EVENT_REMAP:
      return {
        kind: "remap",
        from: view.getBigUint64(offset + O.remap_from, true),
        to: view.getBigUint64(offset + O.remap_to, true),
        length: view.getBigUint64(offset + O.remap_len, true),
      };
    case u.UFFD_EVENT_REMOVE:
      return {
        kind: "remove",
        start: view.getBigUint64(offset + O.remove_start, true),
        end: view.getBigUint64(offset + O.remove_end, true),
      };
    case u.UFFD_EVENT_UNMAP:
      return {
        kind: "unmap",
        start: view.getBigUint64(offset + O.remove_start, true),
        end: view.getBigUint64(offset + O.remove_end, true),
      };
    default:
      throw new RangeError(`unknown uffd_msg event 0x${type.toString(16)}`);
  }
}
