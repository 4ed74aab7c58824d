/** Bad input gets a typed error naming the errno, the call and what to do. */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClosedError,
  FaultHandler,
  Mapping,
  UmmuArgumentError,
  UmmuError,
  UserfaultFd,
} from "../mod.ts";
import { PAGE, touchFromWorker } from "./helpers.ts";

const isUmmu = (code: string, call: RegExp | string) => (e: unknown) =>
  e instanceof UmmuError && e.code === code &&
  (typeof call === "string" ? e.call === call : call.test(e.call));

test("misaligned addresses and empty or ragged lengths are refused before the kernel", () => {
  const mem = Mapping.create(2 * PAGE);
  const uffd = UserfaultFd.open();
  assert.throws(() => uffd.register(mem.base + 1, PAGE), UmmuArgumentError);
  assert.throws(() => uffd.register(mem.address, 0), /positive multiple of the page size/);
  assert.throws(() => uffd.register(mem.address, PAGE + 1), UmmuArgumentError);
  assert.throws(() => uffd.register(mem.address, PAGE, []), /at least one mode/);
  assert.throws(() => uffd.register(mem.address, PAGE, ["bogus" as "wp"]), /unknown register mode/);
  assert.throws(() => Mapping.create(0), UmmuArgumentError);
  assert.throws(
    () => UserfaultFd.open({ features: ["NOPE" as "MOVE"] }),
    /unknown userfaultfd feature NOPE/,
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
  assert.throws(() => uffd.copy(mem.address, new Uint8Array(10), PAGE), /fewer than 4096/);
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
    UmmuArgumentError,
  );
  await assert.rejects(
    FaultHandler.start(uffd, { ranges: [{ address: 4096, length: PAGE, readahead: 0 }] }),
    /readahead/,
  );
  await assert.rejects(
    FaultHandler.start(uffd, { ranges: [{ address: 4096, length: PAGE, pageSize: 3000 }] }),
    /power of two/,
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
