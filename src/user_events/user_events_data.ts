/**
 * UserEvents: one open tracefs `user_events_data` file descriptor and the
 * enable slab of its registrations. It registers raw tracepoints
 * (DIAG_IOCSREG), unregisters them (DIAG_IOCSUNREG) and deletes events
 * (DIAG_IOCSDEL); close() unregisters every tracepoint (so the kernel stops
 * writing to the slab) and closes the fd.
 */
import { runtime } from "../../ffi/platform.ts";
import { check, cstring, errno, libc } from "../libc.ts";
import { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
import * as ue from "../../ffi/user_events.ts";
import * as m from "../../ffi/mman.ts";
import { EnableSlab } from "./slab.ts";
import {
  commandString,
  FieldError,
  type FieldLayout,
  type FieldSpec,
  type FieldValues,
  parseFields,
} from "./fields.ts";
import { NAME_RE, Tracepoint } from "./tracepoint.ts";
import { describeValue } from "./values.ts";
import { EBUSY, EINVAL, ENOENT, EPERM, openError, registerError } from "./diagnose.ts";
import { findTracefs, tracefsRoot } from "./tracefs.ts";

/**
 * Options of {@linkcode UserEvents.prototype.register | UserEvents.register}:
 * the registration flags, and an explicit place for the enable bit (for when
 * code outside this object, such as a Worker or another process sharing the
 * slab, must know where it is).
 */
export interface RegisterOptions {
  /** USER_EVENT_REG_PERSIST: the event outlives its last registration (needs CAP_PERFMON). */
  persist?: boolean;
  /** USER_EVENT_REG_MULTI_FORMAT: same name, several formats (tracepoint "name.<id>" in user_events_multi). */
  multiFormat?: boolean;
  /**
   * Choose the enable word and bit in the slab (default: the lowest free bit).
   * With only `bit` given the word is 0; a bit already in use throws.
   */
  word?: number;
  /** The bit (0..31) in `word` the kernel sets and clears; with only `word` given, 31. */
  bit?: number;
}

function flagNames(flags: number): string {
  const n: string[] = [];
  if (flags & ue.USER_EVENT_REG_PERSIST) n.push("USER_EVENT_REG_PERSIST");
  if (flags & ue.USER_EVENT_REG_MULTI_FORMAT) n.push("USER_EVENT_REG_MULTI_FORMAT");
  return n.join("|");
}

const OPTION_KEYS = new Set(["persist", "multiFormat", "word", "bit"]);

function checkRegisterOptions(name: string, opts: RegisterOptions): void {
  if (opts === null || typeof opts !== "object") {
    throw new UmmuArgumentError(
      `${name}: register options must be an object, got ${describeValue(opts)}`,
    );
  }
  for (const [k, v] of Object.entries(opts)) {
    if (!OPTION_KEYS.has(k)) {
      throw new UmmuArgumentError(
        `${name}: unknown register option "${k}" (persist, multiFormat, word, bit)`,
      );
    }
    if ((k === "persist" || k === "multiFormat") && v !== undefined && typeof v !== "boolean") {
      throw new UmmuArgumentError(
        `${name}: option ${k} must be a boolean, got ${describeValue(v)}`,
      );
    }
  }
}

/**
 * Slabs with live registrations, held strongly: the kernel writes into a
 * slab until DIAG_IOCSUNREG, so it must not be collected even if its
 * UserEvents is dropped without close().
 */
const PINNED = new Map<EnableSlab, number>();
function pin(slab: EnableSlab, delta: number): void {
  const n = (PINNED.get(slab) ?? 0) + delta;
  if (n > 0) PINNED.set(slab, n);
  else PINNED.delete(slab);
}

/**
 * One open user_events_data file descriptor and the enable slab of its
 * registrations. close() unregisters every tracepoint (so the kernel stops
 * writing to the slab) and closes the fd.
 *
 * Needs Linux 6.4+ with CONFIG_USER_EVENTS, tracefs mounted, and write access
 * to user_events_data (root, or a group granted it).
 *
 * @example
 * ```ts
 * import { UserEvents } from "@ummu/ummu/user_events";
 *
 * if (UserEvents.available()) {
 *   const events = UserEvents.open();
 *   const req = events.register("myapp_request", "u32 status; __data_loc char[] path");
 *   if (req.enabled) req.emit(200, "/index.html"); // enabled: only while a tracer listens
 *   events.close(); // unregisters req, then closes the fd
 * }
 * ```
 */
export class UserEvents {
  /** The user_events_data fd every registration of this object is made and written on. */
  readonly fd: number;
  /** The enable slab of this object's registrations (the one passed to open(), if any). */
  readonly slab: EnableSlab;
  /** The user_events_data path opened (under the tracefs mount found). */
  readonly path: string;
  readonly #live = new Set<Tracepoint>();
  #closed = false;

  private constructor(fd: number, slab: EnableSlab, path: string) {
    this.fd = fd;
    this.slab = slab;
    this.path = path;
  }

  /** The path of user_events_data; throws a clear ENOENT if tracefs is not mounted. */
  static dataPath(): string {
    return `${tracefsRoot()}/user_events_data`;
  }

  /** True if this kernel has user_events (tracefs mounted and user_events_data present). */
  static available(): boolean {
    const root = findTracefs();
    if (root === null) return false;
    const fd = libc.open(cstring(`${root}/user_events_data`), m.O_RDONLY | m.O_CLOEXEC, 0);
    if (fd >= 0) {
      libc.close(fd);
      return true;
    }
    return errno() !== ENOENT;
  }

  /** Opens user_events_data. `slab`: share enable words with other UserEvents (default: a new 16-word slab). */
  static open(opts: { slab?: EnableSlab } = {}): UserEvents {
    if (opts === null || typeof opts !== "object") {
      throw new UmmuArgumentError(
        `UserEvents.open options must be an object, got ${describeValue(opts)}`,
      );
    }
    if (opts.slab !== undefined && !(opts.slab instanceof EnableSlab)) {
      throw new UmmuArgumentError(
        `UserEvents.open: slab must be an EnableSlab, got ${describeValue(opts.slab)}`,
      );
    }
    const root = findTracefs();
    if (root === null) throw openError("/sys/kernel/tracing/user_events_data", ENOENT);
    const path = `${root}/user_events_data`;
    const fd = libc.open(cstring(path), m.O_RDWR | m.O_CLOEXEC, 0);
    if (fd < 0) throw openError(path, errno());
    return new UserEvents(fd, opts.slab ?? new EnableSlab(), path);
  }

  /** True after close(): register() then throws ClosedError. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Live registrations. */
  get tracepoints(): Tracepoint[] {
    return [...this.#live];
  }

  /**
   * Registers a tracepoint. `fields`: a field string ("u32 a; __data_loc char[] msg")
   * or FieldSpec objects. A declaration the kernel would reject throws
   * UmmuArgumentError naming it; kernel refusals throw UmmuError (EADDRINUSE,
   * EMFILE, EPERM, EINVAL...). A flag the kernel does not know (EINVAL) is
   * dropped and said in `note`. When `fields` is a literal (a string, or
   * specs), the tracepoint's emit() is typed by it: `register("x", "u32 a;
   * __data_loc char[] b")` emits `(a: number, b: string)`.
   *
   * @example
   * ```ts
   * import { UserEvents } from "@ummu/ummu/user_events";
   *
   * const events = UserEvents.open();
   * const upload = events.register("myapp_upload", [
   *   { name: "bytes", type: "u64" },
   *   { name: "digest", type: "unsigned char[32]" },
   * ], { multiFormat: true });
   * // Multi-format events live in user_events_multi as "myapp_upload.<id>".
   * console.log(upload.system, upload.tracepointName, upload.note);
   * events.close();
   * ```
   */
  register<const F extends string | readonly FieldSpec[] = readonly []>(
    name: string,
    fields?: F,
    opts: RegisterOptions = {},
  ): Tracepoint<FieldValues<F>> {
    if (this.#closed) throw new ClosedError("UserEvents");
    if (typeof name !== "string" || !NAME_RE.test(name)) {
      throw new UmmuArgumentError(
        `tracepoint name must be a non-empty string without spaces, ':' or ';', got ${
          describeValue(name)
        }`,
      );
    }
    checkRegisterOptions(name, opts);
    let layout: FieldLayout[];
    try {
      layout = parseFields(fields ?? []);
    } catch (e) {
      if (e instanceof FieldError) {
        throw new UmmuArgumentError(`${name}: ${e.message} (the kernel would answer EINVAL)`);
      }
      throw e;
    }
    const command = commandString(name, layout);
    const cmdBytes = cstring(command);
    if (cmdBytes.length > ue.MAX_EVENT_DESC) {
      throw new UmmuArgumentError(
        `${name}: the command is ${cmdBytes.length} bytes with its NUL; the kernel takes at most ${ue.MAX_EVENT_DESC} (it would answer EINVAL)`,
      );
    }
    let flags = (opts.persist ? ue.USER_EVENT_REG_PERSIST : 0) |
      (opts.multiFormat ? ue.USER_EVENT_REG_MULTI_FORMAT : 0);
    const { word, bit } = this.slab.allocate(opts.word, opts.bit);
    let note = "";
    let index: number;
    try {
      let r = this.#reg(cmdBytes, word, bit, flags);
      if (r.errno === EINVAL && flags !== 0) {
        // Older kernels reject unknown flags with EINVAL: retry without them.
        const again = this.#reg(cmdBytes, word, bit, 0);
        if (again.errno === 0) {
          note = `the kernel rejected ${
            flagNames(flags)
          } (EINVAL: PERSIST needs Linux 6.5+, MULTI_FORMAT 6.10+); registered without it`;
          flags = 0;
        }
        r = again;
      }
      if (r.errno !== 0) throw registerError(r.errno, name, command, flags);
      index = r.index;
    } catch (e) {
      this.slab.release(word, bit);
      throw e;
    }
    const tp = new Tracepoint<FieldValues<F>>(
      this,
      name,
      layout,
      this.fd,
      index,
      this.slab,
      word,
      bit,
      flags,
      note,
    );
    this.#live.add(tp);
    pin(this.slab, 1);
    return tp;
  }

  #reg(
    cmd: Uint8Array,
    word: number,
    bit: number,
    flags: number,
  ): { errno: number; index: number } {
    const reg = new Uint8Array(new ArrayBuffer(ue.SIZEOF_USER_REG));
    const dv = new DataView(reg.buffer);
    dv.setUint32(ue.USER_REG_OFF.size, ue.SIZEOF_USER_REG, true);
    dv.setUint8(ue.USER_REG_OFF.enable_bit, bit);
    dv.setUint8(ue.USER_REG_OFF.enable_size, 4);
    dv.setUint16(ue.USER_REG_OFF.flags, flags, true);
    dv.setBigUint64(ue.USER_REG_OFF.enable_addr, BigInt(this.slab.address + word * 4), true);
    dv.setBigUint64(ue.USER_REG_OFF.name_args, BigInt(runtime.addressOf(cmd)), true);
    const r = libc.ioctl(this.fd, ue.DIAG_IOCSREG, reg);
    if (r < 0) return { errno: errno(), index: -1 };
    return { errno: 0, index: dv.getUint32(ue.USER_REG_OFF.write_index, true) };
  }

  /** @internal DIAG_IOCSUNREG for one tracepoint. */
  _unregister(tp: Tracepoint): void {
    if (!this.#live.has(tp)) return;
    const un = new Uint8Array(new ArrayBuffer(ue.SIZEOF_USER_UNREG));
    const dv = new DataView(un.buffer);
    dv.setUint32(ue.USER_UNREG_OFF.size, ue.SIZEOF_USER_UNREG, true);
    dv.setUint8(ue.USER_UNREG_OFF.disable_bit, tp.bit);
    dv.setBigUint64(ue.USER_UNREG_OFF.disable_addr, BigInt(this.slab.address + tp.word * 4), true);
    check(libc.ioctl(this.fd, ue.DIAG_IOCSUNREG, un), `ioctl(DIAG_IOCSUNREG, ${tp.name})`);
    this.#live.delete(tp);
    this.slab.release(tp.word, tp.bit);
    pin(this.slab, -1);
  }

  /**
   * DIAG_IOCSDEL on a separate user_events_data fd: deletes the event `name`
   * (every format of a multi-format name). EBUSY while any registration or
   * open user_events_data fd still references it.
   */
  static delete(name: string): void {
    if (typeof name !== "string" || !/^[^\s:;]+(\.[0-9a-f]+)?$/.test(name)) {
      throw new UmmuArgumentError(
        `UserEvents.delete: name must be a registered event's name, got ${describeValue(name)}`,
      );
    }
    const path = UserEvents.dataPath();
    const fd = libc.open(cstring(path), m.O_RDWR | m.O_CLOEXEC, 0);
    if (fd < 0) throw openError(path, errno());
    try {
      if (libc.ioctl(fd, ue.DIAG_IOCSDEL, cstring(name)) < 0) {
        const e = errno();
        const hints: Record<number, string> = {
          [ENOENT]: `no user_events event named "${name}"`,
          [EBUSY]:
            `"${name}" is still in use: unregister it, close every user_events_data fd that registered it (processes that hold it must close or exit), and stop tracers`,
          [EPERM]: "deleting a persistent event needs CAP_PERFMON or CAP_SYS_ADMIN",
        };
        throw new UmmuError(`ioctl(DIAG_IOCSDEL, "${name}")`, e, hints[e] ?? "");
      }
    } finally {
      libc.close(fd);
    }
  }

  /** Unregisters every tracepoint, then closes the fd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    let first: unknown = null;
    for (const tp of [...this.#live]) {
      try {
        this._unregister(tp);
      } catch (e) {
        first ??= e;
      }
      tp._markClosed();
    }
    this.#closed = true;
    check(libc.close(this.fd), "close(user_events_data)");
    if (first) throw first;
  }
}
