/**
 * The Intel PT packet decoder (src/perf/intel_pt/): every packet of the
 * golden recording (Skylake, Linux 4.14) and of recordings whose AUX payload
 * was replaced by pseudo-random bytes, compared with `perf report -D` line
 * for line (offset, bytes, text); packets the recording lacks, built by hand
 * from the Intel SDM's packet layouts with the values the SDM defines; the
 * reconstructed IP under every IP compression; hostile bytes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { perf, perfSkip } from "./fixtures/perf_dump.ts";
import { PerfDataReader } from "../src/perf/perf_data/reader.ts";
import {
  decodePtPackets,
  formatPtDumpLine,
  formatPtPacket,
  type PtDecodeOptions,
  type PtPacket,
  PtPacketDecoder,
  ptPackets,
} from "../src/perf/intel_pt/mod.ts";
import { UmmuArgumentError } from "../src/errors.ts";

const GOLDEN = new URL("./fixtures/perf-golden/perf.data.intel_pt-4.14", import.meta.url)
  .pathname;
const goldenSkip = existsSync(GOLDEN)
  ? perfSkip
  : `no ${GOLDEN} (the recordings from real hardware live beside the repo)`;

/** The packet lines of every "Intel Processor Trace data" section of `perf report -D`. */
function perfPtSections(file: string): string[][] {
  const out: string[][] = [];
  let cur: string[] | null = null;
  for (const line of perf(["report", "-D", "-i", file]).stdout.split("\n")) {
    if (line.startsWith(". ... Intel Processor Trace data: size ")) {
      cur = [];
      out.push(cur);
    } else if (cur !== null && /^\. {2}[0-9a-f]{8}: /.test(line)) {
      cur.push(line.trimEnd());
    } else {
      cur = null;
    }
  }
  return out;
}

/** The AUXTRACE payloads of a perf.data file, in file order. */
function auxPayloads(file: string): { payload: Uint8Array; payloadOffset: number }[] {
  const r = PerfDataReader.open(file);
  const out = [];
  for (const rec of r.records()) {
    if (rec.kind === "auxtrace") {
      out.push({ payload: rec.payload!, payloadOffset: rec.payloadOffset });
    }
  }
  r.close();
  return out;
}

/** Compares ummu's listing of every AUXTRACE payload with perf's; returns the packets compared. */
function assertListingAgrees(file: string): { packets: number; kinds: Map<string, number> } {
  const theirs = perfPtSections(file);
  const payloads = auxPayloads(file);
  assert.equal(payloads.length, theirs.length, "AUXTRACE records and perf's PT sections");
  let packets = 0;
  const kinds = new Map<string, number>();
  payloads.forEach(({ payload }, s) => {
    const lines = theirs[s];
    let i = 0, next = 0;
    decodePtPackets(payload, (p) => {
      assert.equal(p.offset, next, "packets are contiguous");
      next = p.offset + p.length + p.padding;
      const mine = formatPtDumpLine(p, payload).trimEnd();
      if (mine !== lines[i]) {
        assert.fail(`section ${s}, packet ${i}:\n  ummu: ${mine}\n  perf: ${lines[i]}`);
      }
      // The line's offset and bytes, read back from perf's text, are the packet's own.
      const m = /^\. {2}([0-9a-f]{8}): ((?: [0-9a-f]{2})+)/.exec(lines[i])!;
      assert.equal(parseInt(m[1], 16), p.offset);
      assert.deepEqual(
        m[2].trim().split(" ").map((h) => parseInt(h, 16)),
        [...payload.subarray(p.offset, next)],
      );
      kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
      i++;
    }, { resync: "byte" });
    assert.equal(next, payload.length, "the packets cover the payload");
    assert.equal(i, lines.length, `section ${s}: packets, ummu and perf`);
    packets += i;
  });
  return { packets, kinds };
}

