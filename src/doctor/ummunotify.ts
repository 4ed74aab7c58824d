/**
 * The doctor's ummunotify check: Ummunotify.open() itself, as a program would
 * call it (nothing registered; closed at once), then each backend alone to
 * say why the one not chosen was not.
 * @module
 */
import { PROJECT_URL } from "../errors.ts";
import { type DoctorContext, notProbed } from "./context.ts";
import type { DoctorCheck, DoctorStatus } from "./report.ts";
import { denial, showFact, type UnknownFact } from "./system.ts";
import type { UserfaultfdResult } from "./userfaultfd.ts";

const DEVICE = "/dev/ummunotify";
const DRIVER_URL = `${PROJECT_URL}/tree/main/kmod/ummunotify`;
/** errno names of opening the device that mean "no driver here" (the library then takes userfaultfd). */
const NO_DEVICE = ["ENOENT", "ENXIO", "ENODEV"];

/** The userfaultfd features the userfaultfd backend asks for (src/ummunotify/uffd_backend.ts). */
const BACKEND_FEATURES = ["EVENT_UNMAP", "EVENT_REMOVE", "EVENT_REMAP", "PAGEFAULT_FLAG_WP"];

type Opened =
  | { ok: true; backend: string }
  | { ok: false; code: string; call: string }
  | { ok: false; unknown: UnknownFact };

/** Runs the ummunotify check. */
export async function checkUmmunotify(
  ctx: DoctorContext,
  uffd: UserfaultfdResult,
): Promise<DoctorCheck> {
  const mode = ctx.sys.mode(DEVICE);
  const lib = ctx.lib;
  if (lib === null) {
    return notProbed(ctx, "ummunotify", [
      `${DEVICE}: ${showFact(mode, (m) => m ?? "absent")}`,
    ], { deviceMode: mode });
  }
  const open = async (backend?: "device" | "userfaultfd"): Promise<Opened> => {
    try {
      const un = await lib.Ummunotify.open(backend ? { backend } : {});
      const kind = un.backend;
      await un.close();
      return { ok: true, backend: kind };
    } catch (e) {
      const d = denial(e, "the userfaultfd backend's Worker to load");
      if (d) return { ok: false, unknown: d };
      const { code, call } = e as { code?: unknown; call?: unknown };
      return {
        ok: false,
        code: typeof code === "string" ? code : e instanceof Error ? e.message : String(e),
        call: typeof call === "string" ? call : "",
      };
    }
  };
  const describe = (o: Opened) =>
    o.ok ? "usable" : "unknown" in o ? `unknown (${o.unknown.unknown})` : `refused, ${o.code}`;
  const chosen = await open();
  const device: Opened = chosen.ok && chosen.backend === "device" ? chosen : await open("device");
  const deviceAbsent = !device.ok && "code" in device && NO_DEVICE.includes(device.code);
  // Without the device, Ummunotify.open() already tried the userfaultfd backend: its outcome is that one's.
  const backend: Opened = chosen.ok && chosen.backend === "userfaultfd"
    ? chosen
    : deviceAbsent
    ? chosen
    : await open("userfaultfd");
  const factOf = (o: Opened) => o.ok ? "ok" : "unknown" in o ? o.unknown : o.code;
  const facts: Record<string, unknown> = {
    backend: chosen.ok ? chosen.backend : "unknown" in chosen ? chosen.unknown : null,
    device: deviceAbsent ? null : { mode, open: factOf(device) },
    userfaultfdBackend: factOf(backend),
  };
  const details = [
    `${DEVICE}: ${
      deviceAbsent
        ? "absent (the ummunotify driver is not loaded)"
        : `${showFact(mode, (m) => m ?? "present")}, ${describe(device)}`
    }`,
    `userfaultfd backend (${BACKEND_FEATURES.join(", ")}): ${describe(backend)}`,
  ];
  const fixes: string[] = [];
  let status: DoctorStatus = "ok";
  let summary: string;
  if (chosen.ok) {
    summary = chosen.backend === "device"
      ? `usable through ${DEVICE} (the device backend)`
      : "usable through the userfaultfd backend (Ummunotify.open() picks it)";
  } else if ("unknown" in chosen) {
    status = "unknown";
    summary = `unknown: ${chosen.unknown.unknown}`;
  } else {
    status = "unavailable";
    summary = `Ummunotify.open() fails here: ${
      chosen.call ? `${chosen.call}: ` : ""
    }${chosen.code}`;
    if (!deviceAbsent && !device.ok) {
      fixes.push(
        `ummunotify: ${DEVICE} exists but this process cannot use it (${
          "code" in device ? device.code : "unknown"
        }): grant this user read access, or run as root${
          backend.ok ? '; or pass backend: "userfaultfd", which works here' : ""
        }`,
      );
    }
    if (deviceAbsent) {
      const lacking = uffd.full && BACKEND_FEATURES.filter((f) => !uffd.full!.features.includes(f));
      fixes.push(
        `ummunotify: load the ummunotify driver (${DRIVER_URL})${
          uffd.full === null
            ? ", or make userfaultfd fully usable (above)"
            : lacking?.length
            ? `; the userfaultfd backend needs ${lacking.join(", ")}, which this kernel lacks`
            : ""
        }`,
      );
    }
  }
  return { name: "ummunotify", status, summary, details, fixes, facts };
}
