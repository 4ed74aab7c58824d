/**
 * Page sources: where the bytes of a missing page come from. A source is
 * plain data (it crosses to the handler Worker by structured clone) and is
 * run inside that Worker, never on the thread that faulted.
 */

/** Fill with zeros (UFFDIO_ZEROPAGE: no copy at all). */
export interface ZeroSource {
  /** Discriminant. */
  kind: "zero";
}
/** Read the page from a file with pread(2), at `offset` + the page's offset in the range. */
export interface FileSource {
  /** Discriminant. */
  kind: "file";
  /** The file's path. */
  path: string;
  /** Where the range starts in the file (default 0). */
  offset?: number;
}
/** Copy the page straight out of a SharedArrayBuffer (UFFDIO_COPY from its address). */
export interface SharedSource {
  /** Discriminant. */
  kind: "shared";
  /** The bytes of the range. */
  buffer: SharedArrayBuffer;
  /** Where the range starts in the buffer (default 0). */
  offset?: number;
}
/**
 * A module of your own, imported inside the handler Worker. It exports
 * `fill(offset, dest)` (sync or async) and optionally `init(options)`.
 * `dest` is the staging memory for the pages, `offset` their offset in the range.
 */
export interface ModuleSource {
  /** Discriminant. */
  kind: "module";
  /** The module's URL (resolved inside the Worker: use an absolute URL). */
  url: string;
  /** Passed to the module's `init` (structured-cloned). */
  options?: unknown;
}
/** Where missing pages come from. */
export type PageSource = ZeroSource | FileSource | SharedSource | ModuleSource;

/** What a {@link ModuleSource} module exports. */
export interface PageSourceModule {
  /** Called once in the Worker, before the first fill, with the source's `options`. */
  init?(options: unknown): void | Promise<void>;
  /** Writes the bytes of the pages at `offset` in the range into `dest` (whole pages). */
  fill(offset: number, dest: Uint8Array): void | Promise<void>;
}

/** The constructors of {@link sources}. */
export interface PageSources {
  /** Zero-filled pages. */
  zero(): ZeroSource;
  /** Pages read from a file, from `offset` on. */
  file(path: string, offset?: number): FileSource;
  /** Pages copied from a SharedArrayBuffer (no intermediate copy), from `offset` on. */
  shared(buffer: SharedArrayBuffer, offset?: number): SharedSource;
  /** Pages copied from bytes given up front (copied once into shared memory). */
  bytes(bytes: Uint8Array): SharedSource;
  /** Pages produced by your module (imported inside the handler Worker), given `options` by its `init`. */
  module(url: string | URL, options?: unknown): ModuleSource;
}

/**
 * Constructors for page sources.
 * @example
 * ```ts
 * const lazy = await LazyMapping.create(1 << 20, { source: sources.file("data.bin") });
 * await lazy.close();
 * ```
 */
export const sources: PageSources = {
  /** Zero-filled pages. */
  zero(): ZeroSource {
    return { kind: "zero" };
  },
  /** Pages read from a file. */
  file(path: string, offset = 0): FileSource {
    return { kind: "file", path, offset };
  },
  /** Pages copied from a SharedArrayBuffer (no intermediate copy). */
  shared(buffer: SharedArrayBuffer, offset = 0): SharedSource {
    return { kind: "shared", buffer, offset };
  },
  /** Pages copied from bytes given up front (copied once into shared memory). */
  bytes(bytes: Uint8Array): SharedSource {
    const sab = new SharedArrayBuffer(bytes.byteLength);
    new Uint8Array(sab).set(bytes);
    return { kind: "shared", buffer: sab, offset: 0 };
  },
  /** Pages produced by your module (imported inside the handler Worker). */
  module(url: string | URL, options?: unknown): ModuleSource {
    return { kind: "module", url: String(url), options };
  },
};
