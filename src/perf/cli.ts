/**
 * `ummu perf`: `ummu perf decode [--hex] [--header] FILE` prints each record
 * of a perf.data file (file or pipe mode; `-` reads stdin) as one JSON line,
 * with the samples of EventHeader user_events tracepoints decoded (what
 * Microsoft's perf-decode does). `ummu perf record` records events into a
 * perf.data file (src/perf/record_command.ts).
 *
 * JSON: 64-bit values (bigints) are decimal strings, or "0x..." hex strings
 * with --hex; byte fields are hex strings; u64 arrays (callchains, registers)
 * are arrays of such strings.
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { PerfDataReader } from "./perf_data/reader.ts";
import * as pe from "../../ffi/perf_event.ts";
import * as f from "./perf_data/format.ts";
import { decodeBts } from "./bts.ts";
import { PtPacketDecoder } from "./intel_pt/packets.ts";
import { formatPtPacket } from "./intel_pt/format.ts";
import {
  decodeEventHeader,
  fieldValues,
  parseTracepointName,
} from "../user_events/eventheader_decode.ts";

const USAGE = `usage: ummu perf decode [--hex] [--header] [--raw-aux] FILE
       ummu perf record [-e EVENT,...] [-c N | -F HZ] [-g] [-d] [-o FILE] (-p PID | -a | -- CMD...)
       ummu perf --help

decode   print every record of a perf.data file (file or pipe mode; "-" reads
         stdin) as one JSON line: {"offset", "event", "kind", ...fields}.
         Samples of EventHeader user_events tracepoints get an "eventheader"
         member with the decoded event (provider, name, level, keyword, fields).
         Samples with branch stacks carry every entry (branchStack.entries).
         The AUX data of AUXTRACE records is decoded after the record's line:
         Intel PT as one {"kind":"ptPacket"} line per packet (perf report
         -D's text, and the full IP where the packet has one), Intel BTS as
         one {"kind":"btsBranch"} line per branch ("offset" is then the
         packet's or branch's offset in the payload; the AUXTRACE record's
         own offset field is "auxtraceOffset").
  --hex     64-bit values as "0x..." strings (default: decimal strings)
  --header  first print one line with the file's attrs and features
  --raw-aux print AUXTRACE payloads as hex instead of decoding them
record   record events into a perf.data file that perf and ummu perf decode
         read (ummu perf record --help says more)
`;

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** A JSON.stringify replacer for records: bigints, byte arrays, u64 arrays, Maps. */
export function jsonReplacer(hexBigints: boolean): (key: string, v: unknown) => unknown {
  const big = (b: bigint) => hexBigints ? "0x" + b.toString(16) : b.toString();
  return (_k, v) => {
    if (typeof v === "bigint") return big(v);
    if (v instanceof BigUint64Array || v instanceof BigInt64Array) return [...v].map(big);
    if (v instanceof Uint8Array) return hex(v);
    if (v instanceof Map) return Object.fromEntries(v);
    return v;
  };
}

function write(line: string): void {
  process.stdout.write(line + "\n");
}

