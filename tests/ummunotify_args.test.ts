/**
 * A hostile caller of the ummunotify API (issue 14): every bad argument is an
 * UmmuArgumentError naming it, a failed kernel call an UmmuError, a closed
 * notifier a ClosedError; a counter handle is checked, never trusted; numbers
 * compare exactly with the bigint counter; no timeout blocks forever. Runs on
 * the userfaultfd backend here (the device's own cases are in
 * tests/kernel/ummunotify_device.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GenerationCounter, Ummunotify } from "../src/ummunotify/mod.ts";
import { createPageControl } from "../src/ummunotify/counter_page.ts";
import { BUSY, CONTROL_BYTES, CTL, STATE_RUNNING, TABLE_MAGIC } from "../src/ummunotify/queue.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../src/errors.ts";
import { mmap, PAGE_SIZE } from "../src/libc.ts";
import * as mm from "../ffi/mman.ts";
import { ask, mapAnon, markGone, P, release, unmap, worker } from "./ummunotify_helpers.ts";

const open = (opts = {}) => Ummunotify.open({ backend: "userfaultfd", ...opts });

/** An UmmuArgumentError whose message names `what`. */
const argError = (what: string | RegExp) => (e: unknown) => {
  assert.ok(e instanceof UmmuArgumentError, `expected an UmmuArgumentError, got ${e}`);
  assert.match(e.message, typeof what === "string" ? new RegExp(`\\b${what}\\b`) : what);
  return true;
};
const closedError = (e: unknown) => {
  assert.ok(e instanceof ClosedError, `expected a ClosedError, got ${e}`);
  return true;
};
const errnoError = (code: string, also?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UmmuError, `expected an UmmuError ${code}, got ${e}`);
  assert.equal(e.code, code, e.message);
  if (also) assert.match(e.message, also);
  return true;
};

test("fromHandle refuses what the library did not make: raw addresses, foreign buffers, wrong kinds", () => {
  const raw = { kind: "device", address: 0x10000, fd: -1 }; // crashed the process (SIGSEGV) before
  assert.throws(() => GenerationCounter.fromHandle(raw as never), argError("handle.control"));
  for (const h of [null, undefined, "device", 5, [], { kind: "bogus" }, {}]) {
    assert.throws(() => GenerationCounter.fromHandle(h as never), argError(/handle/));
  }
  const foreign = [
    new SharedArrayBuffer(32), // the size of a device control, without its mark
    new SharedArrayBuffer(768), // the size of a table control, without its mark
    new ArrayBuffer(32),
    new Uint8Array(32),
  ];
  for (const control of foreign) {
    for (const kind of ["device", "shared"]) {
      assert.throws(
        () => GenerationCounter.fromHandle({ kind, control } as never),
        argError("handle.control"),
      );
    }
  }
});

test("fromHandle checks a device handle against the kernel: the address must be that fd's counter page", () => {
  // A control buffer with the library's mark but lies inside: what a forger who read
  // the source could build. Each lie is caught before any load from the address.
  const anon = mmap(P, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_PRIVATE | mm.MAP_ANONYMOUS);
  try {
    const lies = [
      { address: 0x10000, fd: -1, rdev: [10, 1] as [number, number] }, // nothing mapped, no fd
      { address: 0x10000, fd: 0, rdev: [10, 1] as [number, number] }, // fd 0 is not the device
      { address: anon, fd: 0, rdev: [10, 1] as [number, number] }, // readable, not a counter page
      { address: anon + 1, fd: 0, rdev: [1, 3] as [number, number] }, // not a page address
    ];
    for (const page of lies) {
      assert.throws(
        () => GenerationCounter.fromHandle({ kind: "device", control: createPageControl(page) }),
        argError(/not a live ummunotify counter handle/),
        JSON.stringify(page),
      );
    }
  } finally {
    release(anon, P);
  }
});

