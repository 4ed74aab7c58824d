/**
 * ummu: the kernel's memory events for Deno and Bun.
 * @module
 */
export { UmmuArgumentError, ClosedError, UmmuError } from "./src/errors.ts";
