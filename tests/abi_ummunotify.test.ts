/**
 * ffi/ummunotify.ts (kmod/ummunotify/ummunotify.h, pinned to the 2010 ABI) checked against the kernel's own headers with a C probe
 * (tests/abi/probe.ts; the table: tests/abi/ummunotify.ts). That every exported
 * number has a row in the table is tests/abi_coverage.test.ts.
 */
import { UMMUNOTIFY } from "./abi/ummunotify.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([UMMUNOTIFY]);
