/**
 * This process's mappings, from /proc/self/smaps: what memory is at an
 * address, its real page size (hugetlb), which memfd backs it, and whether a
 * userfaultfd registration covers it (VmFlags um/uw/ui). Used to check
 * arguments before any Worker or kernel call relies on them. Reading smaps
 * costs about a millisecond: never on a hot path.
 */
import { readWholeFile } from "./libc.ts";

/** One virtual memory area. */
export interface Vma {
  start: number;
  end: number;
  /** "rw-p", "rw-s", ... */
  perms: string;
  /** Offset in the file (or memfd) mapped at `start`. */
  offset: number;
  /** "major:minor" of the backing file's device ("00:00" for anonymous memory). */
  dev: string;
  inode: number;
  /** The path or pseudo-name ("/memfd:ummu-memfd (deleted)", "[heap]"), or "". */
  path: string;
  /** KernelPageSize: 4096, or the huge page size of hugetlb memory. */
  pageSize: number;
  /** VmFlags: "um" (userfaultfd missing), "uw" (write-protect), "ui" (minor), "ht" (hugetlb)... */
  flags: Set<string>;
}

const decoder = new TextDecoder();
const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/;

/** The VMAs overlapping [start, end), in address order. */
export function vmasOverlapping(start: number, end: number): Vma[] {
  const out: Vma[] = [];
  let cur: Vma | null = null;
  for (const line of decoder.decode(readWholeFile("/proc/self/smaps")).split("\n")) {
    const h = HEADER.exec(line);
    if (h) {
      const s = parseInt(h[1], 16), e = parseInt(h[2], 16);
      cur = s < end && e > start
        ? {
          start: s,
          end: e,
          perms: h[3],
          offset: parseInt(h[4], 16),
          dev: h[5],
          inode: Number(h[6]),
          path: h[7],
          pageSize: 4096,
          flags: new Set(),
        }
        : null;
      if (cur) out.push(cur);
      continue;
    }
    if (cur === null) continue;
    if (line.startsWith("KernelPageSize:")) {
      cur.pageSize = parseInt(line.slice(15), 10) * 1024;
    } else if (line.startsWith("VmFlags:")) {
      cur.flags = new Set(line.slice(8).trim().split(/\s+/));
    }
  }
  return out;
}

/** The VMA containing `address`, or null. */
export function vmaAt(address: number): Vma | null {
  return vmasOverlapping(address, address + 1)[0] ?? null;
}

/**
 * The VMAs covering [start, end) without a hole, or the first address that
 * is not mapped.
 */
export function coverage(start: number, end: number): { vmas: Vma[]; hole: number | null } {
  const vmas = vmasOverlapping(start, end);
  let at = start;
  for (const v of vmas) {
    if (v.start > at) return { vmas, hole: at };
    at = v.end;
  }
  return { vmas, hole: at < end ? at : null };
}
