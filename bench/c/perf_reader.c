// SPDX-License-Identifier: MIT
/*
 * The C reference for bench/perf.ts, and the workload both readers watch.
 *
 * The workload (`perf_reader workload PAGES ROUNDS`) prints "ready\n" once it
 * is loaded, waits for one byte on stdin, then ROUNDS times maps PAGES fresh
 * anonymous pages, writes one byte to each (a page fault each) and unmaps
 * them; then it exits. bench/perf.ts spawns it for the JS reader, and this
 * program spawns the same binary (fork + exec of itself) for the C reader, so
 * both readers see the same process doing the same faults.
 *
 * The reader opens the attr bench/perf.ts opens: the page-faults software
 * event on the workload's thread (pid = the workload, cpu = -1), sample period
 * 1, PERF_SAMPLE_IP|TID|TIME|ADDR, read_format 0, opened disabled, woken every
 * quarter ring (watermark), a ring of 1 + RING_PAGES pages. It reads it the way
 * <linux/perf_event.h> says (and src/perf/ring.ts does): data_head with an
 * acquire load, the records, data_tail with a release store (every quarter
 * ring, and at the end of a drain); a record that wraps the end of the data
 * area is copied into a scratch buffer first. For each SAMPLE it decodes ip,
 * pid/tid, time and addr, adds them into a checksum (so nothing is optimized
 * away) and checks what bench/perf.ts checks: the tid is the workload's, time
 * never goes back, and it counts page-aligned addresses (the workload's
 * writes). LOST records add up their count; `lost` is the event's count less
 * the samples read (the kernel counts every fault, and the drops after its
 * last LOST record, e.g. when the task exits with the ring full, have none).
 *
 *   cc -O2 -o perf_reader bench/c/perf_reader.c
 *   ./perf_reader stream RING_PAGES PAGES ROUNDS
 *       the workload runs while this reader drains, waiting in poll(2)
 *       between drains; prints one JSON line: records, samples, lost,
 *       seconds (start byte to the last drain), records_per_s, ...
 *   ./perf_reader drain RING_PAGES PAGES ROUNDS REPS
 *       REPS times: the workload faults PAGES pages ROUNDS times into a ring
 *       large enough for all of them (40 bytes a sample) and exits; then only
 *       the drain of the full ring is timed. Prints the median drain's records_per_s and
 *       ns_per_record, and every rep's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PS 4096

static void die(const char *what) {
	fprintf(stderr, "perf_reader: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the workload ------------------------------------------------------------------------- */

static int workload(long pages, long rounds) {
	char go;
	printf("ready\n");
	fflush(stdout);
	if (read(0, &go, 1) != 1) return 2; /* the reader went away */
	size_t len = (size_t)pages * PS;
	for (long r = 0; r < rounds; r++) {
		volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) die("mmap");
		for (long i = 0; i < pages; i++) p[i * PS] = (char)i;
		munmap((void *)p, len);
	}
	return 0;
}

/* ---- the reader --------------------------------------------------------------------------- */

struct ring {
	int fd;
	void *base;
	size_t len;
	struct perf_event_mmap_page *ctl;
	unsigned char *data;
	uint64_t size, tail, published;
	unsigned char scratch[65536];
};

struct tally {
	uint64_t records, samples, lost, checksum, aligned, foreign, backwards, last_time;
	uint32_t pid;
};

static void publish(struct ring *r, uint64_t tail) {
	if (tail == r->published) return;
	/* Release: every read of the records above happens before the kernel sees the space free. */
	__atomic_store_n(&r->ctl->data_tail, tail, __ATOMIC_RELEASE);
	r->published = tail;
}

static void decode(struct tally *t, const unsigned char *rec) {
	struct perf_event_header h;
	memcpy(&h, rec, sizeof h);
	t->records++;
	if (h.type == PERF_RECORD_SAMPLE) {
		uint64_t ip, time, addr;
		uint32_t pid, tid;
		memcpy(&ip, rec + 8, 8);
		memcpy(&pid, rec + 16, 4);
		memcpy(&tid, rec + 20, 4);
		memcpy(&time, rec + 24, 8);
		memcpy(&addr, rec + 32, 8);
		t->samples++;
		t->checksum += ip + tid + time + addr;
		if (tid != t->pid || pid != t->pid) t->foreign++;
		if (time < t->last_time) t->backwards++;
		t->last_time = time;
		if ((addr & (PS - 1)) == 0) t->aligned++;
	} else if (h.type == PERF_RECORD_LOST) {
		uint64_t lost;
		memcpy(&lost, rec + 16, 8);
		t->lost += lost;
	}
}

