/**
 * Serving another process's faults: FirecrackerHandler against a C program
 * that does what Firecracker does on a snapshot restore with the Uffd
 * backend (tests/fixtures/firecracker_guest.c, compiled here): guest memory
 * anonymous, memfd-shared or hugetlb, its userfaultfd and the region JSON
 * sent over the socket, every byte touched from several threads checked
 * against the snapshot file, balloon pages read back as zeros; a guest that
 * exits mid-run, and messages that must be refused, each leaving nothing
 * behind (userfaultfds, sockets, pidfds and Workers of this process).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { FirecrackerHandler, type FirecrackerSessionEnd } from "../src/userfaultfd/firecracker.ts";
import { openSocketFds, Pidfd, UnixListener } from "../src/unix_socket/mod.ts";
import { UserfaultFd } from "../src/userfaultfd/uffd.ts";
import { FaultHandler } from "../src/userfaultfd/handler.ts";
import { sources } from "../src/userfaultfd/sources.ts";
import * as u from "../ffi/userfaultfd.ts";
import { errno, libc } from "../src/libc.ts";
import { UmmuArgumentError } from "../src/errors.ts";
import { liveWorkers } from "../src/worker.ts";
import {
  cFixtureSkip,
  compileCFixture,
  openUserfaultfds,
  reserveHugePages,
  waitFor,
} from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "ummu-uffd-remote-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const GUEST_C = fileURLToPath(new URL("./fixtures/firecracker_guest.c", import.meta.url));
const skip = cFixtureSkip(GUEST_C, "the Firecracker-like guest");
const guest = skip ? null : compileCFixture(GUEST_C, dir, ["-O1", "-pthread"]);

function snapshotFile(name: string, bytes: number): string {
  const path = join(dir, name);
  writeFileSync(path, randomFillSync(new Uint8Array(bytes)));
  return path;
}

interface GuestRun {
  code: number | null;
  stdout: string;
  stderr: string;
}
function runGuest(args: string[]): Promise<GuestRun> {
  return new Promise((resolve) => {
    const child = spawn(guest!, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What this process owns of the kind the handler makes. */
function owned() {
  return { uffds: openUserfaultfds(), sockets: openSocketFds(), workers: liveWorkers() };
}
/** Back to where they were (fewer Workers is no leak: an earlier test's may end meanwhile). */
async function assertReleased(before: ReturnType<typeof owned>): Promise<void> {
  const settled = () => {
    const now = owned();
    return now.uffds === before.uffds && now.sockets === before.sockets &&
      now.workers <= before.workers;
  };
  await waitFor(settled, 3000);
  const now = owned();
  assert.equal(now.uffds, before.uffds, "userfaultfds");
  assert.equal(now.sockets, before.sockets, "sockets");
  assert.ok(now.workers <= before.workers, `Workers: ${now.workers} now, ${before.workers} before`);
}

async function serveOne(
  mode: string,
  snapshot: string,
  variant = "ok",
  options: { allowUids?: number[]; readahead?: number; messageTimeoutMs?: number } = {},
): Promise<{ run: GuestRun; ends: FirecrackerSessionEnd[]; errors: Error[] }> {
  const socket = join(dir, `fc-${mode}-${variant}.sock`);
  const ends: FirecrackerSessionEnd[] = [];
  const errors: Error[] = [];
  const handler = FirecrackerHandler.listen(socket, {
    memoryFile: snapshot,
    onSessionEnd: (e) => ends.push(e),
    onError: (e) => errors.push(e),
    ...options,
  });
  try {
    const run = await runGuest([socket, snapshot, mode, "4", variant]);
    await waitFor(() => ends.length + errors.length > 0, 5000);
    return { run, ends, errors };
  } finally {
    await handler.close();
  }
}

for (const mode of ["anon", "memfd"]) {
  test(
    `${mode} guest memory: every byte from the snapshot over 4 threads, balloon pages zero, the session ends with the guest`,
    {
      skip,
    },
    async () => {
      const before = owned();
      const snap = snapshotFile(`snap-${mode}`, 2 << 20);
      const { run, ends, errors } = await serveOne(mode, snap);
      assert.equal(run.code, 0, `guest: ${run.stderr}`);
      assert.match(run.stdout, /verified 512/);
      assert.match(run.stdout, /zeros 16/);
      assert.deepEqual(errors, []);
      assert.equal(ends.length, 1);
      assert.equal(ends[0].reason, "peer-exited");
      assert.ok(ends[0].stats.faults >= 512, `faults ${ends[0].stats.faults}`);
      assert.ok(ends[0].stats.events >= 2, "two REMOVE events read");
      await assertReleased(before);
    },
  );
}

