// SPDX-License-Identifier: GPL-2.0
/*
 * umn-test: checks every rule of the /dev/ummunotify ABI against the real
 * driver (kmod/ummunotify).  Needs the module loaded; several checks need
 * root (module parameters in /sys/module/ummunotify/parameters, MADV_PAGEOUT
 * of a file page, swap).  Prints one line per check group and, last,
 * "N passed, M failed"; exits 0 only if nothing failed.
 *
 * With a writable event_mask parameter (root), each operation in
 * t_operations() is also run once per mmu_notifier_event bit to print which
 * range->event it produces; README.md's table comes from that output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../ummunotify.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

#define DEV "/dev/ummunotify"
#define PARAMS "/sys/module/ummunotify/parameters/"

/* enum mmu_notifier_event (include/linux/mmu_notifier.h, 6.12) */
enum {
	EV_UNMAP, EV_CLEAR, EV_PROTECTION_VMA, EV_PROTECTION_PAGE,
	EV_SOFT_DIRTY, EV_RELEASE, EV_MIGRATE, EV_EXCLUSIVE, EV_COUNT
};
static const char *const ev_names[EV_COUNT] = {
	"UNMAP", "CLEAR", "PROTECTION_VMA", "PROTECTION_PAGE",
	"SOFT_DIRTY", "RELEASE", "MIGRATE", "EXCLUSIVE",
};

static int passed, failed, skipped;
static long pg;
static const char *cur_test = "";

#define CHECK(cond, ...) check_((cond), __LINE__, #cond, "" __VA_ARGS__)
static bool check_(bool ok, int line, const char *expr, const char *fmt, ...)
{
	if (ok) {
		passed++;
		return true;
	}
	failed++;
	fprintf(stdout, "FAIL %s (line %d): %s", cur_test, line, expr);
	if (fmt[0]) {
		va_list ap;

		fputs(": ", stdout);
		va_start(ap, fmt);
		vfprintf(stdout, fmt, ap);
		va_end(ap);
	}
	fprintf(stdout, " [errno %d %s]\n", errno, strerror(errno));
	fflush(stdout);
	return false;
}

static void skip(const char *why)
{
	skipped++;
	printf("SKIP %s: %s\n", cur_test, why);
	fflush(stdout);
}

static void begin(const char *name)
{
	cur_test = name;
}

static void end_test(int failed_before)
{
	printf("%s %s\n", failed == failed_before ? "ok  " : "FAILED", cur_test);
	fflush(stdout);
}

/* ---------- helpers ---------- */

struct umn {
	int fd;
	volatile uint64_t *counter;
};

static struct umn umn_open(int extra_flags)
{
	struct umn u;

	u.fd = open(DEV, O_RDONLY | O_CLOEXEC | extra_flags);
	if (u.fd < 0) {
		perror("open " DEV);
		exit(2);
	}
	u.counter = mmap(NULL, sizeof(uint64_t), PROT_READ, MAP_SHARED, u.fd, 0);
	if (u.counter == MAP_FAILED) {
		perror("mmap counter");
		exit(2);
	}
	return u;
}

static void umn_close(struct umn *u)
{
	munmap((void *)u->counter, pg);
	close(u->fd);
}

static uint64_t ctr(struct umn *u)
{
	return __atomic_load_n(u->counter, __ATOMIC_ACQUIRE);
}

static int reg_flags(int fd, uint64_t start, uint64_t end, uint64_t cookie,
		     uint32_t flags, uint32_t reserved)
{
	struct ummunotify_register_ioctl r = {
		.start = start, .end = end, .user_cookie = cookie,
		.flags = flags, .reserved = reserved,
	};

	return ioctl(fd, UMMUNOTIFY_REGISTER_REGION, &r) ? -errno : 0;
}

static int reg(int fd, void *start, void *end, uint64_t cookie)
{
	return reg_flags(fd, (uintptr_t)start, (uintptr_t)end, cookie, 0, 0);
}

static int unreg(int fd, uint64_t cookie)
{
	return ioctl(fd, UMMUNOTIFY_UNREGISTER_REGION, &cookie) ? -errno : 0;
}

/* read() into ev[max]; returns events or -errno */
static int rd(int fd, struct ummunotify_event *ev, int max)
{
	ssize_t n = read(fd, ev, (size_t)max * sizeof(*ev));

	if (n < 0)
		return -errno;
	if (n % sizeof(*ev)) {
		fprintf(stdout, "read returned %zd, not a multiple of 32\n", n);
		return -EPROTO;
	}
	return (int)(n / sizeof(*ev));
}

static void *map_anon(size_t pages, bool populate)
{
	void *p = mmap(NULL, pages * pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap anon");
		exit(2);
	}
	if (populate)
		memset(p, 0x5a, pages * pg);
	return p;
}

#define P(base, i) ((char *)(base) + (size_t)(i) * pg)

static bool is_inval(const struct ummunotify_event *e, uint64_t cookie,
		     bool hint, void *s, void *t)
{
	return e->type == UMMUNOTIFY_EVENT_TYPE_INVAL &&
	       e->user_cookie_counter == cookie &&
	       e->flags == (hint ? UMMUNOTIFY_EVENT_FLAG_HINT : 0) &&
	       e->hint_start == (uintptr_t)s && e->hint_end == (uintptr_t)t;
}

static void dump(const struct ummunotify_event *ev, int n)
{
	for (int i = 0; i < n; i++)
		printf("   ev[%d] type %u flags %u [%#" PRIx64 ", %#" PRIx64 ") cookie/counter %" PRIu64 "\n",
		       i, ev[i].type, ev[i].flags, (uint64_t)ev[i].hint_start,
		       (uint64_t)ev[i].hint_end, (uint64_t)ev[i].user_cookie_counter);
}

/* Drain everything queued (fd must be O_NONBLOCK); returns INVAL count. */
static int drain(int fd)
{
	struct ummunotify_event ev[64];
	int n, inval = 0;

	while ((n = rd(fd, ev, 64)) > 0)
		for (int i = 0; i < n; i++)
			inval += ev[i].type == UMMUNOTIFY_EVENT_TYPE_INVAL;
	return inval;
}

