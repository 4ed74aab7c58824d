/**
 * FaultHandler's options, checked against the real address space before any
 * fd, mapping or Worker exists: each range is mapped, registered, aligned to
 * its memory's page size; an alias maps the same memfd pages; a snapshot is
 * shared memory big enough; a source is a source. What the Worker will rely
 * on blindly is checked here, with an error that names the argument.
 */
import { PAGE_SIZE } from "../libc.ts";
import { UmmuArgumentError } from "../errors.ts";
import { coverage, type Vma } from "../maps.ts";
import * as v from "../validate.ts";
import type { UffdEvent } from "./events.ts";
import type { SourceErrorPolicy } from "./protocol.ts";
import { cloneable, moduleUrl, type PageSource } from "./sources.ts";

/** A registered range the handler serves. */
export interface HandledRange {
  /** Start (page-aligned) and length of memory already registered on the uffd. */
  address: bigint | number;
  /** Length in bytes (a multiple of the page size). */
  length: number;
  /** Where MISSING (and MINOR, with `alias`) pages come from. Default zero pages. */
  source?: PageSource;
  /** Pages to resolve per MISSING fault (default 1). */
  readahead?: number;
  /** WP faults: copy the page into this buffer (same offset) before the write lands. */
  snapshot?: SharedArrayBuffer;
  /** MINOR faults: a second mapping of the same memfd (Mapping.alias()) to fill through. */
  alias?: bigint | number;
  /** The memory's page size; default (and checked against) what the kernel says it is. */
  pageSize?: number;
  /**
   * Resolve MISSING and MINOR faults write-protected (UFFDIO_COPY_MODE_WP,
   * UFFDIO_CONTINUE_MODE_WP): a later write raises a WP fault, served like
   * any other (the range must be registered in "wp" mode too).
   */
  writeProtect?: boolean;
  /**
   * A page that REMOVE dropped (`madvise(MADV_DONTNEED)`, a balloon device)
   * faults again: "refill" serves it from the source again, "zero" with
   * zeros (what the process that dropped it expects of anonymous memory).
   * Default "refill", and "zero" for a `peer`'s ranges.
   */
  afterRemove?: "refill" | "zero";
}

/** Options of {@link FaultHandler.start}. */
export interface FaultHandlerOptions {
  /** The registered ranges to serve, each with its source. */
  ranges: HandledRange[];
  /**
   * Spin this long (µs) reading the fd before blocking in poll(). Saves the
   * handler's wakeup when faults come in bursts on another CPU. Default 0.
   */
  spinMicros?: number;
  /**
   * When a source throws: "zero" (default) maps a zero page and reports the
   * error (the toucher continues with zeros); "poison" marks the page
   * poisoned, so the access raises SIGBUS (fatal to a JS runtime: for native
   * code that handles it).
   */
  onSourceError?: SourceErrorPolicy;
  /**
   * Non-cooperative events (unmap, remove, remap, fork) the Worker read. A
   * fork event's `ufd` is yours: close it, or wrap it with UserfaultFd.fromFd.
   * Without onEvent the handler closes it. An exception thrown here is caught
   * and kept in `errors`.
   */
  onEvent?: (event: UffdEvent) => void;
  /** Close the UserfaultFd too when the handler closes (default true). */
  ownsUffd?: boolean;
  /**
   * How long a module source may take for one fill before it counts as hung
   * (ms, default 10 000; Infinity for no deadline). A source that misses it,
   * or whose Worker ends, is not used again: its pages get the onSourceError
   * policy.
   */
  sourceTimeoutMs?: number;
  /**
   * The ranges are addresses of another process, whose userfaultfd this is
   * (received over a unix socket, UserfaultFd.fromFd): the handler resolves
   * its faults with UFFDIO_COPY/ZEROPAGE/WAKE, which work across address
   * spaces, and never reads those addresses itself. `pid` is that process:
   * the handler watches it through a pidfd and, when it exits, stops,
   * releases everything and resolves `ended` with "peer-exited" (until
   * then the handler keeps this process alive, as a server's socket does,
   * unlike a handler of our own memory). Ranges are
   * trusted as given (this process cannot see the peer's mappings): give
   * `pageSize` for huge pages; snapshot and alias need our own memory and
   * are refused.
   */
  peer?: { pid: number };
}

