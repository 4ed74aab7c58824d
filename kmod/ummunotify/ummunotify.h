/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ummunotify: user-space view of MMU notifier invalidations.
 *
 * The user-space ABI of /dev/ummunotify (the 2010 ummunotify driver by
 * Roland Dreier, ported to Linux 6.12).  Usable from C user space:
 *
 *	#include "ummunotify.h"
 *
 * See README.md beside this file for the semantics.
 */
#ifndef _UAPI_LINUX_UMMUNOTIFY_H
#define _UAPI_LINUX_UMMUNOTIFY_H

#include <linux/types.h>
#include <linux/ioctl.h>

/*
 * Argument of UMMUNOTIFY_REGISTER_REGION: watch [start, end) under
 * user_cookie.  flags and reserved must be 0.
 */
struct ummunotify_register_ioctl {
	__u64	start;
	__u64	end;		/* exclusive */
	__u64	user_cookie;
	__u32	flags;		/* must be 0 */
	__u32	reserved;	/* must be 0 */
};

/* Event types (struct ummunotify_event.type). */
#define UMMUNOTIFY_EVENT_TYPE_INVAL	0
#define UMMUNOTIFY_EVENT_TYPE_LAST	1

/* Event flags (struct ummunotify_event.flags). */
#define UMMUNOTIFY_EVENT_FLAG_HINT	(1 << 0)

/*
 * What read() returns, 32 bytes each.
 *
 * INVAL: user_cookie_counter is the registration's cookie.  With
 * UMMUNOTIFY_EVENT_FLAG_HINT, [hint_start, hint_end) is exactly the
 * invalidated part of the registered range; without it, they are the
 * whole registered range (more than one invalidation was merged).
 *
 * LAST: the queue was emptied by this read; user_cookie_counter is the
 * generation counter at that moment; flags, hint_start, hint_end are 0.
 */
struct ummunotify_event {
	__u32	type;
	__u32	flags;
	__u64	hint_start;
	__u64	hint_end;
	__u64	user_cookie_counter;
};

/* in/out: requested feature mask; the kernel writes back 0 (none defined). */
#define UMMUNOTIFY_EXCHANGE_FEATURES	_IOWR('U', 1, __u32)
/* in: struct ummunotify_register_ioctl */
#define UMMUNOTIFY_REGISTER_REGION	_IOW('U', 2, struct ummunotify_register_ioctl)
/* in: __u64 user_cookie */
#define UMMUNOTIFY_UNREGISTER_REGION	_IOW('U', 3, __u64)

#endif /* _UAPI_LINUX_UMMUNOTIFY_H */
