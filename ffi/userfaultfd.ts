/**
 * ABI of <linux/userfaultfd.h> (Linux 6.12 UAPI; the 6.18 host has the same).
 * Names are the header's. Struct layouts are byte offsets; sizes are checked
 * against the header by tests/abi_*.test.ts.
 */
import { _IO, _IOR, _IOWR } from "./ioctl.ts";

export const UFFD_API = 0xaa;
export const UFFDIO = 0xaa;
export const USERFAULTFD_IOC = 0xaa;
/** `/dev/userfaultfd`: `ioctl(devfd, USERFAULTFD_IOC_NEW, flags)` returns a new uffd. */
export const USERFAULTFD_IOC_NEW = _IO(USERFAULTFD_IOC, 0x00);

/** Flag of userfaultfd(2) and USERFAULTFD_IOC_NEW (besides O_CLOEXEC, O_NONBLOCK of <fcntl.h>, in mman.ts). */
export const UFFD_USER_MODE_ONLY = 1;

// ioctl numbers (_UFFDIO_*): bit positions in uffdio_api.ioctls / uffdio_register.ioctls
export const _UFFDIO_REGISTER = 0x00;
export const _UFFDIO_UNREGISTER = 0x01;
export const _UFFDIO_WAKE = 0x02;
export const _UFFDIO_COPY = 0x03;
export const _UFFDIO_ZEROPAGE = 0x04;
export const _UFFDIO_MOVE = 0x05;
export const _UFFDIO_WRITEPROTECT = 0x06;
export const _UFFDIO_CONTINUE = 0x07;
export const _UFFDIO_POISON = 0x08;
export const _UFFDIO_API = 0x3f;

// struct sizes
export const SIZEOF_UFFDIO_API = 24; // { u64 api, features, ioctls }
export const SIZEOF_UFFDIO_RANGE = 16; // { u64 start, len }
export const SIZEOF_UFFDIO_REGISTER = 32; // { range, u64 mode, ioctls }
export const SIZEOF_UFFDIO_COPY = 40; // { u64 dst, src, len, mode; s64 copy }
export const SIZEOF_UFFDIO_ZEROPAGE = 32; // { range, u64 mode; s64 zeropage }
export const SIZEOF_UFFDIO_MOVE = 40; // { u64 dst, src, len, mode; s64 move }
export const SIZEOF_UFFDIO_WRITEPROTECT = 24; // { range, u64 mode }
export const SIZEOF_UFFDIO_CONTINUE = 32; // { range, u64 mode; s64 mapped }
export const SIZEOF_UFFDIO_POISON = 32; // { range, u64 mode; s64 updated }
export const SIZEOF_UFFD_MSG = 32;

export const UFFDIO_API = _IOWR(UFFDIO, _UFFDIO_API, SIZEOF_UFFDIO_API);
export const UFFDIO_REGISTER = _IOWR(UFFDIO, _UFFDIO_REGISTER, SIZEOF_UFFDIO_REGISTER);
export const UFFDIO_UNREGISTER = _IOR(UFFDIO, _UFFDIO_UNREGISTER, SIZEOF_UFFDIO_RANGE);
export const UFFDIO_WAKE = _IOR(UFFDIO, _UFFDIO_WAKE, SIZEOF_UFFDIO_RANGE);
export const UFFDIO_COPY = _IOWR(UFFDIO, _UFFDIO_COPY, SIZEOF_UFFDIO_COPY);
export const UFFDIO_ZEROPAGE = _IOWR(UFFDIO, _UFFDIO_ZEROPAGE, SIZEOF_UFFDIO_ZEROPAGE);
export const UFFDIO_MOVE = _IOWR(UFFDIO, _UFFDIO_MOVE, SIZEOF_UFFDIO_MOVE);
export const UFFDIO_WRITEPROTECT = _IOWR(UFFDIO, _UFFDIO_WRITEPROTECT, SIZEOF_UFFDIO_WRITEPROTECT);
export const UFFDIO_CONTINUE = _IOWR(UFFDIO, _UFFDIO_CONTINUE, SIZEOF_UFFDIO_CONTINUE);
export const UFFDIO_POISON = _IOWR(UFFDIO, _UFFDIO_POISON, SIZEOF_UFFDIO_POISON);

// struct uffd_msg: u8 event at 0, union at 8
export const UFFD_EVENT_PAGEFAULT = 0x12;
export const UFFD_EVENT_FORK = 0x13;
export const UFFD_EVENT_REMAP = 0x14;
export const UFFD_EVENT_REMOVE = 0x15;
export const UFFD_EVENT_UNMAP = 0x16;
export const UFFD_MSG_OFF = {
  event: 0,
  pagefault_flags: 8,
  pagefault_address: 16,
  pagefault_ptid: 24,
  fork_ufd: 8,
  remap_from: 8,
  remap_to: 16,
  remap_len: 24,
  remove_start: 8,
  remove_end: 16,
} as const;

export const UFFD_PAGEFAULT_FLAG_WRITE = 1 << 0;
export const UFFD_PAGEFAULT_FLAG_WP = 1 << 1;
export const UFFD_PAGEFAULT_FLAG_MINOR = 1 << 2;

// uffdio_api.features
export const UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0;
export const UFFD_FEATURE_EVENT_FORK = 1 << 1;
export const UFFD_FEATURE_EVENT_REMAP = 1 << 2;
export const UFFD_FEATURE_EVENT_REMOVE = 1 << 3;
export const UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4;
export const UFFD_FEATURE_MISSING_SHMEM = 1 << 5;
export const UFFD_FEATURE_EVENT_UNMAP = 1 << 6;
export const UFFD_FEATURE_SIGBUS = 1 << 7;
export const UFFD_FEATURE_THREAD_ID = 1 << 8;
export const UFFD_FEATURE_MINOR_HUGETLBFS = 1 << 9;
export const UFFD_FEATURE_MINOR_SHMEM = 1 << 10;
export const UFFD_FEATURE_EXACT_ADDRESS = 1 << 11;
export const UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12;
export const UFFD_FEATURE_WP_UNPOPULATED = 1 << 13;
export const UFFD_FEATURE_POISON = 1 << 14;
export const UFFD_FEATURE_WP_ASYNC = 1 << 15;
export const UFFD_FEATURE_MOVE = 1 << 16;

// uffdio_register.mode
export const UFFDIO_REGISTER_MODE_MISSING = 1 << 0;
export const UFFDIO_REGISTER_MODE_WP = 1 << 1;
export const UFFDIO_REGISTER_MODE_MINOR = 1 << 2;

// per-ioctl mode bits
export const UFFDIO_COPY_MODE_DONTWAKE = 1 << 0;
export const UFFDIO_COPY_MODE_WP = 1 << 1;
export const UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1 << 0;
export const UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0;
export const UFFDIO_WRITEPROTECT_MODE_DONTWAKE = 1 << 1;
export const UFFDIO_CONTINUE_MODE_DONTWAKE = 1 << 0;
export const UFFDIO_CONTINUE_MODE_WP = 1 << 1;
export const UFFDIO_POISON_MODE_DONTWAKE = 1 << 0;
export const UFFDIO_MOVE_MODE_DONTWAKE = 1 << 0;
export const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES = 1 << 1;

/** x86_64 and arm64 syscall numbers of userfaultfd(2) (<asm/unistd_64.h>). */
export const NR_userfaultfd: Record<string, number> = { x64: 323, arm64: 282 };
