/**
 * user_events: Linux tracepoints from Deno and Bun (raw and EventHeader), and
 * the readers (ftrace, perf ring buffer) to see them.
 * @module
 */
export {
  Emitter,
  type RegisterOptions,
  Tracepoint,
  type TracepointHandle,
  UserEvents,
} from "./tracepoint.ts";
export { EnableSlab } from "./slab.ts";
export {
  decodePayload,
  FieldError,
  type FieldKind,
  type FieldLayout,
  type FieldSpec,
  formatFields,
  parseFields,
} from "./fields.ts";
export { parseStatus, readStatus, type UserEventsStatus, type UserEventStatus } from "./status.ts";
export {
  type EventDefinition,
  type EventField,
  EVENTHEADER_COMMAND_TYPES,
  EventHeaderEncoder,
  EventHeaderEvent,
  type EventHeaderHandle,
  EventHeaderProvider,
  ExtensionKind,
  FIELD_TYPES,
  FieldEncoding,
  FieldFormat,
  type FieldTypeName,
  HeaderFlags,
  Level,
  Opcode,
  tracepointName,
} from "./eventheader.ts";
export {
  type DecodedEvent,
  type DecodedField,
  decodeEventHeader,
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
