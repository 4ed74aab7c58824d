/** struct iovec from <linux/uio.h>: { void *iov_base; size_t iov_len; } (64-bit). */
export const SIZEOF_IOVEC = 16;
