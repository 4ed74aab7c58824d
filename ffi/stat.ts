/**
 * statx(2) from <linux/stat.h> and <linux/fcntl.h>: the file type, inode and
 * device of a path or an fd. struct statx has one layout on every
 * architecture, unlike struct stat.
 */
export const AT_FDCWD = -100;
export const AT_EMPTY_PATH = 0x1000;

export const STATX_TYPE = 0x0001;
export const STATX_MODE = 0x0002;
export const STATX_INO = 0x0100;
export const STATX_SIZE = 0x0200;

export const SIZEOF_STATX = 256;
export const STATX_OFF = {
  stx_mask: 0,
  stx_mode: 28,
  stx_ino: 32,
  stx_size: 40,
  stx_rdev_major: 128,
  stx_rdev_minor: 132,
  stx_dev_major: 136,
  stx_dev_minor: 140,
} as const;

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
