/**
 * A raw user_events tracepoint: the enable bit tested with one Atomics.load,
 * values encoded (payload.ts) and written with writev through a prebuilt
 * iovec (emitter.ts), unregistered by its owner. UserEvents
 * (user_events_data.ts) registers them; a Worker re-creates one from its
 * handle.
 *
 *     const ue = UserEvents.open();
 *     const tp = ue.register("myapp_request", "u32 status; __data_loc char[] path");
 *     if (tp.enabled) tp.emit(200, "/index.html");
 *     ue.close();
 */
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import * as ue from "../../ffi/user_events.ts";
import { EnableSlab } from "./slab.ts";
import { type FieldLayout, formatFields, parseFields } from "./fields.ts";
import { MAX_RAW_PAYLOAD, PayloadEncoder } from "./payload.ts";
import { Emitter } from "./emitter.ts";
import { describeValue } from "./values.ts";
import { ENOENT } from "./diagnose.ts";
import { availableEvents, eventFormatFields } from "./tracefs.ts";
import type { UserEvents } from "./user_events_data.ts";

/** Tracepoint names: what the kernel takes (no space, ':' or ';'). */
export const NAME_RE = /^[^\s:;]+$/;

/** What a Worker needs to emit on a tracepoint registered elsewhere (structured-cloneable). */
export interface TracepointHandle {
  /** The name it was registered with (for multi-format events, without the `.<id>` suffix). */
  name: string;
  /** The canonical field string; the Worker re-parses it to rebuild the payload encoder. */
  fields: string;
  /**
   * The owner's user_events_data fd. File descriptors belong to the process,
   * so the Worker writes on it directly; it stays valid until the owner closes.
   */
  fd: number;
  /** The kernel's index for this registration, written before every payload. */
  writeIndex: number;
  /** The enable slab's memory: the Worker sees the kernel's writes to it as they happen. */
  slab: SharedArrayBuffer;
  /** The enable word's index in `slab`. */
  word: number;
  /** The enable bit in `word`. */
  bit: number;
  /** The USER_EVENT_REG_* flags in effect (the Worker needs MULTI_FORMAT to name the system). */
  flags: number;
}

function enabledTest(words: Int32Array, word: number, bit: number): () => boolean {
  const mask = 1 << bit;
  return () => (Atomics.load(words, word) & mask) !== 0;
}

/**
 * A registered tracepoint (or, in a Worker, a handle to one). Made by
 * {@linkcode UserEvents.prototype.register | UserEvents.register}; test
 * {@linkcode Tracepoint.prototype.enabled | enabled} before building the
 * values, so a tracepoint nobody listens to costs one load.
 *
 * @example
 * ```ts
 * import { UserEvents } from "@ummu/ummu/user_events";
 *
 * const events = UserEvents.open();
 * const tp = events.register("myapp_cache", "u32 hits; u32 misses; __data_loc char[] key");
 * // ftrace: echo 1 > /sys/kernel/tracing/events/user_events/myapp_cache/enable
 * if (tp.enabled) tp.emit(12, 3, "user:42");
 * events.close();
 * ```
 */
export class Tracepoint<V extends unknown[] = unknown[]> {
  /** The registered name (for multi-format events the tracepoint is `name.<id>`). */
  readonly name: string;
  /** The fields with their payload offsets; decodePayload(layout, ...) reads what a tracer got. */
  readonly layout: readonly FieldLayout[];
  /** The field string as registered ("u32 a; char[8] b"). */
  readonly fields: string;
  /** The USER_EVENT_REG_* flags in effect: a flag the kernel refused is not in it (see `note`). */
  readonly flags: number;
  /** Set when the kernel refused a requested flag and the registration went ahead without it. */
  readonly note: string;
  /** The index in `slab` of the word holding this tracepoint's enable bit. */
  readonly word: number;
  /** The bit in `word` the kernel sets while a tracer listens. */
  readonly bit: number;
  /** The slab the kernel writes the enable bit into (shared with the owning UserEvents). */
  readonly slab: EnableSlab;
  readonly #words: Int32Array;
  readonly #mask: number;
  readonly #encoder: PayloadEncoder;
  readonly #emitter: Emitter;
  readonly #owner: UserEvents | null;
  #closed = false;
  #tpName: string | null = null;

