/**
 * ioctl request encoding, as in <asm-generic/ioctl.h> (x86_64 and arm64 share it).
 * Requests are computed here from (dir, type, nr, size) so that every number in
 * ffi/ is derived from the header's own definition; tests/abi_*.test.ts compiles a
 * C probe against the kernel's UAPI headers and checks the results.
 */
const _IOC_NRSHIFT = 0;
const _IOC_TYPESHIFT = 8;
const _IOC_SIZESHIFT = 16;
const _IOC_DIRSHIFT = 30;
export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;

/** `_IOC(dir, type, nr, size)`. Returns a non-negative number (fits in 32 bits). */
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << _IOC_DIRSHIFT) >>> 0) + ((size << _IOC_SIZESHIFT) | (type << _IOC_TYPESHIFT) |
    (nr << _IOC_NRSHIFT));
}
export const _IO = (type: number, nr: number): number => _IOC(_IOC_NONE, type, nr, 0);
export const _IOR = (type: number, nr: number, size: number): number =>
  _IOC(_IOC_READ, type, nr, size);
export const _IOW = (type: number, nr: number, size: number): number =>
  _IOC(_IOC_WRITE, type, nr, size);
export const _IOWR = (type: number, nr: number, size: number): number =>
  _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);
