/**
 * A page-fault handler for Firecracker snapshots restored with the Uffd
 * memory backend: run it, then load the snapshot with
 *   "mem_backend": { "backend_type": "Uffd", "backend_path": SOCKET }
 * Every VM that connects gets its guest memory served lazily from MEMFILE
 * (the snapshot's mem_file_path); pages a balloon removed come back as
 * zeros; a VM's session ends when its Firecracker exits. Ctrl-C stops it.
 *
 *   deno run -A examples/firecracker_handler.ts SOCKET MEMFILE [--readahead 16] [--allow-uid 123]
 *   bun examples/firecracker_handler.ts SOCKET MEMFILE
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { FirecrackerHandler } from "ummu";

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      readahead: { type: "string", default: "1" },
      "allow-uid": { type: "string", multiple: true },
    },
  });
  if (positionals.length !== 2) {
    console.error("usage: firecracker_handler SOCKET MEMFILE [--readahead N] [--allow-uid UID]...");
    process.exit(64);
  }
  const [socket, memoryFile] = positionals;
  const handler = FirecrackerHandler.listen(socket, {
    memoryFile,
    readahead: Number(values.readahead),
    allowUids: values["allow-uid"]?.map(Number),
    onSession: (s) =>
      console.log(
        `session: firecracker pid ${s.pid} (uid ${s.uid}), ${s.regions.length} regions, ` +
          `${s.regions.reduce((n, r) => n + r.size, 0) >> 20} MiB`,
      ),
    onSessionEnd: (e) =>
      console.log(
        `session end: pid ${e.pid} ${e.reason}: ${e.stats.faults} faults, ${e.stats.pages} pages, ` +
          `${e.stats.events} events, ${e.errors.length} errors`,
      ),
    onError: (e) => console.error(`refused: ${e.message}`),
  });
  console.log(`listening on ${handler.path}`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await handler.close();
  console.log("closed");
  // Deno ends a process that handled SIGTERM by that signal unless it exits itself.
  process.exit(0);
}

if (import.meta.main) await main();