/** A range as checked: numbers, its real page size and its VMAs. */
export interface CheckedRange {
  start: number;
  length: number;
  pageSize: number;
  source: PageSource;
  readahead: number;
  snapshot?: SharedArrayBuffer;
  alias?: number;
  writeProtect: boolean;
  afterRemove: "refill" | "zero";
}

export interface CheckedOptions {
  ranges: CheckedRange[];
  spinMicros: number;
  onSourceError: SourceErrorPolicy;
  onEvent?: (event: UffdEvent) => void;
  ownsUffd: boolean;
  sourceTimeoutMs: number;
  peer: { pid: number } | null;
}

const POLICIES: readonly SourceErrorPolicy[] = ["zero", "poison"];
const hex = (n: number) => `0x${n.toString(16)}`;

/** Checks every option; throws UmmuArgumentError naming the first that is wrong. */
export function checkOptions(options: unknown): CheckedOptions {
  const o = v.options<FaultHandlerOptions>("FaultHandler options", options);
  if (o.ranges === undefined) v.invalid("options.ranges", undefined, "an array of ranges");
  let peer: { pid: number } | null = null;
  if (o.peer !== undefined) {
    const p = v.options<{ pid: number }>("options.peer", o.peer);
    peer = { pid: v.integer("options.peer.pid", p.pid, 1, 2 ** 31 - 1) };
  }
  const ranges = v.list(
    "options.ranges",
    o.ranges,
    (r, i) =>
      peer ? checkPeerRange(r, `options.ranges[${i}]`) : checkRange(r, `options.ranges[${i}]`),
  );
  if (ranges.length === 0) v.invalid("options.ranges", o.ranges, "at least one range");
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1], b = sorted[i];
    if (b.start < a.start + a.length) {
      throw new UmmuArgumentError(
        `options.ranges: ${hex(a.start)}+${a.length} and ${hex(b.start)}+${b.length} overlap`,
      );
    }
  }
  const spin = o.spinMicros ?? 0;
  if (typeof spin !== "number" || !Number.isFinite(spin) || spin < 0 || spin > 1e6) {
    v.invalid("options.spinMicros", spin, "a number of microseconds in 0..1000000");
  }
  return {
    ranges,
    spinMicros: spin,
    onSourceError: o.onSourceError === undefined
      ? "zero"
      : v.oneOf("options.onSourceError", o.onSourceError, POLICIES),
    onEvent: v.optionalFunction("options.onEvent", o.onEvent),
    ownsUffd: v.boolean("options.ownsUffd", o.ownsUffd, true),
    sourceTimeoutMs: v.milliseconds("options.sourceTimeoutMs", o.sourceTimeoutMs, 10_000),
    peer,
  };
}

const AFTER_REMOVE = ["refill", "zero"] as const;

/**
 * A range of another process: what can be checked without its maps
 * (alignment to the page size given, the source), nothing that would make
 * the handler read or write those addresses.
 */
