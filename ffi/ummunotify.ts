/**
 * ABI of /dev/ummunotify: kmod/ummunotify/ummunotify.h (the 2010 ummunotify
 * ABI by Roland Dreier, as the ummu kernel module implements it). Names are
 * the header's; struct layouts are byte offsets. tests/abi_*.test.ts checks every
 * number here against the header with a C probe.
 */
import { _IOW, _IOWR } from "./ioctl.ts";

/** The ioctl type letter: 'U'. */
export const UMMUNOTIFY_MAGIC = 0x55;

/** `struct ummunotify_register_ioctl { __u64 start, end, user_cookie; __u32 flags, reserved; }` */
export const SIZEOF_UMMUNOTIFY_REGISTER_IOCTL = 32;
export const UMMUNOTIFY_REGISTER_IOCTL_OFF = {
  start: 0,
  end: 8,
  user_cookie: 16,
  flags: 24,
  reserved: 28,
} as const;

/** `struct ummunotify_event { __u32 type, flags; __u64 hint_start, hint_end, user_cookie_counter; }` */
export const SIZEOF_UMMUNOTIFY_EVENT = 32;
export const UMMUNOTIFY_EVENT_OFF = {
  type: 0,
  flags: 4,
  hint_start: 8,
  hint_end: 16,
  user_cookie_counter: 24,
} as const;

/** struct ummunotify_event.type */
export const UMMUNOTIFY_EVENT_TYPE_INVAL = 0;
export const UMMUNOTIFY_EVENT_TYPE_LAST = 1;
/** struct ummunotify_event.flags: [hint_start, hint_end) is exact (else the whole registration). */
export const UMMUNOTIFY_EVENT_FLAG_HINT = 1 << 0;

/** `_IOWR('U', 1, __u32)`: in/out feature mask (the kernel writes back 0: none are defined). */
export const UMMUNOTIFY_EXCHANGE_FEATURES = _IOWR(UMMUNOTIFY_MAGIC, 1, 4);
/** `_IOW('U', 2, struct ummunotify_register_ioctl)` */
export const UMMUNOTIFY_REGISTER_REGION = _IOW(
  UMMUNOTIFY_MAGIC,
  2,
  SIZEOF_UMMUNOTIFY_REGISTER_IOCTL,
);
/** `_IOW('U', 3, __u64)`: the cookie */
export const UMMUNOTIFY_UNREGISTER_REGION = _IOW(UMMUNOTIFY_MAGIC, 3, 8);