static int write_param(const char *name, unsigned long v)
{
	char path[128], buf[32];
	int fd, len, ret = 0;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%lu\n", v);
	if (write(fd, buf, len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

static long read_param(const char *name)
{
	char path[128], buf[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 0) : -EIO;
}

static long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static bool have_swap(void)
{
	long t = meminfo_kb("SwapFree");

	return t > 1024;
}

/* /proc/self/pagemap entry of addr */
static uint64_t pagemap(void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (off_t)((uintptr_t)addr / pg) * 8) != 8)
		e = 0;
	close(fd);
	return e;
}

static bool kasan(void)
{
	FILE *f = fopen("/proc/config.gz", "r");
	int st;

	if (!f)
		return false;
	fclose(f);
	st = system("zcat /proc/config.gz | grep -q '^CONFIG_KASAN=y'");
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---------- tests ---------- */

static void t_abi(void)
{
	int f0 = failed;

	begin("abi: ioctl numbers and struct layout");
	CHECK(UMMUNOTIFY_EXCHANGE_FEATURES == 0xC0045501u);
	CHECK(UMMUNOTIFY_REGISTER_REGION == 0x40205502u);
	CHECK(UMMUNOTIFY_UNREGISTER_REGION == 0x40085503u);
	CHECK(sizeof(struct ummunotify_register_ioctl) == 32);
	CHECK(offsetof(struct ummunotify_register_ioctl, start) == 0);
	CHECK(offsetof(struct ummunotify_register_ioctl, end) == 8);
	CHECK(offsetof(struct ummunotify_register_ioctl, user_cookie) == 16);
	CHECK(offsetof(struct ummunotify_register_ioctl, flags) == 24);
	CHECK(offsetof(struct ummunotify_register_ioctl, reserved) == 28);
	CHECK(sizeof(struct ummunotify_event) == 32);
	CHECK(offsetof(struct ummunotify_event, type) == 0);
	CHECK(offsetof(struct ummunotify_event, flags) == 4);
	CHECK(offsetof(struct ummunotify_event, hint_start) == 8);
	CHECK(offsetof(struct ummunotify_event, hint_end) == 16);
	CHECK(offsetof(struct ummunotify_event, user_cookie_counter) == 24);
	CHECK(UMMUNOTIFY_EVENT_TYPE_INVAL == 0 && UMMUNOTIFY_EVENT_TYPE_LAST == 1);
	CHECK(UMMUNOTIFY_EVENT_FLAG_HINT == 1);
	end_test(f0);
}

static void t_open_features(void)
{
	int f0 = failed, fd;
	struct stat st;
	uint32_t feat;

	begin("open read-only, device node, EXCHANGE_FEATURES");
	CHECK(stat(DEV, &st) == 0 && S_ISCHR(st.st_mode));
	CHECK((st.st_mode & 0777) == 0444, "mode %o", st.st_mode & 0777);
	fd = open(DEV, O_RDWR);
	CHECK(fd < 0 && errno == EACCES, "O_RDWR must be refused");
	if (fd >= 0)
		close(fd);
	fd = open(DEV, O_WRONLY);
	CHECK(fd < 0 && errno == EACCES, "O_WRONLY must be refused");
	if (fd >= 0)
		close(fd);
	fd = open(DEV, O_RDONLY);
	CHECK(fd >= 0);
	feat = 0xffffffffu;
	CHECK(ioctl(fd, UMMUNOTIFY_EXCHANGE_FEATURES, &feat) == 0);
	CHECK(feat == 0, "features %#x", feat);
	feat = 0;
	CHECK(ioctl(fd, UMMUNOTIFY_EXCHANGE_FEATURES, &feat) == 0 && feat == 0);
	CHECK(ioctl(fd, UMMUNOTIFY_EXCHANGE_FEATURES, (void *)8) == -1 && errno == EFAULT);
	CHECK(ioctl(fd, _IO('U', 9)) == -1 && errno == ENOTTY);
	CHECK(lseek(fd, 0, SEEK_SET) == -1 && errno == ESPIPE);
	close(fd);
	end_test(f0);
}

/* The test the driver's authors published (Documentation/ummunotify/umn-test.c). */
static void t_published(void)
{
	int f0 = failed, n;
	struct umn u;
	struct ummunotify_event ev[8];
	char *t;

	begin("published scenario: 3 pages, cookie 123, unmap the middle page");
	u = umn_open(O_NONBLOCK);
	t = map_anon(3, true);
	CHECK(reg(u.fd, t, P(t, 3), 123) == 0);
	CHECK(ctr(&u) == 0);
	CHECK(munmap(P(t, 1), pg) == 0);
	CHECK(ctr(&u) == 1, "counter %" PRIu64, ctr(&u));
	n = rd(u.fd, ev, 8);
	CHECK(n == 2, "%d events", n);
	if (n >= 1)
		CHECK(is_inval(&ev[0], 123, true, P(t, 1), P(t, 2)));
	if (n >= 2)
		CHECK(ev[1].type == UMMUNOTIFY_EVENT_TYPE_LAST && ev[1].user_cookie_counter == 1 &&
		      ev[1].flags == 0 && ev[1].hint_start == 0 && ev[1].hint_end == 0);
	if (failed != f0)
		dump(ev, n);
	CHECK(rd(u.fd, ev, 8) == -EAGAIN);
	CHECK(unreg(u.fd, 123) == 0);
	CHECK(munmap(t, pg) == 0);
	CHECK(ctr(&u) == 1, "counter %" PRIu64 " after unregistered unmap", ctr(&u));
	CHECK(rd(u.fd, ev, 8) == -EAGAIN);
	munmap(P(t, 2), pg);
	umn_close(&u);
	end_test(f0);
}

static void t_register_rules(void)
{
	int f0 = failed;
	struct umn u;
	char *t;

	begin("REGISTER/UNREGISTER validation");
	u = umn_open(O_NONBLOCK);
	t = map_anon(4, true);
	CHECK(reg_flags(u.fd, (uintptr_t)t, (uintptr_t)t, 1, 0, 0) == -EINVAL, "start == end");
	CHECK(reg_flags(u.fd, (uintptr_t)P(t, 1), (uintptr_t)t, 1, 0, 0) == -EINVAL, "start > end");
	CHECK(reg_flags(u.fd, (uintptr_t)t, (uintptr_t)P(t, 1), 1, 1, 0) == -EINVAL, "flags");
	CHECK(reg_flags(u.fd, (uintptr_t)t, (uintptr_t)P(t, 1), 1, 0x80000000u, 0) == -EINVAL);
	CHECK(reg_flags(u.fd, (uintptr_t)t, (uintptr_t)P(t, 1), 1, 0, 1) == -EINVAL, "reserved");
	CHECK(ioctl(u.fd, UMMUNOTIFY_REGISTER_REGION, (void *)8) == -1 && errno == EFAULT);
	CHECK(reg(u.fd, t, P(t, 1), 1) == 0);
	CHECK(reg(u.fd, P(t, 2), P(t, 3), 1) == -EINVAL, "same cookie twice");
	CHECK(reg(u.fd, t, P(t, 1), 2) == 0, "same range, other cookie is fine");
	CHECK(reg(u.fd, t, P(t, 4), 0) == 0, "cookie 0 is a cookie");
	CHECK(reg(u.fd, t, P(t, 4), UINT64_MAX) == 0);
	CHECK(unreg(u.fd, 3) == -EINVAL, "unknown cookie");
	CHECK(unreg(u.fd, 1) == 0);
	CHECK(unreg(u.fd, 1) == -EINVAL, "already unregistered");
	CHECK(reg(u.fd, P(t, 2), P(t, 3), 1) == 0, "cookie reusable after unregister");
	CHECK(ioctl(u.fd, UMMUNOTIFY_UNREGISTER_REGION, (void *)8) == -1 && errno == EFAULT);
	/* One munmap: one report for each of the four registrations. */
	CHECK(munmap(t, 4 * pg) == 0);
	CHECK(ctr(&u) == 1);
	CHECK(drain(u.fd) == 4);
	/* an invalidation of an unregistered cookie's range: nothing */
	umn_close(&u);
	end_test(f0);
}

static void t_two_invalidations(void)
{
	int f0 = failed, n;
	struct umn u;
	struct ummunotify_event ev[8];
	char *t;

	begin("two invalidations before read: no HINT, whole range");
	u = umn_open(O_NONBLOCK);
	t = map_anon(4, true);
	CHECK(reg(u.fd, t, P(t, 4), 77) == 0);
	CHECK(madvise(P(t, 1), pg, MADV_DONTNEED) == 0);
	CHECK(ctr(&u) == 1);
	CHECK(madvise(P(t, 3), pg, MADV_DONTNEED) == 0);
	CHECK(ctr(&u) == 2, "counter moves per invalidation");
	n = rd(u.fd, ev, 8);
	CHECK(n == 2, "one report, then LAST: %d", n);
	if (n >= 1)
		CHECK(is_inval(&ev[0], 77, false, t, P(t, 4)));
	if (n >= 2)
		CHECK(ev[1].type == UMMUNOTIFY_EVENT_TYPE_LAST && ev[1].user_cookie_counter == 2);
	if (failed != f0)
		dump(ev, n);
	/* after the read a new invalidation is hinted again */
	CHECK(madvise(P(t, 2), pg, MADV_DONTNEED) == 0);
	n = rd(u.fd, ev, 8);
	CHECK(n == 2 && is_inval(&ev[0], 77, true, P(t, 2), P(t, 3)) &&
	      ev[1].user_cookie_counter == 3);
	munmap(t, 4 * pg);
	umn_close(&u);
	end_test(f0);
}

static void t_overlap_clip(void)
{
	int f0 = failed, n, seen = 0;
	struct umn u;
	struct ummunotify_event ev[16];
	char *t;

	begin("overlapping registrations: one report each, hint clipped");
	u = umn_open(O_NONBLOCK);
	t = map_anon(8, true);
	CHECK(reg(u.fd, t, P(t, 8), 1) == 0);		/* whole */
	CHECK(reg(u.fd, P(t, 2), P(t, 4), 2) == 0);	/* inside */
	CHECK(reg(u.fd, P(t, 2), P(t, 4), 3) == 0);	/* duplicate range */
	CHECK(reg(u.fd, P(t, 3), P(t, 6), 4) == 0);	/* straddles */
	CHECK(reg(u.fd, P(t, 6), P(t, 8), 5) == 0);	/* disjoint from the event */
	CHECK(reg(u.fd, P(t, 1) + 100, P(t, 1) + 200, 6) == 0);	/* unaligned */
	CHECK(reg(u.fd, P(t, 5), P(t, 6), 7) == 0);	/* begins where the event ends */
	/* invalidate pages 1..5 */
	CHECK(madvise(P(t, 1), 4 * pg, MADV_DONTNEED) == 0);
	CHECK(ctr(&u) == 1, "one notifier event, one count: %" PRIu64, ctr(&u));
	n = rd(u.fd, ev, 16);
	CHECK(n == 6, "reports for 1,2,3,4,6 + LAST: %d", n);
	for (int i = 0; i < n; i++) {
		struct ummunotify_event *e = &ev[i];

		if (e->type != UMMUNOTIFY_EVENT_TYPE_INVAL)
			continue;
		seen |= 1 << e->user_cookie_counter;
		switch (e->user_cookie_counter) {
		case 1: CHECK(is_inval(e, 1, true, P(t, 1), P(t, 5))); break;
		case 2: CHECK(is_inval(e, 2, true, P(t, 2), P(t, 4))); break;
		case 3: CHECK(is_inval(e, 3, true, P(t, 2), P(t, 4))); break;
		case 4: CHECK(is_inval(e, 4, true, P(t, 3), P(t, 5))); break;
		case 6: CHECK(is_inval(e, 6, true, P(t, 1) + 100, P(t, 1) + 200)); break;
		default: CHECK(0, "unexpected cookie %" PRIu64, (uint64_t)e->user_cookie_counter);
		}
	}
	CHECK(seen == (1 << 1 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 6), "cookies seen %#x", seen);
	CHECK(n >= 1 && ev[n - 1].type == UMMUNOTIFY_EVENT_TYPE_LAST);
	if (failed != f0)
		dump(ev, n);
	/* end is exclusive: touching only the page after or before a range */
	CHECK(unreg(u.fd, 1) == 0);
	CHECK(madvise(P(t, 4), pg, MADV_DONTNEED) == 0);	/* hits 4 only (3..6) */
	n = rd(u.fd, ev, 16);
	CHECK(n == 2 && is_inval(&ev[0], 4, true, P(t, 4), P(t, 5)), "end exclusive: %d", n);
	CHECK(madvise(P(t, 0), pg, MADV_DONTNEED) == 0);	/* nobody */
	CHECK(ctr(&u) == 2 && rd(u.fd, ev, 16) == -EAGAIN);
	munmap(t, 8 * pg);
	umn_close(&u);
	end_test(f0);
}

static void t_unregister_drops(void)
{
	int f0 = failed, n;
	struct umn u;
	struct ummunotify_event ev[8];
	char *t;

	begin("unregister drops that registration's queued report");
	u = umn_open(O_NONBLOCK);
	t = map_anon(2, true);
	CHECK(reg(u.fd, t, P(t, 1), 10) == 0);
	CHECK(reg(u.fd, P(t, 1), P(t, 2), 11) == 0);
	CHECK(munmap(t, 2 * pg) == 0);
	CHECK(ctr(&u) == 1);
	CHECK(unreg(u.fd, 10) == 0);
	n = rd(u.fd, ev, 8);
	CHECK(n == 2 && is_inval(&ev[0], 11, true, P(t, 1), P(t, 2)) &&
	      ev[1].type == UMMUNOTIFY_EVENT_TYPE_LAST);
	/* dropping the only queued report: nothing to read */
	CHECK(unreg(u.fd, 11) == 0);
	t = map_anon(1, true);
	CHECK(reg(u.fd, t, P(t, 1), 12) == 0);
	CHECK(munmap(t, pg) == 0);
	CHECK(unreg(u.fd, 12) == 0);
	CHECK(rd(u.fd, ev, 8) == -EAGAIN);
	umn_close(&u);
	end_test(f0);
}

static void t_read_sizes(void)
{
	int f0 = failed, n;
	struct umn u;
	struct ummunotify_event ev[8];
	char small[64];
	char *t;

	begin("short reads, one-event reads, LAST without room, EFAULT loses nothing");
	u = umn_open(O_NONBLOCK);
	t = map_anon(3, true);
	CHECK(reg(u.fd, t, P(t, 1), 1) == 0);
	CHECK(reg(u.fd, P(t, 1), P(t, 2), 2) == 0);
	CHECK(reg(u.fd, P(t, 2), P(t, 3), 3) == 0);
	CHECK(read(u.fd, small, 31) == -1 && errno == EINVAL, "31 bytes");
	CHECK(read(u.fd, small, 3) == -1 && errno == EINVAL, "3 bytes");
	CHECK(read(u.fd, small, 0) == -1 && errno == EINVAL, "0 bytes");
	CHECK(munmap(t, 3 * pg) == 0);
	CHECK(read(u.fd, small, 31) == -1 && errno == EINVAL, "31 bytes with events queued");
	/* EFAULT, even half-way through the buffer: nothing consumed */
	{
		char *g = map_anon(2, true);

		mprotect(P(g, 1), pg, PROT_NONE);
		CHECK(read(u.fd, P(g, 1) - 32, 64) == -1 && errno == EFAULT, "second event faults");
		CHECK(read(u.fd, P(g, 1), 64) == -1 && errno == EFAULT, "first event faults");
		munmap(g, 2 * pg);
	}
	/* a 40-byte read returns exactly one 32-byte event */
	CHECK(read(u.fd, small, 40) == 32);
	memcpy(ev, small, 32);
	CHECK(ev[0].type == UMMUNOTIFY_EVENT_TYPE_INVAL && ev[0].user_cookie_counter == 1);
	/* room for exactly the two remaining reports: no LAST yet */
	n = rd(u.fd, ev, 2);
	CHECK(n == 2 && ev[0].user_cookie_counter == 2 && ev[1].user_cookie_counter == 3 &&
	      ev[1].type == UMMUNOTIFY_EVENT_TYPE_INVAL, "%d", n);
	/* the LAST is still owed, and comes at once (no blocking) */
	n = rd(u.fd, ev, 8);
	CHECK(n == 1 && ev[0].type == UMMUNOTIFY_EVENT_TYPE_LAST &&
	      ev[0].user_cookie_counter == ctr(&u), "%d", n);
	CHECK(rd(u.fd, ev, 8) == -EAGAIN);
	umn_close(&u);
	end_test(f0);
}

static void t_big_read(void)
{
	enum { NR = 300 };
	int f0 = failed, n, inval = 0;
	struct umn u;
	struct ummunotify_event *ev = calloc(NR + 100, sizeof(*ev));
	char *t;

	begin("a large read returns every report (more than one kernel chunk) and LAST");
	u = umn_open(O_NONBLOCK);
	t = map_anon(NR, false);
	for (int i = 0; i < NR; i++)
		CHECK(reg(u.fd, P(t, i), P(t, i + 1), 1000 + i) == 0);
	CHECK(munmap(t, NR * pg) == 0);
	CHECK(ctr(&u) == 1);
	n = rd(u.fd, ev, NR + 100);
	CHECK(n == NR + 1, "%d", n);
	for (int i = 0; i < n; i++)
		if (ev[i].type == UMMUNOTIFY_EVENT_TYPE_INVAL) {
			uint64_t c = ev[i].user_cookie_counter;

			inval++;
			CHECK(c >= 1000 && c < 1000 + NR &&
			      is_inval(&ev[i], c, true, P(t, c - 1000), P(t, c - 999)));
		}
	CHECK(inval == NR && ev[n - 1].type == UMMUNOTIFY_EVENT_TYPE_LAST &&
	      ev[n - 1].user_cookie_counter == 1);
	free(ev);
	umn_close(&u);
	end_test(f0);
}

static void t_nonblock_poll(void)
{
	int f0 = failed, ep, fd2;
	struct umn u;
	struct ummunotify_event ev[8];
	struct pollfd pfd;
	struct epoll_event ee = { .events = EPOLLIN }, out;
	fd_set rfds;
	struct timeval tv = { 0, 0 };
	char *t;

	begin("O_NONBLOCK, poll, select, epoll");
	u = umn_open(0);
	CHECK(fcntl(u.fd, F_SETFL, O_NONBLOCK) == 0);
	CHECK(rd(u.fd, ev, 8) == -EAGAIN, "empty O_NONBLOCK read");
	fd2 = open(DEV, O_RDONLY | O_NONBLOCK);
	CHECK(fd2 >= 0 && read(fd2, ev, 32) == -1 && errno == EAGAIN, "O_NONBLOCK at open");
	close(fd2);
	pfd = (struct pollfd){ .fd = u.fd, .events = POLLIN };
	CHECK(poll(&pfd, 1, 0) == 0, "not readable when empty");
	ep = epoll_create1(EPOLL_CLOEXEC);
	ee.data.fd = u.fd;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, u.fd, &ee) == 0);
	CHECK(epoll_wait(ep, &out, 1, 0) == 0);
	t = map_anon(1, true);
	CHECK(reg(u.fd, t, P(t, 1), 5) == 0);
	CHECK(munmap(t, pg) == 0);
	CHECK(poll(&pfd, 1, 1000) == 1 && (pfd.revents & POLLIN) && !(pfd.revents & POLLHUP));
	FD_ZERO(&rfds);
	FD_SET(u.fd, &rfds);
	CHECK(select(u.fd + 1, &rfds, NULL, NULL, &tv) == 1 && FD_ISSET(u.fd, &rfds));
	CHECK(epoll_wait(ep, &out, 1, 1000) == 1 && (out.events & EPOLLIN));
	CHECK(rd(u.fd, ev, 1) == 1);
	CHECK(poll(&pfd, 1, 0) == 1, "still readable: the LAST is owed");
	CHECK(rd(u.fd, ev, 8) == 1 && ev[0].type == UMMUNOTIFY_EVENT_TYPE_LAST);
	CHECK(poll(&pfd, 1, 0) == 0, "drained");
	CHECK(epoll_wait(ep, &out, 1, 0) == 0);
	close(ep);
	umn_close(&u);
	end_test(f0);
}

