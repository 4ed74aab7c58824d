/**
 * ffi/user_events.ts (<linux/user_events.h>) checked against the kernel's own headers with a C probe
 * (tests/abi/probe.ts; the table: tests/abi/user_events.ts). That every exported
 * number has a row in the table is tests/abi_coverage.test.ts.
 */
import { USER_EVENTS } from "./abi/user_events.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([USER_EVENTS]);
