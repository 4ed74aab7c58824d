/**
 * ummunotify: invalidation events for registered ranges of this process and
 * a generation counter, on /dev/ummunotify or userfaultfd.
 * @module
 */
export { type U64Like, Ummunotify, type UmmunotifyOptions } from "./notifier.ts";
export type { BackendKind } from "./backend.ts";
export { type CounterHandle, GenerationCounter, type WaitOptions } from "./counter.ts";
export type { InvalidateEvent, LastEvent, UmmunotifyEvent } from "./events.ts";
export type { UffdBackendOptions } from "./uffd_backend.ts";