  /** @internal */
  constructor(
    owner: UserEvents | null,
    name: string,
    layout: readonly FieldLayout[],
    fd: number,
    writeIndex: number,
    slab: EnableSlab,
    word: number,
    bit: number,
    flags: number,
    note: string,
  ) {
    this.#owner = owner;
    this.name = name;
    this.layout = layout;
    this.fields = formatFields(layout);
    this.flags = flags;
    this.note = note;
    this.slab = slab;
    this.word = word;
    this.bit = bit;
    this.#words = slab.words;
    this.#mask = 1 << bit;
    this.#encoder = new PayloadEncoder(layout, name);
    this.#emitter = new Emitter(fd, writeIndex, this.#encoder, name);
  }

  /**
   * Re-creates a tracepoint from a handle (in a Worker): it can test `enabled`
   * and emit, not unregister. Every member of the handle is checked (type and
   * range, the word inside the slab); the fd is trusted to be the owner's
   * user_events_data, as handle() made it.
   */
  static fromHandle(h: TracepointHandle): Tracepoint {
    checkHandle(h);
    return new Tracepoint(
      null,
      h.name,
      parseFields(h.fields),
      h.fd,
      h.writeIndex,
      EnableSlab.fromBuffer(h.slab),
      h.word,
      h.bit,
      h.flags,
      "",
    );
  }

