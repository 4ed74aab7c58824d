/**
 * ffi/ioctl.ts (<linux/ioctl.h>) and ffi/errno.ts (<errno.h>) checked against the kernel's own headers with a C probe
 * (tests/abi/probe.ts; the table: tests/abi/ioctl_errno.ts). That every exported
 * number has a row in the table is tests/abi_coverage.test.ts.
 */
import { ERRNO, IOCTL } from "./abi/ioctl_errno.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([IOCTL, ERRNO]);
