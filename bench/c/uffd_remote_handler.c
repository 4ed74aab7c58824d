/*
 * The C reference of bench/uffd-remote.ts: a Firecracker-style page-fault
 * handler. Listens on SOCKET, accepts one connection, receives the JSON
 * array of GuestRegionUffdMapping with the guest's userfaultfd (SCM_RIGHTS),
 * then per fault: one read() of one message, one pread() of the page from
 * MEMFILE into a staging page, one UFFDIO_COPY. Ends when the guest closes
 * the connection (it exited), printing {"faults":N} on stdout.
 *
 *   uffd_remote_handler SOCKET MEMFILE      (prints "listening" once ready)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "uffd_remote_handler: %s: %s\n", what, strerror(errno));
  exit(2);
}

struct region {
  uint64_t base, size, offset, page_size;
};

/* The number after "key": in s, or -1. */
static long long field(const char *s, const char *key) {
  const char *p = strstr(s, key);
  if (p) p = strchr(p + strlen(key), ':');
  return p ? strtoll(p + 1, NULL, 10) : -1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: uffd_remote_handler SOCKET MEMFILE\n");
    return 64;
  }
  int mem = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (mem < 0) die("open memfile");
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  unlink(argv[1]);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0) die("listen");
  printf("listening\n");
  fflush(stdout);
  int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  if (s < 0) die("accept");

  char json[4096] = {0}, control[CMSG_SPACE(4 * sizeof(int))];
  struct iovec iov = {json, sizeof json - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                      .msg_controllen = sizeof control};
  if (recvmsg(s, &mh, MSG_CMSG_CLOEXEC) <= 0) die("recvmsg");
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (!c || c->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "uffd_remote_handler: no userfaultfd with the message\n");
    return 2;
  }
  int uffd;
  memcpy(&uffd, CMSG_DATA(c), sizeof uffd);

  struct region regions[8];
  int nregions = 0;
  for (char *obj = strchr(json, '{'); obj && nregions < 8; obj = strchr(obj + 1, '{')) {
    regions[nregions++] = (struct region){field(obj, "\"base_host_virt_addr\""), field(obj, "\"size\""),
                                          field(obj, "\"offset\""), field(obj, "\"page_size\"")};
  }
  size_t page = regions[0].page_size;
  void *staging = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (staging == MAP_FAILED) die("mmap staging");

  long faults = 0;
  struct pollfd pfd[2] = {{uffd, POLLIN, 0}, {s, POLLIN, 0}};
  for (;;) {
    struct uffd_msg msg;
    ssize_t n = read(uffd, &msg, sizeof msg);
    if (n < 0 && errno == EAGAIN) {
      if (poll(pfd, 2, -1) < 0 && errno != EINTR) die("poll");
      if (pfd[1].revents) break; /* the guest closed its end: it exited */
      continue;
    }
    if (n != sizeof msg) die("read uffd");
    if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
    uint64_t addr = msg.arg.pagefault.address & ~(uint64_t)(page - 1);
    struct region *r = NULL;
    for (int i = 0; i < nregions; i++) {
      if (addr >= regions[i].base && addr < regions[i].base + regions[i].size) r = &regions[i];
    }
    if (!r) {
      fprintf(stderr, "uffd_remote_handler: fault at 0x%llx outside the regions\n",
              (unsigned long long)addr);
      return 2;
    }
    if (pread(mem, staging, page, r->offset + (addr - r->base)) != (ssize_t)page) die("pread");
    struct uffdio_copy copy = {.dst = addr, .src = (uint64_t)(uintptr_t)staging, .len = page};
    if (ioctl(uffd, UFFDIO_COPY, &copy) != 0 && errno != EEXIST) die("UFFDIO_COPY");
    faults++;
  }
  printf("{\"faults\":%ld}\n", faults);
  return 0;
}
