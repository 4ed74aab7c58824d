/**
 * ffi/userfaultfd.ts (<linux/userfaultfd.h>, the syscall numbers) checked against the kernel's own headers with a C probe
 * (tests/abi/probe.ts; the table: tests/abi/userfaultfd.ts). That every exported
 * number has a row in the table is tests/abi_coverage.test.ts.
 */
import { USERFAULTFD } from "./abi/userfaultfd.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([USERFAULTFD]);