/** The EventHeader decoding of a tracepoint sample, when its tracepoint is an EventHeader one. */
function eventHeaderOf(name: string, raw: Uint8Array | undefined): unknown {
  if (!raw) return undefined;
  const tp = name.includes(":") ? name.slice(name.indexOf(":") + 1) : name;
  let info;
  try {
    info = parseTracepointName(tp);
  } catch {
    return undefined; // not an EventHeader tracepoint
  }
  try {
    const d = decodeEventHeader(raw.subarray(8)); // after struct trace_entry
    return {
      provider: info.provider,
      keyword: info.keyword,
      name: d.name,
      level: d.level,
      opcode: d.opcode,
      id: d.id,
      version: d.version,
      tag: d.tag,
      activityId: d.activityId,
      relatedId: d.relatedId,
      attributes: d.attributes,
      fields: fieldValues(d.fields),
    };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** One line per Intel PT packet or BTS branch of an AUXTRACE payload. */
function writeAux(
  auxtraceType: number,
  payload: Uint8Array,
  replacer: (k: string, v: unknown) => unknown,
): void {
  if (auxtraceType === f.PERF_AUXTRACE_INTEL_PT) {
    // perf's listing: after a bad byte, decode from the next one.
    const d = new PtPacketDecoder(payload, { resync: "byte" });
    for (let p = d.next(); p !== undefined; p = d.next()) {
      write(JSON.stringify({
        kind: "ptPacket",
        offset: p.offset,
        packet: formatPtPacket(p),
        ...(p.ip !== undefined ? { ip: p.ip } : {}),
      }, replacer));
    }
  } else if (auxtraceType === f.PERF_AUXTRACE_INTEL_BTS) {
    decodeBts(payload, (b) => {
      write(JSON.stringify({
        kind: "btsBranch",
        offset: b.offset,
        from: b.from,
        to: b.to,
        predicted: b.predicted,
      }, replacer));
    });
  }
}

const MAX_AUX_PAYLOAD = 1 << 30;

function decode(file: string, hexBigints: boolean, header: boolean, rawAux = false): number {
  // AUX payloads (Intel PT traces) are decoded in memory: up to 1 GiB each; a larger one is
  // said to be left out (below), never skipped silently.
  const reader = PerfDataReader.open(file === "-" ? 0 : file, { maxPayload: MAX_AUX_PAYLOAD });
  const replacer = jsonReplacer(hexBigints);
  try {
    // The header line: first in file mode; in pipe mode after the records that carry it.
    const headerLine = () =>
      write(JSON.stringify({
        kind: "perfData",
        mode: reader.mode,
        attrs: reader.attrs,
        features: reader.features,
      }, replacer));
    if (header && reader.mode === "file") headerLine();
    let auxtraceType = -1;
    for (const e of reader.entries()) {
      const r = e.record;
      const out: Record<string, unknown> = { offset: e.offset };
      if (r.type < 64 && r.kind !== "unknown") out.event = reader.eventName(e.attrIndex);
      Object.assign(out, r);
      if (r.kind === "auxtrace") {
        // The record's own offset (where its data begins in the AUX stream) is not the line's.
        out.auxtraceOffset = r.offset;
        out.offset = e.offset;
      }
      if (r.kind === "auxtraceInfo") auxtraceType = r.auxtraceType;
      const auxDecoded = !rawAux && r.kind === "auxtrace" && r.payload !== undefined &&
        (auxtraceType === f.PERF_AUXTRACE_INTEL_PT || auxtraceType === f.PERF_AUXTRACE_INTEL_BTS);
      if (auxDecoded) delete out.payload;
      if (r.kind === "auxtrace" && r.payload === undefined) {
        out.payloadOmitted = true;
        process.stderr.write(
          `ummu perf decode: the AUXTRACE record at offset ${e.offset} carries ${r.payloadSize} bytes, more than ${MAX_AUX_PAYLOAD} decoded in memory: left out\n`,
        );
      }
      if (r.kind === "sample" && reader.attrs[e.attrIndex]?.attr.type === pe.PERF_TYPE_TRACEPOINT) {
        const eh = eventHeaderOf(reader.eventName(e.attrIndex), r.raw);
        if (eh) out.eventheader = eh;
      }
      write(JSON.stringify(out, replacer));
      if (auxDecoded) writeAux(auxtraceType, (r as { payload: Uint8Array }).payload, replacer);
    }
    if (header && reader.mode === "pipe") headerLine();
  } finally {
    reader.close();
  }
  return 0;
}

/** `ummu perf ARGS`: returns the exit status (0 ok, 1 failed, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  // `record` has options of its own (and a command after --): it parses its arguments itself.
  if (argv[0] === "record") {
    const { recordCommand } = await import("./record_command.ts");
    return await recordCommand(argv.slice(1));
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        hex: { type: "boolean" },
        header: { type: "boolean" },
        "raw-aux": { type: "boolean" },
      },
    });
  } catch (e) {
    process.stderr.write(`ummu perf: ${e instanceof Error ? e.message : e}\n${USAGE}`);
    return 2;
  }
  const [cmd, ...rest] = parsed.positionals;
  if (parsed.values.help || cmd === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (cmd !== "decode" || rest.length !== 1) {
    process.stderr.write(
      `ummu perf: ${
        cmd === undefined
          ? "a command is required"
          : cmd !== "decode"
          ? `unknown command ${JSON.stringify(cmd)}`
          : "decode takes one FILE"
      }\n${USAGE}`,
    );
    return 2;
  }
  try {
    return decode(
      rest[0],
      parsed.values.hex === true,
      parsed.values.header === true,
      parsed.values["raw-aux"] === true,
    );
  } catch (e) {
    process.stderr.write(`ummu perf decode: ${e instanceof Error ? e.message : e}\n`);
    return 1;
  }
}
