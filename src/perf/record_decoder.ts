/**
 * RecordDecoder: one kernel record (struct perf_event_header + body) from
 * bytes to a {@linkcode PerfRecord}, by the layout of the attr it belongs to.
 *
 * Two modes:
 * - `decode(bytes, offset)` returns a fresh plain object that owns copies of
 *   its bytes: keep it as long as you like.
 * - `decodeReused(bytes, offset)` is the hot path (a ring reader): it
 *   allocates nothing for a SAMPLE (a {@linkcode SampleView} reused by the
 *   decoder, whose getters read fields only when asked) and reuses one object
 *   per kind for the others. The object it returns is valid until the next
 *   decode call on this decoder; its byte fields (raw, aux, stackUser.data,
 *   callchain ips, registers, MMAP2 build id, ...) are views into `bytes` and
 *   valid only while those bytes are unchanged (for a ring: until the reader
 *   publishes a data_tail past the record).
 *
 * The record must be contiguous in `bytes` (a ring reader copies a record that
 * wraps the ring's end first). Every field is checked against the record's
 * end; malformed input throws {@linkcode PerfDecodeError}, never reads past
 * the record and never throws an engine error.
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";
import { CPUMODES } from "./records.ts";
import type { PerfRecord, SampleId, SampleRecord } from "./records.ts";
import { LayoutSelector, type RecordLayout, type StreamAttr } from "./record_layout.ts";
import { materializeSample, readFormatSize, readValues, SampleView } from "./sample_view.ts";
import { PerfDecodeError } from "./decode_error.ts";
import { UmmuArgumentError } from "../errors.ts";
import { describe } from "../validate.ts";

export { PerfDecodeError } from "./decode_error.ts";
export { type RecordLayout, recordLayout, type StreamAttr } from "./record_layout.ts";
export { SampleView } from "./sample_view.ts";

const KINDS: Record<number, PerfRecord["kind"]> = {
  [pe.PERF_RECORD_MMAP]: "mmap",
  [pe.PERF_RECORD_LOST]: "lost",
  [pe.PERF_RECORD_COMM]: "comm",
  [pe.PERF_RECORD_EXIT]: "exit",
  [pe.PERF_RECORD_THROTTLE]: "throttle",
  [pe.PERF_RECORD_UNTHROTTLE]: "unthrottle",
  [pe.PERF_RECORD_FORK]: "fork",
  [pe.PERF_RECORD_READ]: "read",
  [pe.PERF_RECORD_SAMPLE]: "sample",
  [pe.PERF_RECORD_MMAP2]: "mmap2",
  [pe.PERF_RECORD_AUX]: "aux",
  [pe.PERF_RECORD_ITRACE_START]: "itraceStart",
  [pe.PERF_RECORD_LOST_SAMPLES]: "lostSamples",
  [pe.PERF_RECORD_SWITCH]: "switch",
  [pe.PERF_RECORD_SWITCH_CPU_WIDE]: "switchCpuWide",
  [pe.PERF_RECORD_NAMESPACES]: "namespaces",
  [pe.PERF_RECORD_KSYMBOL]: "ksymbol",
  [pe.PERF_RECORD_BPF_EVENT]: "bpfEvent",
  [pe.PERF_RECORD_CGROUP]: "cgroup",
  [pe.PERF_RECORD_TEXT_POKE]: "textPoke",
  [pe.PERF_RECORD_AUX_OUTPUT_HW_ID]: "auxOutputHwId",
};

const utf8 = new TextDecoder("utf-8");
const hasShared = typeof SharedArrayBuffer !== "undefined";

/** The attrs a decoder accepts: one decoded attr, or the attrs of a stream with their ids. */
export type DecoderAttrs = StreamAttr["attr"] | readonly StreamAttr[];

type Obj = Record<string, unknown>;

