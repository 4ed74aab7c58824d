/**
 * How the doctor reads the machine. Through libc when the FFI loaded (the
 * library's own path: Deno's permissions do not gate it once --allow-ffi is
 * given), else through node:fs. A read the runtime itself refuses (Deno's
 * NotCapable) is an {@link UnknownFact} naming the flag to run with: the doctor
 * never turns "not allowed to look" into "absent".
 * @module
 */
import { closeSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { ERRNO_NAMES } from "../../ffi/errno.ts";

/** A fact the doctor was not allowed to read, and how to let it. */
export interface UnknownFact {
  /** Why it is unknown, e.g. `Deno did not allow reading /proc/self/status: run with -A`. */
  unknown: string;
}

/** A value, or why it is unknown. */
export type Fact<T> = T | UnknownFact;

/** True for an {@link UnknownFact}. */
export function isUnknown(x: unknown): x is UnknownFact {
  return typeof x === "object" && x !== null && typeof (x as UnknownFact).unknown === "string";
}

/** Reading a file: its text, the errno name the kernel answered, or unknown. */
export type ReadResult = { text: string } | { errno: string } | UnknownFact;
/** Opening a file: "ok" (it was closed at once), the errno name, or unknown. */
export type OpenResult = "ok" | string | UnknownFact;

/** The doctor's access to files; see {@link libcAccess} and {@link nodeAccess}. */
export interface SystemAccess {
  /** Which path reads go through. */
  readonly via: "libc" | "node:fs";
  /** The whole file. */
  read(path: string): ReadResult;
  /** The whole file, as bytes (for /proc/config.gz). */
  readBytes(path: string): { bytes: Uint8Array } | { errno: string } | UnknownFact;
  /** Can this process open it so ("r": read, "rw": read-write)? */
  open(path: string, access: "r" | "rw"): OpenResult;
  /** `crw------- 0:0`, null when absent (node:fs stat: libc has no stat here). */
  mode(path: string): Fact<string | null>;
  /** A folder's entries, sorted; null when absent (node:fs). */
  list(dir: string): Fact<string[] | null>;
}

/**
 * The runtime's refusal of an access it was not granted (Deno's NotCapable,
 * "run again with the --allow-read flag"), as an UnknownFact; null for any
 * other error.
 */
export function denial(e: unknown, what: string): UnknownFact | null {
  const err = e as { name?: unknown; message?: unknown } | null;
  const message = typeof err?.message === "string" ? err.message : String(e);
  const flag = /run again with the --allow-([a-z-]+) flag/.exec(message)?.[1];
  if (err?.name !== "NotCapable" && flag === undefined) return null;
  // -A, whatever flag Deno named: Deno 2 gates /proc, /sys and /dev behind --allow-all
  // even with --allow-read, so naming --allow-read would only lead to a second refusal.
  return { unknown: `Deno did not allow ${what}: run with -A` };
}

function errnoName(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : (e instanceof Error ? e.message : String(e));
}

function modeString(
  st: {
    mode: number;
    uid: number;
    gid: number;
    isCharacterDevice(): boolean;
    isDirectory(): boolean;
  },
): string {
  let s = st.isCharacterDevice() ? "c" : st.isDirectory() ? "d" : "-";
  for (let shift = 6; shift >= 0; shift -= 3) {
    const b = (st.mode >> shift) & 7;
    s += (b & 4 ? "r" : "-") + (b & 2 ? "w" : "-") + (b & 1 ? "x" : "-");
  }
  return `${s} ${st.uid}:${st.gid}`;
}

function nodeMode(path: string): Fact<string | null> {
  try {
    return modeString(statSync(path));
  } catch (e) {
    const d = denial(e, `stat of ${path}`);
    if (d) return d;
    if (errnoName(e) === "ENOENT") return null;
    return { unknown: `stat(${path}) failed: ${errnoName(e)}` };
  }
}

function nodeList(dir: string): Fact<string[] | null> {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    const d = denial(e, `listing ${dir}`);
    if (d) return d;
    if (errnoName(e) === "ENOENT") return null;
    return { unknown: `listing ${dir} failed: ${errnoName(e)}` };
  }
}

/** node:fs for everything: what the doctor has when the FFI did not load. */
export function nodeAccess(): SystemAccess {
  const readBytes = (path: string) => {
    try {
      return { bytes: new Uint8Array(readFileSync(path)) };
    } catch (e) {
      return denial(e, `reading ${path}`) ?? { errno: errnoName(e) };
    }
  };
  return {
    via: "node:fs",
    read(path) {
      const r = readBytes(path);
      return "bytes" in r ? { text: new TextDecoder().decode(r.bytes) } : r;
    },
    readBytes,
    open(path, access) {
      try {
        closeSync(openSync(path, access === "rw" ? "r+" : "r"));
        return "ok";
      } catch (e) {
        return denial(e, `opening ${path}`) ?? errnoName(e);
      }
    },
    mode: nodeMode,
    list: nodeList,
  };
}

/** The library's libc calls the doctor uses for files (loaded only when the FFI is). */
export interface LibcFiles {
  /** libc open(2): fd or -1. */
  open(path: string, flags: number): number;
  /** libc close(2). */
  close(fd: number): void;
  /** The calling thread's errno. */
  errno(): number;
  /** The whole file, read with read(2) (src/user_events/tracefs.ts); throws UmmuError. */
  readBytes(path: string): Uint8Array;
  /** O_RDONLY and O_RDWR. */
  O_RDONLY: number;
  O_RDWR: number;
}

