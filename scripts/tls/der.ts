// The little DER (ASN.1 Distinguished Encoding Rules) an X.509 certificate needs: writing
// (SEQUENCE, SET, INTEGER, OID, strings, times, BIT/OCTET STRING, context tags) and reading
// top-level TLVs back (to lift a CA's subject and key bytes out of its certificate).
// Encoding only: every key operation is node:crypto's.

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const tlv = (tag: number, content: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), length(content.length), content]);
export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));
/** DER sorts the elements of a SET OF by their encoding. */
export const set = (...items: Buffer[]): Buffer => tlv(TAG.SET, Buffer.concat([...items].sort(Buffer.compare)));
export const nul = (): Buffer => Buffer.from([TAG.NULL, 0]);
export const bool = (v: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0]));
export const octetString = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
/** A BIT STRING of whole bytes (keys, signatures). */
export const bitString = (b: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), b]));
export const utf8 = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const ia5 = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'ascii'));

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, with a 0x00 before a high bit). */
export function unsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let b = bytes.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(TAG.INTEGER, b);
}
export function smallInteger(n: number): Buffer {
  const hex = n.toString(16);
  return unsignedInteger(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'));
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, "Z". */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-05-01T12:34:56.789Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20260501123456
  return d.getUTCFullYear() < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, 'ascii')) : tlv(TAG.GENERALIZED_TIME, Buffer.from(`${digits}Z`, 'ascii'));
}

/** [n] EXPLICIT (constructed, wraps a whole TLV). */
export const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 | n, content);
/** [n] IMPLICIT primitive (replaces the tag of a primitive value: SAN dNSName, iPAddress, keyIdentifier). */
export const implicit = (n: number, bytes: Buffer): Buffer => tlv(0x80 | n, bytes);

export interface Tlv {
  tag: number;
  /** The whole encoding, tag and length included. */
  raw: Buffer;
  content: Buffer;
}

/** Reads the TLVs laid one after another in `buf` (the content of a SEQUENCE, say). */
export function readAll(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let at = 0;
  while (at < buf.length) {
    const tag = buf[at]!;
    let len = buf[at + 1];
    if (len === undefined) throw new Error('DER: truncated length');
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw new Error('DER: unsupported length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i]!;
      header += n;
    }
    const end = at + header + len;
    if (end > buf.length) throw new Error('DER: truncated value');
    out.push({ tag, raw: buf.subarray(at, end), content: buf.subarray(at + header, end) });
    at = end;
  }
  return out;
}

export function readOne(buf: Buffer): Tlv {
  const all = readAll(buf);
  if (all.length !== 1) throw new Error(`DER: expected one value, found ${all.length}`);
  return all[0]!;
}
