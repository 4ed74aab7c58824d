/**
 * ffi/mman.ts (glibc and kernel <sys/mman.h> <fcntl.h> <poll.h> ...) and ffi/fs.ts (<linux/fs.h>) checked against the kernel's own headers with a C probe
 * (tests/abi/probe.ts; the table: tests/abi/mman_fs.ts). That every exported
 * number has a row in the table is tests/abi_coverage.test.ts.
 */
import { FS, MMAN } from "./abi/mman_fs.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([FS, MMAN]);