function checkPeerRange(value: unknown, what: string): CheckedRange {
  const r = v.options<HandledRange>(what, value);
  const pageSize = r.pageSize === undefined
    ? PAGE_SIZE
    : v.integer(`${what}.pageSize`, r.pageSize, PAGE_SIZE, 2 ** 34);
  if ((pageSize & (pageSize - 1)) !== 0) v.invalid(`${what}.pageSize`, r.pageSize, "a power of 2");
  const start = v.address(`${what}.address`, r.address, pageSize);
  const length = v.byteLength(`${what}.length`, r.length, pageSize);
  if (r.snapshot !== undefined || r.alias !== undefined) {
    throw new UmmuArgumentError(
      `${what}: a peer's range cannot have a snapshot or an alias (both are memory of this process)`,
    );
  }
  return {
    start,
    length,
    pageSize,
    source: checkSource(`${what}.source`, r.source),
    readahead: r.readahead === undefined ? 1 : v.integer(`${what}.readahead`, r.readahead, 1, 512),
    writeProtect: v.boolean(`${what}.writeProtect`, r.writeProtect, false),
    afterRemove: r.afterRemove === undefined
      ? "zero"
      : v.oneOf(`${what}.afterRemove`, r.afterRemove, AFTER_REMOVE),
  };
}

function checkRange(value: unknown, what: string): CheckedRange {
  // The arguments themselves first, then what the address space says of them.
  const r = v.options<HandledRange>(what, value);
  const start = v.address(`${what}.address`, r.address, PAGE_SIZE);
  const length = v.byteLength(`${what}.length`, r.length, PAGE_SIZE);
  const readahead = r.readahead === undefined
    ? 1
    : v.integer(`${what}.readahead`, r.readahead, 1, 512);
  const writeProtect = v.boolean(`${what}.writeProtect`, r.writeProtect, false);
  const source = checkSource(`${what}.source`, r.source);
  if (r.snapshot !== undefined) {
    if (!(r.snapshot instanceof SharedArrayBuffer)) {
      v.invalid(`${what}.snapshot`, r.snapshot, "a SharedArrayBuffer (the Worker writes into it)");
    }
    if (r.snapshot.byteLength < length) {
      v.invalid(
        `${what}.snapshot`,
        r.snapshot,
        `at least ${length} bytes (it has ${r.snapshot.byteLength})`,
      );
    }
  }
  const alias = r.alias === undefined ? undefined : v.address(`${what}.alias`, r.alias, PAGE_SIZE);
  if (r.pageSize !== undefined) v.integer(`${what}.pageSize`, r.pageSize, PAGE_SIZE, 2 ** 34);

  const end = start + length;
  const { vmas, hole } = coverage(start, end);
  if (hole !== null) {
    throw new UmmuArgumentError(`${what}: ${hex(start)}+${length} is not mapped at ${hex(hole)}`);
  }
  const pageSize = vmas[0].pageSize;
  if (vmas.some((m) => m.pageSize !== pageSize)) {
    throw new UmmuArgumentError(
      `${what}: ${hex(start)}+${length} spans memory of different page sizes`,
    );
  }
  if (r.pageSize !== undefined && r.pageSize !== pageSize) {
    v.invalid(`${what}.pageSize`, r.pageSize, `the memory's page size, ${pageSize} (or absent)`);
  }
  if (start % pageSize !== 0 || length % pageSize !== 0) {
    throw new UmmuArgumentError(
      `${what}: ${hex(start)}+${length} must be aligned to the memory's ${
        pageSize >> 10
      } KiB pages`,
    );
  }
  const modes = registeredModes(vmas);
  if (modes === null) {
    throw new UmmuArgumentError(
      `${what}: ${
        hex(start)
      }+${length} is not (entirely) registered on a userfaultfd: register it first`,
    );
  }
  if (writeProtect && !modes.has("uw")) {
    throw new UmmuArgumentError(`${what}.writeProtect needs the range registered in "wp" mode too`);
  }
  if (r.snapshot !== undefined) {
    if (!modes.has("uw")) {
      throw new UmmuArgumentError(`${what}.snapshot needs the range registered in "wp" mode`);
    }
    if (modes.has("um")) {
      // Reading a missing page to copy it out would fault into this very handler.
      throw new UmmuArgumentError(
        `${what}.snapshot: a snapshot range must not be registered in "missing" mode`,
      );
    }
  }
  if (alias !== undefined) {
    if (alias % pageSize !== 0) {
      v.invalid(`${what}.alias`, r.alias, `aligned to the memory's page size (${pageSize})`);
    }
    checkAlias(`${what}.alias`, alias, start, length, vmas);
  }
  const afterRemove = r.afterRemove === undefined
    ? "refill"
    : v.oneOf(`${what}.afterRemove`, r.afterRemove, AFTER_REMOVE);
  return {
    start,
    length,
    pageSize,
    source,
    readahead,
    snapshot: r.snapshot,
    alias,
    writeProtect,
    afterRemove,
  };
}

