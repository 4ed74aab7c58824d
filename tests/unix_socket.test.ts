/**
 * Unix sockets with fd passing, against a C peer in a child process
 * (tests/fixtures/unix_socket_peer.c, compiled here): fds both ways, a
 * message with no fd, the peer's pid and uid, typed errors, pidfd_getfd
 * from a cooperating child, and every socket, pidfd and Worker the test
 * made released after close.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import {
  closeFd,
  openPidfds,
  openSocketFds,
  Pidfd,
  UnixListener,
  UnixSocket,
} from "../src/unix_socket/mod.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../src/errors.ts";
import { cstring, libc } from "../src/libc.ts";
import { liveWorkers } from "../src/worker.ts";
import { cFixtureSkip, compileCFixture, waitFor } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "ummu-unix-socket-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const PEER_C = fileURLToPath(new URL("./fixtures/unix_socket_peer.c", import.meta.url));
const ccSkip = cFixtureSkip(PEER_C, "the peer program");
const peer = ccSkip ? null : compileCFixture(PEER_C, dir, ["-O1"]);

/** A memfd of ours holding `text` (named so the test can count its own). */
function memfdWith(text: string): number {
  const fd = libc.memfd_create(cstring("ummu-test-sock"), 1 /* MFD_CLOEXEC */);
  assert.ok(fd >= 0);
  const b = new TextEncoder().encode(text);
  assert.equal(libc.write(fd, b, b.length), b.length);
  return fd;
}
function contents(fd: number): string {
  const buf = new Uint8Array(64);
  const n = libc.pread(fd, buf, buf.length, 0);
  assert.ok(n >= 0, "pread of a received fd");
  return new TextDecoder().decode(buf.subarray(0, n));
}
/** fds of this process that are memfds of this test or of the peer. */
function testMemfds(): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (/^\/memfd:(ummu-test-sock|peer) /.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

function exited(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null) res(child.exitCode);
    else child.on("exit", (code) => res(code));
  });
}

test("fds pass both ways with a C peer, a message with no fd, the peer's pid and uid", {
  skip: ccSkip,
}, async () => {
  const sockets = openSocketFds(), workers = liveWorkers(), memfds = testMemfds();
  const path = join(dir, "both-ways.sock");
  const listener = UnixListener.listen(path);
  const child = spawn(peer!, ["connect", path], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const conn = await listener.accept();
  try {
    const creds = conn.peerCredentials();
    assert.equal(creds.pid, child.pid);
    assert.equal(creds.uid, process.getuid!());
    assert.equal(creds.gid, process.getgid!());

    const hello = await conn.receive();
    assert.equal(new TextDecoder().decode(hello.bytes), "hello");
    assert.equal(hello.fds.length, 1);
    assert.equal(contents(hello.fds[0]), "from the child");
    closeFd(hello.fds[0]);
    assert.throws(() => closeFd(hello.fds[0]), /close\(\d+\): EBADF/);
    conn.send("ack");

    const plain = await conn.receive();
    assert.equal(new TextDecoder().decode(plain.bytes), "plain");
    assert.deepEqual(plain.fds, []);
    assert.equal(plain.eof, false);

    const mine = memfdWith("");
    assert.equal(conn.send("back", [mine]), 4);
    const end = await conn.receive();
    assert.equal(end.eof, true, "the peer closed its end");
    assert.equal(await exited(child), 0);
    assert.match(out, new RegExp(`^ok ${child.pid}`));
    assert.equal(contents(mine), "pong", "the peer wrote into the fd we sent");
    libc.close(mine);
  } finally {
    await conn.close();
    await listener.close();
  }
  assert.throws(() => conn.fd, ClosedError);
  await assert.rejects(conn.receive(), ClosedError);
  assert.throws(() => conn.send("x"), ClosedError);
  assert.equal(openSocketFds(), sockets);
  assert.ok(await waitFor(() => liveWorkers() === workers), "the poller Workers ended");
  assert.equal(testMemfds(), memfds);
  assert.throws(() => readlinkSync(path), "the socket file is removed at close");
});

test("connect: ENOENT, ECONNREFUSED and EACCES are UmmuErrors with a hint", async (t) => {
  const sockets = openSocketFds();
  const missing = join(dir, "nobody-here.sock");
  assert.throws(() => UnixSocket.connect(missing), (e: unknown) => {
    assert.ok(e instanceof UmmuError);
    assert.equal(e.code, "ENOENT");
    assert.match(e.call, /^connect\(/);
    assert.match(e.message, /listener running/);
    return true;
  });
  if (peer) {
    const stale = join(dir, "stale.sock");
    assert.equal(spawnSync(peer, ["stale", stale]).status, 0);
    assert.throws(() => UnixSocket.connect(stale), (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "ECONNREFUSED");
      assert.match(e.message, /nobody listens/);
      return true;
    });
    // listen({ replace }) takes the stale path over; without it, EADDRINUSE.
    assert.throws(() => UnixListener.listen(stale), (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "EADDRINUSE");
      return true;
    });
    const l = UnixListener.listen(stale, { replace: true });
    const c = UnixSocket.connect(stale);
    const a = await l.accept();
    await Promise.all([a.close(), c.close(), l.close()]);
  } else t.diagnostic("ECONNREFUSED not checked: no cc for the peer");
  const regular = join(dir, "regular-file");
  writeFileSync(regular, "x");
  assert.throws(() => UnixListener.listen(regular, { replace: true }), UmmuArgumentError);
  assert.equal(openSocketFds(), sockets);
});

