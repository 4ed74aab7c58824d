/**
 * Symbols of a 64-bit little-endian ELF file and their file offsets, for
 * uprobes (the kernel takes a file offset, not an address): the symbol's
 * st_value is a virtual address, turned into an offset through the PT_LOAD
 * program header that maps it (offset = vaddr - p_vaddr + p_offset).
 *
 * Symbols come from .symtab when the file has one, else .dynsym; a versioned
 * name (`malloc@@GLIBC_2.2.5` the default version, `name@VER` any version)
 * is looked up in .dynsym through .gnu.version and .gnu.version_d. The file
 * is read with pread(2), only the headers and the symbol sections.
 *
 * The numbers below are <elf.h>'s, named as there.
 * @module
 */
import { check, cstring, errno, libc } from "../libc.ts";
import { UmmuArgumentError, UmmuError } from "../errors.ts";
import { closeMatches } from "./pmu.ts";
import * as m from "../../ffi/mman.ts";

// <elf.h>
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_GNU_verdef = 0x6ffffffd;
const SHT_GNU_versym = 0x6fffffff;
const SHN_UNDEF = 0;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const STB_LOCAL = 0;
const VERSYM_HIDDEN = 0x8000;
const SIZEOF_EHDR = 64, SIZEOF_PHDR = 56, SIZEOF_SHDR = 64, SIZEOF_SYM = 24;

/** One defined symbol. */
export interface ElfSymbol {
  /** The name without version ("malloc"). */
  name: string;
  /** The version from .gnu.version_d ("GLIBC_2.2.5"), when the symbol has one. */
  version?: string;
  /** True for a non-default version (`name@VER`, not `name@@VER`). */
  hidden: boolean;
  /** st_value: the virtual address. */
  value: bigint;
  /** st_size in bytes (0 when unknown). */
  size: bigint;
  /** STT_*: 2 a function, 10 an IFUNC (its value is the resolver's). */
  type: number;
  /** STB_*: 0 local, 1 global, 2 weak. */
  bind: number;
  /** Which table it came from. */
  table: ".symtab" | ".dynsym";
}

/** A PT_LOAD segment: where file bytes are mapped. */
export interface LoadSegment {
  /** p_offset: where its bytes start in the file. */
  offset: bigint;
  /** p_vaddr: where they are mapped (before the load bias of a shared object). */
  vaddr: bigint;
  /** p_filesz: how many bytes come from the file. */
  filesz: bigint;
  /** PF_X | PF_W | PF_R bits. */
  flags: number;
}

/** What elf.ts reads of a file: its loads and its defined symbols. */
export interface ElfSymbols {
  /** The file read. */
  path: string;
  /** e_machine (62 x86-64, 183 AArch64). */
  machine: number;
  /** The PT_LOAD program headers, in file order. */
  loads: LoadSegment[];
  /** .symtab's defined symbols (empty when stripped). */
  symtab: ElfSymbol[];
  /** .dynsym's defined symbols, with versions. */
  dynsym: ElfSymbol[];
}

const decoder = new TextDecoder();

class ElfReader {
  readonly fd: number;
  constructor(readonly path: string) {
    const fd = libc.open(cstring(path), m.O_RDONLY | m.O_CLOEXEC, 0);
    if (fd < 0) {
      const e = errno();
      if (e === 2 || e === 20) {
        throw new UmmuArgumentError(`ELF file ${JSON.stringify(path)} must exist: no such file`);
      }
      if (e === 21) {
        throw new UmmuArgumentError(`ELF file ${JSON.stringify(path)} is a folder, not a file`);
      }
      throw new UmmuError(`open(${path})`, e);
    }
    this.fd = fd;
  }
  read(offset: bigint, length: bigint, what: string): DataView {
    if (length > 1n << 30n) this.bad(`${what} claims ${length} bytes`);
    const buf = new Uint8Array(Number(length));
    let done = 0;
    while (done < buf.length) {
      const n = check(
        libc.pread(this.fd, buf.subarray(done), buf.length - done, offset + BigInt(done)),
        `pread(${this.path})`,
      );
      if (n === 0) this.bad(`${what} lies past the end of the file`);
      done += n;
    }
    return new DataView(buf.buffer);
  }
  bad(why: string): never {
    throw new UmmuArgumentError(`ELF file ${JSON.stringify(this.path)} is malformed: ${why}`);
  }
  close(): void {
    libc.close(this.fd);
  }
}

