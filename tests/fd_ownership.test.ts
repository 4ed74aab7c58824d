/**
 * One owner closes a userfaultfd, exactly once, and no thread uses its number
 * after: the class of bug behind "uffd.close() mid-fill made the Worker's
 * failure path close an unrelated file" and "after a Worker failure,
 * uffd.close() closed an unrelated fd". And one reader per fd: a resolving
 * call on the main thread never steals a FaultHandler's faults.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readlinkSync, readSync } from "node:fs";
import {
  ClosedError,
  FaultHandler,
  Mapping,
  sources,
  type UffdEvent,
  UmmuArgumentError,
  UserfaultFd,
} from "../mod.ts";
import { uffdInternals } from "../src/userfaultfd/uffd.ts";
import { spawnWorker } from "../src/worker.ts";
import { PAGE, touchFromWorker, waitFor } from "./helpers.ts";

/** The fixtures, as literal URLs: the npm build compiles each and rewrites it to .js. */
const FIXTURES = {
  fd_control_worker: new URL("./fixtures/fd_control_worker.ts", import.meta.url),
  gate_opener: new URL("./fixtures/gate_opener.ts", import.meta.url),
  gated_source: new URL("./fixtures/gated_source.ts", import.meta.url),
  uffd_adopter: new URL("./fixtures/uffd_adopter.ts", import.meta.url),
};

/** Opens /proc/self/stat until one gets `fd` (or 64 tries); returns every fd opened. */
function openUntil(fd: number): number[] {
  const got: number[] = [];
  for (let i = 0; i < 64; i++) {
    const f = openSync("/proc/self/stat", "r");
    got.push(f);
    if (f === fd) break;
  }
  return got;
}

test("closing while another thread calls on the fd: no call ever reaches a reused number", async () => {
  for (let round = 0; round < 20; round++) {
    const uffd = UserfaultFd.open();
    const share = uffdInternals.get(uffd)!.control.share;
    const go = new SharedArrayBuffer(4);
    const w = await spawnWorker(FIXTURES.fd_control_worker);
    const result = new Promise<{ calls: number; wrong: number; seen: string[] }>((resolve) => {
      w.onmessage = (e) => resolve(e.data);
    });
    w.postMessage({ share, go });
    Atomics.wait(new Int32Array(go), 0, 0, 5000);
    const fd = uffd.fd;
    uffd.close();
    const reused = openUntil(fd); // the number is free now: a file takes it at once
    const r = await result;
    w.terminate();
    for (const f of reused) closeSync(f);
    assert.ok(r.calls > 0);
    assert.equal(r.wrong, 0, `calls that saw ${r.seen.join(", ")} under the uffd's number`);
  }
});

test("uffd.close() while its handler is mid-fill, then a file takes the number: the file is untouched", async () => {
  const gate = new SharedArrayBuffer(8);
  const g = new Int32Array(gate);
  const mem = Mapping.create(2 * PAGE);
  const uffd = UserfaultFd.open();
  uffd.register(mem.address, mem.length);
  const handler = await FaultHandler.start(uffd, {
    ranges: [{
      address: mem.address,
      length: mem.length,
      source: sources.module(FIXTURES.gated_source, { gate }),
    }],
  });
  const touch = touchFromWorker([mem.base]);
  assert.ok(await waitFor(() => Atomics.load(g, 1) === 1), "the handler is mid-fill");
  const fd = uffd.fd;
  uffd.close(); // the toucher wakes (the uffd is gone) and reads an ordinary page
  assert.deepEqual((await touch).values, [0]);
  const files = openUntil(fd);
  Atomics.store(g, 0, 1);
  Atomics.notify(g, 0); // the source answers late, to a handler that must not use the number
  await handler.close(); // and closing the handler must not close it either
  for (const f of files) {
    assert.match(
      readlinkSync(`/proc/self/fd/${f}`),
      /\/proc\/\d+\/stat$/,
      "still the file we opened",
    );
    assert.ok(readSync(f, new Uint8Array(16)) > 0, "and readable");
    closeSync(f);
  }
  assert.ok(
    handler.errors.every((e) => !/EBADF|closed/.test(e.message)),
    handler.errors.join("; "),
  );
  mem.close();
});

