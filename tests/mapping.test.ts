/** Mapping: where it is mapped, giving pages back, growing; views never outlive the memory. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Mapping, UmmuArgumentError, UmmuError, UserfaultFd } from "../mod.ts";
import { PAGE } from "./helpers.ts";

test("Mapping at a given address; EEXIST when something is mapped there (never over it)", () => {
  const first = Mapping.create(4 * PAGE);
  const at = first.address;
  assert.throws(
    () => Mapping.create(PAGE, { address: at }),
    (e: unknown) => e instanceof UmmuError && e.code === "EEXIST" && /mapped at 0x/.test(e.message),
  );
  new Uint8Array(first.buffer)[0] = 7;
  assert.equal(new Uint8Array(first.buffer)[0], 7, "the existing mapping is untouched");
  first.close();
  const again = Mapping.create(4 * PAGE, { address: at });
  assert.equal(again.address, at);
  assert.equal(new Uint8Array(again.buffer)[0], 0, "new memory");
  again.close();
  assert.throws(() => Mapping.create(PAGE, { address: 4097 }), UmmuArgumentError);
});

test("discard() gives pages back: anonymous memory reads zeros, a memfd keeps its bytes", () => {
  const anon = Mapping.create(4 * PAGE);
  const shm = Mapping.create(4 * PAGE, { kind: "memfd" });
  for (const m of [anon, shm]) new Uint8Array(m.buffer).fill(9);
  anon.discard(PAGE, PAGE);
  shm.discard(PAGE, PAGE);
  assert.deepEqual([new Uint8Array(anon.buffer)[PAGE], new Uint8Array(anon.buffer)[0]], [0, 9]);
  assert.equal(new Uint8Array(shm.buffer)[PAGE], 9);
  assert.throws(() => anon.discard(1, PAGE), UmmuArgumentError);
  assert.throws(() => anon.discard(0, 5 * PAGE), UmmuArgumentError);
  anon.close();
  shm.close();
});

test("resize() grows an anonymous mapping (it may move): the old view is detached, the bytes kept", () => {
  const m = Mapping.create(2 * PAGE);
  const old = new Uint8Array(m.buffer);
  old[PAGE + 1] = 5;
  m.resize(64 * PAGE);
  assert.equal(m.length, 64 * PAGE);
  assert.equal(old.length, 0, "the old view is detached, not dangling");
  const now = new Uint8Array(m.buffer);
  assert.equal(now[PAGE + 1], 5);
  now[63 * PAGE] = 1;
  // register() checks against the new bounds
  const uffd = UserfaultFd.open();
  assert.throws(() => uffd.register(m.address, 65 * PAGE), /past the end of the Mapping/);
  uffd.close();
  const shm = Mapping.create(PAGE, { kind: "memfd" });
  assert.throws(() => shm.resize(2 * PAGE), UmmuArgumentError);
  shm.close();
  m.close();
});