/** The userfaultfd modes every VMA of the range is registered in ("um", "uw", "ui"), or null if some VMA is not. */
function registeredModes(vmas: Vma[]): Set<string> | null {
  let common = new Set(["um", "uw", "ui"]);
  for (const m of vmas) {
    common = new Set([...common].filter((f) => m.flags.has(f)));
    if (![...m.flags].some((f) => f === "um" || f === "uw" || f === "ui")) return null;
  }
  return common;
}

/**
 * An alias must be another shared, writable mapping of the same file pages:
 * the Worker writes a page there and UFFDIO_CONTINUE maps it in the range.
 */
function checkAlias(what: string, alias: number, start: number, length: number, vmas: Vma[]): void {
  if (alias < start + length && start < alias + length) {
    throw new UmmuArgumentError(
      `${what}: ${hex(alias)} overlaps the range itself; pass a second mapping (Mapping.alias())`,
    );
  }
  const a = coverage(alias, alias + length);
  if (a.hole !== null) {
    throw new UmmuArgumentError(`${what}: ${hex(alias)}+${length} is not mapped at ${hex(a.hole)}`);
  }
  const fileOffset = (vs: Vma[], addr: number) => {
    const m = vs.find((x) => addr >= x.start && addr < x.end)!;
    return { dev: m.dev, inode: m.inode, offset: m.offset + (addr - m.start), m };
  };
  for (let off = 0; off < length;) {
    const r = fileOffset(vmas, start + off), x = fileOffset(a.vmas, alias + off);
    if (!x.m.perms.startsWith("rw") || x.m.perms[3] !== "s") {
      throw new UmmuArgumentError(
        `${what}: ${hex(alias + off)} is not a shared writable mapping (${x.m.perms})`,
      );
    }
    if (r.inode === 0 || r.dev !== x.dev || r.inode !== x.inode || r.offset !== x.offset) {
      throw new UmmuArgumentError(
        `${what}: ${hex(alias + off)} does not map the same memfd pages as ${hex(start + off)}`,
      );
    }
    off = Math.min(r.m.end - start, x.m.end - alias);
  }
}

const KINDS = ["zero", "file", "shared", "module"] as const;

/** A source as given (constructor result or literal), checked; default zero pages. */
function checkSource(what: string, value: unknown): PageSource {
  if (value === undefined) return { kind: "zero" };
  const s = v.options<PageSource>(what, value) as Record<string, unknown>;
  const kind = v.oneOf(`${what}.kind`, s.kind, KINDS);
  switch (kind) {
    case "zero":
      return { kind };
    case "file":
      return {
        kind,
        path: v.string(`${what}.path`, s.path),
        offset: s.offset === undefined ? 0 : v.integer(`${what}.offset`, s.offset),
      };
    case "shared": {
      if (!(s.buffer instanceof SharedArrayBuffer)) {
        v.invalid(`${what}.buffer`, s.buffer, "a SharedArrayBuffer");
      }
      const buffer = s.buffer as SharedArrayBuffer;
      const offset = s.offset === undefined
        ? 0
        : v.integer(`${what}.offset`, s.offset, 0, buffer.byteLength);
      return { kind, buffer, offset };
    }
    case "module":
      return { kind, url: moduleUrl(s.url), options: cloneable(s.options) };
  }
}
