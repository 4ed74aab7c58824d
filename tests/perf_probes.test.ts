/**
 * uprobes and kprobes through their PMUs, on the real kernel: a uprobe on
 * getpid in the libc.so.6 this process maps counts the calls made through the
 * FFI; a kprobe (where the kernel has the kprobe PMU: the test VM's does, this
 * host's kernel is built without CONFIG_KPROBES) counts the system calls they
 * make. Symbol offsets are checked against binutils' readelf where installed.
 * Every perf fd the tests open is counted and closed.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { kprobe, uprobe } from "../src/perf/probes.ts";
import { fileOffsetOf, readElfSymbols, symbolFileOffset } from "../src/perf/elf.ts";
import { pmuNames } from "../src/perf/pmu.ts";
import { parseEvent } from "../src/perf/event_names.ts";
import { UmmuArgumentError } from "../src/errors.ts";
import { runtime } from "../ffi/platform.ts";
import { countOnThisThread, perfFds } from "./fixtures/perf_common.ts";

const argError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UmmuArgumentError, `expected UmmuArgumentError, got ${e}`);
  assert.match((e as Error).message, re);
  return true;
};

/** The libc.so.6 this process maps (its path as /proc/self/maps shows it). */
const LIBC = readFileSync("/proc/self/maps", "utf8").split("\n").map((l) => l.split(/\s+/)[5])
  .find((p) => p?.endsWith("/libc.so.6")) ?? null;
const PMUS = pmuNames();
const noUprobe = LIBC === null
  ? "this process maps no libc.so.6"
  : PMUS.includes("uprobe")
  ? undefined
  : "no uprobe PMU (a kernel without CONFIG_UPROBE_EVENTS)";
const noKprobe = PMUS.includes("kprobe")
  ? undefined
  : "no kprobe PMU here (this kernel is built without CONFIG_KPROBES/CONFIG_KPROBE_EVENTS; the test VM's has it)";

/** Opens `attr` on this thread, runs `work`, returns the count; closes the event. */

const CALLS = 50;
const callGetpid = () => {
  for (let i = 0; i < CALLS; i++) runtime.libc.getpid();
};

describe("uprobes", { skip: noUprobe }, () => {
  test("a uprobe on libc's getpid counts the calls made through the FFI", async () => {
    const before = perfFds();
    const probe = uprobe({ path: LIBC!, symbol: "getpid" });
    assert.equal(probe.keep?.length, 1, "the path buffer is handed back to keep alive");
    const n = await countOnThisThread(probe.attr, callGetpid);
    assert.ok(n >= BigInt(CALLS), `counted ${n} of ${CALLS} calls`);
    assert.equal(perfFds(), before, "every perf fd closed");
  });

  test("a return probe (format/retprobe) and a probe by file offset count the same calls", async () => {
    const before = perfFds();
    const ret = uprobe({ path: LIBC!, symbol: "getpid", retprobe: true });
    assert.equal(ret.attr.config, 1n);
    assert.match(ret.name, /%return$/);
    assert.ok(await countOnThisThread(ret.attr, callGetpid) >= BigInt(CALLS));
    const { offset } = symbolFileOffset(LIBC!, "getpid");
    const byOffset = uprobe({ path: LIBC!, offset });
    assert.equal(byOffset.attr.config2, offset);
    assert.ok(await countOnThisThread(byOffset.attr, callGetpid) >= BigInt(CALLS));
    // A versioned name resolves to the same place.
    const versioned = symbolFileOffset(
      LIBC!,
      `getpid@@${symbolFileOffset(LIBC!, "getpid").symbol.version}`,
    );
    assert.equal(versioned.offset, offset);
    assert.equal(perfFds(), before);
  });

  test("a uprobe that is not hit counts nothing", async () => {
    const before = perfFds();
    const probe = uprobe({ path: LIBC!, symbol: "getppid" });
    assert.equal(await countOnThisThread(probe.attr, callGetpid), 0n);
    assert.equal(perfFds(), before);
  });
});