test("golden Intel PT: every packet agrees with perf report -D (offset, bytes, text)", {
  skip: goldenSkip,
}, () => {
  const { packets, kinds } = assertListingAgrees(GOLDEN);
  assert.equal(packets, 86631);
  for (const k of ["PSB", "PSBEND", "PAD", "TNT", "TIP", "TIP.PGE", "TIP.PGD", "FUP"]) {
    assert.ok((kinds.get(k) ?? 0) > 0, `${k}: ${JSON.stringify([...kinds])}`);
  }
  for (const k of ["MODE.Exec", "MODE.TSX", "PIP", "TSC", "TMA", "MTC", "CBR"]) {
    assert.ok((kinds.get(k) ?? 0) > 0, `${k}: ${JSON.stringify([...kinds])}`);
  }
  assert.equal(kinds.get("bad"), undefined);
});

test("golden Intel PT: every reconstructed IP is a canonical address, known after the first PSB", {
  skip: existsSync(GOLDEN) ? false : `no ${GOLDEN}`,
}, () => {
  let ips = 0, suppressed = 0;
  for (const { payload } of auxPayloads(GOLDEN)) {
    let sawPsb = false;
    decodePtPackets(payload, (p) => {
      if (p.kind === "PSB") sawPsb = true;
      if (p.ipBytes === undefined) return;
      if (p.ipBytes === 0) {
        assert.equal(p.ipState, "none");
        assert.equal(p.ip, undefined);
        suppressed++;
        return;
      }
      assert.ok(sawPsb);
      assert.equal(p.ipState, "valid", `at ${p.offset}`);
      const ip = p.ip!;
      const top = ip >> 47n;
      assert.ok(top === 0n || top === 0x1ffffn, `0x${ip.toString(16)} at ${p.offset}`);
      // The raw bytes are the low bytes of the address.
      const bits = [0, 16, 32, 48, 48, 0, 64][p.ipBytes];
      assert.equal(ip & ((1n << BigInt(bits)) - 1n), p.raw, `at ${p.offset}`);
      ips++;
    });
  }
  assert.ok(ips > 10000, `IPs: ${ips}`);
  assert.ok(suppressed > 0, `suppressed: ${suppressed}`);
});

