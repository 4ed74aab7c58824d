// SPDX-License-Identifier: GPL-2.0
/*
 * ummunotify: relay MMU notifier invalidations of the opener's own address
 * space to user space.
 *
 * The ABI and semantics are those of Roland Dreier's 2010 ummunotify patch
 * (never merged), rewritten for Linux 6.12: one struct mmu_notifier per open
 * file, our own interval tree of registrations, one preallocated report per
 * registration, a read-only counter page.  README.md beside this file answers
 * the questions raised when the patch was reviewed.
 *
 * Locking:
 *   uf->lock (spinlock) protects the registration trees, the report queue,
 *	every registration's report fields, uf->gen, uf->need_last and
 *	uf->released.  It is taken in the invalidate_range_start callback,
 *	which may run in contexts that cannot sleep (OOM reaper, reclaim), so
 *	nothing sleeps or allocates under it.
 *   uf->read_mutex serialises readers with each other and with
 *	UNREGISTER, so that a registration a reader has copied out cannot be
 *	freed before that reader commits (dequeues) it.  It is held across
 *	copy_to_user(); it is never taken from the notifier.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/interval_tree_generic.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/rbtree.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include <asm/cacheflush.h>

#include "ummunotify.h"

#if BITS_PER_LONG != 64
/*
 * The counter page is read by user space without a system call; on 64-bit
 * the kernel updates it with one 64-bit store, so no reader can see a torn
 * value.  A 32-bit kernel would need a seqcount in the page (an ABI change),
 * so it is not supported.  See README.md, "Counter ordering and tearing".
 */
#error "ummunotify requires a 64-bit kernel"
#endif

#ifndef CONFIG_MMU_NOTIFIER
#error "ummunotify requires CONFIG_MMU_NOTIFIER"
#endif

static unsigned int max_regions = 65536;
module_param(max_regions, uint, 0644);
MODULE_PARM_DESC(max_regions,
		 "Maximum registrations per open file; REGISTER_REGION beyond it fails with ENOSPC (default 65536)");

/* One bit per enum mmu_notifier_event; every event is reported by default. */
#define UMN_ALL_EVENTS	0xffu
static unsigned int event_mask = UMN_ALL_EVENTS;
module_param(event_mask, uint, 0644);
MODULE_PARM_DESC(event_mask,
		 "Bit mask of mmu_notifier_event values to report (bit 0 UNMAP, 1 CLEAR, 2 PROTECTION_VMA, 3 PROTECTION_PAGE, 4 SOFT_DIRTY, 5 RELEASE, 6 MIGRATE, 7 EXCLUSIVE); default 0xff, all");

/*
 * Live objects, for leak checks (read-only parameters nr_files, nr_regions):
 * they return to 0 when every file is closed.
 */
static atomic_long_t umn_nr_files = ATOMIC_LONG_INIT(0);
static atomic_long_t umn_nr_regions = ATOMIC_LONG_INIT(0);

static int umn_get_stat(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(kp->arg));
}

static const struct kernel_param_ops umn_stat_ops = {
	.get = umn_get_stat,
};
module_param_cb(nr_files, &umn_stat_ops, &umn_nr_files, 0444);
MODULE_PARM_DESC(nr_files, "Open /dev/ummunotify files (read-only)");
module_param_cb(nr_regions, &umn_stat_ops, &umn_nr_regions, 0444);
MODULE_PARM_DESC(nr_regions, "Live registrations over all files (read-only)");

/* Events copied out per chunk; a read() loops over chunks. */
#define UMN_CHUNK	(PAGE_SIZE / sizeof(struct ummunotify_event))

struct umn_reg {
	/* interval tree by [start, end - 1], under uf->lock */
	struct rb_node it_node;
	u64 it_subtree_last;
	/* tree by cookie, under uf->lock */
	struct rb_node cookie_node;

	u64 start;
	u64 end;		/* exclusive */
	u64 cookie;

	/*
	 * The one report this registration can have queued: it is queued
	 * iff !list_empty(&report).  No allocation happens at event time,
	 * so the memory bound is exactly max_regions registrations.
	 */
	struct list_head report;
	u64 hint_start;
	u64 hint_end;
	bool hint;
	u32 rseq;		/* bumped by every invalidation that hits */
};

#define UMN_IT_START(r)	((r)->start)
#define UMN_IT_LAST(r)	((r)->end - 1)
INTERVAL_TREE_DEFINE(struct umn_reg, it_node, u64, it_subtree_last,
		     UMN_IT_START, UMN_IT_LAST, static, umn_it)

