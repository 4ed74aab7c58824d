/**
 * ffi/ioctl.ts (the _IOC encoding every ioctl number of ffi/ is built with)
 * against <linux/ioctl.h>; ffi/errno.ts (errno names) against <errno.h>.
 */
import { type ModuleSpec, same, w } from "./spec.ts";

/** Linux errno names, <asm-generic/errno-base.h> and <asm-generic/errno.h> (aliases left out). */
const LINUX_ERRNOS = w`
  EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT
  ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG
  ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP
  ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR EXFULL
  ENOANO EBADRQC EBADSLT EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE ENOLINK EADV
  ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD
  ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE
  EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT
  EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN
  ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY
  EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE
  ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL
  EHWPOISON
`;

export const IOCTL: ModuleSpec = {
  file: "ioctl.ts",
  units: [{
    header: "<linux/ioctl.h>",
    source: "uapi",
    includes: ["<linux/ioctl.h>"],
    checks: [
      ...same(...w`
        _IOC_NONE _IOC_WRITE _IOC_READ _IOC_NRBITS _IOC_TYPEBITS _IOC_SIZEBITS _IOC_DIRBITS
        _IOC_NRSHIFT _IOC_TYPESHIFT _IOC_SIZESHIFT _IOC_DIRSHIFT
      `),
      // Samples of the encoders (the macros take a type: char[N] has size N).
      ["_IO(0xaa,0)", "_IO(0xaa, 0)"],
      ["_IO(0x24,5)", "_IO(0x24, 5)"],
      ["_IOR(0xaa,1,16)", "_IOR(0xaa, 1, char[16])"],
      ["_IOR(0x24,7,8)", "_IOR(0x24, 7, char[8])"],
      ["_IOW(0x55,2,32)", "_IOW(0x55, 2, char[32])"],
      ["_IOW(0x2a,2,8)", "_IOW(0x2a, 2, char[8])"],
      ["_IOWR(0xaa,0x3f,24)", "_IOWR(0xaa, 0x3f, char[24])"],
      ["_IOWR(0x66,16,96)", "_IOWR(0x66, 16, char[96])"],
      ["_IOWR(0xff,0xff,16383)", "_IOWR(0xff, 0xff, char[16383])"],
      ["_IOC(1,0x24,6,8)", "_IOC(1, 0x24, 6, 8)"],
      ["_IOC(3,0,0,0)", "_IOC(_IOC_READ | _IOC_WRITE, 0, 0, 0)"],
    ],
  }],
};

export const ERRNO: ModuleSpec = {
  file: "errno.ts",
  units: [{
    header: "<errno.h>",
    source: "libc",
    includes: ["<errno.h>"],
    checks: LINUX_ERRNOS.map((n) => [`ERRNO_NAMES[${n}]`, n] as const),
  }],
};