function cstr(dv: DataView, off: number): string {
  const bytes = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  if (off >= bytes.length) return "";
  let end = off;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return decoder.decode(bytes.subarray(off, end));
}

interface Section {
  type: number;
  offset: bigint;
  size: bigint;
  link: number;
  entsize: bigint;
}

/** Reads the PT_LOAD segments and the defined symbols of `path`. */
export function readElfSymbols(path: string): ElfSymbols {
  if (typeof path !== "string" || path === "") {
    throw new UmmuArgumentError(`ELF file path must be a non-empty string, got ${String(path)}`);
  }
  const r = new ElfReader(path);
  try {
    const size = headerBytes(r);
    if (size < SIZEOF_EHDR) {
      throw new UmmuArgumentError(
        `${
          JSON.stringify(path)
        } is not an ELF file (${size} bytes long, shorter than an ELF header)`,
      );
    }
    const eh = r.read(0n, BigInt(SIZEOF_EHDR), "the ELF header");
    if (eh.getUint32(0, false) !== 0x7f454c46) {
      throw new UmmuArgumentError(
        `${
          JSON.stringify(path)
        } is not an ELF file (no \\x7fELF magic): give an executable or shared library`,
      );
    }
    if (eh.getUint8(4) !== ELFCLASS64 || eh.getUint8(5) !== ELFDATA2LSB) {
      throw new UmmuArgumentError(
        `${JSON.stringify(path)}: ummu reads 64-bit little-endian ELF files; this one is ` +
          `${eh.getUint8(4) === ELFCLASS64 ? "64" : "32"}-bit ${
            eh.getUint8(5) === ELFDATA2LSB ? "little" : "big"
          }-endian`,
      );
    }
    const machine = eh.getUint16(18, true);
    const phoff = eh.getBigUint64(32, true), shoff = eh.getBigUint64(40, true);
    const phnum = eh.getUint16(56, true), shnum = eh.getUint16(60, true);
    if (phnum && eh.getUint16(54, true) !== SIZEOF_PHDR) r.bad("e_phentsize is not 56");
    if (shnum && eh.getUint16(58, true) !== SIZEOF_SHDR) r.bad("e_shentsize is not 64");
    const loads: LoadSegment[] = [];
    if (phnum) {
      const ph = r.read(phoff, BigInt(phnum * SIZEOF_PHDR), "the program headers");
      for (let i = 0; i < phnum; i++) {
        const o = i * SIZEOF_PHDR;
        if (ph.getUint32(o, true) !== PT_LOAD) continue;
        loads.push({
          flags: ph.getUint32(o + 4, true),
          offset: ph.getBigUint64(o + 8, true),
          vaddr: ph.getBigUint64(o + 16, true),
          filesz: ph.getBigUint64(o + 32, true),
        });
      }
    }
    const sections: Section[] = [];
    if (shnum) {
      const sh = r.read(shoff, BigInt(shnum * SIZEOF_SHDR), "the section headers");
      for (let i = 0; i < shnum; i++) {
        const o = i * SIZEOF_SHDR;
        sections.push({
          type: sh.getUint32(o + 4, true),
          offset: sh.getBigUint64(o + 24, true),
          size: sh.getBigUint64(o + 32, true),
          link: sh.getUint32(o + 40, true),
          entsize: sh.getBigUint64(o + 56, true),
        });
      }
    }
    const tableOf = (type: number, name: ".symtab" | ".dynsym") => {
      const idx = sections.findIndex((s) => s.type === type);
      if (idx < 0) return { syms: [] as ElfSymbol[], idx };
      return { syms: readSymbols(r, sections, sections[idx], name), idx };
    };
    const symtab = tableOf(SHT_SYMTAB, ".symtab").syms;
    const dyn = tableOf(SHT_DYNSYM, ".dynsym");
    if (dyn.idx >= 0) addVersions(r, sections, dyn.idx, dyn.syms);
    return {
      path,
      machine,
      loads,
      symtab: symtab.filter((s) => s.name !== "" && s.value !== 0n),
      dynsym: dyn.syms.filter((s) => s.name !== "" && s.value !== 0n),
    };
  } finally {
    r.close();
  }
}

