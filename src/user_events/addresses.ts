/**
 * Text forms of 128-bit ids and IP addresses, parsed straight into an event
 * buffer (no allocation for UUIDs and IPv4): what EventHeader's Uuid and
 * IPAddress formats, and activity ids, accept as strings.
 */

/** A hex digit's value, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Writes a UUID's 16 bytes (RFC 4122 order); false if `s` is not one. */
export function writeUuid(buf: Uint8Array, pos: number, s: string): boolean {
  let i = 0;
  let end = s.length;
  if (s.charCodeAt(0) === 0x7b && s.charCodeAt(end - 1) === 0x7d) {
    i = 1;
    end--;
  }
  const hyphens = end - i === 36;
  if (!hyphens && end - i !== 32) return false;
  let k = 0;
  for (let p = i; p < end; p++) {
    const off = p - i;
    if (hyphens && (off === 8 || off === 13 || off === 18 || off === 23)) {
      if (s.charCodeAt(p) !== 0x2d) return false;
      continue;
    }
    const hi = hexDigit(s.charCodeAt(p));
    const lo = hexDigit(s.charCodeAt(++p));
    if (hi < 0 || lo < 0) return false;
    buf[pos + k++] = (hi << 4) | lo;
  }
  return k === 16;
}

/** Writes "a.b.c.d" as 4 bytes; false if `s` is not a dotted-quad (no leading zeros). */
export function writeIPv4(buf: Uint8Array, pos: number, s: string): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return false;
      buf[pos + part++] = value;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // leading zero: octal to inet_aton
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    } else return false;
  }
  return part === 4;
}

/** Writes an IPv6 address (RFC 4291 text form, with "::" and a dotted IPv4 tail); false if invalid. */
export function writeIPv6(buf: Uint8Array, pos: number, s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groups = (text: string, last: boolean): number[] | null => {
    if (text === "") return [];
    const out: number[] = [];
    const parts = text.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (last && i === parts.length - 1 && p.includes(".")) {
        const v4 = new Uint8Array(4);
        if (!writeIPv4(v4, 0, p)) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (head === null || tail === null) return false;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return false;
  const words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    buf[pos + 2 * i] = words[i] >> 8;
    buf[pos + 2 * i + 1] = words[i] & 0xff;
  }
  return true;
}
