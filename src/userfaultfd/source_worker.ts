/**
 * The Worker that runs module page sources (see source_link.ts): imports each
 * module, calls its init(options), then serves fills one at a time. It knows
 * nothing of userfaultfd and holds no fd: the handler copies what it wrote.
 */
import process from "node:process";
import { readlinkSync } from "node:fs";
import { announceLoaded, onWorkerMessage, postFromWorker } from "../worker.ts";
import type { PageSourceModule } from "./sources.ts";
import {
  LINK,
  LINK_DEAD,
  LINK_READY,
  LINK_STOP,
  MSG_BYTES,
  type SourceLinkInit,
} from "./source_link.ts";

/** The init message. */
export interface SourceWorkerInit {
  link: SourceLinkInit;
  modules: { url: string; options: unknown }[];
}

/** What the Worker says back once (then only the link is used). */
export type SourceWorkerMessage =
  | { type: "ready"; tid: number }
  | { type: "load-error"; url: string; message: string }
  | { type: "stray-error"; message: string };

const encoder = new TextEncoder();
const TWO32 = 2 ** 32;

// The user's code must not end this Worker by accident: an error thrown from
// a timer or an unhandled rejection is reported, not fatal (Deno would
// otherwise end the whole process).
const stray = (e: unknown) =>
  postFromWorker(
    {
      type: "stray-error",
      message: e instanceof Error ? e.message : String(e),
    } satisfies SourceWorkerMessage,
  );
process.on("uncaughtException", stray);
process.on("unhandledRejection", stray);
// A source that ends this Worker (process.exit, Deno.exit) must not leave the
// handler waiting for its deadline: say so on the way out.
let linkCtl: Int32Array | null = null;
process.on("exit", () => {
  if (linkCtl === null) return;
  Atomics.store(linkCtl, LINK.state, LINK_DEAD);
  Atomics.notify(linkCtl, LINK.done);
});

/** This thread's id, without FFI (this Worker loads none): /proc/thread-self is "<pid>/task/<tid>". */
function threadId(): number {
  try {
    return Number(readlinkSync("/proc/thread-self").split("/").pop());
  } catch {
    return 0;
  }
}

async function load(init: SourceWorkerInit): Promise<PageSourceModule[] | null> {
  const mods: PageSourceModule[] = [];
  for (const { url, options } of init.modules) {
    try {
      const mod = (await import(url)) as PageSourceModule;
      if (typeof mod.fill !== "function") {
        throw new Error("the module does not export a fill(offset, dest) function");
      }
      if (mod.init !== undefined && typeof mod.init !== "function") {
        throw new Error("the module's init export is not a function");
      }
      await mod.init?.(options);
      mods.push(mod);
    } catch (e) {
      postFromWorker(
        {
          type: "load-error",
          url,
          message: e instanceof Error ? e.message : String(e),
        } satisfies SourceWorkerMessage,
      );
      return null;
    }
  }
  return mods;
}

onWorkerMessage<SourceWorkerInit>(async (init) => {
  const ctl = new Int32Array(init.link.ctl);
  linkCtl = ctl;
  const data = new Uint8Array(init.link.data);
  const msg = new Uint8Array(init.link.msg);
  const mods = await load(init);
  if (mods === null) return;
  const tid = threadId();
  Atomics.store(ctl, LINK.tid, tid);
  Atomics.store(ctl, LINK.state, LINK_READY);
  postFromWorker({ type: "ready", tid } satisfies SourceWorkerMessage);
  // From 0, the request number of a new link: a request made before this
  // loop began (the handler may be faster) is then served, not missed.
  let seen = 0;
  for (;;) {
    // Asynchronously: the source's own timers and promises run between fills.
    const w = Atomics.waitAsync(ctl, LINK.req, seen);
    if (w.async) await w.value;
    const state = Atomics.load(ctl, LINK.state);
    if (state === LINK_STOP || state === LINK_DEAD) break;
    const seq = Atomics.load(ctl, LINK.req);
    if (seq === seen) continue;
    seen = seq;
    const offset = (Atomics.load(ctl, LINK.offsetLo) >>> 0) +
      (Atomics.load(ctl, LINK.offsetHi) >>> 0) * TWO32;
    const length = Atomics.load(ctl, LINK.length);
    const dest = data.subarray(0, length);
    dest.fill(0); // a fill that writes nothing serves zeros, never the previous page
    let status = 0;
    try {
      const r = mods[Atomics.load(ctl, LINK.module)].fill(offset, dest);
      if (r !== undefined && typeof (r as Promise<void>).then === "function") await r;
    } catch (e) {
      status = 1;
      const { written } = encoder.encodeInto(
        e instanceof Error ? e.message : String(e),
        msg.subarray(0, MSG_BYTES),
      );
      Atomics.store(ctl, LINK.msgLength, written);
    }
    Atomics.store(ctl, LINK.status, status);
    Atomics.store(ctl, LINK.done, seq);
    Atomics.notify(ctl, LINK.done);
  }
});

announceLoaded();