struct umn_snap {
	struct umn_reg *reg;
	u32 rseq;
};

struct umn_file {
	struct mmu_notifier mn;		/* holds an mmgrab() of mm */
	struct mm_struct *mm;

	spinlock_t lock;
	struct rb_root_cached itree;
	struct rb_root cookies;
	unsigned int nregs;
	struct list_head queue;		/* of umn_reg.report */
	u64 gen;			/* == *counter */
	bool need_last;			/* INVALs were read, LAST not yet */
	bool released;			/* mm has gone (exit/exec) */

	struct mutex read_mutex;
	struct ummunotify_event *evbuf;	/* UMN_CHUNK events */
	struct umn_snap *snap;		/* UMN_CHUNK entries */

	wait_queue_head_t wq;
	struct fasync_struct *fasync;
	u64 *counter;			/* the page mapped at offset 0 */
};

static bool umn_readable(struct umn_file *uf)
{
	return !list_empty(&uf->queue) || READ_ONCE(uf->need_last);
}

static struct umn_reg *umn_find_cookie(struct umn_file *uf, u64 cookie)
{
	struct rb_node *n = uf->cookies.rb_node;

	while (n) {
		struct umn_reg *reg = rb_entry(n, struct umn_reg, cookie_node);

		if (cookie < reg->cookie)
			n = n->rb_left;
		else if (cookie > reg->cookie)
			n = n->rb_right;
		else
			return reg;
	}
	return NULL;
}

/* Insert under uf->lock; false if the cookie is already registered. */
static bool umn_insert_cookie(struct umn_file *uf, struct umn_reg *new)
{
	struct rb_node **p = &uf->cookies.rb_node, *parent = NULL;

	while (*p) {
		struct umn_reg *reg = rb_entry(*p, struct umn_reg, cookie_node);

		parent = *p;
		if (new->cookie < reg->cookie)
			p = &(*p)->rb_left;
		else if (new->cookie > reg->cookie)
			p = &(*p)->rb_right;
		else
			return false;
	}
	rb_link_node(&new->cookie_node, parent, p);
	rb_insert_color(&new->cookie_node, &uf->cookies);
	return true;
}

static void umn_wake(struct umn_file *uf, __poll_t band)
{
	wake_up_interruptible_poll(&uf->wq, band);
	kill_fasync(&uf->fasync, SIGIO, band & EPOLLHUP ? POLL_HUP : POLL_IN);
}

/*
 * Called before the kernel changes or removes the translations of
 * [range->start, range->end) in uf->mm.  May not sleep when the range is not
 * blockable; never sleeps at all here.
 */
static int umn_invalidate_range_start(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct umn_file *uf = container_of(mn, struct umn_file, mn);
	u64 start = range->start, last = range->end - 1;
	struct umn_reg *reg;
	bool hit = false;

	if ((unsigned int)range->event >= 32 ||
	    !(READ_ONCE(event_mask) & (1u << range->event)))
		return 0;
	if (range->end <= range->start)
		return 0;

	spin_lock(&uf->lock);
	for (reg = umn_it_iter_first(&uf->itree, start, last); reg;
	     reg = umn_it_iter_next(reg, start, last)) {
		hit = true;
		reg->rseq++;
		if (list_empty(&reg->report)) {
			/* first invalidation: the exact part of the range */
			reg->hint = true;
			reg->hint_start = max_t(u64, reg->start, range->start);
			reg->hint_end = min_t(u64, reg->end, range->end);
			list_add_tail(&reg->report, &uf->queue);
		} else {
			/* a second one before it was read: the whole range */
			reg->hint = false;
			reg->hint_start = reg->start;
			reg->hint_end = reg->end;
		}
	}
	if (hit) {
		/*
		 * The reports are on the queue before the counter moves: a
		 * reader that sees the new value and then reads finds them
		 * (read() takes uf->lock; the release store also orders the
		 * queue writes before the counter for lockless observers).
		 * One aligned 64-bit store: never torn on 64-bit.
		 */
		uf->gen++;
		smp_store_release(uf->counter, uf->gen);
		flush_dcache_page(virt_to_page(uf->counter));
	}
	spin_unlock(&uf->lock);

	if (hit)
		umn_wake(uf, EPOLLIN | EPOLLRDNORM);
	return 0;
}

/*
 * The mm is going away: exit_mmap() (last user exited, or exec replaced it)
 * or our own mmu_notifier_unregister() at close.  No invalidation will follow;
 * queued reports stay readable, then read() returns 0 and poll() EPOLLHUP.
 */
