/**
 * Character sets of event fields, and encoders that write a JavaScript string
 * (UTF-16) into one without allocating.
 *
 * | charset | fields | one unit |
 * |---|---|---|
 * | UTF-8 | raw `char[N]`, `__data_loc char[]`; EventHeader zstring, string, json, xml | 1..4 bytes per code point |
 * | Latin-1 (ISO-8859-1) | EventHeader `string8`, `char8` (format String8) | 1 byte, U+0000..U+00FF only |
 * | UTF-16 | EventHeader `zstring16`, `string16`, `char16` | 2 bytes, little-endian |
 * | UTF-32 | EventHeader `zstring32`, `string32`, `char32` | 4 bytes, little-endian |
 *
 * Every encoder refuses rather than alters. A character the charset cannot
 * hold, a lone surrogate (no UTF can encode it; TextEncoder would silently
 * write U+FFFD), a NUL inside a NUL-terminated string (readers would stop
 * there) or a string longer than the room left ends the write with a negative
 * code; `encodeFailure.index` is where it stopped, and `charsetProblem`
 * says it in words.
 */

/** A NUL inside a NUL-terminated string. */
export const ENC_NUL = -1;
/** A lone surrogate: half of a UTF-16 pair without the other half. */
export const ENC_SURROGATE = -2;
/** A character outside the charset (above U+00FF for Latin-1). */
export const ENC_RANGE = -3;
/** More bytes than the limit the caller gave. */
export const ENC_TOO_LONG = -4;

/** Where the last failed write stopped (index in UTF-16 units), read after a negative return. */
export const encodeFailure = { index: 0 };

function fail(code: number, index: number): number {
  encodeFailure.index = index;
  return code;
}

/**
 * Writes `s` as UTF-8 at `pos`, at most `limit` bytes; returns the byte count
 * or a negative ENC_* code. The caller has made room for `limit` bytes (or for
 * 3 bytes per UTF-16 unit, if that is less).
 */
export function writeUtf8(
  buf: Uint8Array,
  pos: number,
  s: string,
  limit: number,
  refuseNul: boolean,
): number {
  const n = s.length;
  // ASCII without NUL, the common case: one byte per unit, one comparison per unit
  // ((c - 1) >>> 0 is below 0x7f exactly for U+0001..U+007F).
  let i = 0;
  if (n <= limit) {
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if ((c - 1) >>> 0 >= 0x7f) break;
      buf[pos + i] = c;
    }
    if (i === n) return n;
  }
  return writeUtf8From(buf, pos, s, limit, refuseNul, i);
}

/** writeUtf8 from unit `start` on (units before it are ASCII, already written). */
function writeUtf8From(
  buf: Uint8Array,
  pos: number,
  s: string,
  limit: number,
  refuseNul: boolean,
  start: number,
): number {
  const n = s.length;
  const end = pos + limit;
  let p = pos + start;
  for (let i = start; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0 && refuseNul) return fail(ENC_NUL, i);
      if (p >= end) return fail(ENC_TOO_LONG, i);
      buf[p++] = c;
    } else if (c < 0x800) {
      if (p + 2 > end) return fail(ENC_TOO_LONG, i);
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      if (p + 3 > end) return fail(ENC_TOO_LONG, i);
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    } else {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) return fail(ENC_SURROGATE, i);
      if (p + 4 > end) return fail(ENC_TOO_LONG, i);
      const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      buf[p++] = 0xf0 | (cp >> 18);
      buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
      buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
      buf[p++] = 0x80 | (cp & 0x3f);
      i++;
    }
  }
  return p - pos;
}

/**
 * Writes `s` as Latin-1 (one byte per character, U+0000..U+00FF) at `pos`,
 * at most `limit` bytes; returns the byte count or a negative ENC_* code.
 */
export function writeLatin1(
  buf: Uint8Array,
  pos: number,
  s: string,
  limit: number,
  refuseNul: boolean,
): number {
  const n = s.length;
  if (n > limit) return fail(ENC_TOO_LONG, limit);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return fail(c >= 0xd800 && c <= 0xdfff ? ENC_SURROGATE : ENC_RANGE, i);
    if (c === 0 && refuseNul) return fail(ENC_NUL, i);
    buf[pos + i] = c;
  }
  return n;
}

/**
 * Writes `s` as UTF-16LE code units at `pos` (room for 2 * s.length bytes);
 * returns the unit count or a negative ENC_* code (lone surrogate, NUL).
 */
export function writeUtf16(buf: Uint8Array, pos: number, s: string, refuseNul: boolean): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 && refuseNul) return fail(ENC_NUL, i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) return fail(ENC_SURROGATE, i);
      buf[pos + 2 * i] = c & 0xff;
      buf[pos + 2 * i + 1] = c >> 8;
      i++;
      buf[pos + 2 * i] = d & 0xff;
      buf[pos + 2 * i + 1] = d >> 8;
      continue;
    }
    buf[pos + 2 * i] = c & 0xff;
    buf[pos + 2 * i + 1] = c >> 8;
  }
  return n;
}

/**
 * Writes `s` as UTF-32LE code points at `pos` (room for 4 * s.length bytes);
 * returns the code point count or a negative ENC_* code.
 */
export function writeUtf32(buf: Uint8Array, pos: number, s: string, refuseNul: boolean): number {
  const n = s.length;
  let p = pos;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c === 0 && refuseNul) return fail(ENC_NUL, i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) return fail(ENC_SURROGATE, i);
      c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      i++;
    }
    buf[p] = c & 0xff;
    buf[p + 1] = (c >> 8) & 0xff;
    buf[p + 2] = c >> 16;
    buf[p + 3] = 0;
    p += 4;
  }
  return (p - pos) / 4;
}

/** "U+00E9 'é'": a character for an error message. */
export function describeChar(s: string, index: number): string {
  const cp = s.codePointAt(index) ?? 0;
  const hex = cp.toString(16).toUpperCase().padStart(4, "0");
  const printable = cp >= 0x20 && cp !== 0x7f && !(cp >= 0xd800 && cp <= 0xdfff);
  return printable ? `U+${hex} '${String.fromCodePoint(cp)}'` : `U+${hex}`;
}

/**
 * Why a write of `s` failed with `code`, in words: "U+03A9 'Ω' at index 0
 * is outside Latin-1 (U+0000..U+00FF)".
 */
export function charsetProblem(code: number, s: string, charset: string, limit = 0): string {
  const i = encodeFailure.index;
  switch (code) {
    case ENC_NUL:
      return `a NUL (U+0000) at index ${i} would end the NUL-terminated string early`;
    case ENC_SURROGATE:
      return `${
        describeChar(s, i)
      } at index ${i} is a lone surrogate (half of a UTF-16 pair), which ${charset} cannot encode`;
    case ENC_RANGE:
      return `${describeChar(s, i)} at index ${i} is outside ${charset}`;
    case ENC_TOO_LONG:
      return `it takes more than the ${limit} bytes the field can hold in ${charset} (from index ${i} on)`;
  }
  return `it cannot be encoded in ${charset}`;
}

/** Decodes Latin-1 bytes (each byte is the code point). */
export function decodeLatin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 4096) {
    s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 4096)));
  }
  return s;
}
