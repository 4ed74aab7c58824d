/*
 * The C reference of bench/user_events.ts: the enabled emit path of a 3-field
 * user_events event ("s32 status; __data_loc char[] path; __data_loc u8[] body")
 * done the way ummu does it: the values encoded into a preallocated payload
 * (fixed part, then the string with its NUL and the bytes, __data_loc words
 * pointing past the 8-byte struct trace_entry), then one writev of
 * {write index, payload}, here to /dev/null (a descriptor that discards).
 *
 *   cc -O2 -o user_events_emit bench/c/user_events_emit.c
 *   ./user_events_emit [EVENTS] [REPS]   -> {"emits_per_s":...,"ns_per_emit":...}
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static unsigned char payload[4096];
static uint32_t write_index;

static void emit(int fd, struct iovec *iov, int32_t status, const char *path, size_t plen,
		 const unsigned char *body, size_t blen) {
	size_t pos = 12; /* s32 + two __data_loc words */
	uint32_t loc;
	memcpy(payload, &status, 4);
	memcpy(payload + pos, path, plen);
	loc = (uint32_t)(plen << 16) | (uint32_t)(pos + 8);
	memcpy(payload + 4, &loc, 4);
	pos += plen;
	memcpy(payload + pos, body, blen);
	loc = (uint32_t)(blen << 16) | (uint32_t)(pos + 8);
	memcpy(payload + 8, &loc, 4);
	pos += blen;
	iov[1].iov_len = pos;
	if (writev(fd, iov, 2) < 0) {
		perror("writev");
		exit(1);
	}
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("open /dev/null");
		return 1;
	}
	const char *path = "/api/v1/items/42";
	size_t plen = strlen(path) + 1;
	unsigned char body[32];
	for (int i = 0; i < 32; i++) body[i] = (unsigned char)i;
	struct iovec iov[2] = { { &write_index, 4 }, { payload, 0 } };
	for (long i = 0; i < n / 10; i++) emit(fd, iov, (int32_t)i, path, plen, body, sizeof body);
	double best = 1e300;
	for (int r = 0; r < reps; r++) {
		double t0 = now_ns();
		for (long i = 0; i < n; i++) emit(fd, iov, (int32_t)i, path, plen, body, sizeof body);
		double dt = now_ns() - t0;
		if (dt < best) best = dt;
	}
	printf("{\"emits_per_s\":%.0f,\"ns_per_emit\":%.2f,\"events\":%ld,\"reps\":%d}\n", n / (best / 1e9), best / n, n, reps);
	return 0;
}
