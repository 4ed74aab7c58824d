/**
 * tracefs for tests, whatever state the machine is in (a fresh machine does
 * not mount it; the test VM does):
 *
 * - {@link ensureTracefs}: mounts tracefs on /sys/kernel/tracing for a test
 *   that needs it (as root), or says why it cannot (a skip reason).
 * - {@link runInMountNamespace}: runs a child process in a private mount
 *   namespace with tracefs unmounted (a fresh machine) or mounted, leaving
 *   the host's mounts untouched.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";

/** Where tracefs belongs (the kernel creates this folder when it has tracefs). */
export const TRACEFS = "/sys/kernel/tracing";

/** A reason to skip a test, for `test(name, { skip }, ...)`. */
export interface Skip {
  skip: string;
}

const isRoot = process.getuid?.() === 0;

/** Mount points of tracefs in this process's mount namespace. */
export function tracefsMountPoints(): string[] {
  return readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" "))
    .filter((f) => f[2] === "tracefs").map((f) => f[1]);
}

/** Where tracefs is usable (it has a `trace` file), as the library looks for it; null if nowhere. */
export function mountedTracefs(): string | null {
  return [TRACEFS, "/sys/kernel/debug/tracing"].find((d) => existsSync(`${d}/trace`)) ?? null;
}

/**
 * The tracefs root, mounting tracefs on /sys/kernel/tracing first if it is not
 * mounted (as root; the mount stays, as on any machine that mounts it at boot).
 * Returns a skip reason when it cannot be had here.
 */
export function ensureTracefs(): string | Skip {
  const found = mountedTracefs();
  if (found !== null) return found;
  if (!isRoot) return { skip: "tracefs is not mounted, and mounting it needs root" };
  if (!existsSync(TRACEFS)) {
    return { skip: `this kernel has no tracefs (no ${TRACEFS}: built without CONFIG_TRACING)` };
  }
  // Another test may be mounting it at this moment: mount under a lock, only if still unmounted.
  const script =
    `grep -q " ${TRACEFS} tracefs " /proc/self/mounts || mount -t tracefs nodev ${TRACEFS}`;
  const hasFlock = spawnSync("flock", ["--version"], { stdio: "ignore" }).status === 0;
  const r = hasFlock
    ? spawnSync("flock", ["/run/ummu-tracefs.lock", "sh", "-c", script], { encoding: "utf8" })
    : spawnSync("sh", ["-c", script], { encoding: "utf8" });
  if (r.status !== 0 || mountedTracefs() === null) {
    return {
      skip: `mounting tracefs failed: ${
        (r.stderr || r.error?.message || `status ${r.status}`).trim()
      }`,
    };
  }
  return mountedTracefs()!;
}

let namespaceProbe: string | null | undefined;
/** Why a private mount namespace cannot be made here, or null when it can. */
function namespaceUnavailable(): string | null {
  if (namespaceProbe !== undefined) return namespaceProbe;
  if (!isRoot) return (namespaceProbe = "needs root (a private mount namespace, umount, mount)");
  const r = spawnSync("unshare", ["--mount", "--propagation", "private", "true"], {
    encoding: "utf8",
  });
  namespaceProbe = r.status === 0
    ? null
    : `unshare --mount failed: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`;
  return namespaceProbe;
}

// Unmounts every tracefs mount, and debugfs (whose tracing/ folder would automount tracefs
// again on access, CONFIG_TRACEFS_AUTOMOUNT_DEPRECATED), innermost first.
const UNMOUNT_ALL = `
for fs in tracefs debugfs; do
  for i in 1 2 3 4 5 6 7 8; do
    m=$(awk -v fs="$fs" '$3 == fs { print $2 }' /proc/self/mounts | tail -n 1)
    [ -n "$m" ] || break
    umount -l "$m" || exit 97
  done
done`;
const MOUNT = `grep -q " ${TRACEFS} tracefs " /proc/self/mounts || ` +
  `mount -t tracefs nodev ${TRACEFS} || exit 98`;

/**
 * Runs `argv` in a private mount namespace where tracefs is `"unmounted"` (as
 * on a fresh machine; debugfs too) or `"mounted"` on /sys/kernel/tracing. The
 * host's mounts do not change. Returns the child's result, or a skip reason
 * when no namespace can be made here.
 */
export function runInMountNamespace(
  tracefs: "mounted" | "unmounted",
  argv: string[],
  options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): SpawnSyncReturns<string> | Skip {
  const why = namespaceUnavailable();
  if (why !== null) return { skip: why };
  if (tracefs === "mounted" && !existsSync(TRACEFS)) {
    return { skip: `this kernel has no tracefs (no ${TRACEFS})` };
  }
  const setup = tracefs === "unmounted" ? UNMOUNT_ALL : MOUNT;
  return spawnSync(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", `${setup}\nexec "$@"`, "sh", ...argv],
    {
      encoding: "utf8",
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 120_000,
    },
  );
}

/** True for a {@link Skip}. */
export function isSkip(x: unknown): x is Skip {
  return typeof x === "object" && x !== null && typeof (x as Skip).skip === "string" &&
    !("status" in x);
}
