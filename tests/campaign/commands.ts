/**
 * The property-based campaign's world: random sequences of public API calls,
 * valid ones and hostile ones mixed, run against the real kernel, with a
 * model of what every byte must read. A command that misbehaves fails the
 * run: a wrong byte, an error that is not the library's own
 * (UmmuArgumentError, UmmuError, ClosedError), or (checked after each
 * sequence by run.ts) an fd, thread or mapping left behind. Crashes and hangs
 * are caught one level up (campaign.test.ts runs this in a child process).
 *
 * Commands never block the thread that runs them on a fault nobody serves:
 * memory is touched only while a handler serves it (or it is ordinary memory).
 */
import fc from "fast-check";
import { readFileSync, writeFileSync } from "node:fs";
import {
  ClosedError,
  DirtyTracker,
  FaultHandler,
  LazyMapping,
  LiveSnapshot,
  Mapping,
  sources,
  UmmuArgumentError,
  UmmuError,
  UserfaultFd,
} from "../../mod.ts";
import { libc } from "../../src/libc.ts";
import * as mm from "../../ffi/mman.ts";

export const PAGE = 4096;

/** The lines of /proc/self/maps that overlap [address, address + length). */
function mapsLines(address: number, length: number): string[] {
  const a = BigInt(address), b = a + BigInt(length);
  return readFileSync("/proc/self/maps", "utf8").split("\n").filter((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
    return m !== null && BigInt("0x" + m[1]) < b && BigInt("0x" + m[2]) > a;
  });
}

/** Values a hostile caller passes where something else is expected. */
export const HOSTILE: readonly unknown[] = [
  null,
  undefined,
  NaN,
  -1,
  1.5,
  -4096,
  2 ** 53,
  2 ** 64,
  Infinity,
  "abc",
  "",
  "4096",
  {},
  [],
  [1, 2],
  () => 1,
  Symbol("s"),
  1n << 70n,
  -1n,
  0xffff_8000_0000_0000n,
  true,
  new ArrayBuffer(8),
  new SharedArrayBuffer(8),
  new Uint8Array(3),
  { kind: "bogus" },
  { then: () => {} },
];

/** What the campaign counts (printed at the end; the test checks it). */
export interface Tally {
  commands: number;
  typedErrors: number;
  untypedErrors: string[];
  wrongBytes: string[];
  touches: number;
}

const isOurs = (e: unknown) =>
  e instanceof UmmuArgumentError || e instanceof UmmuError || e instanceof ClosedError;

/** A lazily served mapping and what each of its pages must read. */
interface LazyModel {
  lazy: LazyMapping;
  kind: "anonymous" | "memfd";
  pages: number;
  /** The source's byte for page p (every byte of a page is the same in these sources). */
  sourceByte: (p: number) => number;
  /** Bytes written: page -> (offset -> value). */
  written: Map<number, Map<number, number>>;
  /** Pages touched while served, and not dropped since: their bytes are the source's. */
  served: Set<number>;
  stopped: boolean;
}

/** Where the watchdog (watchdog.ts) sees progress: a beat per command and the command's text. */
export const progress = {
  beat: new Int32Array(new SharedArrayBuffer(4)),
  text: new Uint8Array(new SharedArrayBuffer(1024)),
};
const textEncoder = new TextEncoder();
/** Records the command about to run (for the watchdog). */
export function running(what: string): void {
  progress.text.fill(0);
  textEncoder.encodeInto(what.slice(0, 1000), progress.text);
  Atomics.add(progress.beat, 0, 1);
}

/** The real system one sequence works on. */
export class World {
  lazies: LazyModel[] = [];
  raw: { uffd: UserfaultFd; mem: Mapping; handler: FaultHandler | null }[] = [];
  /** Mappings that were still mapped right after the close() that should have unmapped them. */
  leakedMappings: string[] = [];
  tally: Tally;
  file: string;
  moduleUrl: URL;

  constructor(tally: Tally, file: string, moduleUrl: URL) {
    this.tally = tally;
    this.file = file;
    this.moduleUrl = moduleUrl;
  }

