/**
 * ffi/stat.ts (statx: <linux/stat.h>, <linux/fcntl.h>, glibc's <sys/stat.h>)
 * and ffi/uio.ts (<linux/uio.h>) checked against the kernel's own headers
 * with a C probe (tests/abi/probe.ts; the tables: tests/abi/stat_uio.ts).
 * That every exported number has a row is tests/abi_coverage.test.ts.
 */
import { STAT, UIO } from "./abi/stat_uio.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([STAT, UIO]);
