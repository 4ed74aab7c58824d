/**
 * EventHeader (Microsoft LinuxTracepoints): self-describing events on shared
 * user_events tracepoints, decodable by perf-decode, decode-perf and the
 * OpenTelemetry user_events exporters' tools. This file binds events to their
 * tracepoints (EventHeaderProvider, EventHeaderEvent) and names the
 * tracepoints; the vocabulary is in eventheader_types.ts, the field encoding
 * in eventheader_fields.ts, the encoder in eventheader_encoder.ts and the
 * decoder in eventheader_decode.ts.
 *
 * Tracepoint: `ProviderName_L<level hex>K<keyword hex>[options]` with the
 * command types EVENTHEADER_COMMAND_TYPES.
 */
import { Tracepoint, type TracepointHandle } from "./tracepoint.ts";
import { UserEvents } from "./user_events_data.ts";
import { Emitter } from "./emitter.ts";
import { ClosedError, UmmuArgumentError } from "../errors.ts";
import { formatFields, parseFields } from "./fields.ts";
import {
  type EmitValues,
  type EventDefinition,
  EVENTHEADER_COMMAND_TYPES,
  EVENTHEADER_NAME_MAX,
} from "./eventheader_types.ts";
import { checkKeyword, checkLevel, EventHeaderEncoder } from "./eventheader_encoder.ts";
import { parseTracepointName } from "./eventheader_decode.ts";
import { describeValue } from "./values.ts";

export {
  type EmitValues,
  type EventDefinition,
  type EventField,
  EVENTHEADER_COMMAND_TYPES,
  EVENTHEADER_NAME_MAX,
  ExtensionKind,
  FIELD_TYPES,
  FieldEncoding,
  FieldFormat,
  type FieldTypeName,
  type FieldTypeValues,
  HeaderFlags,
  Level,
  Opcode,
} from "./eventheader_types.ts";
export { EventHeaderEncoder } from "./eventheader_encoder.ts";

/** Provider names: what the spec allows (no ' ' or ':') and tracefs takes (no other space, no ';'). */
const PROVIDER_RE = /^[^\s:;\0]+$/;
/** Options: uppercase letter + lowercase letters and digits each, sorted by letter (the spec). */
const OPTIONS_RE = /^(?:[A-Z][0-9a-z]*)*$/;

function checkProvider(provider: unknown): string {
  if (typeof provider !== "string" || !PROVIDER_RE.test(provider)) {
    throw new UmmuArgumentError(
      `provider name must be a non-empty string without spaces, ':', ';' or NUL (for the widest support: letters, digits and '_'), got ${
        describeValue(provider)
      }`,
    );
  }
  return provider;
}

function checkOptions(options: unknown): string {
  if (typeof options !== "string" || !OPTIONS_RE.test(options)) {
    throw new UmmuArgumentError(
      `tracepoint options must be options such as "Gmygroup" (an uppercase letter, then lowercase letters and digits), got ${
        describeValue(options)
      }`,
    );
  }
  const letters = options.replace(/[0-9a-z]/g, "");
  if ([...letters].sort().join("") !== letters) {
    throw new UmmuArgumentError(`tracepoint options "${options}" must be sorted by their letter`);
  }
  return options;
}

/**
 * `ProviderName_L<level>K<keyword>[G<group>]`: the spec's tracepoint name. Tracers
 * select EventHeader events by this name, so every event of a provider with the
 * same level and keyword shares one tracepoint (and one enable bit). Throws
 * UmmuArgumentError for a provider name with ' ', ':' or ';', a level outside
 * 1..255, a keyword outside 64 bits, options that are not the spec's, or a
 * name of 256 characters or more.
 *
 * @example
 * ```ts
 * import { Level, tracepointName } from "@ummu/ummu/user_events";
 *
 * tracepointName("myapp", Level.Informational, 0x10n); // "myapp_L4K10"
 * tracepointName("myapp", Level.Error, 1, "Gbilling"); // "myapp_L2K1Gbilling"
 * ```
 */
export function tracepointName(
  provider: string,
  level: number,
  keyword: bigint | number,
  options = "",
): string {
  const p = checkProvider(provider);
  const l = checkLevel(`tracepoint of ${p}`, level);
  const k = checkKeyword(`tracepoint of ${p}`, keyword);
  const name = `${p}_L${l.toString(16)}K${k.toString(16)}${checkOptions(options)}`;
  if (name.length + 1 > EVENTHEADER_NAME_MAX) {
    throw new UmmuArgumentError(
      `tracepoint name "${name}" is ${name.length} characters; EventHeader allows ${
        EVENTHEADER_NAME_MAX - 1
      }`,
    );
  }
  return name;
}

