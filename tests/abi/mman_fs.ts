/**
 * ffi/mman.ts against glibc's and the kernel's <sys/mman.h>, <fcntl.h>,
 * <poll.h>, <sys/eventfd.h> and <unistd.h>; ffi/fs.ts against <linux/fs.h>
 * (PAGEMAP_SCAN).
 */
import { type Check, type ModuleSpec, offsets, same, syscallUnits, w } from "./spec.ts";

const MADV = w`
  MADV_NORMAL MADV_RANDOM MADV_SEQUENTIAL MADV_WILLNEED MADV_DONTNEED MADV_FREE MADV_REMOVE
  MADV_DONTFORK MADV_DOFORK MADV_MERGEABLE MADV_UNMERGEABLE MADV_HUGEPAGE MADV_NOHUGEPAGE
  MADV_DONTDUMP MADV_DODUMP MADV_WIPEONFORK MADV_KEEPONFORK MADV_COLD MADV_PAGEOUT
  MADV_POPULATE_READ MADV_POPULATE_WRITE MADV_DONTNEED_LOCKED MADV_COLLAPSE MADV_HWPOISON
  MADV_SOFT_OFFLINE
`;
const MMAN_COMMON = [
  ...w`
    PROT_NONE PROT_READ PROT_WRITE PROT_EXEC MAP_SHARED MAP_PRIVATE MAP_SHARED_VALIDATE MAP_FIXED
    MAP_ANONYMOUS MAP_NORESERVE MAP_POPULATE MAP_LOCKED MAP_GROWSDOWN MAP_STACK MAP_HUGETLB
    MAP_FIXED_NOREPLACE MAP_HUGE_SHIFT MREMAP_MAYMOVE MREMAP_FIXED MREMAP_DONTUNMAP
  `,
  ...MADV,
  ...w`
    MFD_CLOEXEC MFD_ALLOW_SEALING MFD_HUGETLB MFD_NOEXEC_SEAL MFD_EXEC O_RDONLY O_WRONLY O_RDWR
    O_CREAT O_EXCL O_TRUNC O_APPEND O_NONBLOCK O_DIRECTORY O_CLOEXEC POLLIN POLLPRI POLLOUT
    POLLERR POLLHUP POLLNVAL
  `,
];
const POLLFD: Check[] = [
  ["SIZEOF_POLLFD", "sizeof(struct pollfd)"],
  ...offsets("POLLFD_OFF", "struct pollfd", ["fd", "events", "revents"]),
];

export const MMAN: ModuleSpec = {
  file: "mman.ts",
  units: [
    {
      header: "glibc <sys/mman.h> <fcntl.h> <poll.h> <sys/eventfd.h> <unistd.h>",
      source: "libc",
      defines: ["_GNU_SOURCE"],
      includes: ["<sys/mman.h>", "<fcntl.h>", "<poll.h>", "<sys/eventfd.h>", "<unistd.h>"],
      checks: [
        ...same(...MMAN_COMMON),
        ...same("EFD_CLOEXEC", "EFD_NONBLOCK", "EFD_SEMAPHORE"),
        ...same("_SC_PAGESIZE", "_SC_PAGE_SIZE", "_SC_NPROCESSORS_ONLN"),
        ...POLLFD,
      ],
    },
    {
      header: "<linux/mman.h> <linux/memfd.h> <linux/fcntl.h> <linux/poll.h>",
      source: "uapi",
      includes: ["<linux/mman.h>", "<linux/memfd.h>", "<linux/fcntl.h>", "<linux/poll.h>"],
      // The kernel's own values of what mman.ts hands to glibc (checked above too).
      checks: [...same(...MMAN_COMMON), ...POLLFD],
    },
  ],
};

export const FS: ModuleSpec = {
  file: "fs.ts",
  units: [{
    header: "<linux/fs.h>",
    source: "uapi",
    includes: ["<linux/fs.h>"],
    checks: [
      ...same("PAGEMAP_SCAN", "PM_SCAN_WP_MATCHING", "PM_SCAN_CHECK_WPASYNC", "PM_SCAN_FLAGS"),
      ...same(...w`
        PAGE_IS_WPALLOWED PAGE_IS_WRITTEN PAGE_IS_FILE PAGE_IS_PRESENT PAGE_IS_SWAPPED
        PAGE_IS_PFNZERO PAGE_IS_HUGE PAGE_IS_SOFT_DIRTY PAGE_IS_GUARD
      `),
      ["SIZEOF_PM_SCAN_ARG", "sizeof(struct pm_scan_arg)", { guard: "defined(PAGEMAP_SCAN)" }],
      ["SIZEOF_PAGE_REGION", "sizeof(struct page_region)", { guard: "defined(PAGEMAP_SCAN)" }],
      ...offsets(
        "PM_SCAN_ARG_OFF",
        "struct pm_scan_arg",
        w`
        size flags start end walk_end vec vec_len max_pages category_inverted category_mask
        category_anyof_mask return_mask
      `,
        { guard: "defined(PAGEMAP_SCAN)" },
      ),
      ...offsets("PAGE_REGION_OFF", "struct page_region", ["start", "end", "categories"], {
        guard: "defined(PAGEMAP_SCAN)",
      }),
    ],
  }, ...syscallUnits([["__NR_mount_x86_64", "__NR_mount"]], [["__NR_mount_arm64", "__NR_mount"]])],
};
