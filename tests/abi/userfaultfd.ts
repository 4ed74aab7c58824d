/**
 * ffi/userfaultfd.ts against <linux/userfaultfd.h> and the syscall tables.
 */
import { type Check, type ModuleSpec, offsets, same, syscallUnits, w } from "./spec.ts";

/** The argument structs' field offsets (UFFDIO_*_OFF). */
const UFFDIO_OFFSETS: Check[] = [
  ...offsets("UFFDIO_API_OFF", "struct uffdio_api", ["api", "features", "ioctls"]),
  ...offsets("UFFDIO_RANGE_OFF", "struct uffdio_range", ["start", "len"]),
  ...offsets("UFFDIO_REGISTER_OFF", "struct uffdio_register", ["range", "mode", "ioctls"]),
  ...offsets("UFFDIO_COPY_OFF", "struct uffdio_copy", ["dst", "src", "len", "mode", "copy"]),
  ...offsets("UFFDIO_ZEROPAGE_OFF", "struct uffdio_zeropage", ["range", "mode", "zeropage"]),
  ...offsets("UFFDIO_MOVE_OFF", "struct uffdio_move", ["dst", "src", "len", "mode", "move"], {
    guard: "defined(UFFDIO_MOVE)",
  }),
  ...offsets("UFFDIO_WRITEPROTECT_OFF", "struct uffdio_writeprotect", ["range", "mode"]),
  ...offsets("UFFDIO_CONTINUE_OFF", "struct uffdio_continue", ["range", "mode", "mapped"]),
  ...offsets("UFFDIO_POISON_OFF", "struct uffdio_poison", ["range", "mode", "updated"], {
    guard: "defined(UFFDIO_POISON)",
  }),
];

export const USERFAULTFD: ModuleSpec = {
  file: "userfaultfd.ts",
  units: [
    {
      header: "<linux/userfaultfd.h>",
      source: "uapi",
      // The header uses _IOWR etc. without including <linux/ioctl.h> (user space has <sys/ioctl.h>).
      includes: ["<linux/ioctl.h>", "<linux/userfaultfd.h>"],
      checks: [
        ...same(...w`
          UFFD_API UFFDIO USERFAULTFD_IOC USERFAULTFD_IOC_NEW UFFD_USER_MODE_ONLY
          _UFFDIO_REGISTER _UFFDIO_UNREGISTER _UFFDIO_WAKE _UFFDIO_COPY _UFFDIO_ZEROPAGE
          _UFFDIO_MOVE _UFFDIO_WRITEPROTECT _UFFDIO_CONTINUE _UFFDIO_POISON _UFFDIO_API
          UFFDIO_API UFFDIO_REGISTER UFFDIO_UNREGISTER UFFDIO_WAKE UFFDIO_COPY UFFDIO_ZEROPAGE
          UFFDIO_MOVE UFFDIO_WRITEPROTECT UFFDIO_CONTINUE UFFDIO_POISON UFFD_EVENT_PAGEFAULT
          UFFD_EVENT_FORK UFFD_EVENT_REMAP UFFD_EVENT_REMOVE UFFD_EVENT_UNMAP
          UFFD_PAGEFAULT_FLAG_WRITE UFFD_PAGEFAULT_FLAG_WP UFFD_PAGEFAULT_FLAG_MINOR
          UFFD_FEATURE_PAGEFAULT_FLAG_WP UFFD_FEATURE_EVENT_FORK UFFD_FEATURE_EVENT_REMAP
          UFFD_FEATURE_EVENT_REMOVE UFFD_FEATURE_MISSING_HUGETLBFS UFFD_FEATURE_MISSING_SHMEM
          UFFD_FEATURE_EVENT_UNMAP UFFD_FEATURE_SIGBUS UFFD_FEATURE_THREAD_ID
          UFFD_FEATURE_MINOR_HUGETLBFS UFFD_FEATURE_MINOR_SHMEM UFFD_FEATURE_EXACT_ADDRESS
          UFFD_FEATURE_WP_HUGETLBFS_SHMEM UFFD_FEATURE_WP_UNPOPULATED UFFD_FEATURE_POISON
          UFFD_FEATURE_WP_ASYNC UFFD_FEATURE_MOVE UFFDIO_REGISTER_MODE_MISSING
          UFFDIO_REGISTER_MODE_WP UFFDIO_REGISTER_MODE_MINOR UFFDIO_COPY_MODE_DONTWAKE
          UFFDIO_COPY_MODE_WP UFFDIO_ZEROPAGE_MODE_DONTWAKE UFFDIO_WRITEPROTECT_MODE_WP
          UFFDIO_WRITEPROTECT_MODE_DONTWAKE UFFDIO_CONTINUE_MODE_DONTWAKE
          UFFDIO_CONTINUE_MODE_WP UFFDIO_POISON_MODE_DONTWAKE UFFDIO_MOVE_MODE_DONTWAKE
          UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
        `),
        ["SIZEOF_UFFDIO_API", "sizeof(struct uffdio_api)"],
        ["SIZEOF_UFFDIO_RANGE", "sizeof(struct uffdio_range)"],
        ["SIZEOF_UFFDIO_REGISTER", "sizeof(struct uffdio_register)"],
        ["SIZEOF_UFFDIO_COPY", "sizeof(struct uffdio_copy)"],
        ["SIZEOF_UFFDIO_ZEROPAGE", "sizeof(struct uffdio_zeropage)"],
        ["SIZEOF_UFFDIO_MOVE", "sizeof(struct uffdio_move)", { guard: "defined(UFFDIO_MOVE)" }],
        ["SIZEOF_UFFDIO_WRITEPROTECT", "sizeof(struct uffdio_writeprotect)"],
        ["SIZEOF_UFFDIO_CONTINUE", "sizeof(struct uffdio_continue)"],
        ["SIZEOF_UFFDIO_POISON", "sizeof(struct uffdio_poison)", {
          guard: "defined(UFFDIO_POISON)",
        }],
        ["SIZEOF_UFFD_MSG", "sizeof(struct uffd_msg)"],
        ...offsets("UFFD_MSG_OFF", "struct uffd_msg", {
          event: "event",
          pagefault_flags: "arg.pagefault.flags",
          pagefault_address: "arg.pagefault.address",
          pagefault_ptid: "arg.pagefault.feat.ptid",
          fork_ufd: "arg.fork.ufd",
          remap_from: "arg.remap.from",
          remap_to: "arg.remap.to",
          remap_len: "arg.remap.len",
          remove_start: "arg.remove.start",
          remove_end: "arg.remove.end",
        }),
        ...UFFDIO_OFFSETS,
      ],
    },
    ...syscallUnits(
      [["NR_userfaultfd.x64", "__NR_userfaultfd"], ["__NR_userfaultfd", "__NR_userfaultfd"]],
      [["NR_userfaultfd.arm64", "__NR_userfaultfd"]],
    ),
  ],
};
