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
    const bytes = decodeBase64Part(part);
    if (bytes === undefined) {
      throw new TpmParseError('not canonical base64', offset, ['quote string', PART_NAMES[i] ?? '']);
    }
    offset += part.length + 1;
    return bytes;
  });
  const [attest, signature, pcrBlob] = decoded as [Uint8Array, Uint8Array, Uint8Array];
  return { attest, signature, pcrBlob };
}

/**
 * The bytes of a non-empty part that BASE64 matches; undefined for any other. Node's decoder takes
 * anything (it skips characters outside base64 and reads the URL alphabet too), so its result is
 * re-encoded: a part equal to that is what BASE64 matches, without running the pattern (which cost
 * twice the decode on a round's quote). A part that differs is either malformed or spells the last
 * group with unused bits set, which BASE64 takes (as Python's `b64decode` does): the pattern decides.
 */
function decodeBase64Part(part: string): Uint8Array | undefined {
  if (part.length === 0) {
    return undefined;
  }
  const bytes = Buffer.from(part, 'base64');
  if (bytes.toString('base64') !== part && !BASE64.test(part)) {
    return undefined;
  }
  return new Uint8Array(bytes);
}

/** Formats the three parts as a Keylime quote string (no trailing newline). */
export function formatQuoteString(parts: QuoteParts): string {
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return `r${b64(parts.attest)}:${b64(parts.signature)}:${b64(parts.pcrBlob)}`;
}
