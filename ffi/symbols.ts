/**
 * The one libc symbol table. Written in Deno's format; ffi/bun.ts translates it.
 *
 * Conventions that keep both runtimes on their fast FFI paths:
 * - addresses are `usize` (plain numbers in, never pointer objects);
 * - memory the call reads or writes is a `buffer` (a Uint8Array);
 * - byte counts returned by read/write are declared `i32`: the kernel never
 *   returns more than 2 GiB from one call and -1 stays -1, so no bigint is made.
 * Variadic functions (ioctl, open, syscall, mremap) are declared with fixed
 * integer parameters, which the x86_64 and arm64 calling conventions allow.
 */
export const libcSymbols = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  writev: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  pread: { name: "pread64", parameters: ["i32", "buffer", "usize", "i64"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** ioctl whose argument is an integer (USERFAULTFD_IOC_NEW takes its flags by value). */
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "usize"], result: "i32" },
  mmap: { parameters: ["usize", "usize", "i32", "i32", "i32", "i64"], result: "usize" },
  munmap: { parameters: ["usize", "usize"], result: "i32" },
  mprotect: { parameters: ["usize", "usize", "i32"], result: "i32" },
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
  /** msync(addr, len, 0): ENOMEM if any page of the range is unmapped, and nothing else. */
  msync: { parameters: ["usize", "usize", "i32"], result: "i32" },
  mremap: { parameters: ["usize", "usize", "usize", "i32", "usize"], result: "usize" },
  memcpy: { parameters: ["usize", "usize", "usize"], result: "usize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  sysconf: { parameters: ["i32"], result: "i64" },
  getpid: { parameters: [], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  sched_yield: { parameters: [], result: "i32" },
  __errno_location: { parameters: [], result: "usize" },
  /** statx(dirfd, path, flags, mask, buf): file type, inode and device of a path or (AT_EMPTY_PATH) an fd. */
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  /**
   * process_vm_readv/writev on this process: copies between our own
   * addresses and a buffer, returning EFAULT for an unmapped address instead
   * of faulting (a Worker reading memory another thread may unmap).
   */
  process_vm_readv: {
    parameters: ["i32", "buffer", "u64", "buffer", "u64", "u64"],
    result: "i32",
  },
  process_vm_writev: {
    parameters: ["i32", "buffer", "u64", "buffer", "u64", "u64"],
    result: "i32",
  },
  /** Unix sockets (src/unix_socket/): addresses and messages are buffers; sendmsg/recvmsg byte counts are i32, as read/write. */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** The msghdr points at its iovecs and control buffer by address (runtime.addressOf). */
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

export type LibcSymbols = typeof libcSymbols;
