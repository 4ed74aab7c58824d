/**
 * user_events from <linux/user_events.h> (Linux 6.4+; PERSIST 6.5+, MULTI_FORMAT 6.10+):
 * the registration ioctls on tracefs' `user_events_data`, `struct user_reg`
 * (packed, 28 bytes) and `struct user_unreg` (packed, 16 bytes), the
 * registration flags, and DYN_LOC. Requests are derived with the header's own
 * `_IOWR`/`_IOW` definitions; their size argument is a pointer type
 * (`struct user_reg *`, `char *`), so 8 on 64-bit targets.
 */
import { _IOW, _IOWR } from "./ioctl.ts";

export const USER_EVENTS_SYSTEM = "user_events";
export const USER_EVENTS_MULTI_SYSTEM = "user_events_multi";
export const USER_EVENTS_PREFIX = "u:";

/** `DYN_LOC(offset, size)`: a __data_loc / __rel_loc word. */
export const DYN_LOC = (offset: number, size: number): number => ((size << 16) | offset) >>> 0;

/** enum user_reg_flag */
export const USER_EVENT_REG_PERSIST = 1 << 0;
export const USER_EVENT_REG_MULTI_FORMAT = 1 << 1;
export const USER_EVENT_REG_MAX = 1 << 2;

/** struct user_reg (packed). */
export const SIZEOF_USER_REG = 28;
export const USER_REG_OFF = {
  size: 0, // u32
  enable_bit: 4, // u8
  enable_size: 5, // u8
  flags: 6, // u16
  enable_addr: 8, // u64
  name_args: 16, // u64
  write_index: 24, // u32
} as const;

/** struct user_unreg (packed). */
export const SIZEOF_USER_UNREG = 16;
export const USER_UNREG_OFF = {
  size: 0, // u32
  disable_bit: 4, // u8
  __reserved: 5, // u8
  __reserved2: 6, // u16
  disable_addr: 8, // u64
} as const;

export const DIAG_IOC_MAGIC = 0x2a; // '*'
const SIZEOF_POINTER = 8;
/** `_IOWR(DIAG_IOC_MAGIC, 0, struct user_reg *)` = 0xC0082A00 */
export const DIAG_IOCSREG = _IOWR(DIAG_IOC_MAGIC, 0, SIZEOF_POINTER);
/** `_IOW(DIAG_IOC_MAGIC, 1, char *)` = 0x40082A01 */
export const DIAG_IOCSDEL = _IOW(DIAG_IOC_MAGIC, 1, SIZEOF_POINTER);
/** `_IOW(DIAG_IOC_MAGIC, 2, struct user_unreg *)` = 0x40082A02 */
export const DIAG_IOCSUNREG = _IOW(DIAG_IOC_MAGIC, 2, SIZEOF_POINTER);

/** Size of `struct trace_entry` (<linux/trace_events.h>): the common fields before user data. */
export const SIZEOF_TRACE_ENTRY = 8;
/** kernel/trace/trace_events_user.c limits (not UAPI, stable since 6.4). */
export const MAX_EVENT_DESC = 512;
export const MAX_FIELD_ARRAY_SIZE = 1024;