test(
  "a forged table control that says BUSY forever: changed() gives up with an UmmuError, it does not hang",
  {
    timeout: 60_000,
  },
  () => {
    // The mark and the size of a table's control buffer, a word stuck at BUSY, a "running" monitor.
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const i32 = new Int32Array(control);
    i32[CTL.magic] = TABLE_MAGIC;
    i32[CTL.state] = STATE_RUNNING;
    new BigInt64Array(control)[0] = BUSY | 5n;
    const c = GenerationCounter.fromHandle({ kind: "shared", control });
    assert.throws(() => c.changed(5n), errnoError("ETIMEDOUT", /stayed BUSY/));
  },
);

test("a counter handle survives postMessage and is accepted in a Worker; a raw one is refused there too", async () => {
  const un = await open();
  const w = await worker();
  try {
    const ok = await ask<{ changed: boolean; generation: bigint }>(w, {
      op: "check",
      handle: un.counter.handle,
      since: 0n,
    });
    assert.deepEqual(ok, { changed: false, generation: 0n });
    const bad = await ask<{ error?: string; name?: string }>(w, {
      op: "check",
      handle: { kind: "device", address: 0x10000, fd: -1 },
      since: 0n,
    });
    assert.equal(bad.name, "UmmuArgumentError", JSON.stringify(bad));
  } finally {
    w.terminate();
    await un.close();
  }
});

test("changed() and waitForChange() take a generation as a bigint or an exact number; strings are refused", async () => {
  const un = await open();
  const w = await worker();
  const a = mapAnon(2);
  try {
    un.register(a, a + 2 * P, 1n);
    assert.equal(un.generation, 0n);
    // A number compared with the bigint counter was always "changed" before.
    assert.equal(un.changed(0), false, "changed(0) at generation 0");
    assert.equal(un.counter.changed(0), false);
    for (const bad of ["0", "", null, undefined, 1.5, -1, -1n, 2 ** 53, NaN, {}, 2n ** 64n]) {
      assert.throws(() => un.changed(bad as never), argError("since"), String(bad));
      assert.throws(() => un.counter.changed(bad as never), argError("since"), String(bad));
      await assert.rejects(un.waitForChange(bad as never), argError("since"), String(bad));
    }
    // waitForChange(0) returned at once (0 !== 0n) before; now it waits for the unmap.
    const waited = un.waitForChange(0, { timeoutMs: 20_000 });
    await ask(w, { op: "munmap-later", addr: a, len: P, delayMs: 50 });
    markGone(a, P);
    assert.equal(await waited, 1n);
    assert.equal(un.changed(1), false);
    assert.equal(un.changed(0), true);
    assert.equal(un.counter.waitForChangeSync(0, 0), 1n);
  } finally {
    w.terminate();
    release(a, 2 * P);
    await un.close();
  }
});

test("every timeout is checked: NaN, negative or not a number is refused (readSync(NaN) blocked forever)", async () => {
  const un = await open();
  try {
    for (const bad of [NaN, -1, -Infinity, "10", null, 10n, {}]) {
      const label = String(bad);
      assert.throws(() => un.readSync(bad as never), argError("timeoutMs"), label);
      assert.throws(
        () => un.counter.waitForChangeSync(0n, bad as never),
        argError("timeoutMs"),
        label,
      );
      await assert.rejects(un.read({ timeoutMs: bad as never }), argError("timeoutMs"), label);
      await assert.rejects(
        un.waitForChange(0n, { timeoutMs: bad as never }),
        argError("timeoutMs"),
        label,
      );
    }
    // The good ones still work: 0 and Infinity (a pending read is not awaited here).
    assert.deepEqual(un.readSync(0), []);
    assert.deepEqual(await un.read({ timeoutMs: 0 }), []);
    assert.equal(await un.waitForChange(0n, { timeoutMs: 0 }), 0n);
  } finally {
    await un.close();
  }
});

