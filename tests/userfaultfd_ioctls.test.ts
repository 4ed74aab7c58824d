/**
 * Every userfaultfd ioctl against the real kernel. Faults are raised by a
 * toucher Worker and served from this (main) thread through uffd.events().
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Mapping, UffdBuilder, UserfaultFd } from "../mod.ts";
import { libc } from "../src/libc.ts";
import { runtime } from "../ffi/platform.ts";
import * as u from "../ffi/userfaultfd.ts";
import { PAGE, touchFromWorker } from "./helpers.ts";

function pageOf(a: bigint): bigint {
  return a & ~BigInt(PAGE - 1);
}

test("probe reports the kernel's features and ioctls", () => {
  const caps = UserfaultFd.probe();
  assert.ok(caps.via === "syscall" || caps.via === "device");
  for (
    const f of [
      "EVENT_UNMAP",
      "EVENT_REMOVE",
      "EVENT_REMAP",
      "EVENT_FORK",
      "THREAD_ID",
      "MINOR_SHMEM",
      "WP_ASYNC",
      "MOVE",
      "POISON",
    ] as const
  ) {
    assert.ok(caps.features.has(f), `feature ${f} (mask 0x${caps.featureMask.toString(16)})`);
  }
  assert.ok(caps.ioctls.has("REGISTER") && caps.ioctls.has("UNREGISTER") && caps.ioctls.has("API"));
});

test("open through the syscall and through /dev/userfaultfd", () => {
  for (const via of ["syscall", "device"] as const) {
    const uffd = UserfaultFd.open({ via, features: ["EVENT_UNMAP"] });
    assert.equal(uffd.via, via);
    assert.ok(uffd.features.has("EVENT_UNMAP"));
    assert.ok(!uffd.features.has("EVENT_FORK"), "only what was asked");
    uffd.close();
  }
  const b = new UffdBuilder().require("THREAD_ID").userModeOnly().closeOnExec().create();
  assert.ok(b.features.has("THREAD_ID"));
  b.close();
});

test("register reports the ioctls allowed on the range, per mode", () => {
  const mem = Mapping.create(4 * PAGE);
  const uffd = UserfaultFd.open({ features: ["PAGEFAULT_FLAG_WP"] });
  const missing = uffd.register(mem.address, mem.length, ["missing"]);
  for (const i of ["COPY", "ZEROPAGE", "WAKE", "MOVE", "POISON"] as const) {
    assert.ok(missing.has(i), i);
  }
  uffd.unregister(mem.address, mem.length);
  const wp = uffd.register(mem.address, mem.length, ["wp"]);
  assert.ok(wp.has("WRITEPROTECT"));
  uffd.close();
  mem.close();

  const shm = Mapping.create(4 * PAGE, { kind: "memfd" });
  const uffd2 = UserfaultFd.open({ features: ["MINOR_SHMEM"] });
  const minor = uffd2.register(shm.address, shm.length, ["minor"]);
  assert.ok(minor.has("CONTINUE"));
  uffd2.close();
  shm.close();
});

test("COPY resolves a Worker's fault with the given bytes; THREAD_ID names the Worker", async () => {
  const mem = Mapping.create(2 * PAGE);
  const uffd = UserfaultFd.open({ features: ["THREAD_ID"] });
  uffd.register(mem.address, mem.length);
  const page = new Uint8Array(PAGE).fill(0x5a);
  const touch = touchFromWorker([mem.base + 100]);
  for await (const ev of uffd.events()) {
    assert.equal(ev.kind, "pagefault");
    if (ev.kind !== "pagefault") break;
    assert.equal(pageOf(ev.address), mem.address);
    assert.ok(!ev.wp && !ev.minor);
    assert.ok(ev.threadId > 0);
    assert.equal(uffd.copy(mem.address, page, PAGE), PAGE);
    const r = await touch;
    assert.deepEqual(r.values, [0x5a]);
    assert.equal(ev.threadId, r.tid);
    break;
  }
  uffd.close();
  mem.close();
});

test("COPY with DONTWAKE leaves the toucher blocked until WAKE", async () => {
  const mem = Mapping.create(PAGE);
  const uffd = UserfaultFd.open();
  uffd.register(mem.address, mem.length);
  let woke = false;
  const touch = touchFromWorker([mem.base]);
  touch.then(() => (woke = true));
  for await (const ev of uffd.events()) {
    assert.equal(ev.kind, "pagefault");
    uffd.copy(mem.address, new Uint8Array(PAGE).fill(3), PAGE, { dontWake: true });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(woke, false, "DONTWAKE must not wake the toucher");
    uffd.wake(mem.address, PAGE);
    assert.deepEqual((await touch).values, [3]);
    break;
  }
  uffd.close();
  mem.close();
});

test("ZEROPAGE resolves with zeros; a second resolution of the same page is success (EEXIST)", async () => {
  const mem = Mapping.create(PAGE);
  const uffd = UserfaultFd.open();
  uffd.register(mem.address, mem.length);
  const touch = touchFromWorker([mem.base + 7]);
  for await (const ev of uffd.events()) {
    assert.equal(ev.kind, "pagefault");
    assert.equal(uffd.zeropage(mem.address, PAGE), PAGE);
    assert.equal(
      uffd.copy(mem.address, new Uint8Array(PAGE), PAGE),
      PAGE,
      "EEXIST counts as resolved",
    );
    break;
  }
  assert.deepEqual((await touch).values, [0]);
  uffd.close();
  mem.close();
});

test("COPY over a multi-page range with pages already present resumes past them", () => {
  const mem = Mapping.create(8 * PAGE);
  const uffd = UserfaultFd.open();
  uffd.register(mem.address, mem.length);
  uffd.copy(mem.base + 3 * PAGE, new Uint8Array(PAGE).fill(9), PAGE);
  const src = new Uint8Array(8 * PAGE).fill(1);
  assert.equal(uffd.copy(mem.address, src, 8 * PAGE), 8 * PAGE);
  const v = new Uint8Array(mem.buffer);
  assert.equal(v[3 * PAGE], 9, "the existing page is kept");
  assert.equal(v[7 * PAGE], 1, "pages after it were copied");
  uffd.close();
  mem.close();
});

test("WRITEPROTECT: a write to a protected page is a WP fault; unprotecting wakes the writer", async () => {
  const mem = Mapping.create(PAGE);
  new Uint8Array(mem.buffer)[0] = 1; // populate
  const uffd = UserfaultFd.open({ features: ["PAGEFAULT_FLAG_WP"] });
  uffd.register(mem.address, mem.length, ["wp"]);
  uffd.writeProtect(mem.address, PAGE, true);
  assert.equal(new Uint8Array(mem.buffer)[0], 1, "reads do not fault");
  const touch = touchFromWorker([mem.base], 42);
  for await (const ev of uffd.events()) {
    assert.equal(ev.kind, "pagefault");
    if (ev.kind === "pagefault") assert.ok(ev.wp && ev.write);
    assert.equal(new Uint8Array(mem.buffer)[0], 1, "the write has not landed yet");
    uffd.writeProtect(mem.address, PAGE, false);
    break;
  }
  assert.deepEqual((await touch).values, [42]);
  uffd.close();
  mem.close();
});

test("CONTINUE serves a MINOR fault on shmem filled through a second mapping", async () => {
  const shm = Mapping.create(2 * PAGE, { kind: "memfd" });
  const alias = shm.alias();
  new Uint8Array(alias.buffer).fill(0x77); // page cache now has the pages; `shm` has no PTEs yet
  const uffd = UserfaultFd.open({ features: ["MINOR_SHMEM"] });
  uffd.register(shm.address, shm.length, ["minor"]);
  const touch = touchFromWorker([shm.base + PAGE]);
  for await (const ev of uffd.events()) {
    assert.equal(ev.kind, "pagefault");
    if (ev.kind === "pagefault") assert.ok(ev.minor);
    assert.equal(uffd.continue(shm.base + PAGE, PAGE), PAGE);
    break;
  }
  assert.deepEqual((await touch).values, [0x77]);
  uffd.close();
  alias.close();
  shm.close();
});

test("POISON marks a missing page: it is then present (EEXIST for other resolutions)", () => {
  const mem = Mapping.create(2 * PAGE);
  const uffd = UserfaultFd.open({ features: ["POISON"] });
  uffd.register(mem.address, mem.length);
  assert.equal(uffd.poison(mem.address, PAGE), PAGE);
  // Raw UFFDIO_ZEROPAGE on the poisoned page: the kernel says EEXIST.
  const arg = new Uint8Array(u.SIZEOF_UFFDIO_ZEROPAGE);
  const dv = new DataView(arg.buffer);
  dv.setBigUint64(0, mem.address, true);
  dv.setBigUint64(8, BigInt(PAGE), true);
  assert.equal(libc.ioctl(uffd.fd, u.UFFDIO_ZEROPAGE, arg), -1);
  assert.equal(Number(dv.getBigInt64(24, true)), -17, "EEXIST");
  uffd.close();
  mem.close();
});

test("MOVE moves a page into a missing page without copying", () => {
  const dst = Mapping.create(PAGE);
  const src = Mapping.create(PAGE);
  new Uint8Array(src.buffer).fill(0x33);
  const uffd = UserfaultFd.open({ features: ["MOVE"] });
  uffd.register(dst.address, dst.length);
  assert.equal(uffd.move(dst.address, src.address, PAGE), PAGE);
  assert.equal(new Uint8Array(dst.buffer)[100], 0x33);
  assert.equal(new Uint8Array(src.buffer)[100], 0, "the source page is gone");
  uffd.close();
  src.close();
  dst.close();
});

test("EXACT_ADDRESS reports the faulting byte, not its page", async () => {
  const mem = Mapping.create(PAGE);
  const uffd = UserfaultFd.open({ features: ["EXACT_ADDRESS"] });
  uffd.register(mem.address, mem.length);
  const touch = touchFromWorker([mem.base + 123]);
  for await (const ev of uffd.events()) {
    if (ev.kind === "pagefault") assert.equal(ev.address, mem.address + 123n);
    uffd.zeropage(mem.address, PAGE);
    break;
  }
  await touch;
  uffd.close();
  mem.close();
});

test("a view's address round-trips through the runtime adapter", () => {
  const mem = Mapping.create(PAGE);
  assert.equal(runtime.addressOf(new Uint8Array(mem.buffer)), mem.base);
  mem.close();
});

test("EAGAIN while another thread's madvise waits on its REMOVE event: read it, then resolve", async () => {
  const mem = Mapping.create(2 * PAGE);
  new Uint8Array(mem.buffer)[PAGE] = 1; // page 1 present; page 0 missing
  const uffd = UserfaultFd.open({ features: ["EVENT_REMOVE"] });
  uffd.register(mem.address, mem.length);
  const toucher = touchFromWorker([mem.base]); // faults on page 0
  const first = await uffd.events().next(); // the fault (the iterator stops its poller on return)
  assert.equal(first.value?.kind, "pagefault");
  // Another thread drops page 1: it blocks until someone reads its REMOVE event.
  const remover = touchFromWorker([], undefined, { address: mem.base + PAGE, length: PAGE });
  await new Promise((r) => setTimeout(r, 200));
  // COPY meets EAGAIN (mmap changing), reads the pending REMOVE, and retries.
  assert.equal(uffd.copy(mem.address, new Uint8Array(PAGE).fill(8), PAGE), PAGE);
  assert.deepEqual((await toucher).values, [8]);
  await remover; // its madvise returned
  const events = uffd.readEvents();
  assert.deepEqual(events, [{
    kind: "remove",
    start: mem.address + BigInt(PAGE),
    end: mem.address + 2n * BigInt(PAGE),
  }]);
  uffd.close();
  mem.close();
});
