import { LittleEndianReader } from '../bytes/byte-reader.js';
import { ImaParseError } from '../bytes/parse-errors.js';
import { emptyField, isImaTemplateName, makeImaEntry, NO_FIELDS, type ImaDigest, type UntrustedImaEntry } from './internal/ima-entry.js';
import { LEGACY_NAME_FIELD_SIZE, LEGACY_NAME_MAX } from './internal/template-data.js';

/**
 * Parser for the binary measurement list (`binary_runtime_measurements`), kernel
 * `ima_measurements_show()`. Per entry, all integers u32 little-endian (x86, or any machine booted
 * with `ima_canonical_fmt`):
 *
 * | field | size |
 * |---|---|
 * | PCR index | u32 |
 * | template hash | 20 bytes (sha1; the `_sha256`… lists use that bank's size) |
 * | template name length, name | u32, bytes (no NUL) |
 * | template data length | u32 — absent for the legacy `ima` template |
 * | template data | the fields, each `u32 len ‖ bytes` |
 *
 * The legacy `ima` template is written differently: `d` as 20 raw bytes, then `n` as
 * `u32 strlen ‖ name` without NUL or padding; the template hash is over `d ‖ name padded to 256`,
 * which is what `templateData` holds after parsing.
 *
 * Big-endian lists (a big-endian machine without `ima_canonical_fmt`) are not supported.
 */

/** Longest template name we accept (`IMA_TEMPLATE_NAME_LEN_MAX` is 15). */
const TEMPLATE_NAME_MAX = 32;
/** Size of the legacy template's `d` field in the binary list. */
const LEGACY_DIGEST_SIZE = 20;

export interface BinaryListOptions {
  /** Size of the template hashes in this list: 20 for `binary_runtime_measurements` (default). */
  readonly templateHashSize?: number;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Splits a `d-ng` field's content (`alg ‖ ':' ‖ 0x00 ‖ digest`). */
function decodeDigestNg(r: LittleEndianReader, field: Buffer): ImaDigest {
  const nul = field.indexOf(0);
  if (nul < 2 || field[nul - 1] !== 0x3a) {
    throw r.error('digest field is not "<algorithm>:\\0<digest>"');
  }
  const digest = field.subarray(nul + 1);
  if (digest.length === 0) {
    throw r.error('digest field holds no digest');
  }
  return { algorithm: field.toString('latin1', 0, nul - 1), hex: digest.toString('hex') };
}

/** Decodes an `n-ng` field's content (`name ‖ 0x00`). */
function decodeNameNg(r: LittleEndianReader, field: Buffer): string {
  if (field.length === 0 || field[field.length - 1] !== 0) {
    throw r.error('name field is not NUL-terminated');
  }
  return field.toString('utf8', 0, field.length - 1);
}

function sized(r: LittleEndianReader, what: string): Buffer {
  return r.struct(what, () => asBuffer(r.bytesOf(r.u32())));
}

function parseTemplateFields(
  r: LittleEndianReader,
  templateName: Exclude<UntrustedImaEntry['templateName'], 'ima'>,
): Pick<UntrustedImaEntry, 'digest' | 'path' | 'signature' | 'buffer' | 'modsigDigest' | 'modsig'> {
  const digest = r.struct('d-ng', () => decodeDigestNg(r, sized(r, 'length')));
  const path = r.struct('n-ng', () => decodeNameNg(r, sized(r, 'length')));
  let signature = emptyField();
  let buffer = emptyField();
  let modsigDigest: ImaDigest | undefined;
  let modsig = emptyField();
  if (templateName === 'ima-sig' || templateName === 'ima-modsig') {
    signature = sized(r, 'sig');
  } else if (templateName === 'ima-buf') {
    buffer = sized(r, 'buf');
  }
  if (templateName === 'ima-modsig') {
    const field = sized(r, 'd-modsig');
    modsigDigest = field.length === 0 ? undefined : r.struct('d-modsig', () => decodeDigestNg(r, field));
    modsig = sized(r, 'modsig');
  }
  r.finish();
  return { digest, path, signature, buffer, modsigDigest, modsig };
}

function parseEntry(r: LittleEndianReader, line: number, templateHashSize: number): UntrustedImaEntry {
  const pcr = r.u32();
  const templateHash = asBuffer(r.bytesOf(templateHashSize));
  const nameLength = r.u32();
  if (nameLength === 0 || nameLength > TEMPLATE_NAME_MAX) {
    throw r.error(`template name length ${nameLength} is not 1..${TEMPLATE_NAME_MAX}`);
  }
  const templateName = Buffer.from(r.bytesOf(nameLength)).toString('latin1');
  if (!isImaTemplateName(templateName)) {
    throw r.error(`unknown template "${templateName}"`);
  }

  if (templateName === 'ima') {
    const digest = asBuffer(r.bytesOf(LEGACY_DIGEST_SIZE));
    const pathLength = r.u32();
    if (pathLength > LEGACY_NAME_MAX) {
      throw r.error(`template ima holds names of at most ${LEGACY_NAME_MAX} bytes, got ${pathLength}`);
    }
    const name = asBuffer(r.bytesOf(pathLength));
    const templateData = Buffer.alloc(LEGACY_DIGEST_SIZE + LEGACY_NAME_FIELD_SIZE);
    digest.copy(templateData, 0);
    name.copy(templateData, LEGACY_DIGEST_SIZE);
    return makeImaEntry(line, pcr, templateHash, templateName, { algorithm: 'sha1', hex: digest.toString('hex') }, name.toString('utf8'), NO_FIELDS, templateData);
  }

  const templateData = asBuffer(r.bytesOf(r.u32()));
  const fields = new LittleEndianReader(templateData, ImaParseError);
  let parsed: ReturnType<typeof parseTemplateFields>;
  try {
    parsed = fields.struct(templateName, () => parseTemplateFields(fields, templateName));
  } catch (error) {
    if (error instanceof ImaParseError) {
      throw r.error(`template data: ${error.message}`);
    }
    throw error;
  }
  return { line, pcr, templateHash, templateName, ...parsed, templateData };
}

/**
 * Parses a whole binary measurement list.
 *
 * @throws ImaParseError (with the byte offset and the entry number) when the list is truncated, a
 *   length runs past the end, a template is unknown or a template's data does not decode exactly.
 */
export function parseImaBinaryList(bytes: Uint8Array, options: BinaryListOptions = {}): UntrustedImaEntry[] {
  const templateHashSize = options.templateHashSize ?? 20;
  if (bytes.length === 0) {
    throw new ImaParseError('the measurement list is empty', 0, ['ima binary list']);
  }
  const r = new LittleEndianReader(bytes, ImaParseError);
  const entries: UntrustedImaEntry[] = [];
  while (r.remaining > 0) {
    const line = entries.length + 1;
    entries.push(r.struct(`entry ${line}`, () => parseEntry(r, line, templateHashSize)));
  }
  return entries;
}