test("random AUX payloads: every packet and bad byte agrees with perf report -D", {
  skip: goldenSkip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "ummu-intel-pt-"));
  try {
    const bytes = new Uint8Array(readFileSync(GOLDEN));
    const payloads = auxPayloads(GOLDEN);
    const seen = new Set<string>();
    for (const seed of [7, 1234567]) {
      const next = lcg(seed);
      for (const { payload, payloadOffset } of payloads) {
        for (let i = 0; i < payload.length; i++) {
          // Biased: a 0x02 (the extended packets' header) and 0x00 often, else any byte.
          const k = next();
          bytes[payloadOffset + i] = k < 40 ? 0x02 : k < 60 ? 0 : next();
        }
      }
      const f = join(dir, `random-${seed}.data`);
      writeFileSync(f, bytes);
      const { packets, kinds } = assertListingAgrees(f);
      assert.ok(packets > 50000, `packets: ${packets}`);
      assert.ok((kinds.get("bad") ?? 0) > 1000, `bad: ${kinds.get("bad")}`);
      for (const k of kinds.keys()) seen.add(k);
    }
    // The random bytes reach packets the recording lacks.
    for (const k of ["CYC", "PTWRITE", "EXSTOP", "MWAIT", "PWRE", "PWRX", "BBP", "BIP", "BEP"]) {
      assert.ok(seen.has(k), `${k} in ${[...seen]}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A small deterministic byte generator (no Math.random: a failure must be reproducible). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 16) & 0xff;
  };
}

/** A PSB: 02 82, eight times. */
const PSB: number[] = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 0x02 : 0x82));

function decodeAll(bytes: number[], options?: PtDecodeOptions): PtPacket[] {
  return [...ptPackets(new Uint8Array(bytes), options)];
}

/** One packet from `bytes`: its kind, length and perf's text. */
function one(bytes: number[], kind: string, text: string): PtPacket {
  const ps = decodeAll(bytes);
  assert.equal(ps.length, 1, `${bytes.map((b) => b.toString(16))}: ${ps.map(formatPtPacket)}`);
  const p = ps[0];
  assert.equal(p.kind, kind);
  assert.equal(p.length, bytes.length);
  assert.equal(formatPtPacket(p), text);
  return p;
}

test("SDM packets the recording lacks: CYC, PTWRITE, EXSTOP, MWAIT, PWRE, PWRX, VMCS, OVF", () => {
  // CYC: bits 1:0 = 11, bit 2 = Exp (more bytes), bits 7:3 = CycCnt[4:0]; each further
  // byte: bits 7:1 the next 7 bits, bit 0 = Exp.
  assert.equal(one([0x03], "CYC", "CYC 0x0").payload, 0n);
  assert.equal(one([0xfb], "CYC", "CYC 0x1f").payload, 31n);
  assert.equal(one([0x0f, 0x02], "CYC", "CYC 0x21").payload, 1n | (1n << 5n));
  assert.equal(one([0x07, 0x03, 0x04], "CYC", "CYC 0x2020").payloadNumber, (1 << 5) | (2 << 12));
  // PTWRITE: 02, then IP bit 7, PayloadBytes 6:5 (0: 4 bytes, 1: 8 bytes), 10010.
  let p = one([0x02, 0x12, 0x78, 0x56, 0x34, 0x12], "PTWRITE", "PTWRITE 0x12345678 IP:0");
  assert.equal(p.ptwriteSize, 4);
  assert.equal(p.ipFollows, false);
  p = one(
    [0x02, 0xb2, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01],
    "PTWRITE",
    "PTWRITE 0x123456789abcdef IP:1",
  );
  assert.equal(p.payload, 0x0123456789abcdefn);
  assert.equal(p.ptwriteSize, 8);
  assert.equal(p.ipFollows, true);
  assert.equal(decodeAll([0x02, 0x52, 1, 2, 3, 4, 5, 6, 7, 8])[0].kind, "bad", "PayloadBytes 10");
  // EXSTOP: 02 62, with the IP bit 02 e2.
  assert.equal(one([0x02, 0x62], "EXSTOP", "EXSTOP IP:0").ipFollows, false);
  assert.equal(one([0x02, 0xe2], "EXSTOP", "EXSTOP IP:1").ipFollows, true);
  // MWAIT: 02 c2, EAX (hints in 7:0) in 4 bytes, ECX (extensions in 1:0) in 4 bytes.
  p = one(
    [0x02, 0xc2, 0x20, 0, 0, 0, 0x01, 0, 0, 0],
    "MWAIT",
    "MWAIT 0x100000020 Hints 0x20 Extensions 0x1",
  );
  assert.equal(p.mwaitHints, 0x20);
  assert.equal(p.mwaitExtensions, 1);
  // PWRE: 02 22, byte 2 bit 7 = HW, byte 3 = resolved C-state (7:4) and sub-C-state (3:0).
  p = one([0x02, 0x22, 0x80, 0x21], "PWRE", "PWRE 0x2180 HW:1 CState:2 Sub-CState:1");
  assert.deepEqual([p.hardwareRequested, p.cState, p.subCState], [true, 2, 1]);
  // PWRX: 02 a2, byte 2 = last core C-state (7:4), deepest (3:0); byte 3 (3:0) = wake reason.
  p = one(
    [0x02, 0xa2, 0x21, 0x04, 0, 0, 0],
    "PWRX",
    "PWRX 0x421 Last CState:2 Deepest CState:1 Wake Reason 0x4",
  );
  assert.deepEqual([p.lastCState, p.deepestCState, p.wakeReason], [2, 1, 4]);
  // VMCS: 02 c8, 5 bytes of the VMCS pointer's bits 51:12.
  assert.equal(
    one([0x02, 0xc8, 0x00, 0x10, 0, 0, 0x01], "VMCS", "VMCS 0x100001000").payload,
    0x100001000n,
  );
  one([0x02, 0xf3], "OVF", "OVF");
  one([0x02, 0x83], "TraceSTOP", "TraceSTOP");
  one([0x02, 0x23], "PSBEND", "PSBEND");
  // MNT: 02 c3 88 and 8 bytes.
  assert.equal(
    one([0x02, 0xc3, 0x88, 8, 7, 6, 5, 4, 3, 2, 1], "MNT", "MNT 0x102030405060708").payload,
    0x0102030405060708n,
  );
});

test("SDM packets: BBP, BIP (4 and 8 bytes by BBP's SZ), BEP, CFE, EVD", () => {
  // BBP: 02 63, byte 2 = SZ (bit 7: 1 = 4-byte items) and Type (4:0); then BIPs: ID in
  // bits 7:3, 100 in 2:0; BEP: 02 33, with the IP bit 02 b3.
  let ps = decodeAll([
    0x02,
    0x63,
    0x82,
    0x0c,
    0x44,
    0x33,
    0x22,
    0x11,
    0x14,
    1,
    2,
    3,
    4,
    0x02,
    0x33,
  ]);
  assert.deepEqual(ps.map(formatPtPacket), [
    "BBP SZ 4-byte Type 0x2",
    "BIP ID 0x01 Value 0x11223344",
    "BIP ID 0x02 Value 0x4030201",
    "BEP IP:0",
  ]);
  assert.deepEqual([ps[0].blockItemSize, ps[0].type, ps[1].itemId], [4, 2, 1]);
  ps = decodeAll([0x02, 0x63, 0x04, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0xb3]);
  assert.deepEqual(ps.map(formatPtPacket), [
    "BBP SZ 8-byte Type 0x4",
    "BIP ID 0x01 Value 0x807060504030201",
    "BEP IP:1",
  ]);
  assert.equal(ps[2].ipFollows, true);
  // Outside a block, 0x0c is a short TNT.
  assert.equal(decodeAll([0x0c])[0].kind, "TNT");
  // CFE: 02 13, byte 2 = IP (7) and Type (4:0), byte 3 = vector; EVD: 02 53, Type (5:0), 8 bytes.
  const cfe = one([0x02, 0x13, 0x81, 0x0e], "CFE", "CFE IP:1 Type 0x01 Vector 0xe");
  assert.deepEqual([cfe.ipFollows, cfe.type], [true, 1]);
  one([0x02, 0x53, 0x02, 0x10, 0, 0, 0, 0, 0, 0, 0], "EVD", "EVD Type 0x02 Payload 0x10");
});

test("SDM packets: TNT short and long, MODE, PIP, TSC, TMA, MTC, CBR", () => {
  // Short TNT: a 1 (the stop bit) above 1..6 branch bits, bit 0 = 0; the oldest branch first.
  let p = one([0x0a], "TNT", "TNT NT (2)");
  assert.deepEqual([p.tntCount, p.tntBits, p.taken(0), p.taken(1)], [2, 1, false, true]);
  assert.equal(one([0xfe], "TNT", "TNT TTTTTT (6)").tntBits, 0x3f);
  // Long TNT: 02 a3 and 6 bytes, the stop bit above up to 47 branch bits.
  p = one([0x02, 0xa3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "TNT", `TNT ${"T".repeat(47)} (47)`);
  assert.equal(p.tntBits, 2 ** 47 - 1);
  p = one([0x02, 0xa3, 0x05, 0, 0, 0, 0, 0], "TNT", "TNT NT (2)");
  assert.equal(p.tntCount, 2);
  p = one([0x02, 0xa3, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80], "TNT", `TNT ${"N".repeat(46)}T (47)`);
  assert.deepEqual([p.taken(0), p.taken(45), p.taken(46)], [false, false, true]);
  p = one([0x02, 0xa3, 0x55, 0x55, 0x55, 0x01, 0x00, 0x00], "TNT", `TNT ${"NT".repeat(12)} (24)`);
  assert.equal(p.tntBits, 0x555555);
  assert.throws(() => p.taken(24), UmmuArgumentError);
  // MODE.Exec: 99, then 000 in 7:5, IF in bit 2, CS.D in 1, CS.L in 0.
  p = one([0x99, 0x01], "MODE.Exec", "MODE.Exec IF:0 64");
  assert.deepEqual([p.execMode, p.interruptFlag], [64, false]);
  assert.equal(one([0x99, 0x05], "MODE.Exec", "MODE.Exec IF:1 64").interruptFlag, true);
  one([0x99, 0x00], "MODE.Exec", "MODE.Exec IF:0 16");
  one([0x99, 0x02], "MODE.Exec", "MODE.Exec IF:0 32");
  assert.equal(decodeAll([0x99, 0x03])[0].kind, "bad", "CS.L and CS.D both set");
  // MODE.TSX: 001 in 7:5, TXAbort in bit 1, InTX in bit 0.
  p = one([0x99, 0x21], "MODE.TSX", "MODE.TSX TXAbort:0 InTX:1");
  assert.deepEqual([p.inTransaction, p.transactionAbort], [true, false]);
  assert.equal(one([0x99, 0x22], "MODE.TSX", "MODE.TSX TXAbort:1 InTX:0").transactionAbort, true);
  // PIP: 02 43, 6 bytes: NR in bit 0, CR3[51:5] in 47:1.
  p = one([0x02, 0x43, 0x01, 0x34, 0xd4, 0x3f, 0, 0], "PIP", "PIP 0x1fea1a00 (NR=1)");
  assert.deepEqual([p.nonRoot, p.cr3], [true, 0x3fd434000n]);
  // TSC: 19 and 7 bytes.
  assert.equal(
    one([0x19, 0xe8, 0xcf, 0xd2, 0x4c, 0xbc, 0x00, 0x01], "TSC", "TSC 0x100bc4cd2cfe8").payload,
    0x100bc4cd2cfe8n,
  );
  // TMA: 02 73, CTC[15:0], a reserved byte, FastCounter[7:0], FastCounter bit 8 in bit 0.
  p = one([0x02, 0x73, 0x3c, 0xb2, 0x00, 0x30, 0x01], "TMA", "TMA CTC 0xb23c FC 0x130");
  assert.deepEqual([p.ctc, p.fastCounter], [0xb23c, 0x130]);
  assert.equal(one([0x59, 0x48], "MTC", "MTC 0x48").payloadNumber, 0x48);
  assert.equal(one([0x02, 0x03, 0x1d, 0x00], "CBR", "CBR 0x1d").payloadNumber, 0x1d);
});

test("IP compression: suppressed, update 16/32/48 bits, sign-extended 48, full 64, from the last IP", () => {
  const tip = (ipBytes: number) => 0x0d | (ipBytes << 5);
  // deno-fmt-ignore
  const ps = decodeAll([
    tip(1), 0x34, 0x12, // before any PSB: no last IP
    ...PSB, // the last IP is 0
    tip(1), 0x34, 0x12, // 0x1234
    tip(6), 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // 0x1122334455667788
    tip(1), 0x34, 0x12, // 0x1122334455661234
    tip(2), 0x78, 0x56, 0x34, 0x12, // 0x1122334412345678
    tip(0), // suppressed: no IP, the last IP unchanged
    tip(4), 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // 0x1122112233445566
    tip(3), 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, // sign-extended: 0xffff800000000000
    tip(3), 0x00, 0x10, 0x00, 0x00, 0xff, 0x7f, // 0x7fff00001000
    0x1d | (1 << 5), 0xcd, 0xab, // FUP: 0x7fff0000abcd
    0x11 | (2 << 5), 0x44, 0x33, 0x22, 0x11, // TIP.PGE: 0x7fff11223344
    0x01, // TIP.PGD, suppressed
  ]);
  const ips = ps.filter((p) => p.ipBytes !== undefined).map((p) => [
    p.kind,
    p.ipBytes,
    p.ipState,
    p.ip === undefined ? undefined : "0x" + p.ip.toString(16),
  ]);
  assert.deepEqual(ips, [
    ["TIP", 1, "unknown", undefined],
    ["TIP", 1, "valid", "0x1234"],
    ["TIP", 6, "valid", "0x1122334455667788"],
    ["TIP", 1, "valid", "0x1122334455661234"],
    ["TIP", 2, "valid", "0x1122334412345678"],
    ["TIP", 0, "none", undefined],
    ["TIP", 4, "valid", "0x1122112233445566"],
    ["TIP", 3, "valid", "0xffff800000000000"],
    ["TIP", 3, "valid", "0x7fff00001000"],
    ["FUP", 1, "valid", "0x7fff0000abcd"],
    ["TIP.PGE", 2, "valid", "0x7fff11223344"],
    ["TIP.PGD", 0, "none", undefined],
  ]);
  // perf prints the raw (compressed) bytes, and "no ip" when suppressed.
  const texts = ps.filter((p) => p.ipBytes !== undefined).map(formatPtPacket);
  assert.deepEqual(texts.slice(3, 8), [
    "TIP 0x1234",
    "TIP 0x12345678",
    "TIP no ip",
    "TIP 0x112233445566",
    "TIP 0x800000000000",
  ]);
  for (const reserved of [5, 7]) {
    const bad = decodeAll([...PSB, tip(reserved), 1, 2, 3, 4, 5, 6, 7, 8])[1];
    assert.equal(bad.kind, "bad", `IPBytes ${reserved.toString(2)} is reserved`);
    assert.equal(bad.badReason, "unknown");
  }
});

test("perf's PAD folding: zeros after a packet are on its line up to 8 bytes", () => {
  const ps = decodeAll([0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x59, 0x01, 0, 0]);
  assert.deepEqual(ps.map((p) => [p.kind, p.offset, p.length, p.padding]), [
    ["TNT", 0, 1, 7],
    ["PAD", 8, 1, 1],
    ["MTC", 10, 2, 2],
  ]);
  assert.equal(
    formatPtDumpLine(ps[0], new Uint8Array([0x06, 0, 0, 0, 0, 0, 0, 0])),
    ".  00000000:  06 00 00 00 00 00 00 00" + "   ".repeat(8) + " TNT T (1)",
  );
});

/** Every SDM packet above, whole, to truncate. */
const WHOLE: number[][] = [
  PSB,
  [0x0f, 0x03, 0x02],
  [0x02, 0xb2, 1, 2, 3, 4, 5, 6, 7, 8],
  [0x02, 0xc2, 1, 2, 3, 4, 5, 6, 7, 8],
  [0x02, 0x22, 1, 2],
  [0x02, 0xa2, 1, 2, 3, 4, 5],
  [0x02, 0xc8, 1, 2, 3, 4, 5],
  [0x02, 0xa3, 1, 2, 3, 4, 5, 6],
  [0x02, 0x43, 1, 2, 3, 4, 5, 6],
  [0x02, 0x73, 1, 2, 3, 4, 5],
  [0x02, 0x03, 1, 2],
  [0x02, 0xc3, 0x88, 1, 2, 3, 4, 5, 6, 7, 8],
  [0x02, 0x63, 0x80],
  [0x02, 0x13, 1, 2],
  [0x02, 0x53, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [0x19, 1, 2, 3, 4, 5, 6, 7],
  [0x59, 1],
  [0x99, 1],
  [0xcd, 1, 2, 3, 4, 5, 6, 7, 8],
  [0x7d, 1, 2, 3, 4, 5, 6],
  [0x51, 1, 2, 3, 4],
  [0x21, 1, 2],
];

test("truncated packets: a bad packet (reason 'truncated') at the cut, never a throw", () => {
  for (const whole of WHOLE) {
    assert.equal(decodeAll(whole).length, 1, `${whole} whole`);
    for (let n = 1; n < whole.length; n++) {
      const cut = whole.slice(0, n);
      for (const resync of ["byte", "psb"] as const) {
        const ps = decodeAll(cut, { resync });
        assert.equal(ps[0].kind, "bad", `${cut} (${resync})`);
        assert.equal(ps[0].badReason, "truncated", `${cut} (${resync})`);
        assert.equal(ps[0].offset, 0);
        assert.equal(sum(ps), cut.length, "the packets cover the bytes");
        if (resync === "psb") assert.equal(ps.length, 1, "one bad packet to the end");
      }
    }
  }
});

test("resync 'psb' (the default): a bad packet covers the bytes up to the next PSB", () => {
  const bytes = [0x59, 0x01, 0xd9, 0xaa, 0xbb, ...PSB, 0x2d, 0x34, 0x12];
  const ps = decodeAll(bytes);
  assert.deepEqual(ps.map((p) => [p.kind, p.offset, p.length]), [
    ["MTC", 0, 2],
    ["bad", 2, 3],
    ["PSB", 5, 16],
    ["TIP", 21, 3],
  ]);
  assert.equal(ps[1].badReason, "unknown");
  assert.equal(ps[3].ip, 0x1234n, "the last IP is 0 after the PSB");
  // After a bad packet, IP compression has no last IP until the next PSB.
  const after = decodeAll([0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 0xd9, 0x2d, 0x34, 0x12], {
    resync: "byte",
  });
  assert.equal(after[0].ipState, "valid");
  assert.equal(after[2].ipState, "valid", "byte mode keeps the last IP, like perf's listing");
});

function sum(ps: PtPacket[]): number {
  return ps.reduce((n, p) => n + p.length + p.padding, 0);
}

test("random bytes: contiguous packets covering every byte, no throw, in both resync modes", () => {
  const next = lcg(42);
  for (let round = 0; round < 200; round++) {
    const bytes = new Uint8Array(1 + (next() * 8 + next()) % 1500);
    for (let i = 0; i < bytes.length; i++) bytes[i] = next() < 30 ? 0x02 : next();
    for (const resync of ["byte", "psb"] as const) {
      let at = 0, n = 0;
      const count = decodePtPackets(bytes, (p) => {
        assert.equal(p.offset, at);
        assert.ok(p.length >= 1);
        at += p.length + p.padding;
        n++;
        formatPtPacket(p); // every packet formats
      }, { resync });
      assert.equal(at, bytes.length);
      assert.equal(count, n);
      assert.ok(n <= bytes.length);
    }
  }
});

test("the decoder reuses one packet; ptPackets and copy() own theirs; arguments are checked", () => {
  const bytes = new Uint8Array([0x59, 0x01, 0x59, 0x02]);
  const seen: PtPacket[] = [];
  decodePtPackets(bytes, (p) => seen.push(p));
  assert.equal(seen[0], seen[1], "one object, reused");
  const copies = [...ptPackets(bytes)];
  assert.notEqual(copies[0], copies[1]);
  assert.deepEqual(copies.map((p) => p.payloadNumber), [1, 2]);
  const d = new PtPacketDecoder(bytes);
  assert.equal(d.next()!.payloadNumber, 1);
  assert.equal(d.position, 2);
  assert.equal(d.next()!.payloadNumber, 2);
  assert.equal(d.next(), undefined);
  assert.equal(d.next(), undefined);
  assert.equal(decodePtPackets(new Uint8Array(0), () => assert.fail("no packet")), 0);
  // resume(): the next piece of the same trace keeps the last IP.
  const pieces = new PtPacketDecoder(new Uint8Array([...PSB, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 0x2d]));
  const kinds: string[] = [];
  let cut = 0;
  for (let p = pieces.next(); p !== undefined; p = pieces.next()) {
    kinds.push(`${p.kind}${p.badReason ? `:${p.badReason}` : ""}`);
    cut = p.offset;
  }
  assert.deepEqual(kinds, ["PSB", "TIP", "bad:truncated"]);
  pieces.resume(new Uint8Array([0x2d, 0xcd, 0xab]));
  const tip = pieces.next()!;
  assert.equal(cut, 25);
  assert.equal(tip.ip, 0x080706050403abcdn, "the last IP of the piece before");
  assert.equal(pieces.next(), undefined);
  assert.throws(() => pieces.resume("x" as unknown as Uint8Array), UmmuArgumentError);
  assert.throws(() => decodePtPackets([1, 2] as unknown as Uint8Array, () => {}), /bytes/);
  assert.throws(() => decodePtPackets(bytes, null as unknown as () => void), /onPacket/);
  assert.throws(
    () => decodePtPackets(bytes, () => {}, { resync: "never" as "psb" }),
    (e: Error) => e instanceof UmmuArgumentError && /resync/.test(e.message),
  );
  assert.throws(() => formatPtPacket({} as PtPacket), UmmuArgumentError);
  assert.throws(() => copies[0].taken(0), /TNT/);
  assert.equal(copies[0].tntCount, undefined);
  assert.equal(copies[0].ip, undefined);
});