const COMMAND_FIELDS = formatFields(parseFields(EVENTHEADER_COMMAND_TYPES));

/** What a Worker needs to emit an EventHeader event defined elsewhere (structured-cloneable). */
export interface EventHeaderHandle {
  /** The shared tracepoint's handle (fd, write index, enable bit). */
  tracepoint: TracepointHandle;
  /** The definition; the Worker compiles its own encoder from it. */
  def: EventDefinition;
}

/**
 * One EventHeader event definition bound to its (shared) tracepoint. Made by
 * {@linkcode EventHeaderProvider.prototype.defineEvent | EventHeaderProvider.defineEvent};
 * to emit from a Worker, post handle() and call EventHeaderEvent.fromHandle
 * there.
 *
 * @example
 * ```ts
 * import { EventHeaderProvider, Level, Opcode } from "@ummu/ummu/user_events";
 *
 * const provider = new EventHeaderProvider("myapp");
 * const job = provider.defineEvent({
 *   name: "Job",
 *   level: Level.Informational,
 *   opcode: Opcode.ActivityStart,
 *   activity: "id",
 *   fields: [{ name: "queue", type: "string" }],
 * });
 * if (job.enabled) job.emitActivity(crypto.randomUUID(), undefined, "emails");
 * provider.close();
 * ```
 */
export class EventHeaderEvent<V extends unknown[] = unknown[]> {
  /** The compiled header, extensions and field writers of this event. */
  readonly encoder: EventHeaderEncoder;
  /** The provider's tracepoint of this level and keyword, shared by all events with that pair. */
  readonly tracepoint: Tracepoint;
  readonly #words: Int32Array;
  readonly #word: number;
  readonly #mask: number;
  readonly #emitter: Emitter;
  readonly #closed: () => boolean;

  /** @internal */
  constructor(tp: Tracepoint, encoder: EventHeaderEncoder, closed: () => boolean) {
    this.tracepoint = tp;
    this.encoder = encoder;
    this.#closed = closed;
    this.#words = tp.slab.words;
    this.#word = tp.word;
    this.#mask = 1 << tp.bit;
    this.#emitter = new Emitter(tp.fd, tp.writeIndex, encoder.buffer, tp.name);
  }

  /**
   * Re-creates an event from a handle (in a Worker): it can test `enabled` and
   * emit. The definition is checked as defineEvent checks it, and must match
   * its tracepoint (EventHeader's fields, and the level and keyword its name
   * carries).
   */
  static fromHandle(h: EventHeaderHandle): EventHeaderEvent {
    if (h === null || typeof h !== "object") {
      throw new UmmuArgumentError(
        `an EventHeader handle must be the object handle() returns, got ${describeValue(h)}`,
      );
    }
    const tp = Tracepoint.fromHandle(h.tracepoint);
    const encoder = new EventHeaderEncoder(h.def);
    let info;
    try {
      info = parseTracepointName(tp.name);
    } catch {
      info = null;
    }
    if (
      tp.fields !== COMMAND_FIELDS || info === null || info.level !== encoder.level ||
      info.keyword !== encoder.keyword
    ) {
      throw new UmmuArgumentError(
        `EventHeader handle: event ${encoder.def.name} (level ${encoder.level}, keyword 0x${
          encoder.keyword.toString(16)
        }) does not belong on tracepoint ${tp.name} (${tp.fields})`,
      );
    }
    return new EventHeaderEvent(tp, encoder, () => false);
  }

  /** What a Worker needs: pass it with postMessage and call EventHeaderEvent.fromHandle there. */
  handle(): EventHeaderHandle {
    return { tracepoint: this.tracepoint.handle(), def: this.encoder.def };
  }

  /** The event name (in the metadata; tracers list the tracepoint's name instead). */
  get name(): string {
    return this.encoder.def.name;
  }