/** Decodes records of the attrs given at construction (see the module comment for the two modes). */
export class RecordDecoder {
  /** Which attr a record belongs to, and each attr's layout. */
  readonly selector: LayoutSelector;
  #src: Uint8Array | DataView | null = null;
  #dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  #u8: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  #sample = new SampleView();
  #reused = new Map<string, Obj>();
  #reusedId: SampleId = {};
  #copy = false;
  /** The attr index of the last record decoded (0 when it cannot be told, e.g. id 0). */
  lastAttrIndex = 0;

  constructor(attrs: DecoderAttrs) {
    this.selector = new LayoutSelector(
      Array.isArray(attrs) ? attrs : [{ attr: attrs as StreamAttr["attr"] }],
    );
  }

  /** Decodes the record at `offset` of `bytes` into a fresh object that owns its bytes. */
  decode(bytes: Uint8Array | DataView, offset = 0): PerfRecord {
    this.#copy = true;
    try {
      const r = this.#decode(bytes, offset, null);
      return r instanceof SampleView ? materializeSample(r) : r;
    } finally {
      this.#copy = false;
    }
  }

  /**
   * Decodes the record at `offset` of `bytes` into an object this decoder
   * reuses: valid until the next decode call on this decoder, byte fields
   * viewing `bytes` (valid while `bytes` is unchanged). A SAMPLE is a
   * {@linkcode SampleView}: nothing is allocated until a field is read.
   */
  decodeReused(bytes: Uint8Array | DataView, offset = 0): PerfRecord {
    return this.#decode(bytes, offset, this.#reused);
  }

  /** The record's size from its header (for a reader stepping through bytes), checked. */
  recordSize(bytes: Uint8Array | DataView, offset = 0): number {
    this.#use(bytes, offset);
    return this.#dv.getUint16(offset + 6, true);
  }

