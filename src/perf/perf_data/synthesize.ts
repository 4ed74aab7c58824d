/**
 * The records perf synthesizes from /proc for tasks that were running before
 * recording started (tools/perf/util/synthetic-events.c), so that `perf
 * report` and `perf script` name their commands and resolve their code: a
 * COMM per thread, an MMAP2 per executable mapping of each process (from
 * /proc/PID/maps), and, for a system-wide recording, a FORK per thread first.
 *
 * Each record ends with the sample_id_all trailer the attr asks for: pid/tid
 * of the task, the first event's id (so a reader with several attrs maps the
 * record to the one that asked for mmap/comm records), time 0 (perf's own
 * synthesized records carry zeros: they sort before every kernel record).
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import * as pe from "../../../ffi/perf_event.ts";
import { MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE } from "../../../ffi/mman.ts";
import { type LayoutAttr, type RecordLayout, recordLayout } from "../record_layout.ts";
import { ByteWriter, PerfDataError } from "./features.ts";

/** What the synthesized records' trailers carry. */
export interface SynthesisTrailer {
  /** The attr of the event that records mmap/comm/task records (its sampleType, sampleIdAll). */
  attr: LayoutAttr;
  /** That event's id (PERF_EVENT_IOC_ID), written where the trailer has ID or IDENTIFIER. */
  id?: bigint;
}

/** Appends the sample_id_all trailer (kernel order: TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER). */
function trailer(w: ByteWriter, layout: RecordLayout, id: bigint, pid: number, tid: number) {
  if (!layout.sampleIdAll) return;
  const st = layout.sampleType;
  if (st & pe.PERF_SAMPLE_TID) w.i32(pid).i32(tid);
  if (st & pe.PERF_SAMPLE_TIME) w.u64(0n);
  if (st & pe.PERF_SAMPLE_ID) w.u64(id);
  if (st & pe.PERF_SAMPLE_STREAM_ID) w.u64(0n);
  if (st & pe.PERF_SAMPLE_CPU) w.u32(0).u32(0);
  if (st & pe.PERF_SAMPLE_IDENTIFIER) w.u64(id);
}

const utf8 = new TextEncoder();

/** A NUL-terminated string padded to 8 bytes, as the kernel writes comm and file names. */
function paddedString(w: ByteWriter, s: string): void {
  const b = utf8.encode(s);
  w.bytes(b).zeros(8 - (b.length % 8));
}

/** Finishes a record begun at `start`: patches its size (checked: a u16). */
function finish(w: ByteWriter): Uint8Array {
  if (w.length > 0xffff) {
    throw new PerfDataError(`a synthesized record of ${w.length} bytes: more than a u16 size`, 0);
  }
  w.patchU16(6, w.length);
  return w.result();
}

/** Builds synthesized records for one attr's trailer. */
export class RecordSynthesizer {
  readonly #layout: RecordLayout;
  readonly #id: bigint;

  constructor(trailerOf: SynthesisTrailer) {
    this.#layout = recordLayout(trailerOf.attr);
    this.#id = trailerOf.id ?? 0n;
  }