  /** True while a tracer listens on the tracepoint (shared by every event of the same level and keyword). */
  get enabled(): boolean {
    return (Atomics.load(this.#words, this.#word) & this.#mask) !== 0;
  }

  /**
   * Emits one event. true: written; false: nobody listens (EBADF). A value
   * its field cannot take throws UmmuArgumentError naming the field; nothing
   * is written then.
   */
  emit(...values: V): boolean {
    if (this.#closed()) throw new ClosedError(`EventHeader event ${this.name}`);
    return this.#emitter.write(this.encoder.encode(values));
  }

  /** Emits with an activity id (and a related id for activity: "related"). */
  emitActivity(
    activityId: Uint8Array | string,
    relatedId: Uint8Array | string | undefined,
    ...values: V
  ): boolean {
    if (this.#closed()) throw new ClosedError(`EventHeader event ${this.name}`);
    this.encoder.setActivity(activityId, relatedId);
    return this.emit(...values);
  }
}

/**
 * An EventHeader provider: a name, an optional group, and the tracepoints of
 * its (level, keyword) pairs, registered on first use and shared by events.
 * Its events are self-describing, so perf-decode and other EventHeader tools
 * show named, typed fields with no schema shipped alongside.
 *
 * @example
 * ```ts
 * import { EventHeaderProvider, Level } from "@ummu/ummu/user_events";
 *
 * const provider = new EventHeaderProvider("myapp");
 * const request = provider.defineEvent({
 *   name: "Request",
 *   level: Level.Informational,
 *   keyword: 0x1n,
 *   fields: [
 *     { name: "status", type: "u32" },
 *     { name: "path", type: "string" },
 *     { name: "ms", type: "f64" },
 *   ],
 * });
 * // perf record -e user_events:myapp_L4K1 ...
 * if (request.enabled) request.emit(200, "/index.html", 1.5);
 * provider.close();
 * ```
 */
export class EventHeaderProvider {
  /** The provider name: the prefix of its tracepoint names. */
  readonly name: string;
  /** What follows the keyword in its tracepoint names: "G<group>", or "". */
  readonly options: string;
  readonly #ue: UserEvents;
  readonly #ownUe: boolean;
  readonly #tps = new Map<string, Tracepoint>();
  #closed = false;

  /** `group`: the G option (lowercase letters and digits). `userEvents`: share an open UserEvents. */
  constructor(name: string, opts: { group?: string; userEvents?: UserEvents } = {}) {
    checkProvider(name);
    if (opts === null || typeof opts !== "object") {
      throw new UmmuArgumentError(
        `EventHeaderProvider options must be an object { group?, userEvents? }, got ${
          describeValue(opts)
        }`,
      );
    }
    for (const k of Object.keys(opts)) {
      if (k !== "group" && k !== "userEvents") {
        throw new UmmuArgumentError(
          `EventHeaderProvider ${name}: unknown option "${k}" (group, userEvents)`,
        );
      }
    }
    if (
      opts.group !== undefined &&
      (typeof opts.group !== "string" || !/^[a-z0-9]+$/.test(opts.group))
    ) {
      throw new UmmuArgumentError(
        `EventHeaderProvider ${name}: group must be lowercase letters and digits, got ${
          describeValue(opts.group)
        }`,
      );
    }
    if (opts.userEvents !== undefined && !(opts.userEvents instanceof UserEvents)) {
      throw new UmmuArgumentError(
        `EventHeaderProvider ${name}: userEvents must be an open UserEvents, got ${
          describeValue(opts.userEvents)
        }`,
      );
    }
    this.name = name;
    this.options = opts.group !== undefined ? `G${opts.group}` : "";
    this.#ownUe = opts.userEvents === undefined;
    this.#ue = opts.userEvents ?? UserEvents.open();
  }

  /** True after close(): defining events then throws ClosedError, and so does emitting them. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The tracepoint of (level, keyword), registered on first use. */
  tracepoint(level: number, keyword: bigint | number): Tracepoint {
    if (this.#closed) throw new ClosedError(`EventHeader provider ${this.name}`);
    const tpName = tracepointName(this.name, level, keyword, this.options);
    let tp = this.#tps.get(tpName);
    if (!tp) {
      tp = this.#ue.register(tpName, EVENTHEADER_COMMAND_TYPES);
      this.#tps.set(tpName, tp);
    }
    return tp;
  }

  /**
   * Defines an event; its tracepoint is `Provider_L<level>K<keyword>[G<group>]`.
   * The definition is checked in full (see EventHeaderEncoder). With a literal
   * definition, emit() is typed by its fields: `fields: [{ name: "n", type:
   * "u32" }]` gives `emit(n: number)`; the values are checked at run time too.
   */
  defineEvent<const D extends EventDefinition>(def: D): EventHeaderEvent<EmitValues<D>> {
    if (this.#closed) throw new ClosedError(`EventHeader provider ${this.name}`);
    const enc = new EventHeaderEncoder(def);
    return new EventHeaderEvent<EmitValues<D>>(
      this.tracepoint(enc.level, enc.keyword),
      enc,
      () => this.#closed,
    );
  }

  /** Unregisters the provider's tracepoints (and closes its UserEvents if it opened it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const tp of this.#tps.values()) tp.unregister();
    this.#tps.clear();
    if (this.#ownUe) this.#ue.close();
  }
}
