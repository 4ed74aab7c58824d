/**
 * Microsoft's EventEnumerator (libeventheader-decode-cpp, from the
 * LinuxTracepoints source in ../shared/tools/linuxtracepoints) judging the
 * metadata ummu writes, on the host: for every event of the catalogue
 * (tests/fixtures/user_events_eventheader_catalogue.ts), the provider name,
 * the options (provider group), the event name with its attributes, the
 * header flags, version, id, tag, opcode, level, keyword and activity ids it
 * reads, and, item by item, each field's name (with attributes), encoding,
 * format, tag, array kind and element count, and the struct nesting. The VM
 * test tests/kernel/eventheader_perf_decode.test.ts runs the same judge on
 * the events as the kernel delivered them, besides perf-collect/perf-decode.
 *
 * Needs g++ and xz (apt-get install g++ xz-utils) to build the enumerator
 * from the source tarball (about a second); skips with the reason otherwise.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventHeaderEncoder, tracepointName } from "../src/user_events/eventheader.ts";
import { catalogue } from "./fixtures/user_events_eventheader_catalogue.ts";
import {
  buildEnumerator,
  enumerate,
  enumeratorSkip,
  judgeEvent,
} from "./fixtures/user_events_eventheader_enumerator.ts";

test(
  "Microsoft's EventEnumerator reads every catalogue event's names, attributes, group, flags, header and each field's encoding, format, tag and arrays as defined",
  { skip: enumeratorSkip() },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "ummu-enumerator-"));
    try {
      const exe = buildEnumerator(dir);
      const cat = catalogue("ummu_");
      const input = cat.events.map((ev) => {
        const p = cat.providers[ev.provider];
        const enc = new EventHeaderEncoder(ev.def);
        if (ev.activity) enc.setActivity(ev.activity[0], ev.activity[1]);
        return {
          tracepoint: tracepointName(p.name, enc.level, enc.keyword, p.group ? `G${p.group}` : ""),
          event: enc.bytes(ev.values),
        };
      });
      const got = enumerate(exe, dir, input);
      assert.equal(got.length, cat.events.length);
      let items = 0;
      cat.events.forEach((ev, k) => {
        items += judgeEvent(got[k], ev, input[k].tracepoint, cat.providers[ev.provider]);
      });
      assert.ok(items > 600, `${items} items compared`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