test("wait options: null, a string, an unknown option or a signal that is not an AbortSignal are refused", async () => {
  const un = await open();
  try {
    for (const bad of [null, "fast", 5, [1]]) {
      await assert.rejects(un.read(bad as never), argError(/options/), String(bad));
      await assert.rejects(un.waitForChange(0n, bad as never), argError(/options/), String(bad));
      assert.throws(() => un.events(bad as never), argError(/options/), String(bad));
    }
    await assert.rejects(un.read({ timeout: 5 } as never), argError(/no option "timeout"/));
    await assert.rejects(un.read({ signal: "stop" } as never), argError("options.signal"));
    assert.throws(() => un.events({ signal: {} } as never), argError("options.signal"));
    assert.throws(() => un.events({ timeoutMs: 5 } as never), argError(/no option "timeoutMs"/));
  } finally {
    await un.close();
  }
});

test("register/unregister: wrong types, negatives, fractions, unsafe numbers and u64 overflow name the argument", async () => {
  const un = await open();
  const a = mapAnon(1);
  try {
    const A = BigInt(a);
    const cases: Array<[unknown, unknown, unknown, string]> = [
      ["abc", A + 4096n, 1n, "start"], // said "address 0xNaN" elsewhere before
      [A, "x", 1n, "end"],
      [A, A + 4096n, "1", "cookie"],
      [null, A + 4096n, 1n, "start"],
      [A, undefined, 1n, "end"],
      [A, A + 4096n, undefined, "cookie"],
      [-1, A + 4096n, 1n, "start"],
      [-4096n, A + 4096n, 1n, "start"],
      [a + 0.5, A + 4096n, 1n, "start"],
      [A, 2 ** 60, 1n, "end"], // a number past 2^53 is not exact
      [A, A + 4096n, 2n ** 64n, "cookie"],
      [A, A + 4096n, {}, "cookie"],
      [{ valueOf: () => a }, A + 4096n, 1n, "start"],
    ];
    for (const [s, e, c, what] of cases) {
      assert.throws(
        () => un.register(s as never, e as never, c as never),
        argError(what),
        `${what}: ${String(s)}, ${String(e)}, ${String(c)}`,
      );
    }
    // Bigints and exact numbers mix freely.
    un.register(a, A + 4096n, 7);
    un.unregister(7n);
    // The driver's rules stay UmmuError EINVAL, now with the values.
    assert.throws(
      () => un.register(A + 4096n, A, 1n),
      errnoError("EINVAL", /start 0x[0-9a-f]+ must be below end/),
    );
    assert.throws(() => un.register(A, A, 1n), errnoError("EINVAL", /must be below end/));
    // Past what a user address can be (the userfaultfd backend); 2^64-1 is a u64.
    assert.throws(() => un.register(A, 2n ** 64n - 1n, 1n), errnoError("EINVAL", /2\^53/));
    for (const bad of ["1", -1, 1.5, null, 2n ** 64n, -1n]) {
      assert.throws(() => un.unregister(bad as never), argError("cookie"), String(bad));
    }
    assert.throws(() => un.unregister(5n), errnoError("EINVAL", /cookie 5 is not registered/));
  } finally {
    release(a, P);
    await un.close();
  }
});

test("exchangeFeatures and readInto check their arguments", async () => {
  const un = await open();
  try {
    for (const bad of [-1, 2 ** 32, 1.5, "1", null, NaN]) {
      assert.throws(() => un.exchangeFeatures(bad as never), argError("requested"), String(bad));
    }
    assert.equal(un.exchangeFeatures(5n as never), 0, "a bigint mask is fine");
    for (const bad of ["buf", null, undefined, new Uint16Array(16), new ArrayBuffer(64), [0, 0]]) {
      assert.throws(() => un.readInto(bad as never), argError("buf"), String(bad));
    }
  } finally {
    await un.close();
  }
});