test("hugetlb guest memory (2 MiB pages): served whole from the snapshot", async (t) => {
  if (!guest) return t.skip(skip as string);
  // Two for the guest, and room for the pages a balloon frees to be taken again before
  // the kernel has put the freed ones back in the pool.
  const restore = reserveHugePages(4);
  if (typeof restore === "string") return t.skip(restore);
  try {
    const before = owned();
    const snap = snapshotFile("snap-huge", 4 << 20);
    const { run, ends, errors } = await serveOne("hugetlb", snap);
    assert.equal(run.code, 0, `guest: ${run.stderr}`);
    assert.match(run.stdout, /verified 2/);
    assert.match(run.stdout, /zeros 2/);
    assert.deepEqual(errors, []);
    assert.equal(ends[0]?.reason, "peer-exited");
    await assertReleased(before);
  } finally {
    restore();
  }
});

test("readahead 16 serves the same bytes with fewer faults", { skip }, async () => {
  const snap = snapshotFile("snap-ra", 2 << 20);
  const { run, ends } = await serveOne("anon", snap, "ok", { readahead: 16 });
  assert.equal(run.code, 0, `guest: ${run.stderr}`);
  assert.match(run.stdout, /verified 512/);
  assert.ok(ends[0].stats.pages > ends[0].stats.faults, JSON.stringify(ends[0].stats));
});

test(
  "a guest that exits mid-run: the session ends and everything is released",
  { skip },
  async () => {
    const before = owned();
    const snap = snapshotFile("snap-mid", 2 << 20);
    const { run, ends, errors } = await serveOne("anon", snap, "exit-midway");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /midway/);
    assert.deepEqual(errors, []);
    assert.equal(ends[0]?.reason, "peer-exited");
    await assertReleased(before);
  },
);

test(
  "the guest moves a region before touching it (REMAP) and unmaps another (UNMAP): the handler follows",
  {
    skip,
  },
  async () => {
    const before = owned();
    const snap = snapshotFile("snap-remap", 1 << 20);
    const { run, ends, errors } = await serveOne("anon", snap, "remap");
    assert.equal(run.code, 0, `guest: ${run.stderr}`);
    assert.match(run.stdout, /remapped 128/, "every moved page held region 1's bytes");
    assert.deepEqual(errors, []);
    assert.equal(ends[0]?.reason, "peer-exited");
    assert.equal(ends[0].stats.outside, 0, "no fault fell outside the (moved) ranges");
    assert.ok(ends[0].stats.events >= 2, `REMAP and UNMAP read: ${ends[0].stats.events} events`);
    await assertReleased(before);
  },
);

const refusals: [string, RegExp, { allowUids?: number[] }?][] = [
  ["garbage", /not JSON/],
  ["no-fd", /without a userfaultfd/],
  ["mismatch", /ends past the memory file|add up to/],
  ["ok", /uid 0 is not in allowUids \[12345\]|is not in allowUids \[12345\]/, {
    allowUids: [12345],
  }],
];
for (const [variant, message, options] of refusals) {
  test(
    `refused: ${
      options ? "a uid not allowed" : variant
    }: a clear error, the guest let go, nothing leaked`,
    {
      skip,
    },
    async () => {
      const before = owned();
      const snap = snapshotFile(`snap-${variant}`, 1 << 20);
      const { run, ends, errors } = await serveOne(
        "anon",
        snap,
        options ? "garbage" : variant, // a refused uid is refused before its message is read
        { messageTimeoutMs: 1000, ...options },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /refused/);
      assert.equal(ends.length, 0);
      assert.equal(errors.length, 1, errors.map(String).join("\n"));
      assert.match(errors[0].message, message);
      await assertReleased(before);
    },
  );
}