/* Reads every record published so far; returns how many. */
static uint64_t drain(struct ring *r, struct tally *t) {
	uint64_t mask = r->size - 1, quarter = r->size / 4, n = 0;
	/* Acquire: the records below are read after data_head (the smp_rmb of the contract). */
	uint64_t head = __atomic_load_n(&r->ctl->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = r->tail;
	while (tail < head) {
		uint64_t start = tail & mask;
		struct perf_event_header h;
		const unsigned char *rec;
		if (start + sizeof h <= r->size) memcpy(&h, r->data + start, sizeof h);
		else {
			size_t first = r->size - start;
			memcpy(&h, r->data + start, first);
			memcpy((char *)&h + first, r->data, sizeof h - first);
		}
		if (h.size < sizeof h || tail + h.size > head) {
			fprintf(stderr, "perf_reader: a record of size %u at %llu, head %llu\n", h.size,
				(unsigned long long)tail, (unsigned long long)head);
			exit(1);
		}
		if (start + h.size <= r->size) rec = r->data + start;
		else {
			size_t first = r->size - start;
			memcpy(r->scratch, r->data + start, first);
			memcpy(r->scratch + first, r->data, h.size - first);
			rec = r->scratch;
		}
		decode(t, rec);
		tail += h.size;
		n++;
		if (tail - r->published >= quarter) publish(r, tail);
	}
	r->tail = tail;
	publish(r, tail);
	return n;
}

static int open_event(pid_t pid, long ring_pages) {
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.size = sizeof a;
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_PAGE_FAULTS;
	a.sample_period = 1;
	a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR;
	a.read_format = 0;
	a.disabled = 1;
	a.watermark = 1;
	a.wakeup_watermark = (uint32_t)(ring_pages * PS / 4);
	int fd = (int)syscall(SYS_perf_event_open, &a, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) die("perf_event_open");
	return fd;
}

static void map_ring(struct ring *r, int fd, long ring_pages) {
	r->fd = fd;
	r->len = (size_t)(1 + ring_pages) * PS;
	r->base = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->base == MAP_FAILED) die("mmap(perf ring)");
	r->ctl = r->base;
	r->data = (unsigned char *)r->base + (r->ctl->data_offset ? r->ctl->data_offset : PS);
	r->size = r->ctl->data_size ? r->ctl->data_size : (uint64_t)ring_pages * PS;
	r->tail = r->published = __atomic_load_n(&r->ctl->data_tail, __ATOMIC_ACQUIRE);
}

/* Starts the workload (this binary, "workload PAGES ROUNDS"): returns its pid, its stdin in *go. */
static pid_t spawn_workload(long pages, long rounds, int *go) {
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) die("pipe2");
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		char p[32], n[32];
		snprintf(p, sizeof p, "%ld", pages);
		snprintf(n, sizeof n, "%ld", rounds);
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl("/proc/self/exe", "perf_reader", "workload", p, n, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	char line[16];
	ssize_t got = read(out[0], line, sizeof line);
	if (got < 6 || memcmp(line, "ready\n", 6) != 0) {
		fprintf(stderr, "perf_reader: the workload did not start\n");
		exit(1);
	}
	close(out[0]);
	*go = in[1];
	return pid;
}

static void finish_workload(pid_t pid, int go) {
	int status;
	close(go);
	if (waitpid(pid, &status, 0) != pid) die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "perf_reader: the workload failed (status 0x%x)\n", status);
		exit(1);
	}
}

static uint64_t event_count(int fd) {
	uint64_t v;
	if (read(fd, &v, 8) != 8) die("read(perf event)");
	return v;
}

