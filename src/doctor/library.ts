/**
 * The library, as the doctor loads it: only after the report has started, so
 * that a runtime without FFI (Deno without --allow-ffi, Node without koffi)
 * still gets a report saying so. Every verdict of the doctor comes from these
 * modules: the same probes the library itself runs.
 * @module
 */
import type { LibcFiles } from "./system.ts";

/** Loads the FFI and the modules whose probes the doctor runs; throws what the FFI threw. */
export async function loadLibrary() {
  const { runtime } = await import("../../ffi/platform.ts");
  const { libc, errno, cstring } = await import("../libc.ts");
  const { readBytes } = await import("../user_events/tracefs.ts");
  const m = await import("../../ffi/mman.ts");
  const { UserfaultFd } = await import("../userfaultfd/uffd.ts");
  const { FEATURE_BITS } = await import("../userfaultfd/features.ts");
  const { Ummunotify } = await import("../ummunotify/notifier.ts");
  const { diagnoseUserEvents } = await import("../user_events/diagnose.ts");
  const { openOutcome, paranoidMeaning, perfEventParanoid } = await import("../perf/open.ts");
  const { pmuNames } = await import("../perf/pmu.ts");
  const { encodeAttr } = await import("../perf/attr.ts");
  const { probeBranchTracing } = await import("../perf/branch_support.ts");
  const files: LibcFiles = {
    open: (path, flags) => libc.open(cstring(path), flags | m.O_CLOEXEC, 0),
    close: (fd) => void libc.close(fd),
    errno,
    readBytes,
    O_RDONLY: m.O_RDONLY,
    O_RDWR: m.O_RDWR,
  };
  return {
    arch: runtime.arch,
    runtime,
    libc,
    errno,
    files,
    UserfaultFd,
    FEATURE_BITS,
    Ummunotify,
    diagnoseUserEvents,
    perf: {
      openOutcome,
      encodeAttr,
      paranoidMeaning,
      perfEventParanoid,
      pmuNames,
      probeBranchTracing,
    },
  };
}

/** What {@link loadLibrary} gives. */
export type Library = Awaited<ReturnType<typeof loadLibrary>>;
