/**
 * The device counter page across threads: who may read it, and who unmaps it.
 *
 * /dev/ummunotify's counter is a read-only page mapped once per notifier. A
 * counter rebuilt in a Worker reads that same page, so the page must stay
 * mapped while any thread may still read it, whatever the order in which the
 * notifier closes and the Workers' counters go away. And a handle (what is
 * posted to a Worker) must not be a raw address that fromHandle() trusts.
 *
 * The handle is a small SharedArrayBuffer, the page's *control*: the address,
 * the fd, the device number, and a state word counting the counters of other
 * threads that use the page (`users`) plus a CLOSED bit. The rules:
 *
 * - fromHandle() takes a use only while CLOSED is clear (a CAS), then checks
 *   that the address really is a one-page mapping of that ummunotify fd
 *   (/proc/self/smaps and statx: the device number, inode and offset), and
 *   refuses the handle otherwise. After CLOSED, it builds a dead counter and
 *   reads no memory at all.
 * - The notifier's close() (retire()): with no users, it sets CLOSED and
 *   unmaps the page. With users, it first *replaces* the device page, in one
 *   mremap(MREMAP_FIXED), by an anonymous read-only page holding the DEAD
 *   counter value (every load sees "changed" from then on; no load can meet
 *   unmapped memory, since mremap swaps the mapping under the mm lock), and
 *   only then sets CLOSED. The device file is released either way.
 * - A counter's close() (or its collection) gives its use back; the last use
 *   given back after CLOSED unmaps the page that is there (the DEAD page).
 *
 * A counter in a Worker that ends without close() keeps one page mapped
 * until the process exits (its use is never given back): that is the price
 * of never crashing, documented in docs/ummunotify.md.
 */
import { runtime } from "../../ffi/platform.ts";
import * as m from "../../ffi/mman.ts";
import * as st from "../../ffi/stat.ts";
import { libc, PAGE_SIZE, statFd } from "../libc.ts";
import { vmaAt } from "../maps.ts";
import { UmmuArgumentError } from "../errors.ts";
import { describe } from "../validate.ts";

/** Bytes of a device counter's control buffer. */
export const PAGE_CONTROL_BYTES = 32;

const MAGIC = 0x756d6e64; // "umnd"
// Int32 words.
const I_MAGIC = 0, I_STATE = 1, I_FD = 2, I_RDEV_MAJOR = 3, I_RDEV_MINOR = 4;
// Float64 word (bytes 24..31).
const F_ADDRESS = 3;
/** State word: CLOSED bit, and users counted in steps of USER. */
const CLOSED = 1, USER = 2;

/** What a control buffer says about the page. */
export interface CounterPage {
  address: number;
  fd: number;
  rdev: [number, number];
}

/** The control buffer of a freshly mapped counter page (the notifier's side). */
export function createPageControl(page: CounterPage): SharedArrayBuffer {
  const control = new SharedArrayBuffer(PAGE_CONTROL_BYTES);
  const i32 = new Int32Array(control);
  i32[I_FD] = page.fd;
  i32[I_RDEV_MAJOR] = page.rdev[0];
  i32[I_RDEV_MINOR] = page.rdev[1];
  new Float64Array(control)[F_ADDRESS] = page.address;
  Atomics.store(i32, I_MAGIC, MAGIC);
  return control;
}

/** True if `control` has the shape of a device counter's control buffer. */
export function isPageControl(control: unknown): control is SharedArrayBuffer {
  return control instanceof SharedArrayBuffer && control.byteLength === PAGE_CONTROL_BYTES &&
    Atomics.load(new Int32Array(control), I_MAGIC) === MAGIC;
}

/** Reads the page's description from a control buffer (checked by isPageControl). */
export function readPageControl(control: SharedArrayBuffer): CounterPage {
  const i32 = new Int32Array(control);
  return {
    address: new Float64Array(control)[F_ADDRESS],
    fd: i32[I_FD],
    rdev: [i32[I_RDEV_MAJOR], i32[I_RDEV_MINOR]],
  };
}

/**
 * Takes a use of the page for a counter in this thread. False once the
 * notifier is closed (the counter is dead and must not read the address).
 */
export function acquirePage(control: SharedArrayBuffer): boolean {
  const i32 = new Int32Array(control);
  for (;;) {
    const s = Atomics.load(i32, I_STATE);
    if (s & CLOSED) return false;
    if (Atomics.compareExchange(i32, I_STATE, s, s + USER) === s) return true;
  }
}