  /** True while some tracer (ftrace, perf, eBPF) listens: one Atomics.load and a bit test. */
  get enabled(): boolean {
    return (Atomics.load(this.#words, this.word) & this.#mask) !== 0;
  }

  /** A function form of `enabled`, for hot loops. */
  enabledFn(): () => boolean {
    return enabledTest(this.#words, this.word, this.bit);
  }

  /** The kernel's index for this registration, written before every payload. */
  get writeIndex(): number {
    return this.#emitter.writeIndex;
  }

  /** The owner's user_events_data fd that events are written on (the owner closes it, not this). */
  get fd(): number {
    return this.#emitter.fd;
  }

  /** True once unregistered (or its UserEvents closed): emit() then throws ClosedError. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The kernel's system: "user_events", or "user_events_multi" for multi-format events. */
  get system(): string {
    return this.flags & ue.USER_EVENT_REG_MULTI_FORMAT
      ? ue.USER_EVENTS_MULTI_SYSTEM
      : ue.USER_EVENTS_SYSTEM;
  }

  /** The tracepoint's name in tracefs (`events/<system>/<tracepointName>`). */
  get tracepointName(): string {
    if (this.#tpName !== null) return this.#tpName;
    if (!(this.flags & ue.USER_EVENT_REG_MULTI_FORMAT)) return (this.#tpName = this.name);
    // Multi-format events are "name.<hex id>": find ours by its format.
    // The format file rewrites "char[8] c" as "char c[]": compare names, offsets and sizes.
    const want = this.layout.map((f) => `${f.name}@${f.offset + ue.SIZEOF_TRACE_ENTRY}:${f.size}`)
      .join(";");
    const nameOf = (decl: string) => decl.slice(decl.lastIndexOf(" ") + 1).replace(/\[.*$/, "");
    for (const [sys, ev] of availableEvents()) {
      if (sys !== ue.USER_EVENTS_MULTI_SYSTEM || !ev.startsWith(`${this.name}.`)) continue;
      const have = eventFormatFields(sys, ev).map((f) => `${nameOf(f.decl)}@${f.offset}:${f.size}`)
        .join(";");
      if (have === want) return (this.#tpName = ev);
    }
    throw new UmmuError(
      `find(${this.name}.*)`,
      ENOENT,
      "the multi-format tracepoint is not in available_events",
    );
  }

  /**
   * Emits one event (values in field order). true: written; false: nobody
   * listens now (EBADF). A value its field cannot take (wrong type, out of
   * range, too long) throws UmmuArgumentError naming the field; nothing is
   * written then.
   */
  emit(...values: V): boolean {
    if (this.#closed) throw new ClosedError(`tracepoint ${this.name}`);
    return this.#emitter.write(this.#encoder.encode(values));
  }

  /**
   * Emits a payload encoded by the caller (the bytes after the write index):
   * a Uint8Array of at most 131071 bytes (what loc words can address). The
   * kernel checks it against the fields (EINVAL if shorter, EFAULT for a loc
   * word outside it).
   */
  emitRaw(payload: Uint8Array): boolean {
    if (this.#closed) throw new ClosedError(`tracepoint ${this.name}`);
    if (!(payload instanceof Uint8Array) || payload.length > MAX_RAW_PAYLOAD) {
      throw new UmmuArgumentError(
        `tracepoint ${this.name}: emitRaw takes a Uint8Array of at most ${MAX_RAW_PAYLOAD} bytes, got ${
          describeValue(payload)
        }`,
      );
    }
    this.#encoder.ensure(payload.length);
    this.#encoder.buf.set(payload);
    return this.#emitter.write(payload.length);
  }

  /** What a Worker needs: pass it with postMessage and call Tracepoint.fromHandle there. */
  handle(): TracepointHandle {
    return {
      name: this.name,
      fields: this.fields,
      fd: this.#emitter.fd,
      writeIndex: this.#emitter.writeIndex,
      slab: this.slab.buffer,
      word: this.word,
      bit: this.bit,
      flags: this.flags,
    };
  }

  /** DIAG_IOCSUNREG: the kernel stops updating (and clears) the enable bit. Idempotent. */
  unregister(): void {
    if (this.#closed) return;
    if (this.#owner === null) {
      throw new UmmuArgumentError(
        "a tracepoint made from a handle cannot unregister; its owner does",
      );
    }
    this.#owner._unregister(this);
    this.#closed = true;
  }

  /** @internal */
  _markClosed(): void {
    this.#closed = true;
  }
}

const HANDLE_FLAGS = ue.USER_EVENT_REG_PERSIST | ue.USER_EVENT_REG_MULTI_FORMAT;

/** Throws UmmuArgumentError unless `h` has the shape and ranges handle() gives. */
function checkHandle(h: TracepointHandle): void {
  if (h === null || typeof h !== "object") {
    throw new UmmuArgumentError(
      `a tracepoint handle must be the object handle() returns, got ${describeValue(h)}`,
    );
  }
  const bad = (what: string, expected: string, v: unknown) =>
    new UmmuArgumentError(
      `tracepoint handle: ${what} must be ${expected}, got ${describeValue(v)}`,
    );
  if (typeof h.name !== "string" || !NAME_RE.test(h.name)) {
    throw bad("name", "a tracepoint name", h.name);
  }
  if (typeof h.fields !== "string") throw bad("fields", "a field string", h.fields);
  if (!(Number.isInteger(h.fd) && h.fd >= 0 && h.fd <= 0x7fffffff)) {
    throw bad("fd", "a file descriptor (an integer >= 0)", h.fd);
  }
  if (!(Number.isInteger(h.writeIndex) && h.writeIndex >= 0 && h.writeIndex <= 0xffffffff)) {
    throw bad("writeIndex", "an integer in 0..4294967295", h.writeIndex);
  }
  if (
    !(h.slab instanceof SharedArrayBuffer) || h.slab.byteLength === 0 ||
    h.slab.byteLength % 4 !== 0
  ) {
    throw bad("slab", "the SharedArrayBuffer of an EnableSlab", h.slab);
  }
  const words = h.slab.byteLength / 4;
  if (!(Number.isInteger(h.word) && h.word >= 0 && h.word < words)) {
    throw bad("word", `an integer in 0..${words - 1} (the slab has ${words} words)`, h.word);
  }
  if (!(Number.isInteger(h.bit) && h.bit >= 0 && h.bit <= 31)) {
    throw bad("bit", "an integer in 0..31", h.bit);
  }
  if (!(Number.isInteger(h.flags) && (h.flags & ~HANDLE_FLAGS) === 0)) {
    throw bad("flags", "a combination of USER_EVENT_REG_PERSIST and _MULTI_FORMAT", h.flags);
  }
}
