#!/usr/bin/env node
// The npm build (`npm run build:npm`): what dnt does, with tsc from npm.
//
// 1. Stages the sources in .cache/npm-build/stage/, with ffi/platform.ts
//    replaced by one that imports `#platform`: package.json maps it by the
//    `deno`, `bun`, `node` and `default` conditions to ffi/deno.js,
//    ffi/bun.js, ffi/node.js (koffi) and ffi/unsupported.js, so each runtime
//    (and each of the library's Workers, which load the same modules) resolves
//    only its own adapter: Bun never loads koffi, Node never loads bun:ffi.
// 2. Type-checks and emits ESM .js and .d.ts with tsc (relative `.ts` imports
//    rewritten by rewriteRelativeImportExtensions; Worker module URLs,
//    `new URL("./x.ts", import.meta.url)`, rewritten here).
//    Declarations leave out what is marked `@internal` (stripInternal).
// 3. Writes npm/: esm/, examples/ (examples/*.ts compiled against the package:
//    they import it by name, which resolves to the package itself), package.json
//    (exports for `.` and each sub-entry, the `ummu` bin, koffi as an optional
//    peer dependency), README, CHANGELOG, LICENSE.
// 4. Compiles the tests (tests/*.test.ts, tests/kernel/*.test.ts, their helpers and fixtures) into
//    .cache/npm-build/tests/, their imports rewritten to the package: `../mod.ts`
//    becomes the package name, sub-entries their subpath, and internal modules
//    a path into node_modules/<name>/esm/ of the project that installs it
//    (scripts/test_npm.mjs runs them there).
//
//   node scripts/build_npm.mjs [--no-tests]
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const work = join(repo, ".cache", "npm-build");
const stage = join(work, "stage");
const out = join(work, "out");
const testsOut = join(work, "tests");
const npmDir = join(repo, "npm");
const withTests = !process.argv.includes("--no-tests");

const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
const denoJson = JSON.parse(readFileSync(join(repo, "deno.json"), "utf8"));
const NAME = pkg.name;
const VERSION = denoJson.version ?? pkg.version;

const toPosix = (p) => p.split(sep).join("/");
const log = (s) => console.log(`build:npm: ${s}`);

function walk(dir, filter = () => true) {
  const found = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) found.push(...walk(p, filter));
    else if (filter(p)) found.push(p);
  }
  return found;
}