/** libc for reads and opens (as the library reads tracefs), node:fs for stat and folder listings. */
export function libcAccess(files: LibcFiles): SystemAccess {
  const readBytes = (path: string) => {
    try {
      return { bytes: files.readBytes(path) };
    } catch (e) {
      return { errno: errnoName(e) };
    }
  };
  return {
    via: "libc",
    read(path) {
      const r = readBytes(path);
      return "bytes" in r ? { text: new TextDecoder().decode(r.bytes) } : r;
    },
    readBytes,
    open(path, access) {
      const fd = files.open(path, access === "rw" ? files.O_RDWR : files.O_RDONLY);
      if (fd < 0) {
        const e = files.errno();
        return ERRNO_NAMES[e] ?? `errno ${e}`;
      }
      files.close(fd);
      return "ok";
    },
    mode: nodeMode,
    list: nodeList,
  };
}

/** A file's text, trimmed; null when it does not exist; unknown when it could not be read. */
export function readFact(sys: SystemAccess, path: string): Fact<string | null> {
  const r = sys.read(path);
  if ("text" in r) return r.text.trim();
  if (isUnknown(r)) return r;
  if (r.errno === "ENOENT") return null;
  return { unknown: `reading ${path} failed: ${r.errno}` };
}

/** A numeric file (a sysctl): its number, null when absent, or unknown. */
export function readNumber(sys: SystemAccess, path: string): Fact<number | null> {
  const t = readFact(sys, path);
  if (t === null || isUnknown(t)) return t;
  const n = Number(t);
  return Number.isFinite(n) ? n : { unknown: `${path} holds ${JSON.stringify(t)}, not a number` };
}

/** The running kernel's build configuration (`CONFIG_X` lookups). */
export interface KernelConfig {
  /** Where it was read: /proc/config.gz or /boot/config-RELEASE. */
  source: string;
  /** "y", "m", a value, "n" for `# CONFIG_X is not set`, or null when the option is not listed. */
  get(name: string): string | null;
}

/** /proc/config.gz (CONFIG_IKCONFIG_PROC), else /boot/config-RELEASE; null when neither exists. */
export function kernelConfig(
  sys: SystemAccess,
  release: Fact<string | null>,
): Fact<KernelConfig | null> {
  let text: string | null = null;
  let source = "/proc/config.gz";
  const gz = sys.readBytes(source);
  if (isUnknown(gz)) return gz;
  if ("bytes" in gz) {
    try {
      text = new TextDecoder().decode(gunzipSync(gz.bytes));
    } catch (e) {
      return { unknown: `/proc/config.gz could not be decompressed: ${errnoName(e)}` };
    }
  } else if (typeof release === "string") {
    source = `/boot/config-${release}`;
    const t = readFact(sys, source);
    if (isUnknown(t)) return t;
    text = t;
  }
  if (text === null) return null;
  const cfg = text;
  return {
    source,
    get(name) {
      const m = new RegExp(`^${name}=(.*)$`, "m").exec(cfg);
      if (m) return m[1];
      return new RegExp(`^# ${name} is not set$`, "m").test(cfg) ? "n" : null;
    },
  };
}

/** A CONFIG_ option's value as a fact: the value, "n", null (not listed or no config), or unknown. */
export function configFact(config: Fact<KernelConfig | null>, name: string): Fact<string | null> {
  if (config === null) return null;
  if (isUnknown(config)) return config;
  return config.get(name);
}

const CAPABILITIES: Record<number, string> = {
  19: "CAP_SYS_PTRACE",
  21: "CAP_SYS_ADMIN",
  38: "CAP_PERFMON",
};

/** Who this process is, from /proc/self/status. */
export interface Identity {
  /** The effective uid. */
  uid: Fact<number>;
  /** The capabilities that matter to ummu (CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON) it has. */
  capabilities: Fact<string[]>;
  /** Seccomp mode: 0 none, 1 strict, 2 a filter (which may refuse userfaultfd or perf_event_open). */
  seccomp: Fact<number | null>;
}

/** Reads {@link Identity} from /proc/self/status. */
export function identity(sys: SystemAccess): Identity {
  const status = readFact(sys, "/proc/self/status");
  if (status === null) {
    const u = { unknown: "/proc/self/status does not exist (is /proc mounted?)" };
    return { uid: u, capabilities: u, seccomp: u };
  }
  if (isUnknown(status)) return { uid: status, capabilities: status, seccomp: status };
  const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1];
  const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(status)?.[1];
  const seccomp = /^Seccomp:\s+(\d+)/m.exec(status)?.[1];
  const caps = capEff === undefined ? null : BigInt(`0x${capEff}`);
  return {
    uid: uid === undefined ? { unknown: "no Uid line in /proc/self/status" } : Number(uid),
    capabilities: caps === null
      ? { unknown: "no CapEff line in /proc/self/status" }
      : Object.entries(CAPABILITIES).filter(([bit]) => caps & (1n << BigInt(bit))).map(([, n]) =>
        n
      ),
    seccomp: seccomp === undefined ? null : Number(seccomp),
  };
}

/** Renders a fact for the table: the value through `show`, or "unknown (…)". */
export function showFact<T>(fact: Fact<T>, show: (value: T) => string): string {
  return isUnknown(fact) ? `unknown (${fact.unknown})` : show(fact);
}