static void umn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct umn_file *uf = container_of(mn, struct umn_file, mn);

	spin_lock(&uf->lock);
	uf->released = true;
	spin_unlock(&uf->lock);
	umn_wake(uf, EPOLLHUP);
}

static const struct mmu_notifier_ops umn_mn_ops = {
	.release		= umn_release,
	.invalidate_range_start	= umn_invalidate_range_start,
};

static int umn_open(struct inode *inode, struct file *file)
{
	struct mm_struct *mm = current->mm;
	struct umn_file *uf;
	int ret;

	/* Read-only, as the ABI says: the file has nothing to write. */
	if (file->f_mode & FMODE_WRITE)
		return -EACCES;
	/* Kernel threads have no address space to watch. */
	if (!mm || (current->flags & PF_KTHREAD))
		return -EINVAL;

	uf = kzalloc(sizeof(*uf), GFP_KERNEL_ACCOUNT);
	if (!uf)
		return -ENOMEM;
	spin_lock_init(&uf->lock);
	uf->itree = RB_ROOT_CACHED;
	uf->cookies = RB_ROOT;
	INIT_LIST_HEAD(&uf->queue);
	mutex_init(&uf->read_mutex);
	init_waitqueue_head(&uf->wq);

	ret = -ENOMEM;
	uf->counter = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	uf->evbuf = kmalloc_array(UMN_CHUNK, sizeof(*uf->evbuf), GFP_KERNEL_ACCOUNT);
	uf->snap = kmalloc_array(UMN_CHUNK, sizeof(*uf->snap), GFP_KERNEL_ACCOUNT);
	if (!uf->counter || !uf->evbuf || !uf->snap)
		goto err;

	/*
	 * Watch the opener's own mm.  mmu_notifier_register() takes an
	 * mmgrab() (mm_count) reference that lasts until the
	 * mmu_notifier_unregister() in umn_release_file(): it keeps struct
	 * mm_struct valid for as long as the file exists, but not the
	 * address space (mm_users), which still ends at exit or exec.
	 * current->mm has mm_users > 0 here, as registration requires.
	 */
	uf->mn.ops = &umn_mn_ops;
	ret = mmu_notifier_register(&uf->mn, mm);
	if (ret)
		goto err;
	uf->mm = mm;
	atomic_long_inc(&umn_nr_files);

	file->private_data = uf;
	return stream_open(inode, file);

err:
	kfree(uf->snap);
	kfree(uf->evbuf);
	free_page((unsigned long)uf->counter);
	kfree(uf);
	return ret;
}

static int umn_release_file(struct inode *inode, struct file *file)
{
	struct umn_file *uf = file->private_data;
	struct umn_reg *reg, *next;

	/*
	 * Stop the notifier.  If the mm still exists this calls umn_release()
	 * and unlinks us; either way it waits (SRCU) until no callback of
	 * ours is running, then drops the mm_count reference.  After it
	 * returns nothing but us can touch uf.
	 */
	mmu_notifier_unregister(&uf->mn, uf->mm);

	/* Live registrations and queued reports are simply freed. */
	rbtree_postorder_for_each_entry_safe(reg, next, &uf->cookies, cookie_node) {
		kfree(reg);
		atomic_long_dec(&umn_nr_regions);
	}
	atomic_long_dec(&umn_nr_files);

	/* The counter page lives on while a mapping holds a reference. */
	free_page((unsigned long)uf->counter);
	kfree(uf->snap);
	kfree(uf->evbuf);
	kfree(uf);
	return 0;
}

static long umn_exchange_features(struct umn_file *uf, u32 __user *arg)
{
	u32 requested;

	if (get_user(requested, arg))
		return -EFAULT;
	/* No features are defined: whatever was requested, grant none. */
	(void)requested;
	return put_user(0u, arg);
}

static long umn_register(struct umn_file *uf,
			 struct ummunotify_register_ioctl __user *arg)
{
	struct ummunotify_register_ioctl r;
	struct umn_reg *reg;
	long ret = 0;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if (r.flags || r.reserved || r.start >= r.end)
		return -EINVAL;

	reg = kzalloc(sizeof(*reg), GFP_KERNEL_ACCOUNT);
	if (!reg)
		return -ENOMEM;
	reg->start = r.start;
	reg->end = r.end;
	reg->cookie = r.user_cookie;
	INIT_LIST_HEAD(&reg->report);