  /** Runs `fn`; an error must be the library's own (counted), never another kind. */
  async expectTyped(what: string, fn: () => unknown): Promise<unknown> {
    try {
      return await fn();
    } catch (e) {
      if (isOurs(e)) this.tally.typedErrors++;
      else {this.tally.untypedErrors.push(
          `${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
        );}
      return undefined;
    }
  }

  /**
   * Closes a Mapping (or what owns one) and checks at once that its memory
   * is gone (at once: a later mmap by anyone may reuse the address).
   */
  async unmaps(mem: Mapping, close: () => void | Promise<void>): Promise<void> {
    const address = mem.base, length = mem.length;
    // Our mapping's own lines of /proc/self/maps: after close, the same lines must be gone.
    // Not "nothing is mapped there": the runtime's threads may map the freed range at once
    // (count only what you own).
    const ours = mapsLines(address, length);
    await close();
    const still = mapsLines(address, length).filter((l) => ours.includes(l));
    if (still.length) this.leakedMappings.push(`0x${address.toString(16)}+${length}: ${still[0]}`);
  }

  /** Closes everything, in the documented order. */
  async close(): Promise<void> {
    for (const l of this.lazies) await l.lazy.stop().catch(() => {});
    for (const l of this.lazies) await this.unmaps(l.lazy.mapping, () => l.lazy.close());
    for (const r of this.raw) {
      await r.handler?.close();
      r.uffd.close();
      await this.unmaps(r.mem, () => r.mem.close());
    }
    this.lazies = [];
    this.raw = [];
  }
}

type Cmd = fc.AsyncCommand<object, World, false>;

/** Makes a LazyMapping of a random kind, size and source. */
class NewLazy implements Cmd {
  constructor(
    readonly kind: "anonymous" | "memfd",
    readonly pages: number,
    readonly source: "zero" | "bytes" | "file" | "module",
    readonly readahead: number,
    readonly seed: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    if (w.lazies.length >= 4) return;
    const { pages, seed } = this;
    let source, sourceByte: (p: number) => number;
    if (this.source === "zero") {
      source = sources.zero();
      sourceByte = () => 0;
    } else if (this.source === "bytes") {
      const b = new Uint8Array(pages * PAGE);
      for (let p = 0; p < pages; p++) b.fill((p * 7 + seed) & 255, p * PAGE, (p + 1) * PAGE);
      source = sources.bytes(b);
      sourceByte = (p) => (p * 7 + seed) & 255;
    } else if (this.source === "file") {
      source = sources.file(w.file); // the file: page p is (p * 3 + 1) & 255, 64 pages
      sourceByte = (p) => (p < 64 ? (p * 3 + 1) & 255 : 0);
    } else {
      source = sources.module(w.moduleUrl, { seed });
      sourceByte = (p) => (p + seed) & 255;
    }
    const lazy = await LazyMapping.create(pages * PAGE, {
      kind: this.kind,
      source,
      readahead: this.readahead,
    });
    w.lazies.push({
      lazy,
      kind: this.kind,
      pages,
      sourceByte,
      written: new Map(),
      served: new Set(),
      stopped: false,
    });
  }
  toString(): string {
    return `NewLazy(${this.kind}, ${this.pages}, ${this.source}, ra=${this.readahead}, seed=${this.seed})`;
  }
}

/** Reads (or writes, then reads) a byte of a lazy mapping, checked against the model. */
class TouchLazy implements Cmd {
  constructor(
    readonly which: number,
    readonly page: number,
    readonly offset: number,
    readonly write: number | null,
  ) {}
  check(): boolean {
    return true;
  }
  run(_m: object, w: World): Promise<void> {
    const l = w.lazies[this.which % Math.max(1, w.lazies.length)];
    if (!l) return Promise.resolve();
    const p = this.page % l.pages;
    const v = new Uint8Array(l.lazy.buffer);
    const at = p * PAGE + this.offset;
    if (this.write !== null) {
      v[at] = this.write;
      if (!l.written.has(p)) l.written.set(p, new Map());
      l.written.get(p)!.set(this.offset, this.write);
    }
    const got = v[at];
    w.tally.touches++;
    if (!l.stopped) l.served.add(p);
    // Once stopped, the mapping is ordinary memory: a page served before (by a
    // touch, or by readahead we do not follow) has its source's bytes, one
    // never served reads zeros: either, unless a touch pinned it down.
    const expected = l.written.get(p)?.get(this.offset);
    const source = l.sourceByte(p);
    const ok = expected !== undefined
      ? got === expected
      : l.stopped && !l.served.has(p)
      ? got === source || got === 0
      : got === source;
    if (!ok) {
      w.tally.wrongBytes.push(
        `${l.kind} page ${p}+${this.offset}: read ${got}, expected ${expected ?? source}${
          l.stopped ? " (stopped)" : ""
        }`,
      );
    }
    return Promise.resolve();
  }
  toString(): string {
    return `TouchLazy(${this.which}, ${this.page}, ${this.offset}, ${this.write})`;
  }
}

/** madvise(DONTNEED) of a page: anonymous memory is served again from the source; shmem keeps its bytes. */
class DropPage implements Cmd {
  constructor(readonly which: number, readonly page: number) {}
  check(): boolean {
    return true;
  }
  run(_m: object, w: World): Promise<void> {
    const l = w.lazies[this.which % Math.max(1, w.lazies.length)];
    if (!l || l.stopped) return Promise.resolve();
    const p = this.page % l.pages;
    libc.madvise(l.lazy.mapping.base + p * PAGE, PAGE, mm.MADV_DONTNEED);
    if (l.kind === "anonymous") {
      l.written.delete(p);
      l.served.delete(p);
    }
    return Promise.resolve();
  }
  toString(): string {
    return `DropPage(${this.which}, ${this.page})`;
  }
}

/** stop() or close() of a lazy mapping. */
class EndLazy implements Cmd {
  constructor(readonly which: number, readonly how: "stop" | "close") {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const i = this.which % Math.max(1, w.lazies.length);
    const l = w.lazies[i];
    if (!l) return;
    if (this.how === "stop") {
      await l.lazy.stop();
      l.stopped = true;
    } else {
      const view = new Uint8Array(l.lazy.buffer);
      await w.unmaps(l.lazy.mapping, () => l.lazy.close());
      if (view.length !== 0 || view[0] !== undefined) {
        w.tally.wrongBytes.push("a view outlived close()");
      }
      w.lazies.splice(i, 1);
    }
  }
  toString(): string {
    return `EndLazy(${this.which}, ${this.how})`;
  }
}

/** A raw userfaultfd with a registered mapping, optionally served by a FaultHandler. */
class NewRaw implements Cmd {
  constructor(readonly pages: number, readonly serve: boolean) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    if (w.raw.length >= 3) return;
    const mem = Mapping.create(this.pages * PAGE);
    const uffd = UserfaultFd.open({ features: ["EVENT_UNMAP", "EVENT_REMOVE", "EVENT_REMAP"] });
    uffd.register(mem.address, mem.length);
    const handler = this.serve
      ? await FaultHandler.start(uffd, { ranges: [{ address: mem.address, length: mem.length }] })
      : null;
    w.raw.push({ uffd, mem, handler });
  }
  toString(): string {
    return `NewRaw(${this.pages}, serve=${this.serve})`;
  }
}

/** A resolving call on a raw uffd (valid or not), never touching its memory. */
class RawCall implements Cmd {
  constructor(
    readonly which: number,
    readonly call:
      | "copy"
      | "zeropage"
      | "wake"
      | "writeProtect"
      | "unregister"
      | "register"
      | "readEvents",
    readonly page: number,
    readonly bad: unknown | null,
    readonly badArg: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const r = w.raw[this.which % Math.max(1, w.raw.length)];
    if (!r) return;
    const p = this.page % (r.mem.length / PAGE);
    const args: unknown[] = [r.mem.base + p * PAGE, PAGE];
    if (this.call === "copy") args.splice(1, 0, new Uint8Array(PAGE).fill(9));
    if (this.call === "writeProtect") args.push(false);
    if (this.bad !== null) args[this.badArg % args.length] = this.bad;
    await w.expectTyped(
      `${this.call}(${args.map((a) => typeof a === "symbol" ? "Symbol" : String(a)).join(", ")})`,
      () => {
        // deno-lint-ignore no-explicit-any
        const f = (r.uffd as any)[this.call] as (...a: unknown[]) => unknown;
        return f.apply(r.uffd, this.call === "readEvents" ? [] : args);
      },
    );
  }
  toString(): string {
    return `RawCall(${this.which}, ${this.call}, ${this.page}, bad=${
      String(this.bad)
    }@${this.badArg})`;
  }
}

/** Touches a served raw mapping, or mremaps/munmaps part of it (the handler must follow). */
class RawMemory implements Cmd {
  constructor(
    readonly which: number,
    readonly page: number,
    readonly op: "touch" | "unmap" | "dontneed",
  ) {}
  check(): boolean {
    return true;
  }
  run(_m: object, w: World): Promise<void> {
    const r = w.raw[this.which % Math.max(1, w.raw.length)];
    if (!r || r.handler === null || r.uffd.closed) return Promise.resolve();
    const pages = r.mem.length / PAGE;
    const p = this.page % pages;
    const addr = r.mem.base + p * PAGE;
    if (this.op === "touch") {
      // Pages past a hole the campaign punched are unmapped: read only mapped ones (process_vm_readv).
      if (libc.msync(addr, PAGE, 0) === 0) {
        const v = new Uint8Array(r.mem.buffer)[p * PAGE];
        if (v !== 0 && v !== 9) w.tally.wrongBytes.push(`raw page ${p} read ${v}`);
        w.tally.touches++;
      }
    } else if (this.op === "dontneed") {
      libc.madvise(addr, PAGE, mm.MADV_DONTNEED);
    } else if (p === pages - 1 && pages > 1) {
      // Shrink from the end through the Mapping (mremap in place: its handler follows the
      // UNMAP event), so that close() unmaps what remains and nothing else. A raw munmap
      // here left close() to unmap the freed page too, after a new mapping had taken it: one
      // registered for EVENT_UNMAP with no reader, whose munmap waits for its reader forever
      // (the kernel's non-cooperative contract). Found on Node, whose allocator reused the hole.
      r.mem.resize(r.mem.length - PAGE);
    }
    return Promise.resolve();
  }
  toString(): string {
    return `RawMemory(${this.which}, ${this.page}, ${this.op})`;
  }
}

/** Closes a raw uffd, its handler and its mapping, in a random order. */
class EndRaw implements Cmd {
  constructor(readonly which: number, readonly order: number) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const i = this.which % Math.max(1, w.raw.length);
    const r = w.raw[i];
    if (!r) return;
    if (this.order === 0) {
      await r.handler?.close();
      r.uffd.close();
    } else {
      r.uffd.close(); // closing the uffd under its handler: the handler must not misuse the number
      await r.handler?.close();
    }
    await w.unmaps(r.mem, () => r.mem.close());
    w.raw.splice(i, 1);
  }
  toString(): string {
    return `EndRaw(${this.which}, ${this.order})`;
  }
}

/** A DirtyTracker: writes to random pages, then dirty() must name exactly those. */
class Dirty implements Cmd {
  constructor(readonly pages: number[], readonly reset: boolean) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const mem = Mapping.create(16 * PAGE);
    const tracker = DirtyTracker.start(mem.address, mem.length);
    const v = new Uint8Array(mem.buffer);
    const want = new Set(this.pages.map((p) => p % 16));
    for (const p of want) v[p * PAGE + 1] = 1;
    const got = new Set(tracker.dirtyPages().map((a) => Number(a - mem.address) / PAGE));
    if ([...want].some((p) => !got.has(p)) || got.size !== want.size) {
      w.tally.wrongBytes.push(`DirtyTracker: wrote ${[...want]}, dirty ${[...got]}`);
    }
    if (this.reset) tracker.reset();
    tracker.close();
    await w.unmaps(mem, () => mem.close());
  }
  toString(): string {
    return `Dirty(${this.pages}, reset=${this.reset})`;
  }
}

/** A LiveSnapshot: writes during it; finish() must return the memory as it was (or, unmapped, not crash). */
class Snapshot implements Cmd {
  constructor(readonly writes: number[], readonly unmapFirst: boolean) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const mem = Mapping.create(8 * PAGE);
    const v = new Uint8Array(mem.buffer);
    for (let p = 0; p < 8; p++) v[p * PAGE] = p + 10;
    const snap = await LiveSnapshot.start(mem.address, mem.length);
    for (const p of this.writes) v[(p % 8) * PAGE] = 200;
    if (this.unmapFirst) await w.unmaps(mem, () => mem.close());
    const copy = new Uint8Array(await snap.finish());
    if (!this.unmapFirst) {
      for (let p = 0; p < 8; p++) {
        if (copy[p * PAGE] !== p + 10) {
          w.tally.wrongBytes.push(`snapshot page ${p}: ${copy[p * PAGE]}`);
        }
      }
    }
    await snap.close();
    if (!this.unmapFirst) await w.unmaps(mem, () => mem.close());
  }
  toString(): string {
    return `Snapshot(${this.writes}, unmapFirst=${this.unmapFirst})`;
  }
}

/** A public entry point called with a hostile value in one argument. */
class Hostile implements Cmd {
  constructor(readonly entry: number, readonly value: unknown) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const x = this.value as never;
    const entries: (() => unknown)[] = [
      () => Mapping.create(x),
      () => Mapping.create(PAGE, x),
      () => UserfaultFd.open(x),
      () => UserfaultFd.probe(x),
      () => UserfaultFd.fromFd(x),
      () => UserfaultFd.adopt(x),
      () => sources.file(x),
      () => sources.file("/etc/hostname", x),
      () => sources.shared(x),
      () => sources.shared(new SharedArrayBuffer(PAGE), x),
      () => sources.bytes(x),
      () => sources.module(x),
      () => LazyMapping.create(x, { source: sources.zero() }).then((l) => l.close()),
      () => LazyMapping.create(PAGE, x).then((l) => l.close()),
      () => LazyMapping.create(PAGE, { source: x }).then((l) => l.close()),
      () =>
        LazyMapping.create(PAGE, { source: sources.zero(), readahead: x }).then((l) => l.close()),
      () => DirtyTracker.start(x, PAGE),
      () => LiveSnapshot.start(x, PAGE),
      () => UserfaultFd.builder().require(x),
      () => UserfaultFd.builder().via(x),
    ];
    const made = await w.expectTyped(
      `entry ${this.entry}(${typeof this.value === "symbol" ? "Symbol" : String(this.value)})`,
      entries[this.entry % entries.length],
    );
    // A hostile value that happens to be valid made something: release it.
    if (made instanceof Mapping) made.close();
    else if (made instanceof UserfaultFd || made instanceof DirtyTracker) made.close();
    else if (made instanceof LiveSnapshot) await made.close();
  }
  toString(): string {
    return `Hostile(${this.entry}, ${
      typeof this.value === "symbol" ? "Symbol" : String(this.value)
    })`;
  }
}

/** The command arbitraries. */
export function commandArbitraries(): fc.Arbitrary<Cmd>[] {
  const hostile = fc.constantFrom(...HOSTILE);
  const small = fc.nat(64);
  return [
    fc.record({
      kind: fc.constantFrom("anonymous" as const, "memfd" as const),
      pages: fc.integer({ min: 1, max: 16 }),
      source: fc.constantFrom(
        "zero" as const,
        "bytes" as const,
        "file" as const,
        "module" as const,
      ),
      readahead: fc.integer({ min: 1, max: 8 }),
      seed: fc.nat(255),
    }).map((r) => new NewLazy(r.kind, r.pages, r.source, r.readahead, r.seed)),
    fc.tuple(small, small, fc.nat(PAGE - 1), fc.option(fc.nat(255))).map(([a, b, c, d]) =>
      new TouchLazy(a, b, c, d)
    ),
    fc.tuple(small, small, fc.nat(PAGE - 1), fc.option(fc.nat(255))).map(([a, b, c, d]) =>
      new TouchLazy(a, b, c, d)
    ),
    fc.tuple(small, small).map(([a, b]) => new DropPage(a, b)),
    fc.tuple(small, fc.constantFrom("stop" as const, "close" as const)).map(([a, b]) =>
      new EndLazy(a, b)
    ),
    fc.tuple(fc.integer({ min: 1, max: 8 }), fc.boolean()).map(([a, b]) => new NewRaw(a, b)),
    fc.tuple(
      small,
      fc.constantFrom(
        "copy" as const,
        "zeropage" as const,
        "wake" as const,
        "writeProtect" as const,
        "unregister" as const,
        "register" as const,
        "readEvents" as const,
      ),
      small,
      fc.option(hostile, { freq: 2 }),
      fc.nat(3),
    ).map(([a, b, c, d, e]) => new RawCall(a, b, c, d, e)),
    fc.tuple(small, small, fc.constantFrom("touch" as const, "unmap" as const, "dontneed" as const))
      .map(([a, b, c]) => new RawMemory(a, b, c)),
    fc.tuple(small, fc.nat(1)).map(([a, b]) => new EndRaw(a, b)),
    fc.tuple(small, small, fc.nat(PAGE - 1), fc.option(fc.nat(255))).map(([a, b, c, d]) =>
      new TouchLazy(a, b, c, d)
    ),
    fc.tuple(fc.array(fc.nat(15), { maxLength: 6 }), fc.boolean()).map(([a, b]) => new Dirty(a, b)),
    fc.tuple(fc.array(fc.nat(7), { maxLength: 4 }), fc.boolean()).map(([a, b]) =>
      new Snapshot(a, b)
    ),
    fc.tuple(fc.nat(19), hostile).map(([a, b]) => new Hostile(a, b)),
    fc.tuple(fc.nat(19), hostile).map(([a, b]) => new Hostile(a, b)),
  ];
}

/** The file source's content: 64 pages, page p filled with (p * 3 + 1) & 255. */
export function writeSourceFile(path: string): void {
  const b = new Uint8Array(64 * PAGE);
  for (let p = 0; p < 64; p++) b.fill((p * 3 + 1) & 255, p * PAGE, (p + 1) * PAGE);
  writeFileSync(path, b);
}
