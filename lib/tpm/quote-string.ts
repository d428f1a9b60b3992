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
 * anything (it skips characters outside base64 and reads the URL alphabet too), so its result alone
 * does not say whether the part was plain base64; `decodedWhole` tells that for nearly every part
 * without a new string, and the pattern (which costs twice the decode) decides the rest.
 */
function decodeBase64Part(part: string): Uint8Array | undefined {
  if (part.length === 0) {
    return undefined;
  }
  const bytes = Buffer.from(part, 'base64');
  if (!decodedWhole(part, bytes.length) && !BASE64.test(part)) {
    return undefined;
  }
  return new Uint8Array(bytes);
}

const EQUALS = 0x3d;

/**
 * True only for a part that BASE64 matches, judged from the length Node decoded it to: a character
 * the decoder skips (whitespace, `*`, any non-ASCII one) and an `=` before the padding (where the
 * decoder stops) leave fewer bytes than a part of this length with this padding decodes to. What it does not skip and BASE64 refuses is
 * looked for directly: the URL alphabet's `-` and `_`, and characters past U+00FF, which the decoder
 * reads by their low byte only ("Ń", U+0143, as "C"). Allocates nothing, unlike the re-encode it
 * replaces (about 2 KB a pull round). A part that spells its last group with unused bits set keeps
 * its length and passes, as BASE64 (and Python's `b64decode`) take it.
 */
function decodedWhole(part: string, decodedLength: number): boolean {
  const length = part.length;
  // A length that is not a multiple of 4 gives a fraction below, which no decoded length equals.
  const padding = part.charCodeAt(length - 1) !== EQUALS ? 0 : part.charCodeAt(length - 2) !== EQUALS ? 1 : 2;
  return (
    decodedLength === (length / 4) * 3 - padding &&
    part.indexOf('-') < 0 &&
    part.indexOf('_') < 0 &&
    Buffer.byteLength(part, 'utf8') === length
  );
}

/** Formats the three parts as a Keylime quote string (no trailing newline). */
export function formatQuoteString(parts: QuoteParts): string {
  const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return `r${b64(parts.attest)}:${b64(parts.signature)}:${b64(parts.pcrBlob)}`;
}
