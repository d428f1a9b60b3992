import { BigEndianReader } from '../../bytes/byte-reader.js';
import { ImaParseError } from '../../bytes/parse-errors.js';

/**
 * The little DER (ITU-T X.690) this module needs: the ECDSA `Ecdsa-Sig-Value` inside IMA signatures
 * and the Subject Key Identifier of X.509 certificates carried by `ima-buf` keyring entries.
 * Definite lengths only, every length checked against the bytes left before anything is read.
 */
export interface DerElement {
  readonly tag: number;
  readonly content: Uint8Array;
}

/** Reads one TLV element from `r`. */
export function readDerElement(r: BigEndianReader): DerElement {
  const tag = r.u8();
  if ((tag & 0x1f) === 0x1f) {
    throw r.error('multi-byte DER tags are not supported');
  }
  const first = r.u8();
  let length = first;
  if (first >= 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) {
      throw r.error(`unsupported DER length form 0x${first.toString(16)}`);
    }
    length = 0;
    for (let i = 0; i < count; i++) {
      length = length * 256 + r.u8();
    }
  }
  return { tag, content: r.bytesOf(length) };
}

/** A reader over an element's content, raising `ImaParseError`. */
export function derReader(bytes: Uint8Array): BigEndianReader {
  return new BigEndianReader(bytes, ImaParseError);
}

/** Reads the children of a constructed element, all of them. */
export function derChildren(content: Uint8Array): DerElement[] {
  const r = derReader(content);
  const children: DerElement[] = [];
  while (r.remaining > 0) {
    children.push(readDerElement(r));
  }
  return children;
}

/** Decodes a DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3). */
export function decodeEcdsaSignature(bytes: Uint8Array): { r: bigint; s: bigint } {
  const outer = derReader(bytes);
  const sequence = readDerElement(outer);
  outer.finish();
  if (sequence.tag !== 0x30) {
    throw outer.error('ECDSA signature is not a SEQUENCE');
  }
  const inner = derReader(sequence.content);
  const r = readDerElement(inner);
  const s = readDerElement(inner);
  inner.finish();
  if (r.tag !== 0x02 || s.tag !== 0x02 || r.content.length === 0 || s.content.length === 0) {
    throw inner.error('ECDSA signature does not hold two INTEGERs');
  }
  return { r: toBigInt(r.content), s: toBigInt(s.content) };
}

function toBigInt(bytes: Uint8Array): bigint {
  if ((bytes[0] ?? 0) & 0x80) {
    return -1n;
  }
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

const SUBJECT_KEY_IDENTIFIER_OID = Buffer.from('551d0e', 'hex');

/**
 * The Subject Key Identifier of a DER X.509 certificate (RFC 5280 §4.2.1.2), or `undefined` when
 * the certificate has none.
 */
export function certificateSubjectKeyId(der: Uint8Array): Uint8Array | undefined {
  const [certificate] = derChildren(der);
  if (certificate?.tag !== 0x30) {
    return undefined;
  }
  const [tbs] = derChildren(certificate.content);
  if (tbs?.tag !== 0x30) {
    return undefined;
  }
  const extensions = derChildren(tbs.content).find((element) => element.tag === 0xa3);
  const [list] = extensions === undefined ? [] : derChildren(extensions.content);
  for (const extension of list === undefined ? [] : derChildren(list.content)) {
    const [oid, ...rest] = derChildren(extension.content);
    const value = rest[rest.length - 1];
    if (oid?.tag === 0x06 && Buffer.from(oid.content).equals(SUBJECT_KEY_IDENTIFIER_OID) && value?.tag === 0x04) {
      const [keyId] = derChildren(value.content);
      return keyId?.tag === 0x04 ? keyId.content : undefined;
    }
  }
  return undefined;
}
