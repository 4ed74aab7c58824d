/**
 * ffi/socket.ts against glibc's <sys/socket.h> and <sys/un.h>, <linux/un.h>,
 * and the syscall tables (pidfd_open, pidfd_getfd).
 */
import { type ModuleSpec, offsets, same, syscallUnits } from "./spec.ts";

export const SOCKET: ModuleSpec = {
  file: "socket.ts",
  units: [
    {
      header: "glibc <sys/socket.h> <sys/un.h>",
      source: "libc",
      defines: ["_GNU_SOURCE"],
      includes: ["<stddef.h>", "<sys/socket.h>", "<sys/un.h>"],
      checks: [
        ...same(
          "AF_UNIX",
          "SOCK_STREAM",
          "SOCK_SEQPACKET",
          "SOCK_NONBLOCK",
          "SOCK_CLOEXEC",
          "SOL_SOCKET",
          "SO_PEERCRED",
          "SCM_RIGHTS",
          "MSG_CTRUNC",
          "MSG_TRUNC",
          "MSG_DONTWAIT",
          "MSG_NOSIGNAL",
          "MSG_CMSG_CLOEXEC",
        ).map(([t, c]) => [t, c, { guard: "1" }] as const),
        ["SIZEOF_MSGHDR", "sizeof(struct msghdr)"],
        ...offsets("MSGHDR_OFF", "struct msghdr", [
          "msg_name",
          "msg_namelen",
          "msg_iov",
          "msg_iovlen",
          "msg_control",
          "msg_controllen",
          "msg_flags",
        ]),
        ["SIZEOF_CMSGHDR", "sizeof(struct cmsghdr)"],
        ...offsets("CMSGHDR_OFF", "struct cmsghdr", ["cmsg_len", "cmsg_level", "cmsg_type"]),
        ["CMSG_ALIGN_TO", "CMSG_ALIGN(1)"],
        ["SIZEOF_UCRED", "sizeof(struct ucred)"],
        ...offsets("UCRED_OFF", "struct ucred", ["pid", "uid", "gid"]),
        ["SIZEOF_SOCKADDR_UN", "sizeof(struct sockaddr_un)"],
        ...offsets("SOCKADDR_UN_OFF", "struct sockaddr_un", ["sun_family", "sun_path"]),
      ],
    },
    {
      header: "<linux/un.h>",
      source: "uapi",
      includes: ["<linux/un.h>"],
      checks: same("UNIX_PATH_MAX"),
    },
    ...syscallUnits(
      [["__NR_pidfd_open", "__NR_pidfd_open"], ["__NR_pidfd_getfd", "__NR_pidfd_getfd"]],
      [["__NR_pidfd_open", "__NR_pidfd_open"], ["__NR_pidfd_getfd", "__NR_pidfd_getfd"]],
    ),
  ],
};
