/**
 * ffi/socket.ts (unix sockets, SCM_RIGHTS, SO_PEERCRED, pidfd syscalls)
 * checked against glibc's and the kernel's headers with a C probe
 * (tests/abi/probe.ts; the table: tests/abi/socket.ts). That every exported
 * number has a row is tests/abi_coverage.test.ts.
 */
import { SOCKET } from "./abi/socket.ts";
import { checkAgainstHeaders } from "./abi/probe.ts";

await checkAgainstHeaders([SOCKET]);