	spin_lock(&uf->lock);
	if (uf->released)
		ret = -ENODEV;		/* the watched mm has exited */
	else if (umn_find_cookie(uf, reg->cookie))
		ret = -EINVAL;		/* a cookie names one registration */
	else if (uf->nregs >= READ_ONCE(max_regions))
		ret = -ENOSPC;
	else {
		umn_insert_cookie(uf, reg);
		umn_it_insert(reg, &uf->itree);
		uf->nregs++;
		atomic_long_inc(&umn_nr_regions);
	}
	spin_unlock(&uf->lock);

	if (ret)
		kfree(reg);
	return ret;
}

static long umn_unregister(struct umn_file *uf, u64 __user *arg)
{
	struct umn_reg *reg;
	u64 cookie;

	if (get_user(cookie, arg))
		return -EFAULT;

	/* Wait out a reader that may hold a pointer to this registration. */
	if (mutex_lock_interruptible(&uf->read_mutex))
		return -ERESTARTSYS;
	spin_lock(&uf->lock);
	reg = umn_find_cookie(uf, cookie);
	if (reg) {
		rb_erase(&reg->cookie_node, &uf->cookies);
		umn_it_remove(reg, &uf->itree);
		list_del_init(&reg->report);	/* drop a queued report */
		uf->nregs--;
	}
	spin_unlock(&uf->lock);
	mutex_unlock(&uf->read_mutex);

	if (!reg)
		return -EINVAL;
	kfree(reg);
	atomic_long_dec(&umn_nr_regions);
	return 0;
}

static long umn_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct umn_file *uf = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case UMMUNOTIFY_EXCHANGE_FEATURES:
		return umn_exchange_features(uf, argp);
	case UMMUNOTIFY_REGISTER_REGION:
		return umn_register(uf, argp);
	case UMMUNOTIFY_UNREGISTER_REGION:
		return umn_unregister(uf, argp);
	default:
		return -ENOTTY;
	}
}

/*
 * Copy out up to @max events, called with read_mutex held and the queue
 * non-empty or a LAST pending.  The reports are copied out first and taken
 * off the queue only after copy_to_user() succeeded, so a fault loses nothing.
 * Returns the number of events written (>= 1), or -EFAULT; *done says whether
 * a LAST event ended it.
 */
static ssize_t umn_read_chunk(struct umn_file *uf, char __user *buf,
			      size_t max, bool *done)
{
	struct ummunotify_event *ev = uf->evbuf;
	struct umn_reg *reg;
	size_t n = 0, ninval, i;
	bool last = false;

	spin_lock(&uf->lock);
	list_for_each_entry(reg, &uf->queue, report) {
		if (n == max)
			break;
		ev[n] = (struct ummunotify_event) {
			.type = UMMUNOTIFY_EVENT_TYPE_INVAL,
			.flags = reg->hint ? UMMUNOTIFY_EVENT_FLAG_HINT : 0,
			.hint_start = reg->hint_start,
			.hint_end = reg->hint_end,
			.user_cookie_counter = reg->cookie,
		};
		uf->snap[n].reg = reg;
		uf->snap[n].rseq = reg->rseq;
		n++;
	}
	ninval = n;
	/* The whole queue fits, and so does a LAST: the queue is emptied. */
	if (list_entry_is_head(reg, &uf->queue, report) && n < max) {
		ev[n++] = (struct ummunotify_event) {
			.type = UMMUNOTIFY_EVENT_TYPE_LAST,
			.user_cookie_counter = uf->gen,
		};
		last = true;
	}
	spin_unlock(&uf->lock);

	if (copy_to_user(buf, ev, n * sizeof(*ev)))
		return -EFAULT;

	spin_lock(&uf->lock);
	for (i = 0; i < ninval; i++) {
		reg = uf->snap[i].reg;
		/*
		 * Hit again since we copied it: its report now says "whole
		 * range, no HINT" and stays queued, to be read again.
		 */
		if (reg->rseq == uf->snap[i].rseq)
			list_del_init(&reg->report);
	}
	if (last)
		WRITE_ONCE(uf->need_last, false);
	else if (ninval)
		WRITE_ONCE(uf->need_last, true);
	spin_unlock(&uf->lock);

	*done = last;
	return n;
}