struct waker {
	void *addr;
	size_t len;
	long delay_ms;
};

static void *waker_thread(void *arg)
{
	struct waker *w = arg;

	msleep(w->delay_ms);
	munmap(w->addr, w->len);
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
}

static void *signaller(void *arg)
{
	msleep(150);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return NULL;
}

static void t_blocking(void)
{
	int f0 = failed, n;
	struct umn u;
	struct ummunotify_event ev[8];
	struct waker w;
	pthread_t th, self = pthread_self();
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	struct timespec a, b;
	char *t;

	begin("blocking read: woken by another thread's munmap; ended by a signal");
	u = umn_open(0);
	t = map_anon(2, true);
	CHECK(reg(u.fd, t, P(t, 2), 42) == 0);
	w = (struct waker){ t, 2 * pg, 200 };
	clock_gettime(CLOCK_MONOTONIC, &a);
	pthread_create(&th, NULL, waker_thread, &w);
	n = rd(u.fd, ev, 8);
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(th, NULL);
	CHECK(n == 2 && is_inval(&ev[0], 42, true, t, P(t, 2)) &&
	      ev[1].type == UMMUNOTIFY_EVENT_TYPE_LAST, "%d", n);
	CHECK((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= 150,
	      "the read blocked until the event");

	/* a signal without SA_RESTART ends a blocking read with EINTR */
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, &old);
	pthread_create(&th, NULL, signaller, &self);
	n = rd(u.fd, ev, 8);
	pthread_join(th, NULL);
	CHECK(n == -EINTR, "%d", n);
	sigaction(SIGUSR1, &old, NULL);
	umn_close(&u);
	end_test(f0);
}