test("open() options: null, wrong types, unknown names and unknown backends are refused before anything opens", async () => {
  const bad: Array<[unknown, string | RegExp]> = [
    [null, /options/],
    ["userfaultfd", /options/],
    [{ backend: "bogus" }, "options.backend"],
    [{ backend: null }, "options.backend"],
    [{ backend: 1 }, "options.backend"],
    [{ devicePath: 5 }, "options.devicePath"],
    [{ devicePath: "" }, "options.devicePath"],
    [{ devicePath: "/dev/ummunotify\0x" }, "options.devicePath"],
    [{ maxRegistrations: 0 }, "options.maxRegistrations"],
    [{ maxRegistrations: 1.5 }, "options.maxRegistrations"],
    [{ maxRegistrations: "5" }, "options.maxRegistrations"],
    [{ maxRegistrations: 2 ** 25 }, "options.maxRegistrations"],
    [{ spinMicros: NaN }, "options.spinMicros"],
    [{ spinMicros: -1 }, "options.spinMicros"],
    [{ spinMicros: "1" }, "options.spinMicros"],
    [{ userModeOnly: "yes" }, "options.userModeOnly"],
    [{ usermodeonly: true }, /no option "usermodeonly"/],
  ];
  for (const [options, what] of bad) {
    await assert.rejects(
      Ummunotify.open(options as never),
      argError(what),
      JSON.stringify(options),
    );
  }
});

test("devicePath must be the ummunotify device: a regular file, a folder or another character device is refused", async () => {
  for (const backend of ["device", "auto"] as const) {
    await assert.rejects(
      Ummunotify.open({ backend, devicePath: "/etc/passwd" }),
      errnoError("ENOTTY", /\/etc\/passwd is a regular file, not the ummunotify device/),
    );
    await assert.rejects(
      Ummunotify.open({ backend, devicePath: "/" }),
      errnoError("ENOTTY", /is a folder/),
    );
    await assert.rejects(
      Ummunotify.open({ backend, devicePath: "/dev/null" }),
      errnoError("ENOTTY", /character device 1:3/),
    );
  }
  // A path that does not exist: the device is absent; "auto" falls back to userfaultfd.
  await assert.rejects(
    Ummunotify.open({ backend: "device", devicePath: "/dev/ummunotify-absent" }),
    errnoError("ENOENT"),
  );
  const un = await Ummunotify.open({ devicePath: "/dev/ummunotify-absent" });
  assert.equal(un.backend, "userfaultfd");
  await un.close();
});

test("use after close: every method and getter of a closed notifier throws ClosedError", async () => {
  const un = await open();
  const counter = un.counter;
  const a = mapAnon(1);
  un.register(a, a + P, 1n);
  await un.close();
  await un.close(); // idempotent
  assert.equal(un.closed, true);
  assert.equal(un.backend, "userfaultfd");
  const calls: Array<[string, () => unknown]> = [
    ["register", () => un.register(a, a + P, 2n)],
    ["unregister", () => un.unregister(1n)],
    ["exchangeFeatures", () => un.exchangeFeatures()],
    ["readInto", () => un.readInto(new Uint8Array(64))],
    ["readEvents", () => un.readEvents()],
    ["readSync", () => un.readSync(0)],
    ["readable", () => un.readable],
    ["events", () => un.events()],
    ["changed", () => un.changed(0n)],
    ["generation", () => un.generation],
    ["counter", () => un.counter],
  ];
  for (const [name, call] of calls) assert.throws(call, closedError, name);
  await assert.rejects(un.read({ timeoutMs: 0 }), closedError);
  await assert.rejects(un.waitForChange(0n), closedError);
  // A counter taken before close answers "changed" from now on: nothing is watched.
  assert.equal(counter.dead, true);
  assert.equal(counter.changed(counter.generation), true);
  unmap(a, P);
});

test("a counter rebuilt from a handle has close(): afterwards it throws ClosedError; the notifier's own counter ignores it", async () => {
  const un = await open();
  try {
    const c = GenerationCounter.fromHandle(un.counter.handle);
    assert.equal(c.changed(0n), false);
    c.close();
    c.close();
    for (const call of [() => c.changed(0n), () => c.generation, () => c.dead, () => c.handle]) {
      assert.throws(call, closedError);
    }
    await assert.rejects(c.waitForChange(0n), closedError);
    assert.throws(() => c.waitForChangeSync(0n, 0), closedError);
    un.counter.close(); // the notifier's close() ends its own counter
    assert.equal(un.changed(0n), false);
  } finally {
    await un.close();
  }
});

test("the page size the tests assume", () => {
  assert.equal(P, PAGE_SIZE);
});
