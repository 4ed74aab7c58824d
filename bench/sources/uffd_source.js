/**
 * A page source module for bench/uffd.ts (JavaScript, so it runs unchanged on
 * every runtime): copies the bench's known bytes out of the SharedArrayBuffer
 * it is given, the same bytes the `shared` source serves without a module.
 */
let bytes = new Uint8Array(0);
export function init(options) {
  bytes = new Uint8Array(options.buffer, options.offset);
}
export function fill(offset, dest) {
  dest.set(bytes.subarray(offset, offset + dest.length));
}