/** How many of the header's bytes the file has (a folder opens, then reads EISDIR). */
function headerBytes(r: ElfReader): number {
  const probe = new Uint8Array(SIZEOF_EHDR);
  const n = libc.pread(r.fd, probe, probe.length, 0n);
  if (n < 0) {
    const e = errno();
    if (e === 21) throw new UmmuArgumentError(`${JSON.stringify(r.path)} is a folder, not a file`);
    throw new UmmuError(`pread(${r.path})`, e);
  }
  return n;
}

/** Symbols of one table; undefined ones dropped later; index kept for .gnu.version. */
function readSymbols(
  r: ElfReader,
  sections: Section[],
  s: Section,
  table: ".symtab" | ".dynsym",
): ElfSymbol[] {
  if (s.entsize !== BigInt(SIZEOF_SYM)) r.bad(`${table} entries are not 24 bytes`);
  const strtab = sections[s.link];
  if (strtab === undefined) r.bad(`${table} links to no string table`);
  const strs = r.read(strtab.offset, strtab.size, `${table}'s string table`);
  const dv = r.read(s.offset, s.size, table);
  const out: ElfSymbol[] = [];
  for (let o = 0; o + SIZEOF_SYM <= dv.byteLength; o += SIZEOF_SYM) {
    const info = dv.getUint8(o + 4);
    const shndx = dv.getUint16(o + 6, true);
    out.push({
      name: shndx === SHN_UNDEF ? "" : cstr(strs, dv.getUint32(o, true)),
      hidden: false,
      value: dv.getBigUint64(o + 8, true),
      size: dv.getBigUint64(o + 16, true),
      type: info & 0xf,
      bind: info >> 4,
      table,
    });
  }
  return out;
}

/** Fills `version`/`hidden` of .dynsym's symbols from .gnu.version and .gnu.version_d. */
function addVersions(r: ElfReader, sections: Section[], dynIdx: number, syms: ElfSymbol[]): void {
  const versym = sections.find((s) => s.type === SHT_GNU_versym && s.link === dynIdx);
  const verdef = sections.find((s) => s.type === SHT_GNU_verdef);
  if (versym === undefined || verdef === undefined) return;
  const names = new Map<number, string>();
  const vd = r.read(verdef.offset, verdef.size, ".gnu.version_d");
  const strs = r.read(sections[verdef.link].offset, sections[verdef.link].size, "version names");
  let off = 0;
  for (let guard = 0; guard < 65536 && off + 20 <= vd.byteLength; guard++) {
    const ndx = vd.getUint16(off + 4, true);
    const aux = vd.getUint32(off + 12, true);
    const next = vd.getUint32(off + 16, true);
    if (off + aux + 8 <= vd.byteLength) names.set(ndx, cstr(strs, vd.getUint32(off + aux, true)));
    if (next === 0) break;
    off += next;
  }
  const vs = r.read(versym.offset, versym.size, ".gnu.version");
  syms.forEach((s, i) => {
    if (2 * i + 2 > vs.byteLength || s.name === "") return;
    const v = vs.getUint16(2 * i, true);
    const idx = v & ~VERSYM_HIDDEN;
    if (idx >= 2 && names.has(idx)) {
      s.version = names.get(idx);
      s.hidden = (v & VERSYM_HIDDEN) !== 0;
    }
  });
}

/** The file offset of virtual address `vaddr`, through the PT_LOAD that maps it; null if none. */
export function fileOffsetOf(loads: LoadSegment[], vaddr: bigint): bigint | null {
  for (const l of loads) {
    if (vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz) return vaddr - l.vaddr + l.offset;
  }
  return null;
}

/** A symbol found and its file offset. */
export interface SymbolOffset {
  /** The symbol found. */
  symbol: ElfSymbol;
  /** The file offset of the symbol (plus the offset asked for within it). */
  offset: bigint;
}

