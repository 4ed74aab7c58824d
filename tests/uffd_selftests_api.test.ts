/**
 * The kernel's userfaultfd unit tests (tools/testing/selftests/mm/
 * uffd-unit-tests.c, Linux 6.12 to 6.18) through ummu's public API: the
 * handshake (UFFDIO_API), register-ioctls, zeropage and mmap-changing.
 * Assertion messages use the kernel test's words.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type FeatureName,
  type RegisterMode,
  UmmuArgumentError,
  UmmuError,
  UserfaultFd,
} from "../mod.ts";
import * as u from "../ffi/userfaultfd.ts";
import * as mm from "../ffi/mman.ts";
import { runtime } from "../ffi/platform.ts";
import { cstring, errno, libc } from "../src/libc.ts";
import { spawnWorker } from "../src/worker.ts";
import {
  type Ctx,
  MEM_ALL,
  sleep,
  threadState,
  unitTests,
} from "./fixtures/uffd_selftest_common.ts";
import type { ThreadMessage } from "./fixtures/uffd_selftest_thread.ts";

// ---- UFFDIO_API ----------------------------------------------------------------------------

/** A userfaultfd before its handshake, made the way uffd_open_sys()/uffd_open_dev() do. */
function rawOpen(via: "syscall" | "device"): number {
  const flags = mm.O_CLOEXEC | mm.O_NONBLOCK;
  if (via === "syscall") {
    return Number(libc.syscall(u.NR_userfaultfd[runtime.arch], flags, 0, 0, 0, 0));
  }
  const dev = libc.open(cstring("/dev/userfaultfd"), mm.O_RDWR | mm.O_CLOEXEC, 0);
  if (dev < 0) return -1;
  const fd = libc.ioctl_int(dev, u.USERFAULTFD_IOC_NEW, flags);
  libc.close(dev);
  return fd;
}

/** ioctl(UFFDIO_API) with the given api and features: 0 or the errno. */
function rawApi(fd: number, api: number, features: bigint): number {
  const arg = new Uint8Array(u.SIZEOF_UFFDIO_API);
  const dv = new DataView(arg.buffer);
  dv.setBigUint64(0, BigInt(api), true);
  dv.setBigUint64(8, features, true);
  return libc.ioctl(fd, u.UFFDIO_API, arg) === 0 ? 0 : errno();
}

for (const [label, via] of [["syscall", "syscall"], ["/dev/userfaultfd", "device"]] as const) {
  let skip: string | false = false;
  try {
    UserfaultFd.probe({ via });
  } catch (e) {
    skip = `cannot open userfaultfd handle: ${(e as Error).message}`;
  }
  test(`uffd-unit-tests: UFFDIO_API (with ${label})`, { skip, timeout: 30_000 }, () => {
    // The library always sends UFFD_API and only known features, so the
    // kernel's refusals are checked on a handle of our own, made as the C test
    // makes it; the library's own answers follow.
    const fd = rawOpen(via);
    assert.ok(fd >= 0, "cannot open userfaultfd handle");
    try {
      assert.notEqual(rawApi(fd, 0xab, 0n), 0, "UFFDIO_API should fail with wrong api but didn't");
      assert.notEqual(
        rawApi(fd, u.UFFD_API, 1n << 63n),
        0,
        "UFFDIO_API should fail with wrong feature but didn't",
      );
      assert.equal(rawApi(fd, u.UFFD_API, 0n), 0, "UFFDIO_API should succeed but failed");
      assert.notEqual(rawApi(fd, u.UFFD_API, 1n), 0, "UFFDIO_API should reject initialized uffd");
    } finally {
      libc.close(fd);
    }

    // Through the library: a feature the kernel has no name for is refused before the kernel.
    assert.throws(
      () => UserfaultFd.open({ via, features: ["FEATURE_BIT_63" as FeatureName] }),
      (e: unknown) => e instanceof UmmuArgumentError && /FEATURE_BIT_63/.test(e.message),
      "UFFDIO_API should fail with wrong feature but didn't (an unknown feature name is an UmmuArgumentError)",
    );
    const uffd = UserfaultFd.open({ via });
    try {
      assert.equal(uffd.via, via);
      assert.deepEqual([...uffd.features], [], "exactly the features asked for");
      // The handle did the handshake: a second one on its fd is refused (what fromFd relies on).
      assert.notEqual(
        rawApi(uffd.fd, u.UFFD_API, 1n),
        0,
        "UFFDIO_API should reject initialized uffd",
      );
    } finally {
      uffd.close();
    }
  });
}

