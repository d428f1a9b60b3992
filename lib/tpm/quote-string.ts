import { TpmParseError } from '../bytes/parse-errors.js';

/** The three raw byte strings of a Keylime quote. */
export interface QuoteParts {
  /** TPMS_ATTEST, as signed. */
  readonly attest: Uint8Array;
  /** TPMT_SIGNATURE. */
  readonly signature: Uint8Array;
  /** tpm2-tools PCR blob (`pcr-blob.ts`). */
  readonly pcrBlob: Uint8Array;
}

/** Standard base64 with padding, as Python's `base64.b64encode` and the Rust agent write it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const PART_NAMES = ['TPMS_ATTEST', 'TPMT_SIGNATURE', 'PCR blob'] as const;

/**
 * Splits Keylime's quote string `r<b64 TPMS_ATTEST>:<b64 TPMT_SIGNATURE>:<b64 PCR blob>`
 * (keylime-protocol §3.1; Keylime `tpm_main.py` `_get_quote_parts`, Rust agent `tpm.rs` `encode_quote_string`).
 * The leading `r` marks raw (uncompressed) parts; the zlib form of API 1.0 is not accepted. A trailing
 * newline is ignored. Each part must be canonical padded base64. Decodes only: the parts are parsed
 * and verified by `verifyQuote`. Throws `TpmParseError` (offset = character position).
 */
export function parseQuoteString(text: string): QuoteParts {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!body.startsWith('r')) {
    throw new TpmParseError('quote string must start with "r" (raw parts)', 0, ['quote string']);
  }
  const parts = body.slice(1).split(':');
  if (parts.length !== 3) {
    throw new TpmParseError(`expected 3 ":"-separated parts, got ${parts.length}`, 1, ['quote string']);
  }
  let offset = 1;
  const decoded = parts.map((part, i) => {
    if (part.length === 0 || !BASE64.test(part)) {
      throw new TpmParseError('not canonical base64', offset, ['quote string', PART_NAMES[i] ?? '']);
    }
    offset += part.length + 1;
    return new Uint8Array(Buffer.from(part, 'base64'));
  });
  const [attest, signature, pcrBlob] = decoded as [Uint8Array, Uint8Array, Uint8Array];
  return { attest, signature, pcrBlob };
}

/** Formats the three parts as a Keylime quote string (no trailing newline). */
export function formatQuoteString(parts: QuoteParts): string {
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return `r${b64(parts.attest)}:${b64(parts.signature)}:${b64(parts.pcrBlob)}`;
}
