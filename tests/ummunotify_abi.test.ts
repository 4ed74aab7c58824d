/**
 * The ummunotify structs byte for byte: a C program fills
 * `struct ummunotify_register_ioctl` and `struct ummunotify_event` through
 * kmod/ummunotify/ummunotify.h and prints their bytes; our encoders must
 * produce the same bytes, and our decoder must read the C bytes back. (The
 * numbers themselves are checked by tests/abi_*.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as n from "../ffi/ummunotify.ts";
import { decodeEvent, encodeEvent, encodeRegister } from "../src/ummunotify/events.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
const HEADER = join(ROOT, "kmod/ummunotify/ummunotify.h");

const PROBE = `
#include <stdio.h>
#include <stddef.h>
#include "ummunotify.h"
static void dump(const char *name, const void *p, size_t n) {
  const unsigned char *b = p;
  printf("%s ", name);
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\\n");
}
int main(void) {
  struct ummunotify_register_ioctl r = {
    .start = 0x1122334455667788ULL, .end = 0x99aabbccddeeff00ULL,
    .user_cookie = 0x0102030405060708ULL, .flags = 0, .reserved = 0 };
  struct ummunotify_event inval = {
    .type = UMMUNOTIFY_EVENT_TYPE_INVAL, .flags = UMMUNOTIFY_EVENT_FLAG_HINT,
    .hint_start = 0x7f1234561000ULL, .hint_end = 0x7f1234563000ULL,
    .user_cookie_counter = 0xfedcba9876543210ULL };
  struct ummunotify_event whole = {
    .type = UMMUNOTIFY_EVENT_TYPE_INVAL, .flags = 0,
    .hint_start = 0x1000, .hint_end = 0x5000, .user_cookie_counter = 7 };
  struct ummunotify_event last = {
    .type = UMMUNOTIFY_EVENT_TYPE_LAST, .user_cookie_counter = 0x100000001ULL };
  dump("register", &r, sizeof r);
  dump("inval", &inval, sizeof inval);
  dump("whole", &whole, sizeof whole);
  dump("last", &last, sizeof last);
  printf("ioctls %x %x %x\\n", (unsigned)UMMUNOTIFY_EXCHANGE_FEATURES,
         (unsigned)UMMUNOTIFY_REGISTER_REGION, (unsigned)UMMUNOTIFY_UNREGISTER_REGION);
  return 0;
}
`;

function cBytes(): Record<string, string> | string {
  if (!existsSync(HEADER)) return `${HEADER} is missing`;
  const dir = mkdtempSync(join(tmpdir(), "ummu-umn-abi-"));
  try {
    writeFileSync(join(dir, "probe.c"), PROBE);
    const cc =
      (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.CC ||
      "cc";
    try {
      execFileSync(cc, [
        "-std=c11",
        "-Wall",
        "-Werror",
        "-I",
        join(ROOT, "kmod/ummunotify"),
        "-o",
        join(dir, "probe"),
        join(dir, "probe.c"),
      ], { stdio: "pipe" });
    } catch (e) {
      return `cannot compile a C probe against ummunotify.h (${String(e).split("\n")[0]})`;
    }
    const out: Record<string, string> = {};
    for (const line of execFileSync(join(dir, "probe"), { encoding: "utf8" }).trim().split("\n")) {
      const [k, ...v] = line.split(" ");
      out[k] = v.join(" ");
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const c = cBytes();
const skip = typeof c === "string" ? c : false;
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => new Uint8Array(s.match(/../g)!.map((x) => parseInt(x, 16)));
const C = c as Record<string, string>;

test("struct ummunotify_register_ioctl: our encoder writes the C bytes", { skip }, () => {
  const b = new Uint8Array(n.SIZEOF_UMMUNOTIFY_REGISTER_IOCTL);
  encodeRegister(
    new DataView(b.buffer),
    0x1122334455667788n,
    0x99aabbccddeeff00n,
    0x0102030405060708n,
  );
  assert.equal(hex(b), C.register);
});

test(
  "struct ummunotify_event: our encoder writes the C bytes (INVAL with and without HINT, LAST)",
  { skip },
  () => {
    const enc = (type: number, flags: number, hs: number, he: number, v: bigint) => {
      const b = new Uint8Array(n.SIZEOF_UMMUNOTIFY_EVENT);
      encodeEvent(new DataView(b.buffer), 0, type, flags, hs, he, v);
      return hex(b);
    };
    assert.equal(
      enc(
        n.UMMUNOTIFY_EVENT_TYPE_INVAL,
        n.UMMUNOTIFY_EVENT_FLAG_HINT,
        0x7f1234561000,
        0x7f1234563000,
        0xfedcba9876543210n,
      ),
      C.inval,
    );
    assert.equal(enc(n.UMMUNOTIFY_EVENT_TYPE_INVAL, 0, 0x1000, 0x5000, 7n), C.whole);
    assert.equal(enc(n.UMMUNOTIFY_EVENT_TYPE_LAST, 0, 0, 0, 0x100000001n), C.last);
  },
);

test("struct ummunotify_event: our decoder reads the C bytes", { skip }, () => {
  const dec = (s: string) => decodeEvent(new DataView(unhex(s).buffer), 0);
  assert.deepEqual(dec(C.inval), {
    kind: "invalidate",
    cookie: 0xfedcba9876543210n,
    hint: { start: 0x7f1234561000n, end: 0x7f1234563000n },
  });
  assert.deepEqual(dec(C.whole), { kind: "invalidate", cookie: 7n });
  assert.deepEqual(dec(C.last), { kind: "last", generation: 0x100000001n });
});

test("the ioctl numbers the header computes are ours", { skip }, () => {
  const ours = [
    n.UMMUNOTIFY_EXCHANGE_FEATURES,
    n.UMMUNOTIFY_REGISTER_REGION,
    n.UMMUNOTIFY_UNREGISTER_REGION,
  ]
    .map((x) => x.toString(16)).join(" ");
  assert.equal(ours, C.ioctls);
  assert.equal(ours, "c0045501 40205502 40085503");
});