// ---- register-ioctls -----------------------------------------------------------------------

unitTests(
  "register-ioctls",
  MEM_ALL,
  [
    "MISSING_HUGETLBFS",
    "MISSING_SHMEM",
    "PAGEFAULT_FLAG_WP",
    "WP_HUGETLBFS_SHMEM",
    "MINOR_HUGETLBFS",
    "MINOR_SHMEM",
  ],
  (ctx) => {
    const { uffd, pageSize } = ctx;
    const dst = ctx.dst.address;
    for (const miss of [false, true]) {
      for (const wp of [false, true]) {
        for (const minor of [false, true]) {
          const what = `(miss=${+miss}, wp=${+wp}, minor=${+minor})`;
          const modes: RegisterMode[] = [];
          if (miss) modes.push("missing");
          if (wp) modes.push("wp");
          if (minor) modes.push("minor");
          if (!miss && !wp && !minor) {
            // The kernel answers EINVAL; the library refuses before it.
            assert.throws(
              () => uffd.register(dst, pageSize, modes),
              UmmuArgumentError,
              `register ${what} failed with wrong errno`,
            );
            continue;
          }
          if (minor && ctx.mem === "anon") {
            assert.throws(
              () => uffd.register(dst, pageSize, modes),
              (e: unknown) => e instanceof UmmuError && e.code === "EINVAL",
              `register ${what} failed with wrong errno`,
            );
            continue;
          }
          const ioctls = uffd.register(dst, pageSize, modes);
          const expected = ["WAKE"];
          if (miss) expected.push("COPY");
          if (wp) expected.push("WRITEPROTECT");
          if (minor) expected.push("CONTINUE");
          for (const name of expected) {
            assert.ok(
              ioctls.has(name as never),
              `unexpected uffdio_register.ioctls ${what}: expected ${expected.join(",")}, ` +
                `returned ${[...ioctls].join(",")}`,
            );
          }
          uffd.unregister(dst, pageSize);
        }
      }
    }
  },
);

// ---- zeropage ------------------------------------------------------------------------------

unitTests("zeropage", MEM_ALL, [], (ctx) => {
  const { uffd, pageSize, dst } = ctx;
  // Registers with MISSING mode only, to see whether UFFDIO_ZEROPAGE is offered.
  const hasZeropage = uffd.register(dst.address, pageSize, ["missing"]).has("ZEROPAGE");
  if (dst.alias) uffd.register(dst.alias, pageSize, ["missing"]);
  if (hasZeropage) {
    assert.equal(uffd.zeropage(dst.address, pageSize), pageSize, "UFFDIO_ZEROPAGE unexpected size");
    // retry_uffdio_zeropage(): the same page again (through the alias where
    // there is one) meets EEXIST, which the library counts as resolved.
    const again = uffd.zeropage(dst.alias || dst.address, pageSize);
    assert.equal(again, pageSize, "UFFDIO_ZEROPAGE error (EEXIST on retry is resolved)");
    const bytes = new Uint8Array(dst.buffer, 0, pageSize);
    const at = bytes.findIndex((b) => b !== 0);
    assert.equal(at, -1, `data non-zero at offset ${at}`);
  } else {
    assert.throws(
      () => uffd.zeropage(dst.address, pageSize),
      (e: unknown) => e instanceof UmmuError && e.code === "EINVAL",
      "UFFDIO_ZEROPAGE not -EINVAL",
    );
  }
  uffd.unregister(dst.address, pageSize);
  if (dst.alias) uffd.unregister(dst.alias, pageSize);
});

// ---- mmap-changing -------------------------------------------------------------------------

async function removeThread(): Promise<Worker> {
  return await spawnWorker(new URL("./fixtures/uffd_selftest_thread.ts", import.meta.url));
}

/**
 * Injects a REMOVE event from another thread (madvise(MADV_REMOVE) on page 0,
 * which hangs until the event is read), waits until that thread is in D
 * state, then runs `call`. Returns whether the call released the thread (it
 * read the pending event: the kernel said EAGAIN and the library read the
 * message before retrying) and what the call did.
 */