  /** PERF_RECORD_COMM (perf_event__synthesize_comm: misc 0, not an exec). */
  comm(pid: number, tid: number, comm: string): Uint8Array {
    const w = new ByteWriter().u32(pe.PERF_RECORD_COMM).u16(0).u16(0);
    w.i32(pid).i32(tid);
    paddedString(w, comm);
    trailer(w, this.#layout, this.#id, pid, tid);
    return finish(w);
  }

  /**
   * PERF_RECORD_FORK as perf_event__synthesize_fork writes it: the process's
   * leader is forked by its parent, every other thread by its leader.
   */
  fork(pid: number, tid: number, ppid: number): Uint8Array {
    const parent = pid === tid ? ppid : pid;
    const w = new ByteWriter().u32(pe.PERF_RECORD_FORK).u16(pe.PERF_RECORD_MISC_FORK_EXEC).u16(0);
    w.i32(pid).i32(parent).i32(tid).i32(parent).u64(0n);
    trailer(w, this.#layout, this.#id, pid, tid);
    return finish(w);
  }

  /**
   * The kernel's text as perf_event__synthesize_kernel_mmap writes it: an MMAP
   * of "[kernel.kallsyms]_text" for pid -1 from `_text`, pgoff the same
   * address (perf's reference symbol), so kernel samples resolve by kallsyms.
   */
  kernelMmap(start: bigint, end: bigint): Uint8Array {
    const w = new ByteWriter().u32(pe.PERF_RECORD_MMAP).u16(pe.PERF_RECORD_MISC_KERNEL).u16(0);
    w.i32(-1).i32(0).u64(start).u64(end - start).u64(start);
    paddedString(w, "[kernel.kallsyms]_text");
    trailer(w, this.#layout, this.#id, -1, 0);
    return finish(w);
  }

  /** PERF_RECORD_MMAP2 of one /proc/PID/maps line. */
  mmap2(pid: number, tid: number, m: ProcMapping): Uint8Array {
    const misc = pe.PERF_RECORD_MISC_USER |
      (m.prot & PROT_EXEC ? 0 : pe.PERF_RECORD_MISC_MMAP_DATA);
    const w = new ByteWriter().u32(pe.PERF_RECORD_MMAP2).u16(misc).u16(0);
    w.i32(pid).i32(tid).u64(m.start).u64(m.end - m.start).u64(m.pgoff);
    w.u32(m.maj).u32(m.min).u64(m.ino).u64(0n).u32(m.prot).u32(m.flags);
    paddedString(w, m.filename);
    trailer(w, this.#layout, this.#id, pid, tid);
    return finish(w);
  }
}

/** One line of /proc/PID/maps. */
export interface ProcMapping {
  start: bigint;
  end: bigint;
  /** PROT_* bits. */
  prot: number;
  /** MAP_SHARED or MAP_PRIVATE. */
  flags: number;
  pgoff: bigint;
  maj: number;
  min: number;
  ino: bigint;
  /** The path, "[vdso]"-like names, or "//anon" for an anonymous mapping (as perf names it). */
  filename: string;
}

const MAPS_LINE =
  /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([sp]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$/;

/** Parses /proc/PID/maps text (perf_event__synthesize_mmap_events' reading). */
export function parseProcMaps(text: string): ProcMapping[] {
  const out: ProcMapping[] = [];
  for (const line of text.split("\n")) {
    const m = MAPS_LINE.exec(line);
    if (!m) continue;
    out.push({
      start: BigInt("0x" + m[1]),
      end: BigInt("0x" + m[2]),
      prot: (m[3] === "r" ? PROT_READ : 0) | (m[4] === "w" ? PROT_WRITE : 0) |
        (m[5] === "x" ? PROT_EXEC : 0),
      flags: m[6] === "s" ? MAP_SHARED : MAP_PRIVATE,
      pgoff: BigInt("0x" + m[7]),
      maj: parseInt(m[8], 16),
      min: parseInt(m[9], 16),
      ino: BigInt(m[10]),
      filename: m[11] === "" ? "//anon" : m[11],
    });
  }
  return out;
}

/** What /proc/PID/task/TID/status says of a thread, or null when it is gone. */
function threadStatus(
  pid: number,
  tid: number,
): { comm: string; ppid: number; kernel: boolean } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
  } catch {
    return null; // exited since the listing
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text)?.[1];
  let comm: string;
  try {
    comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").replace(/\n$/, "");
  } catch {
    return null;
  }
  // A kernel thread has no memory: status has no VmPeak (perf's test too).
  return { comm, ppid: Number(field("PPid") ?? 0), kernel: field("VmPeak") === undefined };
}

function listNumbers(dir: string): number[] {
  try {
    return readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/**
 * The kernel's text range from /proc/kallsyms: `_text` to past the last
 * symbol of the kernel proper (module symbols excluded), or null when the
 * addresses are hidden (kptr_restrict, or no privilege: they read as 0).
 */
export function kernelTextRange(): { start: bigint; end: bigint } | null {
  let text: string;
  try {
    text = readFileSync("/proc/kallsyms", "utf8");
  } catch {
    return null;
  }
  let start = 0n, end = 0n;
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.endsWith("]")) continue; // "[module]" symbols
    const sp = line.indexOf(" ");
    const addr = BigInt("0x" + line.slice(0, sp));
    if (line.endsWith(" _text")) start = addr;
    if (addr > end) end = addr;
  }
  return start === 0n || end <= start ? null : { start, end: end + 1n };
}

/** Options of a synthesis pass. */
export interface SynthesizeOptions {
  /** Also MMAP2 records of non-executable readable mappings (perf's -d, attr.mmap_data). */
  mmapData?: boolean;
  /** FORK records before each thread's COMM (perf does for system-wide recording). */
  forks?: boolean;
}

/**
 * The records perf synthesizes for process `pid` (perf's __event__synthesize_thread):
 * for each thread, FORK (with `forks`) and COMM; then an MMAP2 per executable
 * mapping of the process, unless it is a kernel thread. A task that exits
 * meanwhile is skipped. Returns how many records were emitted.
 */
export function synthesizeProcess(
  synth: RecordSynthesizer,
  pid: number,
  emit: (record: Uint8Array) => void,
  options: SynthesizeOptions = {},
): number {
  let n = 0;
  let kernel = true;
  for (const tid of listNumbers(`/proc/${pid}/task`)) {
    const s = threadStatus(pid, tid);
    if (s === null) continue;
    if (tid === pid) kernel = s.kernel;
    if (options.forks) emit(synth.fork(pid, tid, s.ppid)), n++;
    emit(synth.comm(pid, tid, s.comm)), n++;
  }
  if (n === 0 || kernel) return n;
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  } catch {
    return n;
  }
  for (const m of parseProcMaps(maps)) {
    if (!(m.prot & PROT_EXEC) && !(options.mmapData && m.prot & PROT_READ)) continue;
    emit(synth.mmap2(pid, pid, m)), n++;
  }
  return n;
}

/** synthesizeProcess for every process in /proc, with FORK records (perf record -a). */
export function synthesizeAllProcesses(
  synth: RecordSynthesizer,
  emit: (record: Uint8Array) => void,
  options: Omit<SynthesizeOptions, "forks"> = {},
): number {
  let n = 0;
  for (const pid of listNumbers("/proc")) {
    n += synthesizeProcess(synth, pid, emit, { ...options, forks: true });
  }
  return n;
}
