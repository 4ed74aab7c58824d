/*
 * The C reference handler for bench/uffd.ts: the naive, textbook
 * userfaultfd MISSING handler.
 *
 * A handler thread blocks in read() on a blocking userfaultfd for one
 * message at a time and answers each with one UFFDIO_COPY of one 4 KiB page
 * (which also wakes the faulting thread). The main thread touches PAGES
 * pages of a registered anonymous mapping, one write per page, in order.
 * The page contents come from a source buffer of PAGES pages with a known
 * pattern; a few bytes are verified after the touch.
 *
 * usage: uffd_missing PAGES [REPS]
 * Prints one JSON object per repetition (each on a fresh mapping):
 *   {"pages":N,"elapsed_ns":T,"cpu_ns":C,"per_s":P}
 * where T is wall-clock time of the touch loop, C the CPU time all threads of
 * the process used meanwhile (handler included), and P = N / T.
 * Exit status 0 on success; 1 with a message on stderr otherwise.
 *
 * Placement (optional): UFFD_HANDLER_CPU=n and UFFD_TOUCHER_CPU=m pin the
 * handler thread and the touching thread to those CPUs; bench/uffd.ts uses
 * them to measure the two threads on different CPUs.
 *
 * Build: cc -O2 -pthread -o bench/bin/uffd_missing bench/c/uffd_missing.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static int uffd;
static unsigned char *src;    /* PAGES pages of known content */
static unsigned long base;    /* start of the mapping being touched (for the source offset) */

static void die(const char *what) {
  fprintf(stderr, "uffd_missing: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* Pins the calling thread to the CPU named by an environment variable, if set. */
static void pin_from_env(const char *var) {
  const char *v = getenv(var);
  if (v == NULL || *v == '\0') return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(atoi(v), &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die(var);
}

static unsigned char pattern(unsigned long page, unsigned long off) {
  return (unsigned char)(page * 131 + off * 7 + 1);
}

static void *handler(void *unused) {
  (void)unused;
  pin_from_env("UFFD_HANDLER_CPU");
  struct uffd_msg msg;
  for (;;) {
    ssize_t n = read(uffd, &msg, sizeof msg);
    if (n != sizeof msg) {
      if (n < 0 && errno == EINTR) continue;
      die("read(userfaultfd)");
    }
    if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
    unsigned long page = msg.arg.pagefault.address & ~(PAGE - 1);
    struct uffdio_copy copy = {
      .dst = page,
      .src = (unsigned long)src + (page - __atomic_load_n(&base, __ATOMIC_ACQUIRE)),
      .len = PAGE,
      .mode = 0,
    };
    if (ioctl(uffd, UFFDIO_COPY, &copy) != 0 && errno != EEXIST) die("ioctl(UFFDIO_COPY)");
  }
  return NULL;
}

static uint64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: uffd_missing PAGES [REPS]\n");
    return 2;
  }
  unsigned long pages = strtoul(argv[1], NULL, 10);
  int reps = argc > 2 ? atoi(argv[2]) : 1;
  if (pages == 0 || reps < 1) {
    fprintf(stderr, "uffd_missing: PAGES and REPS must be positive\n");
    return 2;
  }
  size_t len = pages * PAGE;

  src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (src == MAP_FAILED) die("mmap(source)");
  for (unsigned long p = 0; p < pages; p++)
    for (unsigned long o = 0; o < PAGE; o++) src[p * PAGE + o] = pattern(p, o);

  uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC); /* blocking: the handler sleeps in read() */
  if (uffd < 0) die("userfaultfd");
  struct uffdio_api api = { .api = UFFD_API, .features = 0 };
  if (ioctl(uffd, UFFDIO_API, &api) != 0) die("ioctl(UFFDIO_API)");

  pin_from_env("UFFD_TOUCHER_CPU");
  pthread_t thread;
  if (pthread_create(&thread, NULL, handler, NULL) != 0) die("pthread_create");

  for (int rep = 0; rep < reps; rep++) {
    unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap");
    struct uffdio_register reg = {
      .range = { .start = (unsigned long)mem, .len = len },
      .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) die("ioctl(UFFDIO_REGISTER)");
    __atomic_store_n(&base, (unsigned long)mem, __ATOMIC_RELEASE);

    volatile unsigned char *touch = mem;
    uint64_t c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_ns(CLOCK_MONOTONIC);
    for (unsigned long p = 0; p < pages; p++) touch[p * PAGE] = 0xAA;
    uint64_t elapsed = clock_ns(CLOCK_MONOTONIC) - t0, cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;

    /* The handler must have copied the source, not resolved with anything else. */
    unsigned long probe[] = { 0, pages / 3, pages / 2, pages - 1 };
    for (int i = 0; i < 4; i++) {
      unsigned long p = probe[i];
      if (mem[p * PAGE] != 0xAA || mem[p * PAGE + 1] != pattern(p, 1) || mem[p * PAGE + PAGE - 1] != pattern(p, PAGE - 1)) {
        fprintf(stderr, "uffd_missing: page %lu has the wrong content\n", p);
        return 1;
      }
    }
    printf("{\"pages\":%lu,\"elapsed_ns\":%llu,\"cpu_ns\":%llu,\"per_s\":%.1f}\n", pages,
           (unsigned long long)elapsed, (unsigned long long)cpu, (double)pages * 1e9 / (double)elapsed);
    fflush(stdout);
    if (ioctl(uffd, UFFDIO_UNREGISTER, &reg.range) != 0) die("ioctl(UFFDIO_UNREGISTER)");
    munmap(mem, len);
  }
  return 0; /* the handler thread stays blocked in read(); exit ends it */
}
