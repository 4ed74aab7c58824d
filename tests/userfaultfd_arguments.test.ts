/**
 * A hostile caller's inputs to the userfaultfd API, Mapping and the page
 * sources: each ends in the library's own error (UmmuArgumentError naming the
 * argument and the value, ClosedError, or UmmuError for a kernel refusal),
 * never an engine TypeError, a crash, a silent acceptance, or a leak.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
} from "../mod.ts";
import { assertNoLeak, PAGE, quiescent } from "./helpers.ts";

type Expect = RegExp | typeof ClosedError | typeof UmmuError;
// deno-lint-ignore no-explicit-any
const any = (x: unknown) => x as any;

/** The error a call threw is the library's own, of the expected kind (a message pattern: an argument error). */
function assertOurs(name: string, thrown: unknown, expect: Expect): void {
  assert.ok(thrown !== undefined, `${name}: accepted`);
  if (expect instanceof RegExp) {
    assert.ok(thrown instanceof UmmuArgumentError, `${name}: ${String(thrown)}`);
    assert.match((thrown as Error).message, expect, name);
  } else {
    assert.ok(thrown instanceof expect, `${name}: ${String(thrown)}`);
  }
}

function check(name: string, fn: () => unknown, expect: Expect): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assertOurs(name, thrown, expect);
}

async function checkAsync(name: string, fn: () => Promise<unknown>, expect: Expect): Promise<void> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  assertOurs(name, thrown, expect);
}

test("UserfaultFd: every bad argument names itself", () => {
  const mem = Mapping.create(4 * PAGE);
  const uffd = UserfaultFd.open();
  const a = mem.address;
  const cases: [string, () => unknown, Expect][] = [
    [
      "open(null)",
      () => UserfaultFd.open(any(null)),
      /UserfaultFd\.open options must be an object, got null/,
    ],
    [
      "open via bogus",
      () => UserfaultFd.open({ via: any("bogus") }),
      /options\.via must be one of/,
    ],
    [
      "unknown feature",
      () => UserfaultFd.open({ features: any(["NOPE"]) }),
      /userfaultfd feature must be one of .*got "NOPE"/,
    ],
    [
      "features a string",
      () => UserfaultFd.open({ features: any("EVENT_FORK") }),
      /options\.features must be an array/,
    ],
    [
      "userModeOnly 1",
      () => UserfaultFd.open({ userModeOnly: any(1) }),
      /options\.userModeOnly must be true or false/,
    ],
    [
      "builder require bogus",
      () => UserfaultFd.builder().require(any("NOPE")),
      /userfaultfd feature/,
    ],
    [
      "register('abc')",
      () => uffd.register(any("abc"), PAGE),
      /address must be an integer .*got "abc"/,
    ],
    [
      "register kernel address",
      () => uffd.register(0xffff_8000_0000_0000n, PAGE),
      /address must be an integer in 0\.\./,
    ],
    ["register misaligned", () => uffd.register(a + 1n, PAGE), /address must be aligned to 4096/],
    [
      "register length 0",
      () => uffd.register(a, 0),
      /length must be a positive multiple of the page size/,
    ],
    ["register length NaN", () => uffd.register(a, NaN), /length must be a positive multiple/],
    ["register length 10", () => uffd.register(a, 10), /length must be a positive multiple/],
    ["register modes null", () => uffd.register(a, PAGE, any(null)), /modes must be an array/],
    [
      "register modes string",
      () => uffd.register(a, PAGE, any("missing")),
      /modes must be an array/,
    ],
    [
      "register unknown mode",
      () => uffd.register(a, PAGE, any(["m"])),
      /register mode must be one of "missing", "wp", "minor", got "m"/,
    ],
    ["register no mode", () => uffd.register(a, PAGE, []), /modes must be at least one of/],
    [
      "register past the Mapping's end",
      () => uffd.register(a, 5 * PAGE),
      /runs 4096 bytes past the end of the Mapping/,
    ],
    ["copy('abc')", () => uffd.copy(a, any("abc"), PAGE), /copy source address must be an integer/],
    [
      "copy short source",
      () => uffd.copy(a, new Uint8Array(10), PAGE),
      /copy source must be at least 4096 bytes/,
    ],
    [
      "copy options null",
      () => uffd.copy(a, new Uint8Array(PAGE), PAGE, any(null)),
      /copy options must be an object/,
    ],
    [
      "copy wp 'yes'",
      () => uffd.copy(a, new Uint8Array(PAGE), PAGE, any({ wp: "yes" })),
      /options\.wp must be true or false/,
    ],
    [
      "copy bigint length",
      () => uffd.copy(a, new Uint8Array(PAGE), any(2n ** 70n)),
      /length must be a positive multiple/,
    ],
    ["zeropage -4096", () => uffd.zeropage(-4096, PAGE), /address must be an integer/],
    [
      "move src misaligned",
      () => uffd.move(a, a + 7n, PAGE),
      /move source address must be aligned/,
    ],
    [
      "writeProtect protect 'yes'",
      () => uffd.writeProtect(a, PAGE, any("yes")),
      /protect must be true or false/,
    ],
    ["wake 1.5", () => uffd.wake(1.5, PAGE), /address must be an integer/],
    ["fromFd('3')", () => UserfaultFd.fromFd(any("3")), /fd must be an integer/],
    [
      "adopt junk",
      () => UserfaultFd.adopt(any({ kind: "x" })),
      /transfer must be what UserfaultFd\.transfer\(\) returned/,
    ],
  ];
  for (const [name, fn, expect] of cases) check(name, fn, expect);
  uffd.close();
  const closed: [string, () => unknown][] = [
    ["register", () => uffd.register(a, PAGE)],
    ["copy", () => uffd.copy(a, new Uint8Array(PAGE), PAGE)],
    ["readEvents", () => uffd.readEvents()],
    ["fd", () => uffd.fd],
    ["transfer", () => uffd.transfer()],
    ["faultsInFlight", () => uffd.faultsInFlight()],
  ];
  for (const [name, fn] of closed) check(`closed ${name}`, fn, ClosedError);
  mem.close();
});