static volatile sig_atomic_t sigio_count, sigio_code, sigio_fd;

static void on_sigio(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	sigio_count++;
	sigio_code = si->si_code;
	sigio_fd = si->si_fd;
}

static void t_sigio(void)
{
	int f0 = failed, sig = SIGRTMIN + 1;
	struct umn u;
	struct sigaction sa = { .sa_sigaction = on_sigio, .sa_flags = SA_SIGINFO }, old;
	char *t;

	begin("SIGIO (fasync) with F_SETSIG: si_code POLL_IN, si_fd");
	u = umn_open(O_NONBLOCK);
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, &old);
	CHECK(fcntl(u.fd, F_SETOWN, getpid()) == 0);
	CHECK(fcntl(u.fd, F_SETSIG, sig) == 0);
	CHECK(fcntl(u.fd, F_SETFL, O_NONBLOCK | O_ASYNC) == 0);
	t = map_anon(1, true);
	CHECK(reg(u.fd, t, P(t, 1), 9) == 0);
	sigio_count = 0;
	CHECK(munmap(t, pg) == 0);
	for (int i = 0; i < 100 && !sigio_count; i++)
		msleep(10);
	CHECK(sigio_count == 1, "%d signals", (int)sigio_count);
	CHECK(sigio_code == POLL_IN && sigio_fd == u.fd, "code %d fd %d", (int)sigio_code,
	      (int)sigio_fd);
	CHECK(drain(u.fd) == 1);
	/* O_ASYNC off: no more signals */
	CHECK(fcntl(u.fd, F_SETFL, O_NONBLOCK) == 0);
	t = map_anon(1, true);
	CHECK(reg(u.fd, t, P(t, 1), 10) == 0);
	CHECK(munmap(t, pg) == 0);
	msleep(50);
	CHECK(sigio_count == 1);
	umn_close(&u);
	sigaction(sig, &old, NULL);
	end_test(f0);
}

static void t_mmap_counter(void)
{
	int f0 = failed, fd;
	void *p;
	volatile uint64_t *c2;
	char *t;
	struct ummunotify_event ev[4];

	begin("counter page: read-only mmap at offset 0");
	fd = open(DEV, O_RDONLY | O_NONBLOCK);
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED && errno == EACCES, "PROT_WRITE MAP_SHARED");
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(p == MAP_FAILED && errno == EPERM, "PROT_WRITE MAP_PRIVATE");
	p = mmap(NULL, pg, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED, "PROT_EXEC");
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, pg);
	CHECK(p == MAP_FAILED && errno == EINVAL, "offset != 0");
	p = mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED && errno == EINVAL, "two pages");
	p = mmap(NULL, 8, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "8 bytes (one page) read-only");
	if (p == MAP_FAILED) {
		close(fd);
		end_test(f0);
		return;
	}
	CHECK(mprotect(p, pg, PROT_READ | PROT_WRITE) == -1 && errno == EACCES,
	      "no mprotect to writable");
	c2 = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(c2 != MAP_FAILED, "MAP_PRIVATE read-only is allowed");
	CHECK(mprotect((void *)c2, pg, PROT_READ | PROT_WRITE) == -1, "private: no COW either");
	CHECK(*(volatile uint64_t *)p == 0);
	for (int i = 8; i < pg; i += 8)
		if (*(volatile uint64_t *)((char *)p + i)) {
			CHECK(0, "rest of the page is zero");
			break;
		}
	t = map_anon(1, true);
	CHECK(reg(fd, t, P(t, 1), 1) == 0);
	CHECK(munmap(t, pg) == 0);
	CHECK(*(volatile uint64_t *)p == 1 && *c2 == 1, "both mappings see the count");
	CHECK(rd(fd, ev, 4) == 2 && ev[1].user_cookie_counter == *(volatile uint64_t *)p);
	/* the mapping keeps the file alive after close; the count keeps moving? no:
	 * nothing is registered any more, so just check it stays readable */
	close(fd);
	CHECK(*(volatile uint64_t *)p == 1);
	munmap(p, pg);
	munmap((void *)c2, pg);
	end_test(f0);
}

/*
 * Reads the counter at p, catching SIGBUS/SIGSEGV: returns 0 and the value,
 * or the signal number.
 */
static sigjmp_buf probe_jmp;
static volatile sig_atomic_t probe_sig;

static void on_probe_signal(int sig)
{
	probe_sig = sig;
	siglongjmp(probe_jmp, 1);
}

static int probe_read(const volatile uint64_t *p, uint64_t *value)
{
	struct sigaction sa = { .sa_handler = on_probe_signal }, old_bus, old_segv;
	int sig = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	probe_sig = 0;
	if (sigsetjmp(probe_jmp, 1) == 0)
		*value = __atomic_load_n(p, __ATOMIC_ACQUIRE);
	else
		sig = probe_sig;
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	return sig;
}

