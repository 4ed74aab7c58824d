/**
 * Unix sockets and fd passing: glibc's <sys/socket.h> and <sys/un.h>
 * (AF_UNIX, SOCK_*, SOL_SOCKET, SCM_RIGHTS, SO_PEERCRED, MSG_*, struct
 * msghdr / cmsghdr / ucred / sockaddr_un), <linux/un.h> (UNIX_PATH_MAX) and
 * the pidfd_open / pidfd_getfd syscall numbers (<asm/unistd_64.h>,
 * <asm-generic/unistd.h>: the same on x86_64 and arm64). x86_64 / arm64
 * (LP64) layouts.
 */
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;
/** The cmsg_type of a control message that carries file descriptors. */
export const SCM_RIGHTS = 1;

export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;

/** struct msghdr (LP64). */
export const SIZEOF_MSGHDR = 56;
export const MSGHDR_OFF = {
  msg_name: 0,
  msg_namelen: 8,
  msg_iov: 16,
  msg_iovlen: 24,
  msg_control: 32,
  msg_controllen: 40,
  msg_flags: 48,
} as const;

/** struct cmsghdr (LP64): the data follows at CMSG_DATA = sizeof(struct cmsghdr). */
export const SIZEOF_CMSGHDR = 16;
export const CMSGHDR_OFF = { cmsg_len: 0, cmsg_level: 8, cmsg_type: 12 } as const;
/** CMSG_ALIGN: control messages are padded to a multiple of sizeof(size_t). */
export const CMSG_ALIGN_TO = 8;

/** struct ucred (SO_PEERCRED's answer). */
export const SIZEOF_UCRED = 12;
export const UCRED_OFF = { pid: 0, uid: 4, gid: 8 } as const;

/** struct sockaddr_un. */
export const SIZEOF_SOCKADDR_UN = 110;
export const SOCKADDR_UN_OFF = { sun_family: 0, sun_path: 2 } as const;
/** The size of sun_path: a path needs one byte fewer (its NUL). */
export const UNIX_PATH_MAX = 108;

/** pidfd_open(2) and pidfd_getfd(2) (Linux 5.3 and 5.6): one number on both architectures. */
export const __NR_pidfd_open = 434;
export const __NR_pidfd_getfd = 438;