test("connect: EACCES on a socket this user may not write", {
  skip: process.getuid?.() === 0
    ? "runs as root, whom socket file permissions do not stop (CAP_DAC_OVERRIDE)"
    : false,
}, async () => {
  const path = join(dir, "closed.sock");
  const l = UnixListener.listen(path);
  try {
    spawnSync("chmod", ["000", path]);
    assert.throws(() => UnixSocket.connect(path), (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "EACCES");
      return true;
    });
  } finally {
    await l.close();
  }
});

test("seqpacket: a message bigger than maxBytes, or with more fds than maxFds, is EMSGSIZE and its fds are closed", async () => {
  const sockets = openSocketFds(), memfds = testMemfds();
  const path = join(dir, "seq.sock");
  const l = UnixListener.listen(path, { type: "seqpacket" });
  const c = UnixSocket.connect(path, { type: "seqpacket" });
  const a = await l.accept();
  try {
    assert.equal(c.send(new Uint8Array(100).fill(7)), 100);
    await assert.rejects(a.receive({ maxBytes: 10 }), (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "EMSGSIZE");
      assert.match(e.message, /longer than maxBytes \(10\)/);
      return true;
    });
    const f1 = memfdWith("one"), f2 = memfdWith("two");
    c.send("x", [f1, f2]);
    await assert.rejects(a.receive({ maxFds: 1 }), (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "EMSGSIZE");
      assert.match(e.message, /more fds than maxFds \(1\)/);
      return true;
    });
    // A seqpacket message keeps its boundaries, and may carry fds with no data.
    c.send(new Uint8Array(0), [f1]);
    c.send("second");
    const first = await a.receive();
    assert.equal(first.bytes.length, 0);
    assert.equal(first.fds.length, 1);
    assert.equal(contents(first.fds[0]), "one");
    libc.close(first.fds[0]);
    assert.equal(new TextDecoder().decode((await a.receive()).bytes), "second");
    libc.close(f1);
    libc.close(f2);
  } finally {
    await Promise.all([a.close(), c.close(), l.close()]);
  }
  assert.equal(openSocketFds(), sockets);
  assert.equal(testMemfds(), memfds);
});

test("bad arguments are UmmuArgumentErrors naming them; close() rejects a pending accept", async () => {
  assert.throws(() => UnixSocket.connect(join(dir, "x".repeat(120))), /shorter than 108 bytes/);
  assert.throws(() => UnixSocket.connect("a\0b"), /NUL/);
  assert.throws(() => UnixSocket.connect(""), UmmuArgumentError);
  assert.throws(
    () => UnixSocket.connect("/x", { type: "dgram" as "stream" }),
    /options.type must be one of "stream", "seqpacket"/,
  );
  const workers = liveWorkers();
  const path = join(dir, "pending.sock");
  const l = UnixListener.listen(path, { backlog: 2 });
  const c = UnixSocket.connect(path);
  const a = await l.accept();
  assert.throws(() => a.send("x", [-1]), /fds\[0\] must be an integer/);
  assert.throws(() => c.send(new Uint8Array(0), [0]), /at least one byte/);
  await assert.rejects(a.receive({ maxBytes: 0 }), /options.maxBytes must be an integer in 1\.\./);
  const pending = l.accept().then(() => null, (e: unknown) => e);
  await assert.rejects(l.accept(), /another accept/);
  await new Promise((r) => setTimeout(r, 50));
  await l.close();
  const err = await pending;
  assert.ok(err instanceof ClosedError, String(err));
  assert.match(err.message, /UnixListener is closed/);
  await Promise.all([a.close(), c.close()]);
  assert.ok(await waitFor(() => liveWorkers() === workers), "the poller Workers ended");
});

test("pidfd_getfd takes an fd from a cooperating child; the pidfd says when it exited", {
  skip: ccSkip,
}, async () => {
  const pidfds = openPidfds(), memfds = testMemfds();
  const child = spawn(peer!, ["hold"], { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise<string>((res) =>
    child.stdout!.once("data", (d) => res(String(d)))
  );
  const target = Number(line.trim());
  const pidfd = Pidfd.open(child.pid!);
  try {
    assert.equal(pidfd.exited, false);
    const fd = pidfd.getFd(target);
    assert.equal(contents(fd), "held by the child");
    libc.close(fd);
    assert.throws(() => pidfd.getFd(999), (e: unknown) => {
      assert.ok(e instanceof UmmuError);
      assert.equal(e.code, "EBADF");
      assert.match(e.call, /^pidfd_getfd\(/);
      return true;
    });
    child.stdin!.end();
    assert.equal(await exited(child), 0);
    assert.equal(pidfd.exited, true);
  } finally {
    pidfd.close();
  }
  assert.throws(() => pidfd.getFd(0), ClosedError);
  assert.throws(() => Pidfd.open(0), UmmuArgumentError);
  assert.equal(openPidfds(), pidfds);
  assert.equal(testMemfds(), memfds);
});