describe(
  "ELF symbols",
  { skip: LIBC === null ? "this process maps no libc.so.6" : undefined },
  () => {
    const readelf = spawnSync("readelf", ["--version"], { encoding: "utf8" }).status === 0;
    test("offsets agree with binutils' readelf (symbols and PT_LOAD headers)", {
      skip: readelf ? undefined : "binutils' readelf is not installed",
    }, () => {
      const syms = spawnSync("readelf", ["-sW", "--dyn-syms", LIBC!], { encoding: "utf8" }).stdout;
      const elf = readElfSymbols(LIBC!);
      let checked = 0;
      for (const name of ["getpid", "malloc", "free", "open", "write", "pthread_create"]) {
        const mm = new RegExp(
          `:\\s+([0-9a-f]+)\\s+\\d+\\s+FUNC\\s+\\S+\\s+\\S+\\s+\\d+\\s+${name}@@`,
        )
          .exec(syms);
        if (!mm) continue;
        const value = BigInt("0x" + mm[1]);
        const ours = symbolFileOffset(LIBC!, name);
        assert.equal(ours.symbol.value, value, name);
        assert.equal(ours.offset, fileOffsetOf(elf.loads, value), name);
        checked++;
      }
      assert.ok(checked >= 4, `checked ${checked} symbols`);
      const loads = spawnSync("readelf", ["-lW", LIBC!], { encoding: "utf8" }).stdout
        .split("\n").filter((l) => /^\s+LOAD\s/.test(l)).map((l) => l.trim().split(/\s+/));
      assert.deepEqual(
        elf.loads.map((l) => [l.offset, l.vaddr, l.filesz]),
        loads.map((f) => [BigInt(f[1]), BigInt(f[2]), BigInt(f[4])]),
      );
    });

    test("bad files and symbols: typed errors with near names", () => {
      assert.throws(
        () => symbolFileOffset(LIBC!, "getpdi"),
        argError(/not defined .*close: .*getpid/),
      );
      assert.throws(
        () => symbolFileOffset(LIBC!, "getpid@@GLIBC_9.9"),
        argError(/not defined.*getpid@@GLIBC/),
      );
      assert.throws(() => symbolFileOffset(LIBC!, "memcpy"), argError(/IFUNC/));
      assert.throws(() => symbolFileOffset(LIBC!, "getpid", 1n << 20n), argError(/within its/));
      assert.throws(() => symbolFileOffset("/etc/passwd", "x"), argError(/not an ELF file/));
      assert.throws(() => symbolFileOffset("/no/such/file", "x"), argError(/must exist/));
      assert.throws(() => symbolFileOffset(tmpdir(), "x"), argError(/folder/));
      assert.throws(() => symbolFileOffset(LIBC!, "two words"), argError(/symbol must be a name/));
    });

    test("uprobe arguments: typed errors", { skip: noUprobe }, () => {
      assert.throws(() => uprobe({ path: LIBC! }), argError(/give a symbol or a file offset/));
      assert.throws(() => uprobe({ path: "" }), argError(/non-empty file path/));
      assert.throws(
        () => uprobe({ path: LIBC!, symbol: "no_such_function_x" }),
        argError(/not defined/),
      );
      assert.throws(() => uprobe({ path: "/etc/passwd", symbol: "x" }), argError(/not an ELF/));
      assert.throws(() => uprobe({ path: LIBC!, offset: 1n << 40n }), argError(/no PT_LOAD/));
      assert.throws(() => uprobe({ path: LIBC!, offset: -1 }), argError(/unsigned 64-bit/));
      assert.throws(() => uprobe(null as never), argError(/options must be an object/));
      assert.throws(() => parseEvent("uprobe/retprobe/"), argError(/use uprobe\(\)/));
    });
  },
);

/** The kernel function behind getpid(2) on this architecture. */
const SYS_GETPID = runtime.arch === "arm64" ? "__arm64_sys_getpid" : "__x64_sys_getpid";

describe("kprobes", () => {
  test("without the kprobe PMU: the error says what the kernel lacks", {
    skip: noKprobe === undefined ? "this kernel has the kprobe PMU" : undefined,
  }, () => {
    assert.throws(
      () => kprobe({ func: SYS_GETPID }),
      argError(/kprobe: no such PMU here .*CONFIG_KPROBE_EVENTS/),
    );
  });

  test(
    "a kprobe on the getpid system call counts this thread's calls",
    { skip: noKprobe },
    async () => {
      const before = perfFds();
      const probe = kprobe({ func: SYS_GETPID });
      assert.equal(probe.keep?.length, 1);
      const n = await countOnThisThread(probe.attr, callGetpid);
      assert.ok(n >= BigInt(CALLS), `counted ${n} of ${CALLS}`);
      const ret = kprobe({ func: SYS_GETPID, retprobe: true });
      assert.ok(await countOnThisThread(ret.attr, callGetpid) >= BigInt(CALLS));
      assert.equal(perfFds(), before);
    },
  );

  test("kprobe arguments: typed errors", { skip: noKprobe }, () => {
    assert.throws(
      () => kprobe({ func: "no_such_kernel_function_x" }),
      argError(/no kernel function/),
    );
    assert.throws(() => kprobe({ func: "x y" }), argError(/kernel function name/));
    assert.throws(() => kprobe({}), argError(/exactly one; got neither/));
    assert.throws(() => kprobe({ func: SYS_GETPID, address: 1n }), argError(/got both/));
  });
});
