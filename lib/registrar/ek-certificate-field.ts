import { MAX_EK_INTERMEDIATES } from '../tpm/ek-certificate.js';
import { InvalidAgentData } from './registrar-errors.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** ASN.1 SEQUENCE tag: every DER certificate starts with it (X.690 §8.9). */
const DER_SEQUENCE = 0x30;

/**
 * Certificates an `ekcert` may hold: the EK certificate and the intermediates the chain check looks
 * at. Each one is read (X.509) to find the EK certificate, under every ek-check mode, and 64 KiB of
 * text holds ~1,000 blocks.
 */
export const MAX_EK_CERTIFICATE_FIELD_CERTIFICATES = 1 + MAX_EK_INTERMEDIATES;

/**
 * Splits the registration body's `ekcert` text into DER certificates. Keylime's registrar accepts
 * three spellings (spec §1.2): PEM — possibly a chain, which the Rust agent sends intermediates
 * first, EK certificate last — base64 of DER, or raw DER carried in the JSON string (one byte per
 * character). No X.509 parsing happens here; the caller picks the certificate that holds the EK.
 *
 * @throws InvalidAgentData (field `ekcert`) when the text is none of the three, or a PEM chain of
 *   more than `MAX_EK_CERTIFICATE_FIELD_CERTIFICATES` certificates.
 */
export function splitEkCertificateField(text: string): Uint8Array[] {
  // Raw DER first: its names may spell "-----BEGIN"; PEM or base64 of DER starts with "-" or "M", never "0".
  if (isByteString(text) && text.charCodeAt(0) === DER_SEQUENCE) {
    return [Buffer.from(text, 'latin1')];
  }
  const trimmed = text.trim();
  if (trimmed.includes('-----BEGIN')) {
    const matches = [...trimmed.matchAll(PEM_BLOCK)];
    if (matches.length > MAX_EK_CERTIFICATE_FIELD_CERTIFICATES) {
      throw new InvalidAgentData('ekcert', `holds ${matches.length} certificates, at most ${MAX_EK_CERTIFICATE_FIELD_CERTIFICATES} are looked at`);
    }
    const blocks = matches.map((match) => Buffer.from(match[1] ?? '', 'base64'));
    const leftover = trimmed.replace(PEM_BLOCK, '').trim();
    if (blocks.length === 0 || leftover !== '' || blocks.some((der) => der[0] !== DER_SEQUENCE)) {
      throw new InvalidAgentData('ekcert', 'PEM text must hold only CERTIFICATE blocks');
    }
    return blocks;
  }
  const compact = trimmed.replace(/\s+/g, '');
  if (BASE64.test(compact) && compact.length % 4 === 0) {
    const der = Buffer.from(compact, 'base64');
    if (der[0] === DER_SEQUENCE) {
      return [der];
    }
  }
  throw new InvalidAgentData('ekcert', 'must be a PEM certificate (chain), base64 DER or DER');
}

function isByteString(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    if (text.charCodeAt(i) > 0xff) {
      return false;
    }
  }
  return text.length > 0;
}