async function withPendingRemove(
  ctx: Ctx,
  worker: Worker,
  call: () => number,
): Promise<{ released: boolean; result: number | Error }> {
  let onTid: (tid: number) => void = () => {};
  let onDone: (m: ThreadMessage) => void = () => {};
  const tid = new Promise<number>((resolve) => onTid = resolve);
  const done = new Promise<ThreadMessage>((resolve) => onDone = resolve);
  worker.onmessage = (e: MessageEvent<ThreadMessage>) => {
    if (e.data.type === "tid") onTid(e.data.tid);
    else onDone(e.data);
  };
  worker.postMessage({
    op: "madvise",
    address: ctx.dst.address,
    length: ctx.pageSize,
    advice: mm.MADV_REMOVE,
  });
  const id = await tid;
  // Wait until the thread hangs at REMOVE event.
  const until = Date.now() + 30_000;
  while (threadState(id) !== "D") {
    if (Date.now() > until) throw new Error(`thread ${id} never blocked at the REMOVE event`);
    await sleep(1);
  }
  let result: number | Error;
  try {
    result = call();
  } catch (e) {
    result = e as Error;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const released = await Promise.race([
    done.then(() => true),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 20_000)),
  ]);
  clearTimeout(timer);
  if (!released) ctx.uffd.readEvents(); // free it anyway, so that the test ends
  await done;
  return { released, result };
}

unitTests(
  "mmap-changing",
  ["shmem"],
  ["EVENT_REMOVE", "MOVE", "POISON", "MINOR_SHMEM"],
  async (ctx) => {
    const { uffd, pageSize: ps, dst, src } = ctx;
    // The C test registers MISSING and calls each ioctl with empty arguments,
    // expecting -EAGAIN while the event is pending. The public calls take
    // real arguments and, on EAGAIN, read the pending event and retry: so each
    // call must release the blocked thread, then do its job. MINOR too, so
    // that UFFDIO_CONTINUE has something to do once the event is read.
    uffd.register(dst.address, dst.length, ["missing", "minor"]);
    new Uint8Array(dst.aliasBuffer!, 5 * ps, ps).fill(5); // page 5 in the page cache, for CONTINUE
    const worker = await removeThread();
    try {
      const cases: [string, () => number, (r: number | Error) => void][] = [
        ["UFFDIO_COPY", () => uffd.copy(dst.address + ps, src.address + ps, ps), (r) => {
          assert.equal(r, ps);
          assert.equal(ctx.count(dst, 1), 1n, "nr 1 memory corruption");
        }],
        ["UFFDIO_ZEROPAGE", () => uffd.zeropage(dst.address + 2 * ps, ps), (r) => {
          assert.equal(r, ps);
        }],
        // UFFDIO_MOVE moves anonymous memory only: on shmem, once the event is read, EINVAL.
        ["UFFDIO_MOVE", () => uffd.move(dst.address + 3 * ps, src.address + 3 * ps, ps), (r) => {
          assert.ok(r instanceof UmmuError && r.code === "EINVAL", `UFFDIO_MOVE: ${r}`);
        }],
        ["UFFDIO_POISON", () => uffd.poison(dst.address + 4 * ps, ps), (r) => {
          assert.equal(r, ps);
        }],
        ["UFFDIO_CONTINUE", () => uffd.continue(dst.address + 5 * ps, ps), (r) => {
          assert.equal(r, ps);
          assert.equal(new Uint8Array(dst.buffer, 5 * ps, 1)[0], 5);
        }],
      ];
      for (const [name, call, check] of cases) {
        const { released, result } = await withPendingRemove(ctx, worker, call);
        assert.ok(
          released,
          `${name} should have returned -1 with errno==EAGAIN and read the pending event ` +
            `(the madvise thread is still blocked; the call returned ${result})`,
        );
        if (result instanceof Error && !(result instanceof UmmuError && name === "UFFDIO_MOVE")) {
          throw result;
        }
        check(result);
        const events = uffd.readEvents();
        assert.deepEqual(
          events,
          [{ kind: "remove", start: BigInt(dst.address), end: BigInt(dst.address + ps) }],
          `${name}: the REMOVE event it read is delivered by readEvents()`,
        );
      }
    } finally {
      worker.terminate();
    }
  },
);
