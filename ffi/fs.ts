/**
 * PAGEMAP_SCAN from <linux/fs.h> (Linux 6.7+): scan /proc/self/pagemap for page
 * categories, and optionally write-protect what was found (the WP_ASYNC dirty
 * tracking reset).
 */
import { _IOWR } from "./ioctl.ts";

export const SIZEOF_PM_SCAN_ARG = 96; // 12 x u64
export const SIZEOF_PAGE_REGION = 24; // { u64 start, end, categories }
export const PAGEMAP_SCAN = _IOWR(0x66, /* 'f' */ 16, SIZEOF_PM_SCAN_ARG);

export const PM_SCAN_ARG_OFF = {
  size: 0,
  flags: 8,
  start: 16,
  end: 24,
  walk_end: 32,
  vec: 40,
  vec_len: 48,
  max_pages: 56,
  category_inverted: 64,
  category_mask: 72,
  category_anyof_mask: 80,
  return_mask: 88,
} as const;

export const PM_SCAN_WP_MATCHING = 1 << 0;
export const PM_SCAN_CHECK_WPASYNC = 1 << 1;

export const PAGE_IS_WPALLOWED = 1 << 0;
export const PAGE_IS_WRITTEN = 1 << 1;
export const PAGE_IS_FILE = 1 << 2;
export const PAGE_IS_PRESENT = 1 << 3;
export const PAGE_IS_SWAPPED = 1 << 4;
export const PAGE_IS_PFNZERO = 1 << 5;
export const PAGE_IS_HUGE = 1 << 6;

/**
 * __NR_mount: x86_64 <asm/unistd_64.h>, arm64 <asm-generic/unistd.h>. A tracepoint's
 * id comes from tracefs, which a fresh machine does not mount: src/perf/tracepoint_id.ts
 * mounts it (as root) through syscall(2), libc's mount() not being in the symbol table.
 */
export const __NR_mount_x86_64 = 165;
export const __NR_mount_arm64 = 40;