static ssize_t umn_read(struct file *file, char __user *buf, size_t count,
			loff_t *ppos)
{
	struct umn_file *uf = file->private_data;
	size_t room = count / sizeof(struct ummunotify_event);
	size_t done_events = 0;
	bool done = false;
	int ret;

	if (room == 0)
		return -EINVAL;

	for (;;) {
		if (mutex_lock_interruptible(&uf->read_mutex))
			return -ERESTARTSYS;
		if (umn_readable(uf))
			break;
		mutex_unlock(&uf->read_mutex);

		if (READ_ONCE(uf->released))
			return 0;	/* end of file: the mm is gone */
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(uf->wq, umn_readable(uf) ||
					       READ_ONCE(uf->released));
		if (ret)
			return ret;	/* -ERESTARTSYS: a signal */
	}

	while (!done && done_events < room) {
		ssize_t n;

		n = umn_read_chunk(uf, buf + done_events * sizeof(struct ummunotify_event),
				   min_t(size_t, room - done_events, UMN_CHUNK), &done);
		if (n < 0) {
			if (!done_events) {
				mutex_unlock(&uf->read_mutex);
				return n;
			}
			break;
		}
		done_events += n;
		if (!umn_readable(uf))
			break;
	}
	mutex_unlock(&uf->read_mutex);
	return done_events * sizeof(struct ummunotify_event);
}

static __poll_t umn_poll(struct file *file, struct poll_table_struct *wait)
{
	struct umn_file *uf = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &uf->wq, wait);
	spin_lock(&uf->lock);
	if (umn_readable(uf))
		mask |= EPOLLIN | EPOLLRDNORM;
	else if (uf->released)
		mask |= EPOLLHUP;
	spin_unlock(&uf->lock);
	return mask;
}

static int umn_fasync(int fd, struct file *file, int on)
{
	struct umn_file *uf = file->private_data;

	return fasync_helper(fd, file, on, &uf->fasync);
}

/*
 * The counter page is mapped on fault, not inserted once at mmap: a
 * madvise(MADV_DONTNEED) (or a library dropping a range that contains the
 * page) zaps the PTE like any other, and the next read faults it back here
 * instead of getting SIGBUS.  The vma's file reference keeps uf, and so the
 * page, alive; the reference taken here is the page table's.
 */
static vm_fault_t umn_vm_fault(struct vm_fault *vmf)
{
	struct umn_file *uf = vmf->vma->vm_file->private_data;
	struct page *page;

	if (vmf->pgoff != 0)
		return VM_FAULT_SIGBUS;
	page = virt_to_page(uf->counter);
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct umn_vm_ops = {
	.fault = umn_vm_fault,
};

/* One read-only page at offset 0: the generation counter. */
static int umn_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff != 0 || vma_pages(vma) != 1)
		return -EINVAL;
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EPERM;
	/*
	 * No mprotect() to writable later, even for MAP_PRIVATE (no COW), and
	 * no mremap() growing past the one page.
	 */
	vm_flags_mod(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYWRITE | VM_MAYEXEC);
	vma->vm_ops = &umn_vm_ops;
	return 0;
}

static const struct file_operations umn_fops = {
	.owner		= THIS_MODULE,
	.open		= umn_open,
	.release	= umn_release_file,
	.read		= umn_read,
	.poll		= umn_poll,
	.fasync		= umn_fasync,
	.mmap		= umn_mmap,
	.unlocked_ioctl	= umn_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,	/* same layout on 32-bit */
};

static struct miscdevice umn_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "ummunotify",
	.fops	= &umn_fops,
	/* Anyone may watch their own mm; open is read-only. */
	.mode	= 0444,
};

static int __init umn_init(void)
{
	BUILD_BUG_ON(sizeof(struct ummunotify_event) != 32);
	BUILD_BUG_ON(sizeof(struct ummunotify_register_ioctl) != 32);
	BUILD_BUG_ON(UMMUNOTIFY_EXCHANGE_FEATURES != 0xC0045501);
	BUILD_BUG_ON(UMMUNOTIFY_REGISTER_REGION != 0x40205502);
	BUILD_BUG_ON(UMMUNOTIFY_UNREGISTER_REGION != 0x40085503);
	BUILD_BUG_ON(MMU_NOTIFY_EXCLUSIVE >= 8);
	return misc_register(&umn_misc);
}

static void __exit umn_exit(void)
{
	/* Every open file holds a module reference: none is left here. */
	misc_deregister(&umn_misc);
}

module_init(umn_init);
module_exit(umn_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Userspace notification of MMU invalidations (/dev/ummunotify)");
MODULE_AUTHOR("ummu project; ABI after Roland Dreier's 2010 ummunotify");