static void t_counter_dontneed(void)
{
	int f0 = failed, fd, sig, st;
	volatile uint64_t *p, *priv;
	uint64_t v = 0;
	char *t, *around;
	pid_t pid;
	struct ummunotify_event ev[4];

	begin("counter page: MADV_DONTNEED drops it, the next read maps it back (no SIGBUS)");
	fd = open(DEV, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
	priv = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
	if (fd < 0 || p == MAP_FAILED || priv == MAP_FAILED) {
		CHECK(0, "open and map the counter");
		end_test(f0);
		return;
	}
	t = map_anon(1, true);
	CHECK(reg(fd, t, P(t, 1), 1) == 0);
	CHECK(munmap(t, pg) == 0);
	CHECK(probe_read(p, &v) == 0 && v == 1, "mapped: %" PRIu64, v);

	CHECK(madvise((void *)p, pg, MADV_DONTNEED) == 0, "MADV_DONTNEED on the shared mapping");
	sig = probe_read(p, &v);
	CHECK(sig == 0, "the read after MADV_DONTNEED got signal %d", sig);
	CHECK(v == 1, "the same counter comes back: %" PRIu64, v);
	CHECK(madvise((void *)priv, pg, MADV_DONTNEED) == 0, "MADV_DONTNEED on a private mapping");
	sig = probe_read(priv, &v);
	CHECK(sig == 0 && v == 1, "private: signal %d, value %" PRIu64, sig, v);

	/* dropped again, then the counter moves: the page mapped back is the live one */
	CHECK(madvise((void *)p, pg, MADV_DONTNEED) == 0);
	t = map_anon(1, true);
	CHECK(reg(fd, t, P(t, 1), 2) == 0);
	CHECK(munmap(t, pg) == 0);
	CHECK(probe_read(p, &v) == 0 && v == 2, "counts on after a drop: %" PRIu64, v);
	CHECK(rd(fd, ev, 4) == 3 && ev[2].type == UMMUNOTIFY_EVENT_TYPE_LAST &&
	      ev[2].user_cookie_counter == 2);
	/* nothing registered from here on: the counter stays at 2 whatever gets unmapped */
	CHECK(unreg(fd, 1) == 0 && unreg(fd, 2) == 0);

	/* a library dropping a larger range that contains the page */
	around = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(around != MAP_FAILED &&
	      mmap(P(around, 1), pg, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == P(around, 1),
	      "the counter between two anonymous pages");
	CHECK(madvise(around, 3 * pg, MADV_DONTNEED) == 0, "one MADV_DONTNEED over all three");
	sig = probe_read((volatile uint64_t *)P(around, 1), &v);
	CHECK(sig == 0 && v == 2, "signal %d, value %" PRIu64, sig, v);
	munmap(around, 3 * pg);

	/* other ways of dropping the page table entry */
	CHECK(madvise((void *)p, pg, MADV_PAGEOUT) == 0 || errno == EINVAL, "MADV_PAGEOUT");
	CHECK(probe_read(p, &v) == 0 && v == 2, "after MADV_PAGEOUT");
	CHECK(madvise((void *)p, pg, MADV_COLD) == 0 || errno == EINVAL, "MADV_COLD");
	CHECK(probe_read(p, &v) == 0 && v == 2, "after MADV_COLD");
	CHECK(madvise((void *)p, pg, MADV_FREE) == -1 && errno == EINVAL,
	      "MADV_FREE is for anonymous memory only");

	/* a child inherits the mapping without the page table entry, and faults it in */
	CHECK(madvise((void *)p, pg, MADV_DONTNEED) == 0);
	pid = fork();
	if (pid == 0)
		_exit(probe_read(p, &v) == 0 && v == 2 ? 0 : 3);
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the child's read: status %#x", st);

	/* moved with mremap, dropped, read */
	{
		void *to = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *moved = mremap((void *)p, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, to);

		CHECK(moved == to, "mremap the counter page");
		if (moved == to) {
			p = moved;
			CHECK(madvise((void *)p, pg, MADV_DONTNEED) == 0);
			CHECK(probe_read(p, &v) == 0 && v == 2, "moved and dropped: %" PRIu64, v);
		}
	}
	munmap((void *)p, pg);
	munmap((void *)priv, pg);
	close(fd);
	end_test(f0);
}

/* ---------- operations: what each invalidates and which event it is ---------- */

struct opctx {
	char *base;		/* the mapping */
	size_t len;
	char *rs, *re;		/* registered range */
	char *hs, *he;		/* expected hint (exact range) or NULL: just "covered" */
	int fd;			/* file for file-backed ops */
	pid_t child;
	int pipe_go[2];
	int extra;
};

struct op {
	const char *name;
	int (*setup)(struct opctx *);	/* 0 ok, >0 skip (reason printed), <0 fail */
	int (*run)(struct opctx *);
	void (*cleanup)(struct opctx *);
	unsigned expect;		/* event bit(s) it must produce */
	bool uffd_sees;			/* would a userfaultfd monitor see it? */
};

static int setup_anon(struct opctx *c, size_t pages, bool populate)
{
	c->len = pages * pg;
	c->base = map_anon(pages, populate);
	c->rs = c->base;
	c->re = c->base + c->len;
	return 0;
}

static void cleanup_munmap(struct opctx *c)
{
	if (c->base)
		munmap(c->base, c->len);
}

static int s_anon4(struct opctx *c) { return setup_anon(c, 4, true); }

static int r_munmap(struct opctx *c)
{
	c->hs = P(c->base, 1);
	c->he = P(c->base, 3);
	return munmap(c->hs, 2 * pg);
}

static int r_dontneed(struct opctx *c)
{
	c->hs = P(c->base, 1);
	c->he = P(c->base, 2);
	return madvise(c->hs, pg, MADV_DONTNEED);
}

static int r_free(struct opctx *c)
{
	c->hs = P(c->base, 2);
	c->he = P(c->base, 4);
	return madvise(c->hs, 2 * pg, MADV_FREE);
}

static int r_mprotect(struct opctx *c)
{
	c->hs = P(c->base, 0);
	c->he = P(c->base, 2);
	return mprotect(c->hs, 2 * pg, PROT_READ);
}

static int r_map_fixed(struct opctx *c)
{
	c->hs = P(c->base, 1);
	c->he = P(c->base, 2);
	return mmap(c->hs, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		    -1, 0) == MAP_FAILED ? -1 : 0;
}

static int r_mremap_move(struct opctx *c)
{
	char *dst = mmap(NULL, c->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p;

	if (dst == MAP_FAILED)
		return -1;
	p = mremap(c->base, c->len, c->len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (p == MAP_FAILED)
		return -1;
	/* the old range is gone; two invalidations (page-table move, then the
	 * unmap of the old vma) are merged into one report: whole range */
	c->hs = NULL;
	c->base = dst;
	return 0;
}

static int r_mremap_shrink(struct opctx *c)
{
	void *p = mremap(c->base, c->len, 2 * pg, 0);

	if (p == MAP_FAILED)
		return -1;
	c->hs = P(c->base, 2);
	c->he = P(c->base, 4);
	c->len = 2 * pg;
	return 0;
}

static int r_mremap_onto(struct opctx *c)
{
	char *src = map_anon(1, true);

	c->hs = P(c->base, 3);
	c->he = P(c->base, 4);
	return mremap(src, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, c->hs) == MAP_FAILED ? -1 : 0;
}

/* fork write-protects the parent's private anonymous pages */
static int r_fork(struct opctx *c)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	c->hs = NULL;	/* the whole vma, clipped: equals the registration here */
	c->hs = c->base;
	c->he = c->base + c->len;
	return 0;
}

/* a COW break in the parent while the child still shares the page */
static int s_cow(struct opctx *c)
{
	char b;

	setup_anon(c, 4, true);
	if (pipe(c->pipe_go))
		return -1;
	c->child = fork();
	if (c->child < 0)
		return -1;
	if (c->child == 0) {
		close(c->pipe_go[1]);
		if (read(c->pipe_go[0], &b, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(c->pipe_go[0]);
	return 0;	/* registration happens after the fork */
}

static int r_cow(struct opctx *c)
{
	c->hs = P(c->base, 2);
	c->he = P(c->base, 3);
	*(volatile char *)c->hs = 1;
	return 0;
}

static void cleanup_cow(struct opctx *c)
{
	close(c->pipe_go[1]);
	waitpid(c->child, NULL, 0);
	cleanup_munmap(c);
}

static const char *pageout_file;

static int s_file(struct opctx *c)
{
	struct stat st;
	volatile char sink;

	if (!pageout_file) {
		printf("   (no file to map: set UMN_PAGEOUT_FILE)\n");
		return 1;
	}
	c->fd = open(pageout_file, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0 || fstat(c->fd, &st) || st.st_size < pg)
		return -1;
	c->len = (size_t)st.st_size & ~(size_t)(pg - 1);
	if (c->len > 64 * (size_t)pg)
		c->len = 64 * pg;
	c->base = mmap(NULL, c->len, PROT_READ, MAP_PRIVATE, c->fd, 0);
	if (c->base == MAP_FAILED)
		return -1;
	for (size_t i = 0; i < c->len; i += pg)
		sink = c->base[i];
	(void)sink;
	c->rs = c->base;
	c->re = c->base + c->len;
	return 0;
}

static int r_pageout(struct opctx *c)
{
	c->hs = NULL;	/* reclaim unmaps page by page: several invalidations */
	return madvise(c->base, c->len, MADV_PAGEOUT);
}

static void cleanup_file(struct opctx *c)
{
	cleanup_munmap(c);
	close(c->fd);
}

static int s_anon_swap(struct opctx *c)
{
	if (!have_swap()) {
		printf("   (no swap in this kernel: /proc/meminfo SwapFree is 0)\n");
		return 1;
	}
	return setup_anon(c, 4, true);
}

static int r_pageout_anon(struct opctx *c)
{
	int ret;

	c->hs = P(c->base, 1);
	c->he = P(c->base, 2);
	ret = madvise(c->hs, pg, MADV_PAGEOUT);
	if (ret)
		return ret;
	/* the page really went to swap (pagemap bit 62) */
	if (!(pagemap(c->hs) & (1ULL << 62))) {
		printf("   page not swapped out (pagemap %#" PRIx64 ")\n", pagemap(c->hs));
		return -1;
	}
	return 0;
}

/* THP collapse: khugepaged's work, done synchronously by MADV_COLLAPSE */
static int s_collapse(struct opctx *c)
{
	size_t huge = 2UL << 20;
	char *raw = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	if (raw == MAP_FAILED)
		return -1;
	p = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	/* keep the rest out of the way */
	if (p > raw)
		munmap(raw, p - raw);
	munmap(p + huge, raw + 2 * huge - (p + huge));
	c->base = p;
	c->len = huge;
	/* fault in small pages first (THP is "always" on the test kernel) */
	if (madvise(p, huge, MADV_NOHUGEPAGE))
		return -1;
	for (size_t i = 0; i < huge; i += pg)
		p[i] = 1;
	if (madvise(p, huge, MADV_HUGEPAGE))
		return -1;
	c->rs = p;
	c->re = p + huge;
	return 0;
}

static int r_collapse(struct opctx *c)
{
	c->hs = c->base;
	c->he = c->base + c->len;
	if (madvise(c->base, c->len, MADV_COLLAPSE)) {
		if (errno == EINVAL) {
			printf("   (MADV_COLLAPSE not supported)\n");
			return 1;
		}
		return -1;
	}
	return 0;
}

static int numa_target = -1;

static int s_migrate(struct opctx *c)
{
	if (numa_target < 0) {
		printf("   (one NUMA node: nowhere to migrate to)\n");
		return 1;
	}
	return setup_anon(c, 4, true);
}

static int r_migrate(struct opctx *c)
{
	void *pages[1] = { P(c->base, 1) };
	int nodes[1], status[1] = { -1 };
	long ret;

	/* where is it now?  move it to another node */
	if (syscall(SYS_move_pages, 0, 1, pages, NULL, status, 0) < 0 || status[0] < 0)
		return -1;
	nodes[0] = status[0] == 0 ? numa_target : 0;
	c->hs = P(c->base, 1);
	c->he = P(c->base, 2);
	ret = syscall(SYS_move_pages, 0, 1, pages, nodes, status, MPOL_MF_MOVE);
	if (ret < 0)
		return -1;
	if (status[0] != nodes[0]) {
		printf("   page not migrated: status %d, wanted node %d\n", status[0], nodes[0]);
		return -1;
	}
	return 0;
}

/* A shared file mapping truncated under us (memfd, tmpfs) */
static int s_memfd(struct opctx *c)
{
	c->fd = memfd_create("umn", MFD_CLOEXEC);
	if (c->fd < 0 || ftruncate(c->fd, 4 * pg))
		return -1;
	c->len = 4 * pg;
	c->base = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->base == MAP_FAILED)
		return -1;
	memset(c->base, 1, c->len);
	c->rs = c->base;
	c->re = c->base + c->len;
	return 0;
}

static int r_truncate(struct opctx *c)
{
	c->hs = P(c->base, 2);
	c->he = P(c->base, 4);
	return ftruncate(c->fd, 2 * pg);
}

static int r_madv_remove(struct opctx *c)
{
	c->hs = P(c->base, 1);
	c->he = P(c->base, 2);
	return madvise(c->hs, pg, MADV_REMOVE);
}

/* A dirty shared page of a real disk file written back: page_mkclean() */
static int s_writeback(struct opctx *c)
{
	const char *dir = getenv("UMN_SCRATCH_DIR");
	char path[512];

	if (!dir) {
		printf("   (no disk file system: set UMN_SCRATCH_DIR)\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/umn-writeback.dat", dir);
	c->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (c->fd < 0 || ftruncate(c->fd, 4 * pg))
		return -1;
	c->len = 4 * pg;
	c->base = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->base == MAP_FAILED)
		return -1;
	memset(c->base, 1, c->len);
	if (msync(c->base, c->len, MS_SYNC))	/* clean, before registering */
		return -1;
	c->base[pg] = 2;			/* dirty page 1 again */
	c->rs = c->base;
	c->re = c->base + c->len;
	return 0;
}

static int r_writeback(struct opctx *c)
{
	c->hs = P(c->base, 1);
	c->he = P(c->base, 2);
	return msync(c->base, c->len, MS_SYNC);
}

static const struct op ops[] = {
	{ "munmap", s_anon4, r_munmap, cleanup_munmap, 1 << EV_UNMAP, true },
	{ "madvise(MADV_DONTNEED)", s_anon4, r_dontneed, cleanup_munmap, 1 << EV_CLEAR, true },
	{ "madvise(MADV_FREE)", s_anon4, r_free, cleanup_munmap, 1 << EV_CLEAR, true },
	{ "mmap(MAP_FIXED) over the range", s_anon4, r_map_fixed, cleanup_munmap, 1 << EV_UNMAP, true },
	{ "mremap(MAYMOVE|FIXED) away", s_anon4, r_mremap_move, cleanup_munmap, 1 << EV_UNMAP, true },
	{ "mremap shrink", s_anon4, r_mremap_shrink, cleanup_munmap, 1 << EV_UNMAP, true },
	{ "mremap onto the range", s_anon4, r_mremap_onto, cleanup_munmap, 1 << EV_UNMAP, true },
	{ "mprotect(PROT_READ)", s_anon4, r_mprotect, cleanup_munmap, 1 << EV_PROTECTION_VMA, false },
	{ "fork (parent write-protected)", s_anon4, r_fork, cleanup_munmap, 1 << EV_PROTECTION_PAGE, false },
	{ "COW break in the parent after fork", s_cow, r_cow, cleanup_cow, 1 << EV_CLEAR, false },
	{ "ftruncate of a shared memfd mapping", s_memfd, r_truncate, cleanup_file, 1 << EV_CLEAR, false },
	{ "madvise(MADV_REMOVE) of a shared memfd", s_memfd, r_madv_remove, cleanup_file, 1 << EV_CLEAR, true },
	{ "msync(MS_SYNC) writeback of a shared page", s_writeback, r_writeback, cleanup_file, 1 << EV_PROTECTION_PAGE, false },
	{ "madvise(MADV_PAGEOUT) of file pages", s_file, r_pageout, cleanup_file, 1 << EV_CLEAR, false },
	{ "madvise(MADV_PAGEOUT) of anon (swap-out)", s_anon_swap, r_pageout_anon, cleanup_munmap, 1 << EV_CLEAR, false },
	{ "madvise(MADV_COLLAPSE) THP collapse", s_collapse, r_collapse, cleanup_munmap, 1 << EV_CLEAR, false },
	{ "move_pages() migration", s_migrate, r_migrate, cleanup_munmap, 1 << EV_CLEAR, false },
};

/* Run op once; returns counter delta (-1 failure, -2 skip). */
static int run_op(const struct op *op, struct umn *u, bool check, const char *label)
{
	struct opctx c = { .fd = -1 };
	struct ummunotify_event ev[16];
	uint64_t c0;
	int r, n, delta, f0 = failed;

	r = op->setup(&c);
	if (r > 0) {
		return -2;
	}
	if (!CHECK(r == 0, "%s setup", label))
		return -1;
	CHECK(reg(u->fd, c.rs, c.re, 555) == 0);
	c0 = ctr(u);
	r = op->run(&c);
	if (r > 0) {
		unreg(u->fd, 555);
		op->cleanup(&c);
		return -2;
	}
	CHECK(r == 0, "%s", label);
	delta = (int)(ctr(u) - c0);
	if (check) {
		CHECK(delta >= 1, "%s: the counter moved (%d)", label, delta);
		n = rd(u->fd, ev, 16);
		CHECK(n == 2 && ev[0].type == UMMUNOTIFY_EVENT_TYPE_INVAL &&
		      ev[0].user_cookie_counter == 555 && ev[1].type == UMMUNOTIFY_EVENT_TYPE_LAST &&
		      ev[1].user_cookie_counter == ctr(u), "%s: one INVAL then LAST (%d)", label, n);
		if (n >= 1 && c.hs) {
			if (delta == 1)
				CHECK(is_inval(&ev[0], 555, true, c.hs, c.he),
				      "%s: HINT with exactly the invalidated range", label);
			else
				CHECK(ev[0].flags == 0 && ev[0].hint_start == (uintptr_t)c.rs &&
				      ev[0].hint_end == (uintptr_t)c.re, "%s: merged: whole range", label);
		} else if (n >= 1) {
			CHECK(ev[0].hint_start >= (uintptr_t)c.rs && ev[0].hint_end <= (uintptr_t)c.re &&
			      ev[0].hint_start < ev[0].hint_end, "%s: hint inside the registration", label);
		}
		if (failed != f0)
			dump(ev, n);
	} else {
		drain(u->fd);
	}
	CHECK(unreg(u->fd, 555) == 0);
	op->cleanup(&c);
	return delta;
}

static bool can_set_mask;

static void t_operations(void)
{
	struct umn u;

	u = umn_open(O_NONBLOCK);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		const struct op *op = &ops[i];
		int f0 = failed, d;
		unsigned seen = 0;
		char name[128];

		snprintf(name, sizeof(name), "event: %s", op->name);
		begin(name);
		d = run_op(op, &u, true, op->name);
		if (d == -2) {
			skip("not possible in this kernel/VM");
			continue;
		}
		if (can_set_mask && d > 0) {
			/* which mmu_notifier_event(s) did it produce? one bit at a time */
			for (int b = 0; b < EV_COUNT; b++) {
				write_param("event_mask", 1u << b);
				if (run_op(op, &u, false, op->name) > 0)
					seen |= 1u << b;
			}
			write_param("event_mask", 0xff);
			CHECK((seen & op->expect) == op->expect, "%s: expected %s, saw %#x", op->name,
			      ev_names[__builtin_ctz(op->expect)], seen);
		}
		printf("%s %-44s %d invalidation%s, range->event:", failed == f0 ? "ok  " : "FAILED",
		       op->name, d, d == 1 ? "" : "s");
		for (int b = 0; b < EV_COUNT; b++)
			if (seen & (1u << b))
				printf(" %s", ev_names[b]);
		printf("%s%s\n", can_set_mask ? "" : " (not surveyed)",
		       op->uffd_sees ? "" : "  [userfaultfd cannot see this]");
		fflush(stdout);
	}
	umn_close(&u);
}

static void t_event_mask(void)
{
	int f0 = failed;
	struct umn u;
	char *t;

	begin("event_mask parameter filters by range->event");
	if (!can_set_mask) {
		skip("cannot write " PARAMS "event_mask (not root?)");
		return;
	}
	u = umn_open(O_NONBLOCK);
	t = map_anon(2, true);
	CHECK(reg(u.fd, t, P(t, 2), 1) == 0);
	CHECK(write_param("event_mask", 0xff & ~(1u << EV_PROTECTION_VMA)) == 0);
	CHECK(mprotect(t, 2 * pg, PROT_READ) == 0);
	CHECK(ctr(&u) == 0, "mprotect filtered out");
	CHECK(madvise(t, pg, MADV_DONTNEED) == 0);
	CHECK(ctr(&u) == 1, "others still reported");
	CHECK(write_param("event_mask", 0xff) == 0);
	CHECK(read_param("event_mask") == 0xff);
	CHECK(mprotect(t, 2 * pg, PROT_READ | PROT_WRITE) == 0);
	CHECK(ctr(&u) == 2, "mprotect reported by default");
	munmap(t, 2 * pg);
	umn_close(&u);
	end_test(f0);
}

/* fork: the child shares the fd but its own mm is not watched */
static void t_fork_child(void)
{
	int f0 = failed, go[2], done[2], st;
	struct umn u;
	char *t, b = 0;
	pid_t pid;

	begin("fork: the fd still watches the parent; the child's unmaps are not reported");
	u = umn_open(O_NONBLOCK);
	t = map_anon(2, true);
	if (pipe(go) || pipe(done))
		exit(2);
	pid = fork();
	if (pid == 0) {
		/* child: same file, registers in the *parent's* mm */
		if (read(go[0], &b, 1) != 1)
			_exit(3);
		munmap(t, 2 * pg);		/* the child's own mm */
		if (write(done[1], &b, 1) != 1)
			_exit(4);
		_exit(*u.counter == 0 ? 0 : 5);	/* the inherited counter mapping works */
	}
	/* register after the fork, so the fork's write-protect is not counted */
	CHECK(reg(u.fd, t, P(t, 2), 3) == 0);
	CHECK(write(go[1], &b, 1) == 1 && read(done[0], &b, 1) == 1);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child status %#x", st);
	CHECK(ctr(&u) == 0, "child's munmap not seen: %" PRIu64, ctr(&u));
	CHECK(munmap(t, 2 * pg) == 0);
	CHECK(ctr(&u) == 1, "the parent's is");
	CHECK(drain(u.fd) == 1);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	umn_close(&u);
	end_test(f0);
}

static int send_fd(int sock, int fd)
{
	char c = 'F';
	struct iovec iov = { &c, 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c;
	struct iovec iov = { &c, 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

struct blocked_read {
	int fd;
	int result;
};

static void *blocked_reader(void *arg)
{
	struct blocked_read *br = arg;
	struct ummunotify_event ev[4];

	br->result = rd(br->fd, ev, 4);
	return NULL;
}

/* The file outlives the mm: fd passed to another process, opener exits. */
static void t_exit(void)
{
	int f0 = failed, sv[2], fd, n, st;
	struct ummunotify_event ev[8];
	struct blocked_read br;
	struct pollfd pfd;
	pthread_t th;
	volatile uint64_t *cnt;
	pid_t pid;
	char b = 0;

	begin("exit of the watched process: queued events stay readable, then EOF/POLLHUP/ENODEV");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		exit(2);
	pid = fork();
	if (pid == 0) {
		struct umn cu = umn_open(0);
		char *t = map_anon(3, true);

		if (reg(cu.fd, t, P(t, 3), 99) || munmap(P(t, 2), pg) || send_fd(sv[1], cu.fd))
			_exit(3);
		if (read(sv[1], &b, 1) != 1)	/* wait until told to exit */
			_exit(4);
		_exit(0);
	}
	fd = recv_fd(sv[0]);
	CHECK(fd >= 0);
	cnt = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(cnt != MAP_FAILED && *cnt == 1, "a non-opener can map the counter");
	n = rd(fd, ev, 8);
	CHECK(n == 2 && ev[0].user_cookie_counter == 99 && ev[0].flags == UMMUNOTIFY_EVENT_FLAG_HINT &&
	      ev[0].hint_end - ev[0].hint_start == (uint64_t)pg && ev[1].type == UMMUNOTIFY_EVENT_TYPE_LAST,
	      "a non-opener reads the opener's events: %d", n);
	/* block in read() while the watched process exits: the read ends with 0 */
	br.fd = fd;
	br.result = -12345;
	pthread_create(&th, NULL, blocked_reader, &br);
	msleep(100);
	CHECK(write(sv[0], &b, 1) == 1);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%#x", st);
	pthread_join(th, NULL);
	CHECK(br.result == 0, "blocked read returns 0 (EOF) at exit: %d", br.result);
	CHECK(rd(fd, ev, 8) == 0, "EOF");
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP) && !(pfd.revents & POLLIN));
	CHECK(reg_flags(fd, 4096, 8192, 1, 0, 0) == -ENODEV, "no registering in a dead mm");
	CHECK(unreg(fd, 99) == 0, "unregistering still works");
	CHECK(*cnt == 1);
	munmap((void *)cnt, pg);
	close(fd);
	close(sv[0]);
	close(sv[1]);
	end_test(f0);
}

/* exec replaces the mm: an inherited fd watches the old, dead one */
static int after_exec(int fd)
{
	struct ummunotify_event ev[8];
	int n = rd(fd, ev, 8);

	if (n != 2 || ev[0].user_cookie_counter != 31 || ev[1].type != UMMUNOTIFY_EVENT_TYPE_LAST)
		return 10;
	if (rd(fd, ev, 8) != 0)
		return 11;
	if (reg_flags(fd, 4096, 8192, 1, 0, 0) != -ENODEV)
		return 12;
	return 0;
}

static void t_exec(void)
{
	int f0 = failed, st;
	pid_t pid;

	begin("exec: the inherited fd's mm is gone (EOF, ENODEV)");
	pid = fork();
	if (pid == 0) {
		int fd = open(DEV, O_RDONLY);	/* no O_CLOEXEC */
		char *t = map_anon(1, true), arg[16];

		if (fd < 0 || reg(fd, t, P(t, 1), 31) || munmap(t, pg))
			_exit(20);
		snprintf(arg, sizeof(arg), "%d", fd);
		execl("/proc/self/exe", "umn-test", "--after-exec", arg, (char *)NULL);
		_exit(21);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	end_test(f0);
}

/* The counter is bumped after the report is queued: see it, then find it. */
struct order {
	struct umn *u;
	_Atomic uint64_t acked;	/* last LAST counter the reader got */
	atomic_int stop;
	int iters;
	int misses, hits;
};

static void *order_reader(void *arg)
{
	struct order *o = arg;
	struct ummunotify_event ev[8];
	uint64_t seen = 0;

	while (!atomic_load(&o->stop)) {
		uint64_t c = ctr(o->u);
		int n;

		if (c == seen)
			continue;
		n = rd(o->u->fd, ev, 8);
		if (n <= 0) {
			/* allowed only if a previous read already took it */
			if (n == -EAGAIN && c <= seen)
				continue;
			o->misses++;
		} else {
			o->hits++;
			for (int i = 0; i < n; i++)
				if (ev[i].type == UMMUNOTIFY_EVENT_TYPE_LAST) {
					seen = ev[i].user_cookie_counter;
					atomic_store(&o->acked, seen);
				}
		}
	}
	return NULL;
}

static void t_ordering(void)
{
	int f0 = failed;
	struct umn u;
	struct order o = { 0 };
	pthread_t th;

	begin("ordering: a reader that sees the new counter finds the event (threads)");
	u = umn_open(O_NONBLOCK);
	o.u = &u;
	o.iters = 2000;
	pthread_create(&th, NULL, order_reader, &o);
	for (int i = 0; i < o.iters; i++) {
		char *t = map_anon(1, true);

		CHECK(reg(u.fd, t, P(t, 1), i) == 0);
		CHECK(munmap(t, pg) == 0);
		/* let the reader take it before unregistering (which drops it) */
		while (atomic_load(&o.acked) < (uint64_t)i + 1)
			sched_yield();
		CHECK(unreg(u.fd, i) == 0);
	}
	atomic_store(&o.stop, 1);
	pthread_join(th, NULL);
	CHECK(o.misses == 0, "%d times the counter moved but read() found nothing", o.misses);
	CHECK(ctr(&u) == (uint64_t)o.iters);
	printf("   %d reads found their event, %d misses\n", o.hits, o.misses);
	umn_close(&u);
	end_test(f0);
}

/* Stress: registrations, invalidations and reads racing (for lockdep/KASAN). */
struct stress {
	struct umn *u;
	atomic_int stop;
	int id;
	long reads;
};

static void *stress_reader(void *arg)
{
	struct stress *s = arg;
	struct ummunotify_event ev[64];
	struct pollfd pfd = { .fd = s->u->fd, .events = POLLIN };

	while (!atomic_load(&s->stop)) {
		if (poll(&pfd, 1, 10) > 0 && rd(s->u->fd, ev, 1 + (s->reads % 64)) > 0)
			s->reads++;
	}
	return NULL;
}

static void *stress_worker(void *arg)
{
	struct stress *s = arg;
	uint64_t base = (uint64_t)s->id << 32;

	for (int i = 0; i < 400; i++) {
		char *t = map_anon(8, true);

		for (int k = 0; k < 8; k++)
			reg(s->u->fd, P(t, k), P(t, 8), base + i * 8 + k);
		madvise(t, 4 * pg, MADV_DONTNEED);
		mprotect(P(t, 4), pg, PROT_READ);
		for (int k = 0; k < 8; k += 2)
			unreg(s->u->fd, base + i * 8 + k);
		munmap(t, 8 * pg);
		for (int k = 1; k < 8; k += 2)
			unreg(s->u->fd, base + i * 8 + k);
	}
	return NULL;
}

static void t_stress(void)
{
	int f0 = failed;
	struct umn u;
	struct stress r1, r2, w[3];
	pthread_t tr1, tr2, tw[3];

	begin("stress: 3 threads register/invalidate/unregister, 2 readers");
	u = umn_open(O_NONBLOCK);
	r1 = (struct stress){ .u = &u };
	r2 = (struct stress){ .u = &u };
	pthread_create(&tr1, NULL, stress_reader, &r1);
	pthread_create(&tr2, NULL, stress_reader, &r2);
	for (int i = 0; i < 3; i++) {
		w[i] = (struct stress){ .u = &u, .id = i + 1 };
		pthread_create(&tw[i], NULL, stress_worker, &w[i]);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(tw[i], NULL);
	atomic_store(&r1.stop, 1);
	atomic_store(&r2.stop, 1);
	pthread_join(tr1, NULL);
	pthread_join(tr2, NULL);
	drain(u.fd);
	CHECK(ctr(&u) > 0);
	CHECK(rd(u.fd, (struct ummunotify_event[1]){}, 1) == -EAGAIN);
	printf("   counter %" PRIu64 ", %ld + %ld reads\n", ctr(&u), r1.reads, r2.reads);
	umn_close(&u);
	end_test(f0);
}

static void t_cap(void)
{
	int f0 = failed, fd, ret = 0;
	long old = read_param("max_regions"), cap;
	char *t = map_anon(1, false);

	begin("registration cap (max_regions): ENOSPC beyond it");
	CHECK(old == 65536, "default max_regions is 65536 (%ld)", old);
	cap = write_param("max_regions", 8) == 0 ? 8 : old;
	if (cap != 8)
		printf("   (cannot lower max_regions: registering %ld)\n", cap);
	fd = open(DEV, O_RDONLY | O_NONBLOCK);
	for (long i = 0; i < cap && !ret; i++)
		ret = reg(fd, t, P(t, 1), i);
	CHECK(ret == 0, "registering up to the cap: %d", ret);
	CHECK(reg(fd, t, P(t, 1), cap) == -ENOSPC, "one past the cap");
	CHECK(reg(fd, t, P(t, 1), 0) == -EINVAL, "duplicate is still EINVAL");
	CHECK(unreg(fd, 3) == 0 && reg(fd, t, P(t, 1), cap) == 0, "room again after unregister");
	/* the cap is per file */
	{
		int fd2 = open(DEV, O_RDONLY);

		CHECK(reg(fd2, t, P(t, 1), 1) == 0);
		close(fd2);
	}
	/* every registration has one queued report at most */
	CHECK(munmap(t, pg) == 0);
	t = map_anon(1, true);
	CHECK(drain(fd) == cap);
	close(fd);
	if (cap == 8)
		CHECK(write_param("max_regions", old) == 0);
	munmap(t, pg);
	end_test(f0);
}

/* close with live registrations and queued reports frees everything */
static void t_close_leak(void)
{
	enum { NREG = 20000, CYCLES = 6 };
	int f0 = failed;
	long before = 0, after;
	char *t;

	begin("close with registrations and queued reports: nothing leaks");
	for (int cycle = -1; cycle < CYCLES; cycle++) {
		int fd = open(DEV, O_RDONLY | O_NONBLOCK);

		if (cycle == 0) {
			sync();
			before = meminfo_kb("SUnreclaim");
		}
		t = map_anon(64, true);
		for (int i = 0; i < NREG; i++)
			if (reg(fd, P(t, i % 64), P(t, i % 64 + 1), i)) {
				CHECK(0, "register %d", i);
				break;
			}
		munmap(t, 32 * pg);	/* half of them get a queued report */
		close(fd);
		munmap(P(t, 32), 32 * pg);
	}
	after = meminfo_kb("SUnreclaim");
	printf("   SUnreclaim %ld kB -> %ld kB after %d cycles of %d registrations\n", before, after,
	       CYCLES, NREG);
	CHECK(read_param("nr_regions") == 0, "live registrations after close: %ld",
	      read_param("nr_regions"));
	CHECK(read_param("nr_files") == 0, "open files: %ld", read_param("nr_files"));
	/*
	 * A leak would be >= CYCLES * NREG * 128 bytes = 15 MB.  KASAN's
	 * quarantine holds freed objects for a while, so only without it.
	 */
	if (!kasan())
		CHECK(after - before < 4096, "unreclaimable slab grew by %ld kB", after - before);
	end_test(f0);
}

static void find_numa_target(void)
{
	char path[64];

	/* a second node to migrate to, if the VM has one */
	for (int n = 1; n < 8; n++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
		if (access(path, F_OK) == 0) {
			numa_target = n;
			return;
		}
	}
}

/*
 * Leave the files to process exit: exit_mmap() runs our ->release first,
 * then the files are closed.  guest.sh checks nr_files/nr_regions and rmmod.
 */
static int exit_with_open_files(void)
{
	for (int f = 0; f < 3; f++) {
		int fd = open(DEV, O_RDONLY | O_NONBLOCK);
		char *t = map_anon(16, true);

		if (fd < 0 || mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
			return 1;
		for (int i = 0; i < 16; i++)
			if (reg(fd, P(t, i), P(t, 16), i))
				return 1;
		munmap(t, 8 * pg);	/* queued reports */
		if (f == 2 && fork() == 0) {
			/* a child holding the fd outlives the opener briefly */
			msleep(100);
			_exit(0);
		}
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	pg = sysconf(_SC_PAGESIZE);
	if (argc == 3 && !strcmp(argv[1], "--after-exec"))
		return after_exec(atoi(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "--exit-with-open-files"))
		return exit_with_open_files();
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (access(DEV, F_OK)) {
		printf("SKIP: %s does not exist (module not loaded)\n0 passed, 0 failed\n", DEV);
		return 77;
	}
	pageout_file = getenv("UMN_PAGEOUT_FILE");
	if (!pageout_file && access("kmod/ummunotify/test/umn-test.c", R_OK) == 0)
		pageout_file = "kmod/ummunotify/test/umn-test.c";
	can_set_mask = write_param("event_mask", 0xff) == 0;
	find_numa_target();
	printf("umn-test: page %ld, swap %s, numa target %d, event_mask %s\n", pg,
	       have_swap() ? "yes" : "no", numa_target, can_set_mask ? "writable" : "read-only");

	t_abi();
	t_open_features();
	t_published();
	t_register_rules();
	t_two_invalidations();
	t_overlap_clip();
	t_unregister_drops();
	t_read_sizes();
	t_big_read();
	t_nonblock_poll();
	t_blocking();
	t_sigio();
	t_mmap_counter();
	t_counter_dontneed();
	t_operations();
	t_event_mask();
	t_fork_child();
	t_exit();
	t_exec();
	t_ordering();
	t_stress();
	t_cap();
	t_close_leak();

	printf("%d checks skipped\n", skipped);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
