// SPDX-License-Identifier: MIT
/*
 * The C reference for bench/ummunotify.ts: the userfaultfd backend's
 * mechanism with a C thread as the monitor. Same features (EVENT_UNMAP |
 * EVENT_REMOVE | EVENT_REMAP, WP mode, no page write-protected), same
 * protocol (poll, mark the counter BUSY, read up to 64 messages, apply each to
 * a sorted table under a lock, publish the counter), so that the difference
 * from ummu is the cost of JavaScript, not of a different design.
 *
 *   cc -O2 -pthread -o ummunotify_monitor ummunotify_monitor.c
 *   ./ummunotify_monitor PAGES REPS
 *
 * Prints one JSON line: the median over REPS of the time per munmap() of a
 * watched 4 KiB page (each page its own registration), and of a plain
 * munmap() of an unwatched one, in ns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PS 4096
#define BUSY (1ULL << 63)

static int uffd, wakefd;
static _Atomic uint64_t published;
static uint64_t gen;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The table: registrations sorted by start (one page each here), with a report flag. */
static uint64_t *starts, *ends;
static unsigned char *queued;
static size_t nregs;

static void die(const char *what) {
	fprintf(stderr, "ummunotify_monitor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static size_t first_at_least(uint64_t x) {
	size_t lo = 0, hi = nregs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (starts[mid] < x) lo = mid + 1;
		else hi = mid;
	}
	return lo;
}

static void invalidate(uint64_t s, uint64_t e) {
	int hit = 0;
	for (size_t i = first_at_least(s > PS ? s - PS : 0); i < nregs && starts[i] < e; i++) {
		if (ends[i] <= s) continue;
		hit = 1;
		queued[i] = queued[i] ? 2 : 1;
	}
	if (hit) gen++;
}

static void *monitor(void *arg) {
	(void)arg;
	struct uffd_msg msgs[64];
	struct pollfd fds[2] = {{uffd, POLLIN, 0}, {wakefd, POLLIN, 0}};
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR) continue;
			die("poll");
		}
		if (fds[1].revents) return NULL;
		if (!(fds[0].revents & POLLIN)) continue;
		atomic_store(&published, gen | BUSY); /* before read() releases anyone */
		for (;;) {
			ssize_t n = read(uffd, msgs, sizeof msgs);
			if (n <= 0) break;
			pthread_mutex_lock(&lock);
			for (ssize_t i = 0; i < n / (ssize_t)sizeof msgs[0]; i++) {
				struct uffd_msg *m = &msgs[i];
				if (m->event == UFFD_EVENT_UNMAP || m->event == UFFD_EVENT_REMOVE)
					invalidate(m->arg.remove.start, m->arg.remove.end);
				else if (m->event == UFFD_EVENT_REMAP)
					invalidate(m->arg.remap.from, m->arg.remap.from + m->arg.remap.len);
			}
			pthread_mutex_unlock(&lock);
			if (n < (ssize_t)sizeof msgs) break;
		}
		atomic_store(&published, gen);
	}
}

static double now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One rep: map `pages` pages plus a guard page, register each (or not), time munmap of each. */
static double run(size_t pages, int watched) {
	char *a = mmap(NULL, (pages + 1) * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED) die("mmap");
	memset(a, 1, (pages + 1) * PS);
	if (watched) {
		pthread_mutex_lock(&lock);
		nregs = pages;
		for (size_t i = 0; i < pages; i++) {
			starts[i] = (uint64_t)(a + i * PS);
			ends[i] = starts[i] + PS;
			queued[i] = 0;
		}
		pthread_mutex_unlock(&lock);
		for (size_t i = 0; i < pages; i++) {
			struct uffdio_register r = {.range = {(uint64_t)(a + i * PS), PS}, .mode = UFFDIO_REGISTER_MODE_WP};
			if (ioctl(uffd, UFFDIO_REGISTER, &r)) die("UFFDIO_REGISTER");
		}
	}
	uint64_t g0 = atomic_load(&published) & ~BUSY;
	double t0 = now_ns();
	for (size_t i = 0; i < pages; i++)
		if (munmap(a + i * PS, PS)) die("munmap");
	double t = (now_ns() - t0) / pages;
	if (watched) {
		/* The check ummu makes after each munmap: the counter moved (waits out BUSY). */
		uint64_t g;
		while ((g = atomic_load(&published)) & BUSY) sched_yield();
		if (g - g0 != pages) {
			fprintf(stderr, "ummunotify_monitor: counter moved %llu, not %zu\n", (unsigned long long)(g - g0), pages);
			exit(1);
		}
		pthread_mutex_lock(&lock);
		nregs = 0;
		pthread_mutex_unlock(&lock);
	}
	munmap(a + pages * PS, PS);
	return t;
}

int main(int argc, char **argv) {
	size_t pages = argc > 1 ? strtoul(argv[1], NULL, 0) : 2000;
	int reps = argc > 2 ? atoi(argv[2]) : 7;
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) die("userfaultfd");
	struct uffdio_api api = {.api = UFFD_API,
				 .features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE |
					     UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_PAGEFAULT_FLAG_WP};
	if (ioctl(uffd, UFFDIO_API, &api)) die("UFFDIO_API");
	wakefd = eventfd(0, EFD_CLOEXEC);
	starts = calloc(pages, 8);
	ends = calloc(pages, 8);
	queued = calloc(pages, 1);
	pthread_t t;
	pthread_create(&t, NULL, monitor, NULL);

	double *w = calloc(reps, sizeof *w), *p = calloc(reps, sizeof *p);
	run(pages, 1); /* warm-up */
	run(pages, 0);
	for (int r = 0; r < reps; r++) {
		w[r] = run(pages, 1);
		p[r] = run(pages, 0);
	}
	qsort(w, reps, sizeof *w, cmp);
	qsort(p, reps, sizeof *p, cmp);
	uint64_t one = 1;
	if (write(wakefd, &one, 8) != 8) die("write(eventfd)");
	pthread_join(t, NULL);
	printf("{\"watched_ns\":%.1f,\"plain_ns\":%.1f,\"pages\":%zu,\"reps\":%d}\n", w[reps / 2], p[reps / 2], pages, reps);
	return 0;
}
