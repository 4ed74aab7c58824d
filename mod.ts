/**
 * ummu: the kernel's memory events for Deno, Bun and Node: userfaultfd,
 * ummunotify, user_events.
 * @module
 */
export { ClosedError, UmmuArgumentError, UmmuError } from "./src/errors.ts";
export { addressOf, Mapping, type MappingKind, type MappingOptions } from "./src/memory.ts";
export { FdReadiness } from "./src/poller.ts";
export {
  type Address,
  UffdBuilder,
  type UffdCapabilities,
  type UffdSource,
  type UffdTransfer,
  UserfaultFd,
  type UserfaultFdOptions,
  type WakeOption,
} from "./src/userfaultfd/uffd.ts";
export type {
  ForkEvent,
  PageFaultEvent,
  RemapEvent,
  RemoveEvent,
  UffdEvent,
  UnmapEvent,
} from "./src/userfaultfd/events.ts";
export type { FeatureName, IoctlName, RegisterMode } from "./src/userfaultfd/features.ts";
export {
  FaultHandler,
  type FaultHandlerOptions,
  type FaultHandlerStats,
  type HandledRange,
  type HandlerEnd,
  type HandlerResources,
} from "./src/userfaultfd/handler.ts";
export type { SourceErrorPolicy } from "./src/userfaultfd/protocol.ts";
export {
  type FileSource,
  type ModuleSource,
  type PageSource,
  type PageSourceModule,
  type PageSources,
  type SharedSource,
  sources,
  type ZeroSource,
} from "./src/userfaultfd/sources.ts";
export { type DirtyRange, DirtyTracker } from "./src/userfaultfd/dirty.ts";
export { LazyMapping, type LazyMappingOptions, LiveSnapshot } from "./src/userfaultfd/lazy.ts";
export {
  FirecrackerHandler,
  type FirecrackerHandlerOptions,
  type FirecrackerSession,
  type FirecrackerSessionEnd,
  type GuestRegionUffdMapping,
} from "./src/userfaultfd/firecracker.ts";
export {
  closeFd,
  MAX_FDS_PER_MESSAGE,
  type PeerCredentials,
  Pidfd,
  type ReceivedMessage,
  UnixListener,
  type UnixListenerOptions,
  UnixSocket,
  type UnixSocketType,
} from "./src/unix_socket/mod.ts";
export * from "./src/user_events/mod.ts";
export {
  type BackendKind,
  type CounterHandle,
  GenerationCounter,
  type InvalidateEvent,
  type LastEvent,
  type U64Like,
  type UffdBackendOptions,
  Ummunotify,
  type UmmunotifyEvent,
  type UmmunotifyOptions,
  type WaitOptions,
} from "./src/ummunotify/mod.ts";
