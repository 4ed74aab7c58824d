/** Bad input gets a typed error naming the errno, the call and what to do. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import process from "node:process";
import {
  ClosedError,
  FaultHandler,
  LazyMapping,
  Mapping,
  sources,
  UmmuArgumentError,
  UmmuError,
  UserfaultFd,
} from "../mod.ts";
import { PROJECT_URL } from "../src/errors.ts";
import { cstring, errno, libc } from "../src/libc.ts";
import { O_CLOEXEC, O_RDONLY } from "../ffi/mman.ts";
import { PAGE, touchFromWorker } from "./helpers.ts";
import { isSkip, runInMountNamespace, TRACEFS } from "./tracefs_mount.ts";

const { EACCES, EINVAL, EISDIR, ENOENT, EPERM } = constants.errno;

/**
 * An UmmuArgumentError that names the argument and shows the value it got (the
 * rule for every argument error; the rest of the wording is free).
 */
const argError = (argument: string, value: string | number) => (e: unknown) => {
  assert.ok(e instanceof UmmuArgumentError, String(e));
  assert.ok(e.message.includes(argument), `"${e.message}" names ${argument}`);
  assert.ok(e.message.includes(String(value)), `"${e.message}" shows ${value}`);
  return true;
};

const isUmmu = (code: string, call: RegExp | string) => (e: unknown) =>
  e instanceof UmmuError && e.code === code &&
  (typeof call === "string" ? e.call === call : call.test(e.call));

test("misaligned addresses and empty or ragged lengths are refused before the kernel", () => {
  const mem = Mapping.create(2 * PAGE);
  const uffd = UserfaultFd.open();
  assert.throws(() => uffd.register(mem.base + 1, PAGE), argError("address", mem.base + 1));
  assert.throws(() => uffd.register(mem.address, 0), argError("length", "got 0"));
  assert.throws(() => uffd.register(mem.address, PAGE + 1), argError("length", PAGE + 1));
  assert.throws(() => uffd.register(mem.address, PAGE, []), argError("modes", "got"));
  assert.throws(
    () => uffd.register(mem.address, PAGE, ["bogus" as "wp"]),
    argError("register mode", '"bogus"'),
  );
  assert.throws(() => Mapping.create(0), argError("length", "got 0"));
  assert.throws(
    () => UserfaultFd.open({ features: ["NOPE" as "MOVE"] }),
    argError("userfaultfd feature", '"NOPE"'),
  );
  uffd.close();
  mem.close();
});

test("kernel refusals carry errno, call and hint", () => {
  const uffd = UserfaultFd.open();
  const other = UserfaultFd.open();
  const mem = Mapping.create(2 * PAGE);
  uffd.register(mem.address, mem.length);
  assert.throws(
    () => other.register(mem.address, mem.length),
    (e: unknown) =>
      isUmmu("EBUSY", "ioctl(UFFDIO_REGISTER)")(e) &&
      /already registered with another userfaultfd/.test((e as UmmuError).hint),
  );
  const hole = Mapping.create(PAGE);
  const addr = hole.base;
  hole.close();
  assert.throws(
    () => uffd.register(addr, PAGE),
    (e: unknown) =>
      isUmmu("EINVAL", "ioctl(UFFDIO_REGISTER)")(e) && /fully mapped/.test((e as UmmuError).hint),
    "an unmapped range",
  );
  assert.throws(
    () => uffd.copy(addr, new Uint8Array(PAGE), PAGE),
    isUmmu("ENOENT", "ioctl(UFFDIO_COPY)"),
  );
  assert.throws(
    () => uffd.register(mem.address, PAGE, ["minor"]),
    isUmmu("EINVAL", "ioctl(UFFDIO_REGISTER)"),
    "MINOR on anonymous memory",
  );
  assert.throws(
    () => uffd.copy(mem.address, new Uint8Array(10), PAGE),
    argError("copy source", "10"),
  );
  other.close();
  uffd.close();
  mem.close();
});

