/**
 * user_events: Linux tracepoints from Deno and Bun (raw and EventHeader), and
 * the readers (ftrace, perf ring buffer) to see them.
 *
 * @example
 * ```ts
 * import { parseTrace, readTrace, setFtraceEnabled, UserEvents } from "@ummu/ummu/user_events";
 *
 * const events = UserEvents.open();
 * const tp = events.register("myapp_request", "u32 status; __data_loc char[] path");
 * setFtraceEnabled("user_events", tp.name, true); // the kernel sets tp's enable bit
 * if (tp.enabled) tp.emit(200, "/index.html");
 * setFtraceEnabled("user_events", tp.name, false);
 * console.log(parseTrace(readTrace(), tp.name).map((l) => l.body));
 * events.close();
 * ```
 * @module
 */
export { Tracepoint, type TracepointHandle } from "./tracepoint.ts";
export { type RegisterOptions, UserEvents } from "./user_events_data.ts";
export { EnableSlab } from "./slab.ts";
export { ClosedError, UmmuArgumentError, UmmuError } from "../errors.ts";
export {
  type FieldDeclarationValue,
  FieldError,
  type FieldKind,
  type FieldLayout,
  type FieldSpec,
  type FieldSpecValue,
  type FieldStringValues,
  type FieldValues,
  formatFields,
  parseFields,
} from "./fields.ts";
export { decodePayload } from "./payload.ts";
export { parseStatus, readStatus, type UserEventsStatus, type UserEventStatus } from "./status.ts";
export {
  type EmitValues,
  type EventDefinition,
  type EventElementValue,
  type EventField,
  type EventFieldsValues,
  type EventFieldValue,
  EVENTHEADER_COMMAND_TYPES,
  type EventStructValue,
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
export {
  EventHeaderEvent,
  type EventHeaderHandle,
  EventHeaderProvider,
  tracepointName,
} from "./eventheader.ts";
export {
  type DecodedEvent,
  type DecodedField,
  decodeEventHeader,
  EventHeaderDecodeError,
  fieldValues,
  parseTracepointName,
  type TracepointNameInfo,
} from "./eventheader_decode.ts";
export {
  onlineCpus,
  type PerfOpenOptions,
  type PerfSample,
  PerfTracepoint,
  traceEntry,
} from "./perf.ts";
export {
  availableEvents,
  clearTrace,
  findTracefs,
  parseTrace,
  readTrace,
  setFtraceEnabled,
  tracefsRoot,
  type TraceLine,
  tracepointId,
} from "./tracefs.ts";