test("Mapping, sources and DirtyTracker: bad arguments name themselves; use after close is ClosedError", () => {
  const dir = mkdtempSync(join(tmpdir(), "ummu-args-"));
  const sab = new SharedArrayBuffer(PAGE);
  const cases: [string, () => unknown, Expect][] = [
    [
      "Mapping kind bogus",
      () => Mapping.create(PAGE, { kind: any("bogus") }),
      /options\.kind must be one of "anonymous", "memfd", "hugetlb", got "bogus"/,
    ],
    ["Mapping length 0", () => Mapping.create(0), /length must be a positive integer/],
    [
      "Mapping length 1n<<60n",
      () => Mapping.create(any(1n << 60n)),
      /length must be a positive integer/,
    ],
    [
      "Mapping options null",
      () => Mapping.create(PAGE, any(null)),
      /Mapping\.create options must be an object/,
    ],
    [
      "hugePageSize on anonymous",
      () => Mapping.create(PAGE, { hugePageSize: 2 << 20 }),
      /hugePageSize must be absent unless/,
    ],
    [
      "hugePageSize 3 MiB",
      () => Mapping.create(PAGE, { kind: "hugetlb", hugePageSize: 3 << 20 }),
      /hugePageSize must be a power of two/,
    ],
    [
      "shared -4096",
      () => sources.shared(sab, -4096),
      /shared source offset must be an integer in 0\.\.4096, got -4096/,
    ],
    ["shared 1.5", () => sources.shared(sab, 1.5), /shared source offset must be an integer/],
    ["shared past the end", () => sources.shared(sab, PAGE + 1), /shared source offset/],
    [
      "shared ArrayBuffer",
      () => sources.shared(any(new ArrayBuffer(8))),
      /shared source buffer must be a SharedArrayBuffer/,
    ],
    [
      "file NaN offset",
      () => sources.file("/etc/hostname", NaN),
      /file source offset must be an integer/,
    ],
    [
      "file negative offset",
      () => sources.file("/etc/hostname", -1),
      /file source offset must be an integer/,
    ],
    ["file path 3", () => sources.file(any(3)), /file source path must be a non-empty string/],
    ["bytes of a string", () => sources.bytes(any("abc")), /bytes source must be a Uint8Array/],
    ["module 3", () => sources.module(any(3)), /module source url must be a URL/],
    ["DirtyTracker misaligned", () => DirtyTracker.start(7, PAGE), /address must be aligned/],
  ];
  for (const [name, fn, expect] of cases) check(name, fn, expect);
  const mem = Mapping.create(PAGE);
  const tracker = DirtyTracker.start(mem.address, mem.length);
  tracker.close();
  check("dirty() after close", () => tracker.dirty(), ClosedError);
  check("reset() after close", () => tracker.reset(), ClosedError);
  mem.close();
  check("buffer after close", () => mem.buffer, ClosedError);
  rmSync(dir, { recursive: true });
});