/**
 * The file offset of `symbol` in the ELF file `path` (for a uprobe), plus
 * `within` bytes into it. `symbol` may carry a version: `malloc@@GLIBC_2.2.5`
 * (the default version) or `name@VER` (that version). Throws
 * UmmuArgumentError for a file that is not ELF, a symbol it does not define
 * (with close names), an IFUNC (its address is the resolver's) or an offset
 * past the symbol's end.
 */
export function symbolFileOffset(path: string, symbol: string, within = 0n): SymbolOffset {
  if (typeof symbol !== "string" || !/^[^@\s]+(@@?[^@\s]+)?$/.test(symbol)) {
    throw new UmmuArgumentError(
      `symbol must be a name, optionally versioned (malloc, malloc@@GLIBC_2.2.5), got ${
        JSON.stringify(symbol)
      }`,
    );
  }
  const elf = readElfSymbols(path);
  const at = symbol.indexOf("@");
  const name = at < 0 ? symbol : symbol.slice(0, at);
  const version = at < 0 ? undefined : symbol.slice(symbol.lastIndexOf("@") + 1);
  const defaultOnly = symbol.includes("@@");
  let found: ElfSymbol[];
  if (version !== undefined) {
    found = elf.dynsym.filter((s) =>
      s.name === name && s.version === version && (!defaultOnly || !s.hidden)
    );
  } else {
    const pick = (list: ElfSymbol[]) => {
      const same = list.filter((s) => s.name === name);
      const visible = same.filter((s) => !s.hidden);
      const global = (visible.length ? visible : same).filter((s) => s.bind !== STB_LOCAL);
      return global.length ? global : visible.length ? visible : same;
    };
    found = pick(elf.symtab);
    if (found.length === 0) found = pick(elf.dynsym);
  }
  const addresses = new Set(found.map((s) => s.value));
  if (found.length === 0) {
    const all = [...elf.symtab, ...elf.dynsym];
    const sameName = elf.dynsym.filter((s) => s.name === name && s.version !== undefined);
    const names = new Set(all.filter((s) => s.type === STT_FUNC).map((s) => s.name));
    const close = sameName.length
      ? sameName.map((s) => `${s.name}${s.hidden ? "@" : "@@"}${s.version}`)
      : closeMatches(name, names);
    throw new UmmuArgumentError(
      `symbol ${JSON.stringify(symbol)} is not defined in ${path}` +
        (close.length ? ` (close: ${close.join(", ")})` : "") +
        (elf.symtab.length === 0 && elf.dynsym.length === 0
          ? " (the file has no symbol table: it is stripped)"
          : ` (${elf.symtab.length ? ".symtab" : ".dynsym"} searched)`),
    );
  }
  if (addresses.size > 1) {
    throw new UmmuArgumentError(
      `symbol ${JSON.stringify(symbol)} is ambiguous in ${path}: ${found.length} definitions at ` +
        `${
          [...addresses].map((a) => `0x${a.toString(16)}`).join(", ")
        }; give a file offset instead`,
    );
  }
  const s = found[0];
  if (s.type === STT_GNU_IFUNC) {
    const impls = [...new Set([...elf.symtab, ...elf.dynsym].map((x) => x.name))]
      .filter((n) => n !== name && n.includes(name.replace(/^_+/, ""))).slice(0, 8);
    throw new UmmuArgumentError(
      `symbol ${JSON.stringify(symbol)} in ${path} is an IFUNC: its address is the resolver's, ` +
        `which runs once at load; probe the implementation the resolver picks` +
        (impls.length ? ` (candidates: ${impls.join(", ")})` : ""),
    );
  }
  if (within < 0n || (s.size > 0n && within >= s.size)) {
    throw new UmmuArgumentError(
      `offset ${within} into ${JSON.stringify(symbol)} must be within its ${s.size} bytes`,
    );
  }
  const offset = fileOffsetOf(elf.loads, s.value + within);
  if (offset === null) {
    throw new UmmuArgumentError(
      `symbol ${JSON.stringify(symbol)} at 0x${s.value.toString(16)} lies in no PT_LOAD segment ` +
        `of ${path} (not code that is loaded)`,
    );
  }
  return { symbol: s, offset };
}
