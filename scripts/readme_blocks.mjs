// The fenced code blocks of README.md and what the tests do with each, for
// tests/readme.test.ts (the repository: Deno and Bun) and scripts/test_npm.mjs
// (the installed package: Node, Bun, Deno).
//
// Every ```ts and ```sh block is preceded by a directive (only blank lines between):
//
//   <!-- readme-test: run [files=a,b] [runtimes=deno,bun] [vm][: why not elsewhere] -->
//       ts: a complete program, type-checked, and run on the runtimes listed
//       (default all three). `files=` names files the program reads, which the
//       test creates (empty, 64 MiB, sparse) in its working directory; `vm`:
//       it needs user_events, and runs in the test VM where this kernel lacks it.
//   <!-- readme-test: file NAME -->
//       ts: a module the programs import (`NAME`, beside them): type-checked, not run.
//   <!-- readme-test: check: why it is not run -->
//       ts: type-checked only.
//   <!-- readme-test: run in=package|repo [exit=0,16] -->
//       sh: each line is run (`sh -c`), in a project that installed the package
//       (scripts/test_npm.mjs) or in the repository (tests/readme.test.ts), and
//       must exit with one of the statuses listed (default 0).
//   <!-- readme-test: not-run: why, and what runs it instead -->
//       sh: not run by a test.
//
// Blocks of other languages, and unlabelled ones (output), take no directive.

const FENCE = /^```(\S*)\s*$/;
const DIRECTIVE = /^<!--\s*readme-test:\s*([\s\S]*?)\s*-->$/;

/**
 * @typedef {object} Directive
 * @property {"run" | "file" | "check" | "not-run"} mode
 * @property {string} reason  the text after the first ": " (why not run, or not everywhere)
 * @property {string[]} files  files=... (run)
 * @property {string[] | null} runtimes  runtimes=... (run; null: all three)
 * @property {boolean} vm  needs user_events: the test VM runs it where this kernel lacks it
 * @property {"package" | "repo" | null} in  in=... (sh run)
 * @property {number[]} exit  exit=... (sh run; default [0])
 * @property {string | null} name  the file name (file)
 */

/**
 * @typedef {object} Block
 * @property {string} lang  "ts", "sh", ...
 * @property {number} line  1-based line of the opening fence
 * @property {string} code
 * @property {Directive | null} directive
 * @property {string | null} error  what is wrong with the directive (null: nothing)
 */

/**
 * Parses a directive's text ("run in=package exit=0,16: why").
 * @param {string} text
 * @returns {Directive}
 */
export function parseDirective(text) {
  const colon = text.search(/:\s/);
  const head = (colon < 0 ? text : text.slice(0, colon)).trim().split(/\s+/);
  const reason = colon < 0 ? "" : text.slice(colon + 1).trim();
  const mode = /** @type {Directive["mode"]} */ (head[0]);
  /** @type {Directive} */
  const d = { mode, reason, files: [], runtimes: null, vm: false, in: null, exit: [0], name: null };
  for (const word of head.slice(1)) {
    const [key, value] = word.split("=");
    if (key === "files") d.files = value.split(",");
    else if (key === "runtimes") d.runtimes = value.split(",");
    else if (key === "vm" && value === undefined) d.vm = true;
    else if (key === "in") d.in = /** @type {"package" | "repo"} */ (value);
    else if (key === "exit") d.exit = value.split(",").map(Number);
    else if (mode === "file" && value === undefined && d.name === null) d.name = key;
    else throw new Error(`unknown word "${word}"`);
  }
  return d;
}

/**
 * What is wrong with a block's directive, or null.
 * @param {string} lang
 * @param {Directive | null} d
 * @returns {string | null}
 */
function check(lang, d) {
  if (d === null) return `a \`\`\`${lang} block needs a <!-- readme-test: ... --> line before it`;
  const modes = lang === "ts" ? ["run", "file", "check"] : ["run", "not-run"];
  if (!modes.includes(d.mode)) return `"${d.mode}" is not one of ${modes.join(", ")} for ${lang}`;
  if (d.mode === "check" || d.mode === "not-run") {
    return d.reason ? null : `"${d.mode}" needs a reason ("${d.mode}: why")`;
  }
  if (d.mode === "file") return d.name ? null : `"file" needs a name ("file my_source.ts")`;
  if (lang === "sh") {
    if (d.in !== "package" && d.in !== "repo") return `"run" of sh needs in=package or in=repo`;
    if (d.exit.some((n) => !Number.isInteger(n))) return `exit= takes integers`;
    return null;
  }
  if (d.in !== null) return `in= is for sh blocks`;
  const known = ["deno", "bun", "node"];
  if (d.runtimes?.some((r) => !known.includes(r))) return `runtimes= takes ${known.join(",")}`;
  if ((d.runtimes !== null || d.vm) && !d.reason) {
    return `a snippet that does not run everywhere says why ("run runtimes=deno,bun: why")`;
  }
  return null;
}

/**
 * The fenced blocks of a Markdown text.
 * @param {string} markdown
 * @returns {Block[]}
 */
export function readmeBlocks(markdown) {
  const lines = markdown.split("\n");
  /** @type {Block[]} */
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const lang = open[1];
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    const code = lines.slice(i + 1, end).join("\n") + "\n";
    let j = i - 1;
    while (j >= 0 && lines[j].trim() === "") j--;
    const m = j >= 0 ? DIRECTIVE.exec(lines[j].trim()) : null;
    /** @type {Directive | null} */
    let directive = null;
    let error = null;
    if (m) {
      try {
        directive = parseDirective(m[1]);
      } catch (e) {
        error = `directive at line ${j + 1}: ${e instanceof Error ? e.message : e}`;
      }
    }
    if (error === null && (lang === "ts" || lang === "sh")) error = check(lang, directive);
    blocks.push({ lang, line: i + 1, code, directive, error });
    i = end;
  }
  return blocks;
}

/**
 * The commands of a sh block: one per line, comments (`# ...`) dropped.
 * @param {string} code
 * @returns {string[]}
 */
export function shellCommands(code) {
  return code.split("\n").map((l) => l.replace(/(^|\s)#.*$/, "").trim()).filter((l) => l !== "");
}

/**
 * The file name a ts snippet is written to: `file` blocks by their name,
 * programs as readme_<line>.ts.
 * @param {Block} block
 * @returns {string}
 */
export function snippetFileName(block) {
  return block.directive?.mode === "file" && block.directive.name
    ? block.directive.name
    : `readme_${block.line}.ts`;
}

/**
 * What a snippet says it prints: for each `console.log(...); // VALUE` whose
 * comment starts with a plain value (a number, true, false, null), that
 * value, in order. The test finds each as a whole line of the output, in order.
 * @param {string} code
 * @returns {string[]}
 */
export function statedOutput(code) {
  const values = [];
  for (const m of code.matchAll(/console\.log\(.*\);\s*\/\/\s*(.*)$/gm)) {
    const v = /^(-?\d+|true|false|null)(?=$|[\s:;,])/.exec(m[1]);
    if (v) values.push(v[1]);
  }
  return values;
}

/** The size of the files a snippet names in `files=` (sparse). */
export const SNIPPET_FILE_SIZE = 64 << 20;