test("a closed handle throws ClosedError, and close is idempotent", async () => {
  const uffd = UserfaultFd.open();
  uffd.close();
  uffd.close();
  assert.throws(() => uffd.fd, ClosedError);
  assert.throws(() => uffd.register(0x10000, PAGE), ClosedError);
  assert.throws(() => uffd.readEvents(), ClosedError);
  const mem = Mapping.create(PAGE);
  mem.close();
  mem.close();
  assert.throws(() => mem.buffer, ClosedError);
  const live = UserfaultFd.open();
  const m2 = Mapping.create(PAGE);
  live.register(m2.address, PAGE);
  const handler = await FaultHandler.start(live, {
    ranges: [{ address: m2.address, length: PAGE }],
  });
  await handler.close();
  await handler.close();
  await assert.rejects(handler.sweepSnapshots(), /closed/);
  m2.close();
});

test("bad handler ranges are refused with the reason", async () => {
  const uffd = UserfaultFd.open();
  await assert.rejects(
    FaultHandler.start(uffd, { ranges: [{ address: 4097, length: PAGE }] }),
    argError("address", 4097),
  );
  await assert.rejects(
    FaultHandler.start(uffd, { ranges: [{ address: 4096, length: PAGE, readahead: 0 }] }),
    argError("readahead", "got 0"),
  );
  await assert.rejects(
    FaultHandler.start(uffd, { ranges: [{ address: 4096, length: PAGE, pageSize: 3000 }] }),
    argError("pageSize", 3000),
  );
  uffd.close();
});

test("COPY with WP: the page arrives write-protected, so its first write is a WP fault", async () => {
  const mem = Mapping.create(PAGE);
  const uffd = UserfaultFd.open({ features: ["PAGEFAULT_FLAG_WP"] });
  uffd.register(mem.address, PAGE, ["missing", "wp"]);
  assert.equal(uffd.copy(mem.address, new Uint8Array(PAGE).fill(4), PAGE, { wp: true }), PAGE);
  assert.equal(new Uint8Array(mem.buffer)[9], 4, "reads need nothing");
  const writer = touchFromWorker([mem.base], 5);
  for await (const ev of uffd.events()) {
    assert.ok(ev.kind === "pagefault" && ev.wp);
    uffd.writeProtect(mem.address, PAGE, false);
    break;
  }
  assert.deepEqual((await writer).values, [5]);
  uffd.close();
  mem.close();
});

// ---------------------------------------------------------------- hints: the real cause first

test("a user's file that does not exist: the hint says the path does not exist, not the kernel", async () => {
  for (const path of ["no-such-dir/big.bin", "/no-such-dir/big.bin"]) {
    await assert.rejects(
      LazyMapping.create(PAGE, { source: sources.file(path) }),
      (e: unknown) => {
        assert.ok(e instanceof UmmuError, String(e));
        assert.equal(e.code, "ENOENT");
        assert.equal(e.call, `open(${path})`);
        assert.match(e.hint, new RegExp(`${path.replaceAll("/", "\\/")} does not exist`));
        assert.doesNotMatch(e.message, /kernel|feature|CONFIG_/);
        if (!path.startsWith("/")) assert.match(e.hint, /working directory/);
        return true;
      },
    );
  }
});