  #use(bytes: Uint8Array | DataView, offset: number): void {
    if (bytes !== this.#src) {
      if (bytes instanceof Uint8Array) {
        this.#u8 = bytes;
        this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } else if (bytes instanceof DataView) {
        this.#dv = bytes;
        this.#u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } else {
        throw new UmmuArgumentError(
          `RecordDecoder: bytes must be a Uint8Array or a DataView, got ${describe(bytes)}`,
        );
      }
      this.#src = bytes;
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + 8 > this.#u8.length) {
      throw new PerfDecodeError(
        -1,
        offset,
        -1,
        "header",
        0,
        `the 8-byte header does not fit: ${this.#u8.length} bytes given, offset ${
          describe(offset)
        }`,
      );
    }
  }

  #decode(
    bytes: Uint8Array | DataView,
    offset: number,
    reuse: Map<string, Obj> | null,
  ): PerfRecord {
    this.#use(bytes, offset);
    const dv = this.#dv;
    const type = dv.getUint32(offset, true);
    const misc = dv.getUint16(offset + 4, true);
    const size = dv.getUint16(offset + 6, true);
    if (size < 8) {
      throw new PerfDecodeError(
        type,
        offset,
        size,
        "header.size",
        6,
        "less than the 8-byte header",
      );
    }
    if (offset + size > this.#u8.length) {
      throw new PerfDecodeError(
        type,
        offset,
        size,
        "header.size",
        6,
        `the record runs past the ${this.#u8.length - offset} bytes given`,
      );
    }
    const cpumode = CPUMODES[misc & pe.PERF_RECORD_MISC_CPUMODE_MASK];
    const kind = KINDS[type];
    if (kind === undefined) {
      const o = this.#target(reuse, "unknown");
      o.type = type, o.misc = misc, o.size = size, o.cpumode = cpumode;
      o.bytes = this.#bytes(offset + 8, offset + size);
      return o as unknown as PerfRecord;
    }
    const layout = this.#layoutOf(type, offset, size);
    if (type === pe.PERF_RECORD_SAMPLE) {
      return this.#sample.locate(dv, this.#u8, offset, misc, size, cpumode, layout);
    }
    const o = this.#target(reuse, kind);
    o.type = type, o.misc = misc, o.size = size, o.cpumode = cpumode;
    const bodyEnd = offset + size - layout.sampleIdSize;
    if (bodyEnd < offset + 8) {
      this.#fail(
        type,
        offset,
        size,
        "sampleId",
        8,
        `the ${layout.sampleIdSize}-byte sample_id trailer does not fit`,
      );
    }
    this.#body(o, type, offset, size, bodyEnd, layout);
    if (layout.sampleIdAll) {
      o.sampleId = this.#sampleId(bodyEnd, layout, reuse !== null);
    } else if ("sampleId" in o) o.sampleId = undefined;
    return o as unknown as PerfRecord;
  }

  /** Which attr's layout: by id when the attrs differ (as perf's evlist__event2evsel). */
  #layoutOf(type: number, offset: number, size: number): RecordLayout {
    const s = this.selector;
    const first = s.layouts[0];
    // One attr, or attrs of one layout with no ids: nothing to look up.
    if (s.layouts.length === 1 || (s.uniform && !s.hasIds)) return (this.lastAttrIndex = 0, first);
    if (type !== pe.PERF_RECORD_SAMPLE && !first.sampleIdAll) {
      return (this.lastAttrIndex = 0, first);
    }
    const words = (size - 8) >> 3;
    let at: number;
    if (type === pe.PERF_RECORD_SAMPLE) {
      if (s.idPos < 0) return (this.lastAttrIndex = 0, first);
      if (s.idPos >= words) {
        if (s.uniform) return (this.lastAttrIndex = 0, first); // the decode reports the short record
        this.#fail(type, offset, size, "id", 8 + s.idPos * 8, "the record is too short for its id");
      }
      at = offset + 8 + s.idPos * 8;
    } else {
      if (s.isPos < 0 || s.isPos > words) return (this.lastAttrIndex = 0, first);
      at = offset + 8 + (words - s.isPos) * 8;
    }
    const id = this.#dv.getBigUint64(at, true);
    const index = id === 0n ? 0 : s.attrIndexOfId(id);
    if (index === undefined) {
      if (s.uniform) return (this.lastAttrIndex = 0, first);
      this.#fail(type, offset, size, "id", at - offset, `id ${id} belongs to none of the attrs`);
    }
    this.lastAttrIndex = index;
    return s.layouts[index];
  }

  #target(reuse: Map<string, Obj> | null, kind: string): Obj {
    if (reuse === null) return { kind };
    let o = reuse.get(kind);
    if (o === undefined) reuse.set(kind, o = { kind });
    return o;
  }

  #fail(type: number, start: number, size: number, field: string, at: number, what: string): never {
    throw new PerfDecodeError(type, start, size, field, at, what);
  }

  #bytes(from: number, to: number): Uint8Array {
    return this.#copy ? this.#u8.slice(from, to) : this.#u8.subarray(from, to);
  }

  /** A NUL-terminated string in [from, to) (perf pads these to 8 bytes). */
  #string(from: number, to: number): string {
    const u8 = this.#u8;
    let end = from;
    while (end < to && u8[end] !== 0) end++;
    const view = u8.subarray(from, end);
    return utf8.decode(hasShared && u8.buffer instanceof SharedArrayBuffer ? view.slice() : view);
  }

  #sampleId(at: number, layout: RecordLayout, reuse: boolean): SampleId {
    const dv = this.#dv, st = layout.sampleType;
    const o: SampleId = reuse ? this.#reusedId : {};
    let p = at;
    if (st & pe.PERF_SAMPLE_TID) {
      o.pid = dv.getUint32(p, true), o.tid = dv.getUint32(p + 4, true), p += 8;
    } else if (reuse) o.pid = o.tid = undefined;
    if (st & pe.PERF_SAMPLE_TIME) o.time = dv.getBigUint64(p, true), p += 8;
    else if (reuse) o.time = undefined;
    if (st & pe.PERF_SAMPLE_ID) o.id = dv.getBigUint64(p, true), p += 8;
    else if (reuse) o.id = undefined;
    if (st & pe.PERF_SAMPLE_STREAM_ID) o.streamId = dv.getBigUint64(p, true), p += 8;
    else if (reuse) o.streamId = undefined;
    if (st & pe.PERF_SAMPLE_CPU) o.cpu = dv.getUint32(p, true), p += 8;
    else if (reuse) o.cpu = undefined;
    if (st & pe.PERF_SAMPLE_IDENTIFIER) o.id = dv.getBigUint64(p, true), p += 8;
    return o;
  }

  /** The body of a non-SAMPLE record, between its header and its trailer (bodyEnd). */
  #body(
    o: Obj,
    type: number,
    start: number,
    size: number,
    end: number,
    layout: RecordLayout,
  ): void {
    const dv = this.#dv;
    let p = start + 8;
    const need = (field: string, n: number) => {
      if (p + n > end) {
        this.#fail(
          type,
          start,
          size,
          field,
          p - start,
          `needs ${n} bytes, ${end - p} left before the trailer`,
        );
      }
    };
    const u32 = (field: string) => (need(field, 4), p += 4, dv.getUint32(p - 4, true));
    const u64 = (field: string) => (need(field, 8), p += 8, dv.getBigUint64(p - 8, true));
    const set = (k: string, v: unknown) => {
      if (v !== undefined || k in o) o[k] = v;
    };
    const misc = o.misc as number;
    switch (type) {
      case pe.PERF_RECORD_MMAP:
      case pe.PERF_RECORD_MMAP2: {
        o.data = (misc & pe.PERF_RECORD_MISC_MMAP_DATA) !== 0;
        o.pid = u32("pid"), o.tid = u32("tid");
        o.addr = u64("addr"), o.len = u64("len"), o.pgoff = u64("pgoff");
        if (type === pe.PERF_RECORD_MMAP2) {
          const buildIdForm = (misc & pe.PERF_RECORD_MISC_MMAP_BUILD_ID) !== 0;
          o.hasBuildId = buildIdForm;
          need("maj/min/ino/inoGeneration", 24);
          if (buildIdForm) {
            const n = Math.min(dv.getUint8(p), 20);
            set("buildId", this.#bytes(p + 4, p + 4 + n));
            set("maj", undefined), set("min", undefined), set("ino", undefined);
            set("inoGeneration", undefined);
            p += 24;
          } else {
            set("buildId", undefined);
            o.maj = u32("maj"), o.min = u32("min"), o.ino = u64("ino");
            o.inoGeneration = u64("inoGeneration");
          }
          o.prot = u32("prot"), o.flags = u32("flags");
        }
        o.filename = this.#string(p, end);
        return;
      }
      case pe.PERF_RECORD_COMM:
        o.exec = (misc & pe.PERF_RECORD_MISC_COMM_EXEC) !== 0;
        o.pid = u32("pid"), o.tid = u32("tid");
        o.comm = this.#string(p, end);
        return;
      case pe.PERF_RECORD_EXIT:
      case pe.PERF_RECORD_FORK:
        o.pid = u32("pid"), o.ppid = u32("ppid"), o.tid = u32("tid"), o.ptid = u32("ptid");
        o.time = u64("time");
        return;
      case pe.PERF_RECORD_LOST:
        o.id = u64("id"), o.lost = u64("lost");
        return;
      case pe.PERF_RECORD_LOST_SAMPLES:
        o.lost = u64("lost");
        return;
      case pe.PERF_RECORD_THROTTLE:
      case pe.PERF_RECORD_UNTHROTTLE:
        o.time = u64("time"), o.id = u64("id"), o.streamId = u64("streamId");
        return;
      case pe.PERF_RECORD_READ: {
        o.pid = u32("pid"), o.tid = u32("tid");
        const fail = (field: string, at: number, what: string): never =>
          this.#fail(type, start, size, field, at - start, what);
        readFormatSize(dv, p, end, layout.readFormat, fail);
        o.values = readValues(dv, p, layout.readFormat);
        return;
      }
      case pe.PERF_RECORD_AUX: {
        o.auxOffset = u64("auxOffset"), o.auxSize = u64("auxSize");
        const flags = u64("flags");
        o.flags = flags;
        o.truncated = (flags & BigInt(pe.PERF_AUX_FLAG_TRUNCATED)) !== 0n;
        o.overwrite = (flags & BigInt(pe.PERF_AUX_FLAG_OVERWRITE)) !== 0n;
        o.partial = (flags & BigInt(pe.PERF_AUX_FLAG_PARTIAL)) !== 0n;
        o.collision = (flags & BigInt(pe.PERF_AUX_FLAG_COLLISION)) !== 0n;
        return;
      }
      case pe.PERF_RECORD_ITRACE_START:
        o.pid = u32("pid"), o.tid = u32("tid");
        return;
      case pe.PERF_RECORD_SWITCH:
      case pe.PERF_RECORD_SWITCH_CPU_WIDE:
        o.out = (misc & pe.PERF_RECORD_MISC_SWITCH_OUT) !== 0;
        o.preempt = (misc & pe.PERF_RECORD_MISC_SWITCH_OUT_PREEMPT) !== 0;
        if (type === pe.PERF_RECORD_SWITCH_CPU_WIDE) {
          o.nextPrevPid = u32("nextPrevPid"), o.nextPrevTid = u32("nextPrevTid");
        }
        return;
      case pe.PERF_RECORD_NAMESPACES: {
        o.pid = u32("pid"), o.tid = u32("tid");
        const at = p;
        const nr = u64("nrNamespaces");
        if (nr > BigInt((end - p) >> 4)) {
          this.#fail(
            type,
            start,
            size,
            "nrNamespaces",
            at - start,
            `${nr} namespaces of 16 bytes do not fit in ${end - p} bytes`,
          );
        }
        const links = [];
        for (let i = 0; i < Number(nr); i++) links.push({ dev: u64("dev"), inode: u64("inode") });
        o.namespaces = links;
        return;
      }
      case pe.PERF_RECORD_KSYMBOL: {
        o.addr = u64("addr");
        o.len = u32("len");
        need("ksymType/flags", 4);
        o.ksymType = dv.getUint16(p, true);
        const flags = dv.getUint16(p + 2, true);
        p += 4;
        o.flags = flags;
        o.unregister = (flags & pe.PERF_RECORD_KSYMBOL_FLAGS_UNREGISTER) !== 0;
        o.name = this.#string(p, end);
        return;
      }
      case pe.PERF_RECORD_BPF_EVENT:
        need("bpfType/flags", 4);
        o.bpfType = dv.getUint16(p, true), o.flags = dv.getUint16(p + 2, true);
        p += 4;
        o.id = u32("id");
        need("tag", 8);
        o.tag = this.#bytes(p, p + 8);
        return;
      case pe.PERF_RECORD_CGROUP:
        o.id = u64("id");
        o.path = this.#string(p, end);
        return;
      case pe.PERF_RECORD_TEXT_POKE: {
        o.addr = u64("addr");
        need("oldLen/newLen", 4);
        const oldLen = dv.getUint16(p, true), newLen = dv.getUint16(p + 2, true);
        p += 4;
        need("bytes", oldLen + newLen);
        o.oldBytes = this.#bytes(p, p + oldLen);
        o.newBytes = this.#bytes(p + oldLen, p + oldLen + newLen);
        return;
      }
      case pe.PERF_RECORD_AUX_OUTPUT_HW_ID:
        o.hwId = u64("hwId");
        return;
    }
  }
}

/** A SAMPLE record's id (IDENTIFIER or ID), for telling attrs apart. */
export function sampleIdOf(r: PerfRecord): bigint | undefined {
  if (r.kind === "sample") return (r as SampleRecord).identifier ?? (r as SampleRecord).id;
  if (r.kind === "unknown") return undefined;
  return r.sampleId?.id;
}