static void check(const struct tally *t, uint64_t count, long faults) {
	if (t->foreign || t->backwards || t->aligned + (count - t->samples) < (uint64_t)faults ||
	    t->samples + t->lost > count) {
		fprintf(stderr,
			"perf_reader: check failed: %llu samples of another thread, %llu times going back, "
			"%llu page-aligned addresses (+ lost) for %ld pages written, samples %llu + LOST records' %llu > count %llu\n",
			(unsigned long long)t->foreign, (unsigned long long)t->backwards,
			(unsigned long long)t->aligned, faults, (unsigned long long)t->samples,
			(unsigned long long)t->lost, (unsigned long long)count);
		exit(1);
	}
}

static int stream(long ring_pages, long pages, long rounds) {
	int go;
	pid_t pid = spawn_workload(pages, rounds, &go);
	int fd = open_event(pid, ring_pages);
	struct ring *r = calloc(1, sizeof *r);
	struct tally t = { .pid = (uint32_t)pid };
	map_ring(r, fd, ring_pages);
	uint64_t wakeups = 0;
	if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) die("PERF_EVENT_IOC_ENABLE");
	double t0 = now_s();
	if (write(go, "g", 1) != 1) die("write(start)");
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR) die("poll");
		wakeups++;
		drain(r, &t);
		if (p.revents & POLLHUP) break; /* the workload exited: what it wrote is all there */
	}
	drain(r, &t);
	double dt = now_s() - t0;
	uint64_t count = event_count(fd);
	finish_workload(pid, go);
	check(&t, count, pages * rounds);
	t.lost = count - t.samples; /* with the drops no LOST record reported (the task exited first) */
	printf("{\"records\":%llu,\"samples\":%llu,\"lost\":%llu,\"count\":%llu,\"seconds\":%.6f,"
	       "\"records_per_s\":%.0f,\"wakeups\":%llu,\"checksum\":\"%llx\"}\n",
	       (unsigned long long)t.records, (unsigned long long)t.samples,
	       (unsigned long long)t.lost, (unsigned long long)count, dt, t.records / dt,
	       (unsigned long long)wakeups, (unsigned long long)t.checksum);
	munmap(r->base, r->len);
	close(fd);
	free(r);
	return 0;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int drain_only(long ring_pages, long pages, long rounds, int reps) {
	double *rates = calloc(reps, sizeof *rates);
	uint64_t records = 0, lost = 0, checksum = 0;
	struct ring *r = calloc(1, sizeof *r);
	for (int i = 0; i < reps; i++) {
		int go;
		pid_t pid = spawn_workload(pages, rounds, &go);
		int fd = open_event(pid, ring_pages);
		struct tally t = { .pid = (uint32_t)pid };
		map_ring(r, fd, ring_pages);
		if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) die("PERF_EVENT_IOC_ENABLE");
		if (write(go, "g", 1) != 1) die("write(start)");
		finish_workload(pid, go); /* the ring now holds every record of the run */
		if (ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)) die("PERF_EVENT_IOC_DISABLE");
		double t0 = now_s();
		drain(r, &t);
		double dt = now_s() - t0;
		uint64_t count = event_count(fd);
		check(&t, count, pages * rounds);
		rates[i] = t.records / dt;
		records = t.records;
		lost += count - t.samples;
		checksum ^= t.checksum;
		munmap(r->base, r->len);
		close(fd);
	}
	printf("{\"records\":%llu,\"lost\":%llu,\"rep_records_per_s\":[", (unsigned long long)records,
	       (unsigned long long)lost);
	for (int i = 0; i < reps; i++) printf("%s%.0f", i ? "," : "", rates[i]);
	qsort(rates, reps, sizeof *rates, cmp_double);
	double median = rates[reps / 2];
	printf("],\"records_per_s\":%.0f,\"ns_per_record\":%.2f,\"checksum\":\"%llx\"}\n", median,
	       1e9 / median, (unsigned long long)checksum);
	free(rates);
	free(r);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 4 && strcmp(argv[1], "workload") == 0) return workload(atol(argv[2]), atol(argv[3]));
	if (argc == 5 && strcmp(argv[1], "stream") == 0)
		return stream(atol(argv[2]), atol(argv[3]), atol(argv[4]));
	if (argc == 6 && strcmp(argv[1], "drain") == 0)
		return drain_only(atol(argv[2]), atol(argv[3]), atol(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: perf_reader workload PAGES ROUNDS | stream RING_PAGES PAGES ROUNDS | "
			"drain RING_PAGES PAGES ROUNDS REPS\n");
	return 2;
}
