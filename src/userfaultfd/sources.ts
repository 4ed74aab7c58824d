/**
 * Page sources: where the bytes of a missing page come from. A source is
 * plain data (it crosses to the handler Worker by structured clone) and is
 * run inside a library Worker, never on the thread that faulted. The
 * constructors check their arguments; FaultHandler checks a source again
 * (a literal object may not have come from them).
 */
import { pathToFileURL } from "node:url";
import * as v from "../validate.ts";

/** Fill with zeros (UFFDIO_ZEROPAGE: no copy at all). */
export interface ZeroSource {
  /** Discriminant. */
  kind: "zero";
}
/** The page from a file, at `offset` + the page's offset in the range: a regular file is mapped read-only and copied from by UFFDIO_COPY (pread(2) past its mapped size). */
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
 * A module of your own, imported inside a Worker of its own. It exports
 * `fill(offset, dest)` (sync or async) and optionally `init(options)`.
 * `dest` is a zeroed buffer for the pages, `offset` their offset in the range.
 * A fill must finish within the handler's `sourceTimeoutMs`.
 */
export interface ModuleSource {
  /** Discriminant. */
  kind: "module";
  /** The module's absolute URL (file:, data:, https:...). */
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
  /**
   * Pages produced by your module (imported in a Worker), given `options` by
   * its `init`. `url`: a URL (`new URL("./my_source.ts", import.meta.url)`),
   * an absolute URL string, or an absolute path; a relative string is refused
   * (relative to what? the library cannot know your module's location).
   */
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
    return { kind: "file", path: v.string("file source path", path), offset: sourceOffset(offset) };
  },
  /** Pages copied from a SharedArrayBuffer (no intermediate copy). */
  shared(buffer: SharedArrayBuffer, offset = 0): SharedSource {
    if (!(buffer instanceof SharedArrayBuffer)) {
      v.invalid(
        "shared source buffer",
        buffer,
        "a SharedArrayBuffer (copy bytes with sources.bytes())",
      );
    }
    return {
      kind: "shared",
      buffer,
      offset: v.integer("shared source offset", offset, 0, buffer.byteLength),
    };
  },
  /** Pages copied from bytes given up front (copied once into shared memory). */
  bytes(bytes: Uint8Array): SharedSource {
    if (!(bytes instanceof Uint8Array)) v.invalid("bytes source", bytes, "a Uint8Array");
    const sab = new SharedArrayBuffer(bytes.byteLength);
    new Uint8Array(sab).set(bytes);
    return { kind: "shared", buffer: sab, offset: 0 };
  },
  /** Pages produced by your module (imported in a Worker of its own). */
  module(url: string | URL, options?: unknown): ModuleSource {
    return { kind: "module", url: moduleUrl(url), options: cloneable(options) };
  },
};

function sourceOffset(offset: unknown): number {
  return v.integer("file source offset", offset, 0, Number.MAX_SAFE_INTEGER);
}

/** An absolute module URL, from a URL, an absolute URL string or an absolute path. */
export function moduleUrl(url: unknown): string {
  if (url instanceof URL) return url.href;
  if (typeof url !== "string" || url === "") {
    return v.invalid("module source url", url, "a URL or an absolute URL string or path");
  }
  if (url.startsWith("/")) return pathToFileURL(url).href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) && URL.canParse(url)) return url;
  return v.invalid(
    "module source url",
    url,
    `an absolute URL or path; for a module beside yours pass new URL(${
      JSON.stringify(url)
    }, import.meta.url)`,
  );
}

/** `options` as it will reach the module's init(): structured-cloneable, or an argument error. */
export function cloneable(options: unknown): unknown {
  try {
    structuredClone(options);
  } catch (e) {
    v.invalid(
      "module source options",
      options,
      `structured-cloneable (it crosses to a Worker): ${e instanceof Error ? e.message : e}`,
    );
  }
  return options;
}
