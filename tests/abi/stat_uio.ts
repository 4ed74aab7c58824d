/**
 * ffi/stat.ts (statx) against <linux/stat.h>, <linux/fcntl.h> and glibc's
 * <sys/stat.h>; ffi/uio.ts (struct iovec) against <linux/uio.h>.
 */
import { type ModuleSpec, offsets, same } from "./spec.ts";

export const STAT: ModuleSpec = {
  file: "stat.ts",
  units: [
    {
      header: "<linux/stat.h> <linux/fcntl.h>",
      source: "uapi",
      includes: ["<linux/stat.h>", "<linux/fcntl.h>"],
      checks: [
        ...same("AT_FDCWD", "AT_EMPTY_PATH", "STATX_TYPE", "STATX_MODE", "STATX_INO", "STATX_SIZE"),
        ["SIZEOF_STATX", "sizeof(struct statx)"],
        ...offsets("STATX_OFF", "struct statx", [
          "stx_mask",
          "stx_mode",
          "stx_ino",
          "stx_size",
          "stx_rdev_major",
          "stx_rdev_minor",
          "stx_dev_major",
          "stx_dev_minor",
        ]),
      ],
    },
    {
      // <linux/stat.h> leaves the S_IF* file types to glibc when __GLIBC__ is defined.
      header: "glibc <sys/stat.h>",
      source: "libc",
      includes: ["<sys/stat.h>"],
      checks: same("S_IFMT", "S_IFREG", "S_IFDIR", "S_IFCHR"),
    },
  ],
};

export const UIO: ModuleSpec = {
  file: "uio.ts",
  units: [{
    header: "<linux/uio.h>",
    source: "uapi",
    includes: ["<linux/uio.h>"],
    checks: [
      ["SIZEOF_IOVEC", "sizeof(struct iovec)"],
      ...offsets("IOVEC_OFF", "struct iovec", ["iov_base", "iov_len"]),
    ],
  }],
};