test("kernel-interface files: the hint names the feature, not a missing path", () => {
  // A real refusal where this machine has one: /dev/ummunotify is absent without the driver.
  const fd = libc.open(cstring("/dev/ummunotify"), O_RDONLY | O_CLOEXEC, 0);
  if (fd >= 0) libc.close(fd);
  else {
    const e = new UmmuError("open(/dev/ummunotify)", errno());
    assert.match(e.hint, /ummunotify driver is not loaded/);
    assert.ok(e.hint.includes(`${PROJECT_URL}/tree/main/kmod/ummunotify`));
    assert.match(e.hint, /userfaultfd backend/);
  }
  const cases: [string, number, RegExp][] = [
    ["open(/dev/userfaultfd)", ENOENT, /Linux 6\.1\+.*CONFIG_USERFAULTFD/],
    ["open(/dev/userfaultfd)", EACCES, /read-write permission on \/dev\/userfaultfd/],
    ["open(/dev/ummunotify)", EACCES, /read permission on \/dev\/ummunotify/],
    ["open(/sys/kernel/tracing/events/user_events/x/enable)", ENOENT, /tracefs is not mounted/],
    ["read(/sys/kernel/debug/tracing/trace)", EACCES, /tracefs files are root's/],
    ["open(/proc/self/pagemap)", ENOENT, /CONFIG_PROC_PAGE_MONITOR/],
    ["open(data/x.bin)", EACCES, /no permission to open data\/x\.bin/],
    ["open(/tmp)", EISDIR, /is a folder/],
  ];
  for (const [call, errnoValue, hint] of cases) {
    assert.match(new UmmuError(call, errnoValue).hint, hint, call);
  }
  // Only open() names a user's file: a read of the userfaultfd is not a missing path.
  assert.doesNotMatch(new UmmuError("read(userfaultfd)", ENOENT).hint, /does not exist/);
});

test("userfaultfd EPERM: the hint says once what each way needs; user-mode-only needs no sysctl", () => {
  const e = new UmmuError("userfaultfd", EPERM);
  assert.equal(e.message.split("vm.unprivileged_userfaultfd=1").length, 2, e.message);
  assert.match(e.hint, /userModeOnly: true of UserfaultFd\.open and LazyMapping\.create/);
  assert.match(e.hint, /needs none of these/);
  assert.doesNotMatch(e.hint, /needs the sysctl/);
  const umo = new UmmuError("userfaultfd(UFFD_USER_MODE_ONLY)", EPERM);
  assert.match(umo.hint, /seccomp filter or a security module/);
  assert.match(new UmmuError("userfaultfd(UFFD_USER_MODE_ONLY)", EINVAL).hint, /Linux 5\.11/);
});

test("no hint points at a path the package does not contain (tests/vm, kmod/): the project's URL instead", () => {
  const calls = [
    "userfaultfd",
    "userfaultfd(UFFD_USER_MODE_ONLY)",
    "open(/dev/userfaultfd)",
    "ioctl(USERFAULTFD_IOC_NEW)",
    "open(/dev/ummunotify)",
    "mmap(/dev/ummunotify)",
    "open(/sys/kernel/tracing/user_events_data)",
    "open(/sys/kernel/tracing)",
    "ioctl(UFFDIO_API)",
    "ioctl(UFFDIO_REGISTER)",
    "open(big.bin)",
  ];
  for (const call of calls) {
    for (let e = 1; e < 134; e++) {
      const hint = new UmmuError(call, e).hint.replaceAll(
        new RegExp(`${PROJECT_URL}\\S*`, "g"),
        "",
      );
      assert.doesNotMatch(hint, /tests\/vm|kmod\//, `${call} errno ${e}`);
    }
  }
});

test("UserEvents.open() names the first cause, with tracefs unmounted and mounted (mount namespaces)", (t) => {
  const kernelHasUserEvents = existsSync("/proc/sys/kernel/user_events_max");
  const fixture = new URL("./fixtures/user_events_open.ts", import.meta.url).pathname;
  const argv = "Deno" in globalThis
    ? [process.execPath, "run", "-A", "--no-check", fixture]
    : [process.execPath, fixture];
  for (const state of ["unmounted", "mounted"] as const) {
    const out = runInMountNamespace(state, argv);
    if (isSkip(out)) return t.skip(out.skip);
    assert.equal(out.status, 0, out.stderr);
    const { open, root } = JSON.parse(out.stdout.trim().split("\n").pop()!);
    if (!kernelHasUserEvents) {
      // One step: the kernel's lack, whatever the mount state; mounting would not help.
      assert.equal(open.code, "ENOENT");
      assert.match(open.hint, /^this kernel has no user_events/);
      assert.match(open.hint, /CONFIG_USER_EVENTS=y/);
      assert.match(open.hint, /mounting tracefs would not help/);
      assert.doesNotMatch(open.hint, /mount -t tracefs/);
      assert.ok(open.hint.includes(`${PROJECT_URL}/blob/main/tests/vm/README.md`));
    } else if (state === "unmounted") {
      assert.equal(open.code, "ENOENT");
      assert.match(
        open.hint,
        /^tracefs is not mounted: mount -t tracefs nodev \/sys\/kernel\/tracing/,
      );
    } else {
      assert.equal(open.ok, "opened", JSON.stringify(open));
    }
    if (state === "mounted") assert.equal(root.ok, TRACEFS);
    else {
      assert.equal(root.code, "ENOENT");
      assert.match(root.hint, /tracefs is not mounted: mount -t tracefs/);
    }
  }
});