test("FaultHandler.start: bad options are refused before anything is created (no fd, thread or mapping left)", async () => {
  await (await LazyMapping.create(PAGE, { source: sources.zero() })).close(); // warm the runtime up
  const dir = mkdtempSync(join(tmpdir(), "ummu-args-"));
  writeFileSync(join(dir, "f"), "x");
  const mem = Mapping.create(4 * PAGE, { kind: "memfd" });
  const other = Mapping.create(4 * PAGE, { kind: "memfd" });
  const uffd = UserfaultFd.open({ features: ["MINOR_SHMEM", "MISSING_SHMEM"] });
  uffd.register(mem.address, mem.length, ["missing", "minor"]);
  const r = (extra: object) => ({
    ranges: [{ address: mem.address, length: mem.length, ...extra }],
  });
  const before = await quiescent();
  const cases: [string, unknown, Expect][] = [
    ["options null", null, /FaultHandler options must be an object, got null/],
    ["no ranges", {}, /options\.ranges must be an array/],
    ["ranges empty", { ranges: [] }, /options\.ranges must be at least one range/],
    [
      "readahead 0",
      r({ readahead: 0 }),
      /options\.ranges\[0\]\.readahead must be an integer in 1\.\.512, got 0/,
    ],
    [
      "source kind bogus",
      r({ source: { kind: "bogus" } }),
      /options\.ranges\[0\]\.source\.kind must be one of "zero", "file", "shared", "module", got "bogus"/,
    ],
    [
      "onSourceError bogus",
      { ...r({}), onSourceError: "bogus" },
      /options\.onSourceError must be one of "zero", "poison"/,
    ],
    ["onEvent not a function", { ...r({}), onEvent: 3 }, /options\.onEvent must be a function/],
    ["spinMicros NaN", { ...r({}), spinMicros: NaN }, /options\.spinMicros must be a number/],
    [
      "sourceTimeoutMs -1",
      { ...r({}), sourceTimeoutMs: -1 },
      /options\.sourceTimeoutMs must be a number of milliseconds/,
    ],
    [
      "snapshot ArrayBuffer",
      r({ snapshot: new ArrayBuffer(4 * PAGE) }),
      /snapshot must be a SharedArrayBuffer/,
    ],
    [
      "snapshot too small",
      r({ snapshot: new SharedArrayBuffer(PAGE) }),
      /snapshot must be at least 16384 bytes/,
    ],
    [
      "snapshot not wp",
      r({ snapshot: new SharedArrayBuffer(4 * PAGE) }),
      /snapshot needs the range registered in "wp" mode/,
    ],
    [
      "writeProtect not wp",
      r({ writeProtect: true }),
      /writeProtect needs the range registered in "wp" mode/,
    ],
    ["alias unmapped", r({ alias: 0x10000 }), /alias: 0x10000\+16384 is not mapped/],
    ["alias is the range", r({ alias: mem.address }), /alias: .* overlaps the range itself/],
    ["alias of another memfd", r({ alias: other.address }), /does not map the same memfd pages/],
    [
      "unregistered range",
      { ranges: [{ address: other.address, length: other.length }] },
      /is not \(entirely\) registered on a userfaultfd/,
    ],
    [
      "unmapped range",
      { ranges: [{ address: 0x10000, length: PAGE }] },
      /is not mapped at 0x10000/,
    ],
    ["overlapping ranges", {
      ranges: [{ address: mem.address, length: 2 * PAGE }, {
        address: mem.base + PAGE,
        length: PAGE,
      }],
    }, /overlap/],
    ["wrong pageSize", r({ pageSize: 2 << 20 }), /pageSize must be the memory's page size, 4096/],
    ["file source is a directory", r({ source: sources.file(dir) }), /is a directory/],
    ["file source missing", r({ source: sources.file(join(dir, "nope")) }), UmmuError],
    [
      "shared literal offset -4096",
      r({ source: { kind: "shared", buffer: new SharedArrayBuffer(PAGE), offset: -4096 } }),
      /source\.offset must be an integer in 0\.\.4096/,
    ],
    [
      "module literal relative",
      r({ source: { kind: "module", url: "./x.ts" } }),
      /module source url must be an absolute URL/,
    ],
  ];
  for (const [name, options, expect] of cases) {
    await checkAsync(name, () => FaultHandler.start(uffd, any(options)), expect);
  }
  await checkAsync(
    "not a UserfaultFd",
    () => FaultHandler.start(any({}), any(r({}))),
    /first argument must be a UserfaultFd/,
  );
  await checkAsync(
    "LiveSnapshot length 0",
    () => LiveSnapshot.start(mem.address, 0),
    /length must be a positive integer/,
  );
  await checkAsync(
    "LazyMapping without source",
    () => LazyMapping.create(PAGE, any({})),
    /options\.source must be a page source/,
  );
  await assertNoLeak(before);
  uffd.close();
  other.close();
  mem.close();
  rmSync(dir, { recursive: true });
});

test("a second FaultHandler on the same uffd is refused: one reader per fd", async () => {
  const mem = Mapping.create(PAGE);
  const uffd = UserfaultFd.open();
  uffd.register(mem.address, PAGE);
  const h = await FaultHandler.start(uffd, { ranges: [{ address: mem.address, length: PAGE }] });
  await checkAsync(
    "second handler",
    () => FaultHandler.start(uffd, { ranges: [{ address: mem.address, length: PAGE }] }),
    /another FaultHandler already serves this UserfaultFd/,
  );
  check(
    "events() while served",
    () => uffd.readEvents(),
    /a FaultHandler reads this UserfaultFd's messages/,
  );
  await h.close();
  mem.close();
});