// ---------------------------------------------------------------- 1. stage
rmSync(work, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
const isTs = (p) => p.endsWith(".ts") && !p.endsWith(".d.ts");
for (const dir of ["ffi", "src", "bin"]) {
  if (existsSync(join(repo, dir))) {
    cpSync(join(repo, dir), join(stage, dir), {
      recursive: true,
      filter: (p) => statSync(p).isDirectory() || isTs(p),
    });
  }
}
cpSync(join(repo, "mod.ts"), join(stage, "mod.ts"));
cpSync(join(repo, "examples"), join(stage, "examples"), {
  recursive: true,
  filter: (p) => statSync(p).isDirectory() || isTs(p),
});
if (withTests) {
  cpSync(join(repo, "tests"), join(stage, "tests"), {
    recursive: true,
    filter: (p) => {
      const rel = toPosix(relative(join(repo, "tests"), p));
      if (rel.startsWith("vm") || rel.startsWith(".out")) return false;
      return statSync(p).isDirectory() || isTs(p);
    },
  });
}
cpSync(join(repo, "scripts", "npm_shims.d.ts"), join(stage, "npm_shims.d.ts"));

writeFileSync(
  join(stage, "ffi", "platform.ts"),
  `/**
 * Picks the adapter for the running runtime: \`#platform\` is mapped in
 * package.json by the \`deno\`, \`bun\` and \`node\` conditions, so each runtime
 * (and each Worker) loads only its own adapter.
 * @module
 */
import type { RuntimeAdapter } from "./runtime.ts";
// @ts-ignore: resolved by package.json "imports" at run time
import { adapter } from "#platform";

/** The adapter of the running runtime. */
export const runtime: RuntimeAdapter = adapter;
`,
);
writeFileSync(
  join(stage, "ffi", "unsupported.ts"),
  `/**
 * The adapter for runtimes that match none of the \`deno\`, \`bun\` and \`node\`
 * conditions (browsers, other engines): ummu calls libc, which they cannot.
 * @module
 */
import type { RuntimeAdapter } from "./runtime.ts";

throw new Error("ummu: unsupported runtime: it calls libc through FFI and needs Deno, Bun or Node (with koffi) on Linux");

/** Never reached. */
export const adapter: RuntimeAdapter = undefined as unknown as RuntimeAdapter;
`,
);

// Entry points: the module, every src/*/mod.ts sub-entry, the doctor, the CLI.
const subEntries = readdirSync(join(stage, "src"), { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(stage, "src", e.name, "mod.ts")))
  .map((e) => e.name)
  .sort();
const entries = { ".": "mod.ts" };
for (const s of subEntries) entries[`./${s}`] = `src/${s}/mod.ts`;
if (existsSync(join(stage, "src", "doctor.ts"))) entries["./doctor"] = "src/doctor.ts";
const binFile = existsSync(join(stage, "bin", "ummu.ts")) ? "bin/ummu.ts" : null;

// Worker modules and other modules named by `new URL("./x.ts", import.meta.url)`.
const URL_TS = /new URL\(\s*(["'`])(\.{1,2}\/[^"'`]+?)\.ts\1\s*,\s*import\.meta\.url\s*\)/g;
function urlTargets(file) {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(URL_TS)].map((m) => join(dirname(file), `${m[2]}.ts`)).filter((p) =>
    existsSync(p)
  );
}
// The examples import the package by its name (`ummu`, `ummu/user_events`):
// tsc resolves the names to the staged entries (paths below), the emitted
// JavaScript keeps them, and the installed package resolves them to itself.
const exampleFiles = readdirSync(join(stage, "examples")).filter(isTs).sort()
  .map((f) => `examples/${f}`);
const packagePaths = Object.fromEntries(
  Object.entries(entries).map((
    [sub, f],
  ) => [sub === "." ? NAME : `${NAME}/${sub.slice(2)}`, [join(stage, f)]]),
);
const roots = new Set(
  [
    ...Object.values(entries),
    ...exampleFiles,
    ...(binFile ? [binFile] : []),
    "ffi/deno.ts",
    "ffi/bun.ts",
    "ffi/node.ts",
    "ffi/unsupported.ts",
  ].map((f) => join(stage, f)),
);
// The tests: host tests and the kernel tests (tests/kernel/, for the VM), but
// those that test the repository rather than the package: tests/abi*.test.ts
// check the ffi/ sources against the kernel's headers, tests/readme*.test.ts
// and tests/packaging*.test.ts the README and the manifests (scripts/test_npm.mjs
// runs the README's snippets and commands against the installed package itself).
const REPOSITORY_TESTS = /^(abi|readme|packaging)(_[\w-]+)?\.test\.ts$/;
const testFiles = (dir) =>
  existsSync(join(stage, dir))
    ? readdirSync(join(stage, dir)).filter((f) =>
      f.endsWith(".test.ts") && !REPOSITORY_TESTS.test(f)
    )
      .map((f) => join(stage, dir, f))
    : [];
const testRoots = new Set(withTests ? [...testFiles("tests"), ...testFiles("tests/kernel")] : []);
// URL targets (Worker modules, fixtures) of any staged module, library or
// test, become roots of the same program: a module the roots import may name one.
for (const f of walk(stage, isTs)) {
  const set = toPosix(relative(stage, f)).startsWith("tests/") ? testRoots : roots;
  if (set === testRoots && !withTests) continue;
  for (const t of urlTargets(f)) set.add(t);
}

// ---------------------------------------------------------------- 2. tsc
const options = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.es2024.d.ts", "lib.dom.d.ts"],
  types: ["node"],
  typeRoots: [join(repo, "node_modules", "@types")],
  strict: true,
  skipLibCheck: true,
  declaration: true,
  stripInternal: true,
  allowImportingTsExtensions: true,
  rewriteRelativeImportExtensions: true,
  rootDir: stage,
  outDir: out,
  newLine: ts.NewLineKind.LineFeed,
  noEmitOnError: true,
  paths: { "#platform": [join(stage, "ffi", "node.ts")], ...packagePaths },
};
const program = ts.createProgram([...roots, join(stage, "npm_shims.d.ts")], options);
// stripInternal drops an `@internal` constructor from the declarations, which
// leaves the class with an implicit public one: users could `new` a class the
// library alone constructs. Declare such a constructor private instead.
function privateInternalConstructors() {
  const isInternal = (node) => ts.getJSDocTags(node).some((t) => t.tagName.text === "internal");
  return (context) => (root) => {
    const f = context.factory;
    const visit = (node) => {
      if (!ts.isClassDeclaration(node)) return ts.visitEachChild(node, visit, context);
      const source = ts.getOriginalNode(node);
      const internalCtor = ts.isClassDeclaration(source) &&
        source.members.some((m) => ts.isConstructorDeclaration(m) && isInternal(m));
      if (!internalCtor || node.members.some(ts.isConstructorDeclaration)) return node;
      const ctor = f.createConstructorDeclaration(
        [f.createModifier(ts.SyntaxKind.PrivateKeyword)],
        [],
        undefined,
      );
      const at = node.members.findIndex((m) => !ts.isPropertyDeclaration(m));
      const members = [...node.members];
      members.splice(at < 0 ? members.length : at, 0, ctor);
      return f.updateClassDeclaration(
        node,
        node.modifiers,
        node.name,
        node.typeParameters,
        node.heritageClauses,
        members,
      );
    };
    return ts.visitNode(root, visit);
  };
}
const emitted = program.emit(undefined, undefined, undefined, false, {
  afterDeclarations: [privateInternalConstructors()],
});
const diagnostics = ts.getPreEmitDiagnostics(program).concat(emitted.diagnostics);
// The tests are emitted by a second program without type checking (`npm test`
// type-checks them with deno check); only its tests/ output is used.
if (diagnostics.length === 0 && testRoots.size > 0) {
  const testOptions = {
    ...options,
    noCheck: true,
    declaration: false,
    noEmitOnError: false,
    outDir: join(work, "out-tests"),
  };
  const testProgram = ts.createProgram([...testRoots, join(stage, "npm_shims.d.ts")], testOptions);
  diagnostics.push(...testProgram.emit().diagnostics);
  cpSync(join(work, "out-tests", "tests"), join(out, "tests"), { recursive: true });
}
if (diagnostics.length > 0) {
  const host = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => stage,
    getNewLine: () => "\n",
  };
  console.error(ts.formatDiagnostics(diagnostics, host));
  console.error(`build:npm: tsc found ${diagnostics.length} problem(s); nothing written to npm/`);
  process.exit(1);
}

// Worker URLs: ./x.ts -> ./x.js in the emitted JavaScript. Declarations keep
// the sources' `.ts` specifiers (tsc rewrites only JavaScript): make them `.js`.
const DTS_SPEC = /(\bfrom\s*|\bimport\s*\(\s*)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g;
for (const f of walk(out, (p) => p.endsWith(".js") || p.endsWith(".d.ts"))) {
  const text = readFileSync(f, "utf8");
  const fixed = f.endsWith(".d.ts")
    ? text.replace(DTS_SPEC, (_m, lead, q, path) => `${lead}${q}${path}.js${q}`)
    : text.replace(URL_TS, (_m, q, path) => `new URL(${q}${path}.js${q}, import.meta.url)`);
  if (fixed !== text) writeFileSync(f, fixed);
}

// ---------------------------------------------------------------- 3. npm/
rmSync(npmDir, { recursive: true, force: true });
mkdirSync(join(npmDir, "esm"), { recursive: true });
for (const f of walk(out)) {
  const rel = toPosix(relative(out, f));
  if (rel.startsWith("tests/") || rel.startsWith("examples/")) continue;
  if (rel === "npm_shims.js" || rel === "npm_shims.d.ts") continue;
  const dest = join(npmDir, "esm", rel);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(f, dest);
}
// The examples, as npm/examples/*.js: `node node_modules/ummu/examples/x.js`.
// A relative import that leaves examples/ (an internal module, not the
// package's public API) points into esm/. Node before 22.18 has no
// import.meta.main, which the examples test to run when started directly:
// a prologue sets it there.
const MAIN_PROLOGUE =
  `// Node before 22.18 has no import.meta.main: true when Node was started with this file.
import { realpathSync as ummuExampleRealpath } from "node:fs";
import ummuExampleProcess from "node:process";
import.meta.main ??= ummuExampleProcess.argv[1] !== undefined &&
  ummuExampleRealpath(ummuExampleProcess.argv[1]) === import.meta.filename;
`;
const EXAMPLE_SPEC = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.\.\/[^"']*)\2/g;
mkdirSync(join(npmDir, "examples"), { recursive: true });
for (const f of exampleFiles) {
  const name = posix.basename(f, ".ts");
  let text = readFileSync(join(out, "examples", `${name}.js`), "utf8").replace(
    EXAMPLE_SPEC,
    (_m, lead, q, spec) => `${lead}${q}../esm/${spec.slice(3)}${q}`,
  );
  if (text.includes("import.meta.main")) text = MAIN_PROLOGUE + text;
  writeFileSync(join(npmDir, "examples", `${name}.js`), text);
}
const js = (f) => `./esm/${f.replace(/\.ts$/, ".js")}`;
const dts = (f) => `./esm/${f.replace(/\.ts$/, ".d.ts")}`;
const exportsMap = {};
for (const [sub, f] of Object.entries(entries)) exportsMap[sub] = { types: dts(f), default: js(f) };
exportsMap["./package.json"] = "./package.json";
if (binFile) chmodSync(join(npmDir, js(binFile)), 0o755);

// ummu/otel's OpenTelemetry packages: optional peers (only that entry imports
// them), at the ranges the repository develops and tests against.
const otelPeers = Object.fromEntries(
  Object.entries(pkg.devDependencies ?? {}).filter(([p]) => p.startsWith("@opentelemetry/")),
);

const manifest = {
  name: NAME,
  version: VERSION,
  description: pkg.description,
  keywords: [
    "userfaultfd",
    "ummunotify",
    "user_events",
    "ffi",
    "linux",
    "page-fault",
    "tracepoints",
    "deno",
    "bun",
    "node",
    "koffi",
  ],
  license: pkg.license,
  type: "module",
  ...(pkg.repository ? { repository: pkg.repository } : {}),
  ...(pkg.homepage ? { homepage: pkg.homepage } : {}),
  ...(pkg.bugs ? { bugs: pkg.bugs } : {}),
  exports: exportsMap,
  imports: {
    "#platform": {
      deno: "./esm/ffi/deno.js",
      bun: "./esm/ffi/bun.js",
      node: "./esm/ffi/node.js",
      default: "./esm/ffi/unsupported.js",
    },
  },
  ...(binFile ? { bin: { ummu: js(binFile) } } : {}),
  files: ["esm/", "examples/", "README.md", "CHANGELOG.md", "LICENSE"],
  engines: { node: ">=20" },
  os: ["linux"],
  cpu: ["x64", "arm64"],
  peerDependencies: { koffi: "^3.3.0", ...otelPeers },
  peerDependenciesMeta: Object.fromEntries(
    ["koffi", ...Object.keys(otelPeers)].map((p) => [p, { optional: true }]),
  ),
};
writeFileSync(join(npmDir, "package.json"), JSON.stringify(manifest, null, 2) + "\n");
for (const f of ["README.md", "CHANGELOG.md", "LICENSE"]) {
  if (existsSync(join(repo, f))) cpSync(join(repo, f), join(npmDir, f));
}
log(
  `npm/: ${NAME}@${VERSION}, entries ${Object.keys(entries).join(" ")}${
    binFile ? ", bin ummu" : ""
  }, ${exampleFiles.length} examples`,
);

// ---------------------------------------------------------------- 4. tests
if (withTests) {
  mkdirSync(testsOut, { recursive: true });
  const entryOf = new Map(
    Object.entries(entries).map(([sub, f]) => [f.replace(/\.ts$/, ".js"), sub]),
  );
  // Rewrites one specifier of a compiled test file that points outside tests/.
  const rewrite = (fileRel, spec) => {
    if (!spec.startsWith(".")) return spec;
    const target = posix.normalize(posix.join(posix.dirname(fileRel), spec));
    if (target.startsWith("tests/") || target === "tests") return spec;
    const sub = entryOf.get(target);
    if (sub !== undefined) return sub === "." ? NAME : `${NAME}/${sub.slice(2)}`;
    // Internal modules: a path into the installed package (exports does not list them).
    const up = posix.relative(posix.dirname(fileRel), "");
    return `${up ? up + "/" : ""}node_modules/${NAME}/esm/${target}`;
  };
  const SPEC = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)(["'])(\.{1,2}\/[^"']*)\2/g;
  for (const f of walk(join(out, "tests"), (p) => p.endsWith(".js"))) {
    const rel = toPosix(relative(out, f)); // tests/x.js, tests/fixtures/y.js
    const text = readFileSync(f, "utf8").replace(
      SPEC,
      (_m, lead, q, spec) => `${lead}${q}${rewrite(rel, spec)}${q}`,
    );
    const dest = join(testsOut, relative(join(out, "tests"), f));
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, text);
  }
  // The C and C++ fixtures the tests compile at run time (peers, guests), beside the compiled tests.
  // And the recordings from real hardware (tests/fixtures/perf-golden, with their LICENSE).
  for (
    const f of walk(join(repo, "tests", "fixtures"), (p) => /\.(c|cpp)$|perf-golden\//.test(p))
  ) {
    cpSync(f, join(testsOut, "fixtures", relative(join(repo, "tests", "fixtures"), f)));
  }
  log(
    `tests: ${walk(testsOut, (p) => p.endsWith(".test.js")).length} test files in ${
      toPosix(relative(repo, testsOut))
    }/`,
  );
}