test(
  "a received userfaultfd: features from the kernel, UFFDIO_API refused, a zero region and a module region served in the peer",
  {
    skip,
  },
  async () => {
    const before = owned();
    // The snapshot the guest checks against: region 0 zeros, region 1 what source_module.ts makes.
    const bytes = new Uint8Array(1 << 20);
    for (let p = 0; p < 128; p++) bytes.fill((p + 7) & 255, (128 + p) * 4096, (129 + p) * 4096);
    const snap = join(dir, "snap-sources");
    writeFileSync(snap, bytes);
    const path = join(dir, "received.sock");
    const listener = UnixListener.listen(path);
    const guestRun = runGuest([path, snap, "anon", "2"]);
    const conn = await listener.accept();
    let handler: FaultHandler | null = null;
    try {
      const msg = await conn.receive();
      assert.equal(msg.fds.length, 1, "the uffd came with the JSON");
      const regions = JSON.parse(new TextDecoder().decode(msg.bytes)) as {
        base_host_virt_addr: number;
        size: number;
      }[];
      const uffd = UserfaultFd.fromFd(msg.fds[0]);
      assert.deepEqual(
        [...uffd.features],
        ["EVENT_REMOVE"],
        "what the guest asked, read from fdinfo",
      );
      for (const ioctl of ["COPY", "ZEROPAGE", "WAKE"] as const) assert.ok(uffd.ioctls.has(ioctl));
      // The handshake is the creator's: a second UFFDIO_API is refused by the kernel...
      const api = new Uint8Array(u.SIZEOF_UFFDIO_API);
      new DataView(api.buffer).setBigUint64(0, BigInt(u.UFFD_API), true);
      assert.equal(libc.ioctl(uffd.fd, u.UFFDIO_API, api), -1);
      assert.equal(errno(), 22, "EINVAL");
      // ... and fromFd refuses other features before asking it.
      const self = Pidfd.open(process.pid);
      const dup = self.getFd(uffd.fd);
      self.close();
      assert.throws(
        () => UserfaultFd.fromFd(dup, { features: ["THREAD_ID"] }),
        (e: unknown) =>
          e instanceof UmmuArgumentError && /already has features \[EVENT_REMOVE\]/.test(e.message),
      );
      libc.close(dup);
      handler = await FaultHandler.start(uffd, {
        peer: { pid: conn.peerCredentials().pid },
        ranges: [
          {
            address: regions[0].base_host_virt_addr,
            length: regions[0].size,
            source: sources.zero(),
          },
          {
            address: regions[1].base_host_virt_addr,
            length: regions[1].size,
            source: sources.module(new URL("./fixtures/source_module.ts", import.meta.url), {
              seed: 7,
            }),
            readahead: 4,
          },
        ],
      });
      const run = await guestRun;
      assert.equal(run.code, 0, `guest: ${run.stderr}`);
      assert.match(run.stdout, /verified 256/);
      assert.match(run.stdout, /zeros 16/);
      assert.equal(await handler.ended, "peer-exited");
      assert.deepEqual(handler.errors, []);
      assert.equal(uffd.closed, true, "the handler closed the uffd it owned");
    } finally {
      await handler?.close();
      await conn.close();
      await listener.close();
    }
    await assertReleased(before);
  },
);

test("peer ranges: what cannot be checked without the peer's maps is refused up front", async () => {
  const uffd = UserfaultFd.open();
  try {
    const start = (opts: object) => FaultHandler.start(uffd, opts as never);
    await assert.rejects(
      start({ peer: { pid: 0 }, ranges: [{ address: 4096, length: 4096 }] }),
      /options.peer.pid must be an integer in 1\.\./,
    );
    await assert.rejects(
      start({ peer: { pid: 1 }, ranges: [{ address: 4096, length: 4096, pageSize: 3 << 20 }] }),
      /pageSize must be a power of 2/,
    );
    await assert.rejects(
      start({
        peer: { pid: 1 },
        ranges: [{ address: 1 << 20, length: 2 << 20, pageSize: 2 << 20 }],
      }),
      /address must be aligned to 2097152 bytes/,
    );
    await assert.rejects(
      start({
        peer: { pid: 1 },
        ranges: [{ address: 4096, length: 4096, snapshot: new SharedArrayBuffer(4096) }],
      }),
      /cannot have a snapshot or an alias/,
    );
    await assert.rejects(
      start({ peer: { pid: 1 }, ranges: [{ address: 4096, length: 4096, afterRemove: "keep" }] }),
      /afterRemove must be one of "refill", "zero"/,
    );
  } finally {
    uffd.close();
  }
});
