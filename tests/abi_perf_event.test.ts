/**
 * ffi/perf_event.ts (<linux/perf_event.h>, the syscall numbers) checked against the kernel's own headers with a C probe
 * (tests/abi/probe.ts; the table: tests/abi/perf_event.ts). That every exported
 * number has a row in the table is tests/abi_coverage.test.ts.
 */
import { PERF_EVENT } from "./abi/perf_event.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([PERF_EVENT]);