/** Gives a use back; the last one after the notifier closed unmaps the page. */
export function releasePage(control: SharedArrayBuffer): void {
  const i32 = new Int32Array(control);
  for (;;) {
    const s = Atomics.load(i32, I_STATE);
    if (s < USER) return; // nothing to give back (a bug elsewhere; never underflow)
    if (Atomics.compareExchange(i32, I_STATE, s, s - USER) !== s) continue;
    if (s - USER === CLOSED) libc.munmap(new Float64Array(control)[F_ADDRESS], PAGE_SIZE);
    return;
  }
}

/** True once the notifier closed (the page there, if any, holds the DEAD value). */
export function pageClosed(control: SharedArrayBuffer): boolean {
  return (Atomics.load(new Int32Array(control), I_STATE) & CLOSED) !== 0;
}

/**
 * The notifier's close(): the page at `address` will not be read by anyone
 * after the last use is given back. `dead` is the counter value every later
 * load must see (DEAD flag set). The notifier's own view must already be
 * detached. Returns nothing; never throws (a failure to build the DEAD page
 * leaves the device page mapped for the users, who unmap it).
 */
export function retirePage(control: SharedArrayBuffer, dead: bigint): void {
  const i32 = new Int32Array(control);
  const address = new Float64Array(control)[F_ADDRESS];
  // No users: close it to newcomers and unmap at once.
  if (Atomics.compareExchange(i32, I_STATE, 0, CLOSED) === 0) {
    libc.munmap(address, PAGE_SIZE);
    return;
  }
  replaceWithDeadPage(address, dead);
  for (;;) {
    const s = Atomics.load(i32, I_STATE);
    if (Atomics.compareExchange(i32, I_STATE, s, s | CLOSED) !== s) continue;
    // The users left meanwhile: nobody else will unmap it.
    if (s < USER) libc.munmap(address, PAGE_SIZE);
    return;
  }
}

/**
 * Swaps the mapping at `address` for an anonymous read-only page that holds
 * `dead`, in one mremap(MREMAP_FIXED): a concurrent load sees the old page
 * or the new one, never a hole.
 */
function replaceWithDeadPage(address: number, dead: bigint): void {
  const fresh = Number(
    libc.mmap(0, PAGE_SIZE, m.PROT_READ | m.PROT_WRITE, m.MAP_PRIVATE | m.MAP_ANONYMOUS, -1, 0),
  );
  if (fresh === -1 || fresh === 2 ** 64 - 1) return; // keep the device page mapped instead
  const view = runtime.view(fresh, 8);
  Atomics.store(new BigInt64Array(view), 0, dead);
  runtime.detach(view);
  const moved = Number(
    libc.mremap(fresh, PAGE_SIZE, PAGE_SIZE, m.MREMAP_MAYMOVE | m.MREMAP_FIXED, address),
  );
  if (moved !== address) libc.munmap(fresh, PAGE_SIZE);
  else libc.mprotect(address, PAGE_SIZE, m.PROT_READ);
}

/**
 * Checks that `page.address` is a one-page, read-only mapping at offset 0 of
 * the ummunotify device open as `page.fd`: statx of the fd (a character
 * device with the recorded device number) and the mapping's own entry in
 * /proc/self/smaps (same file system device and inode, offset 0, one page).
 * Throws UmmuArgumentError naming what did not match.
 */
export function verifyCounterPage(page: CounterPage): void {
  const bad = (why: string): never => {
    throw new UmmuArgumentError(
      `handle is not a live ummunotify counter handle (${why}): pass the \`handle\` of a notifier's counter, as posted to this thread`,
    );
  };
  const { address, fd, rdev } = page;
  if (!Number.isSafeInteger(address) || address <= 0 || address % PAGE_SIZE !== 0) {
    bad(`its address ${describe(address)} is not a page address`);
  }
  if (!Number.isInteger(fd) || fd < 0) bad(`its fd ${describe(fd)} is not a file descriptor`);
  let file;
  try {
    file = statFd(fd);
  } catch {
    return bad(`fd ${fd} is not open`);
  }
  if (file.type !== st.S_IFCHR || file.rdev[0] !== rdev[0] || file.rdev[1] !== rdev[1]) {
    bad(`fd ${fd} is not the ummunotify device ${rdev[0]}:${rdev[1]}`);
  }
  const vma = vmaAt(address);
  const dev = vma ? vma.dev.split(":").map((x) => parseInt(x, 16)) : [];
  if (
    vma === null || vma.start !== address || vma.end !== address + PAGE_SIZE ||
    vma.offset !== 0 || !vma.perms.startsWith("r-") || dev[0] !== file.dev[0] ||
    dev[1] !== file.dev[1] || BigInt(vma.inode) !== file.ino
  ) {
    bad(`0x${address.toString(16)} is not the counter page of fd ${fd}`);
  }
}