test("one reader: a copy() on the main thread that meets EAGAIN waits for the handler instead of taking its messages", async () => {
  const gate = new SharedArrayBuffer(8);
  const g = new Int32Array(gate);
  const mem = Mapping.create(4 * PAGE);
  new Uint8Array(mem.buffer)[3 * PAGE] = 1; // populated: DONTNEED on it raises REMOVE
  const uffd = UserfaultFd.open({ features: ["EVENT_REMOVE"] });
  uffd.register(mem.address, mem.length);
  const events: UffdEvent[] = [];
  const handler = await FaultHandler.start(uffd, {
    ranges: [{
      address: mem.address,
      length: 2 * PAGE,
      source: sources.module(FIXTURES.gated_source, { gate }),
    }, {
      address: mem.base + 2 * PAGE,
      length: 2 * PAGE,
      source: sources.bytes(new Uint8Array(2 * PAGE).fill(0x77)),
    }],
    onEvent: (e) => events.push(e),
  });
  assert.throws(() => uffd.readEvents(), UmmuArgumentError, "the handler is the reader");
  const blocked = touchFromWorker([mem.base]); // the handler waits in the gated fill
  assert.ok(await waitFor(() => Atomics.load(g, 1) === 1));
  const remover = touchFromWorker([], undefined, { address: mem.base + 3 * PAGE, length: PAGE });
  await new Promise((r) => setTimeout(r, 200)); // REMOVE is pending; the remover waits for it to be read
  const faulter = touchFromWorker([mem.base + 2 * PAGE]); // a fault queued behind it
  await new Promise((r) => setTimeout(r, 100));
  // Open the gate from another thread in a moment: this thread is about to block in copy().
  const opener = await spawnWorker(FIXTURES.gate_opener);
  opener.postMessage({ gate, delayMs: 300 });
  // COPY meets EAGAIN (the REMOVE is pending). The handler is the reader: wait for it.
  assert.equal(uffd.copy(mem.base + PAGE, new Uint8Array(PAGE).fill(5), PAGE), PAGE);
  assert.deepEqual((await blocked).values, [0x42]);
  assert.deepEqual((await faulter).values, [0x77], "the queued fault reached the handler");
  await remover;
  assert.ok(await waitFor(() => events.some((e) => e.kind === "remove")), "and so did the REMOVE");
  opener.terminate();
  await handler.close();
  mem.close();
});

test("transfer() hands a userfaultfd to a Worker, which adopts it once; the original is closed without closing the fd", async () => {
  const uffd = UserfaultFd.open({ features: ["THREAD_ID"] });
  const t = uffd.transfer();
  assert.equal(uffd.closed, true);
  assert.throws(() => uffd.fd, ClosedError);
  const w = await spawnWorker(FIXTURES.uffd_adopter);
  const reply = new Promise<{ features: string[]; again: string }>((resolve) => {
    w.onmessage = (e) => resolve(e.data);
  });
  w.postMessage(t);
  const r = await reply;
  w.terminate();
  assert.deepEqual(r.features, ["THREAD_ID"]);
  assert.equal(r.again, "ClosedError", "a second adopt is refused");
});

test("fromFd refuses an fd that is not a userfaultfd, and wraps one that is", () => {
  const f = openSync("/proc/self/stat", "r");
  assert.throws(
    () => UserfaultFd.fromFd(f),
    (e: unknown) => e instanceof UmmuArgumentError && /not a userfaultfd/.test(e.message),
  );
  closeSync(f);
  assert.throws(() => UserfaultFd.fromFd(-1), UmmuArgumentError);
  assert.throws(() => UserfaultFd.fromFd(1.5), UmmuArgumentError);
});
