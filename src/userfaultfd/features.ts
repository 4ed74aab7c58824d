/** Names of userfaultfd features and ioctls, and their bits (ffi/userfaultfd.ts). */
import * as u from "../../ffi/userfaultfd.ts";
import { invalid } from "../validate.ts";

/** A UFFD_FEATURE_* name without the prefix, e.g. "EVENT_UNMAP". */
export type FeatureName =
  | "PAGEFAULT_FLAG_WP"
  | "EVENT_FORK"
  | "EVENT_REMAP"
  | "EVENT_REMOVE"
  | "MISSING_HUGETLBFS"
  | "MISSING_SHMEM"
  | "EVENT_UNMAP"
  | "SIGBUS"
  | "THREAD_ID"
  | "MINOR_HUGETLBFS"
  | "MINOR_SHMEM"
  | "EXACT_ADDRESS"
  | "WP_HUGETLBFS_SHMEM"
  | "WP_UNPOPULATED"
  | "POISON"
  | "WP_ASYNC"
  | "MOVE";

export const FEATURE_BITS: Readonly<Record<FeatureName, number>> = {
  PAGEFAULT_FLAG_WP: u.UFFD_FEATURE_PAGEFAULT_FLAG_WP,
  EVENT_FORK: u.UFFD_FEATURE_EVENT_FORK,
  EVENT_REMAP: u.UFFD_FEATURE_EVENT_REMAP,
  EVENT_REMOVE: u.UFFD_FEATURE_EVENT_REMOVE,
  MISSING_HUGETLBFS: u.UFFD_FEATURE_MISSING_HUGETLBFS,
  MISSING_SHMEM: u.UFFD_FEATURE_MISSING_SHMEM,
  EVENT_UNMAP: u.UFFD_FEATURE_EVENT_UNMAP,
  SIGBUS: u.UFFD_FEATURE_SIGBUS,
  THREAD_ID: u.UFFD_FEATURE_THREAD_ID,
  MINOR_HUGETLBFS: u.UFFD_FEATURE_MINOR_HUGETLBFS,
  MINOR_SHMEM: u.UFFD_FEATURE_MINOR_SHMEM,
  EXACT_ADDRESS: u.UFFD_FEATURE_EXACT_ADDRESS,
  WP_HUGETLBFS_SHMEM: u.UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
  WP_UNPOPULATED: u.UFFD_FEATURE_WP_UNPOPULATED,
  POISON: u.UFFD_FEATURE_POISON,
  WP_ASYNC: u.UFFD_FEATURE_WP_ASYNC,
  MOVE: u.UFFD_FEATURE_MOVE,
};

/** An ioctl name without the UFFDIO_ prefix. */
export type IoctlName =
  | "REGISTER"
  | "UNREGISTER"
  | "WAKE"
  | "COPY"
  | "ZEROPAGE"
  | "MOVE"
  | "WRITEPROTECT"
  | "CONTINUE"
  | "POISON"
  | "API";

const IOCTL_BITS: Readonly<Record<IoctlName, number>> = {
  REGISTER: u._UFFDIO_REGISTER,
  UNREGISTER: u._UFFDIO_UNREGISTER,
  WAKE: u._UFFDIO_WAKE,
  COPY: u._UFFDIO_COPY,
  ZEROPAGE: u._UFFDIO_ZEROPAGE,
  MOVE: u._UFFDIO_MOVE,
  WRITEPROTECT: u._UFFDIO_WRITEPROTECT,
  CONTINUE: u._UFFDIO_CONTINUE,
  POISON: u._UFFDIO_POISON,
  API: u._UFFDIO_API,
};

/** Register modes by name. */
export type RegisterMode = "missing" | "wp" | "minor";
export const MODE_BITS: Readonly<Record<RegisterMode, number>> = {
  missing: u.UFFDIO_REGISTER_MODE_MISSING,
  wp: u.UFFDIO_REGISTER_MODE_WP,
  minor: u.UFFDIO_REGISTER_MODE_MINOR,
};

export function featureMask(names: Iterable<FeatureName>): number {
  let mask = 0;
  for (const n of names) {
    const bit = Object.hasOwn(FEATURE_BITS, n) ? FEATURE_BITS[n] : undefined;
    if (bit === undefined) {
      invalid("userfaultfd feature", n, `one of ${Object.keys(FEATURE_BITS).join(", ")}`);
    }
    mask |= bit;
  }
  return mask;
}

export function featureNames(mask: number): Set<FeatureName> {
  const out = new Set<FeatureName>();
  for (const [n, bit] of Object.entries(FEATURE_BITS)) if (mask & bit) out.add(n as FeatureName);
  return out;
}

export function ioctlNames(mask: bigint): Set<IoctlName> {
  const out = new Set<IoctlName>();
  for (const [n, bit] of Object.entries(IOCTL_BITS)) {
    if (mask & (1n << BigInt(bit))) out.add(n as IoctlName);
  }
  return out;
}
