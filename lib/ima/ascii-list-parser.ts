import { ImaParseError } from '../bytes/parse-errors.js';
import { imaHashByName } from './hash-algorithms.js';
import { isImaTemplateName, makeImaEntry, NO_FIELDS, type ImaDigest, type UntrustedImaEntry } from './internal/ima-entry.js';
import {
  digestNgSize,
  LEGACY_NAME_FIELD_SIZE,
  LEGACY_NAME_MAX,
  nameNgSize,
  TemplateDataWriter,
} from './internal/template-data.js';

/**
 * Parser for the ASCII measurement list. Each line is
 * `<pcr> <template-hash hex> <template-name> <template fields…>`, fields separated by one space
 * (kernel `ima_ascii_measurements_show`; Keylime `ima/ast.py` splits the same way). Names never
 * contain spaces: the kernel writes `n-ng` with spaces replaced by `_`.
 *
 * The template data is rebuilt from the fields exactly as the kernel laid it out (see
 * internal/template-data.ts), so the caller can recompute the template hash over it.
 *
 * Stricter than Keylime, each on purpose: the `d-ng` field must carry its `alg:` prefix (kernels
 * always print one), a known algorithm's digest must have that algorithm's size, and a signature,
 * buffer or modsig field must be valid hex (Keylime silently drops a malformed signature and then
 * fails the entry on its template hash instead).
 */

function fail(line: number, detail: string): never {
  throw new ImaParseError(`line ${line}: ${detail}`, 0, ['ima ascii list']);
}

function decodeHex(line: number, what: string, hex: string): Buffer {
  if (hex.length === 0 || (hex.length & 1) !== 0) {
    fail(line, `${what} is not hex: "${hex}"`);
  }
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length * 2 !== hex.length) {
    fail(line, `${what} is not hex: "${hex}"`);
  }
  return bytes;
}

/** Splits `alg:hex` of a `d-ng` field, checking the digest size of known algorithms. */
function splitDigestNg(line: number, field: string): { algorithm: string; hex: string } {
  const colon = field.indexOf(':');
  if (colon <= 0 || colon !== field.lastIndexOf(':')) {
    fail(line, `digest "${field}" is not <algorithm>:<hex>`);
  }
  const algorithm = field.slice(0, colon);
  const hex = field.slice(colon + 1);
  if (hex.length === 0 || (hex.length & 1) !== 0) {
    fail(line, `digest "${field}" is not hex`);
  }
  const known = imaHashByName(algorithm);
  if (known !== undefined && known.digestSize * 2 !== hex.length) {
    fail(line, `${algorithm} digest must be ${known.digestSize} bytes, got ${hex.length / 2}`);
  }
  return { algorithm, hex };
}

/** Splits `rest` into exactly `count` fields on single spaces (the last field takes no spaces). */
function splitFields(line: number, template: string, rest: string, count: number): string[] {
  const fields = rest.split(' ');
  if (fields.length !== count) {
    fail(line, `template ${template} has ${count} field(s), got ${fields.length}`);
  }
  return fields;
}

function digestOf(algorithm: string, hex: string): ImaDigest {
  return { algorithm, hex: hex.toLowerCase() };
}


function parsePcr(line: number, text: string): number {
  if (text === '10') {
    return 10;
  }
  if (text.length === 0 || text.length > 9 || !/^[0-9]+$/.test(text)) {
    fail(line, `PCR index "${text}" is not a decimal number`);
  }
  return Number(text);
}

/**
 * Parses one line of the ASCII list. `line` is the entry's 1-based position in the whole list; it
 * is carried into the entry and into every error message.
 *
 * @throws ImaParseError when the line is not a well-formed entry of a template we know.
 */
export function parseImaAsciiLine(text: string, line: number): UntrustedImaEntry {
  const s1 = text.indexOf(' ');
  const s2 = s1 < 0 ? -1 : text.indexOf(' ', s1 + 1);
  const s3 = s2 < 0 ? -1 : text.indexOf(' ', s2 + 1);
  if (s3 < 0) {
    fail(line, 'expected "<pcr> <template-hash> <template> <fields>"');
  }
  const pcr = parsePcr(line, text.slice(0, s1));
  const templateHash = decodeHex(line, 'template hash', text.slice(s1 + 1, s2));
  const templateName = text.slice(s2 + 1, s3);
  if (!isImaTemplateName(templateName)) {
    fail(line, `unknown template "${templateName}"`);
  }
  if (templateName === 'ima-ng') {
    return parseImaNg(text, line, pcr, templateHash, s3);
  }
  const rest = text.slice(s3 + 1);
  return templateName === 'ima'
    ? parseLegacyIma(rest, line, pcr, templateHash)
    : parseExtended(rest, line, pcr, templateHash, templateName);
}

/** `ima-ng`, the common case, without intermediate arrays: `<alg>:<hex> <path>`. */
function parseImaNg(text: string, line: number, pcr: number, templateHash: Buffer, s3: number): UntrustedImaEntry {
  const s4 = text.indexOf(' ', s3 + 1);
  if (s4 < 0 || text.indexOf(' ', s4 + 1) >= 0) {
    fail(line, `template ima-ng has 2 field(s), got ${text.slice(s3 + 1).split(' ').length}`);
  }
  const { algorithm, hex } = splitDigestNg(line, text.slice(s3 + 1, s4));
  const path = text.slice(s4 + 1);
  const algBytes = Buffer.byteLength(algorithm, 'utf8');
  const nameBytes = Buffer.byteLength(path, 'utf8');
  const writer = new TemplateDataWriter(Buffer.allocUnsafe(digestNgSize(algBytes, hex.length / 2) + nameNgSize(nameBytes)));
  if (!writer.digestNg(algorithm, algBytes, hex)) {
    fail(line, `digest "${algorithm}:${hex}" is not hex`);
  }
  writer.nameNg(path, nameBytes);
  return makeImaEntry(line, pcr, templateHash, 'ima-ng', digestOf(algorithm, hex), path, NO_FIELDS, writer.data);
}

/** The legacy `ima` template: `<sha1 hex> <path>`, name padded to 256 bytes. */
function parseLegacyIma(rest: string, line: number, pcr: number, templateHash: Buffer): UntrustedImaEntry {
  const [digestHex = '', path = ''] = splitFields(line, 'ima', rest, 2);
  if (digestHex.length !== 40 && digestHex.length !== 32) {
    fail(line, `template ima needs a 20-byte sha1 (or 16-byte md5) digest, got "${digestHex}"`);
  }
  const nameBytes = Buffer.byteLength(path, 'utf8');
  if (nameBytes > LEGACY_NAME_MAX) {
    fail(line, `template ima holds names of at most ${LEGACY_NAME_MAX} bytes, got ${nameBytes}`);
  }
  const writer = new TemplateDataWriter(Buffer.allocUnsafe(digestHex.length / 2 + LEGACY_NAME_FIELD_SIZE));
  if (!writer.legacyDigest(digestHex)) {
    fail(line, `digest "${digestHex}" is not hex`);
  }
  writer.legacyName(path);
  const digest = digestOf(digestHex.length === 40 ? 'sha1' : 'md5', digestHex);
  return makeImaEntry(line, pcr, templateHash, 'ima', digest, path, NO_FIELDS, writer.data);
}

/** `ima-sig`, `ima-buf` (three fields) and `ima-modsig` (five). */
function parseExtended(
  rest: string,
  line: number,
  pcr: number,
  templateHash: Buffer,
  templateName: 'ima-sig' | 'ima-buf' | 'ima-modsig',
): UntrustedImaEntry {
  const modsigTemplate = templateName === 'ima-modsig';
  const fields = splitFields(line, templateName, rest, modsigTemplate ? 5 : 3);
  const { algorithm, hex } = splitDigestNg(line, fields[0] ?? '');
  const path = fields[1] ?? '';
  const third = fields[2] ?? '';
  const dModsig = fields[3] ?? '';
  const modsigHex = fields[4] ?? '';
  const algBytes = Buffer.byteLength(algorithm, 'utf8');
  const nameBytes = Buffer.byteLength(path, 'utf8');
  let size = digestNgSize(algBytes, hex.length / 2) + nameNgSize(nameBytes) + 4 + third.length / 2;
  const modsigDigest = modsigTemplate && dModsig.length > 0 ? splitDigestNg(line, dModsig) : undefined;
  if (modsigTemplate) {
    size += modsigDigest === undefined ? 4 : digestNgSize(Buffer.byteLength(modsigDigest.algorithm, 'utf8'), modsigDigest.hex.length / 2);
    size += 4 + modsigHex.length / 2;
  }
  if (!Number.isInteger(size)) {
    fail(line, 'a hex field has an odd number of digits');
  }
  const writer = new TemplateDataWriter(Buffer.allocUnsafe(size));
  if (!writer.digestNg(algorithm, algBytes, hex)) {
    fail(line, `digest "${fields[0] ?? ''}" is not hex`);
  }
  writer.nameNg(path, nameBytes);
  const thirdBytes = writer.sizedHex(third) ?? fail(line, `${templateName === 'ima-buf' ? 'buffer' : 'signature'} is not hex`);
  let modsig: Buffer | undefined;
  if (modsigTemplate) {
    if (modsigDigest === undefined) {
      writer.emptyField();
    } else if (!writer.digestNg(modsigDigest.algorithm, Buffer.byteLength(modsigDigest.algorithm, 'utf8'), modsigDigest.hex)) {
      fail(line, 'd-modsig digest is not hex');
    }
    modsig = writer.sizedHex(modsigHex) ?? fail(line, 'modsig is not hex');
  }
  const extra =
    templateName === 'ima-buf'
      ? { buffer: thirdBytes }
      : {
          signature: thirdBytes,
          ...(modsigDigest === undefined ? {} : { modsigDigest: digestOf(modsigDigest.algorithm, modsigDigest.hex) }),
          ...(modsig === undefined ? {} : { modsig }),
        };
  return makeImaEntry(line, pcr, templateHash, templateName, digestOf(algorithm, hex), path, extra, writer.data);
}

/**
 * Splits an ASCII list into its entry lines. A final newline ends the last entry; any other empty
 * line is kept (and refused by the parser): the kernel never writes one.
 */
export function splitImaAsciiLines(text: string): string[] {
  if (text.length === 0) {
    return [];
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') {
    lines.pop();
  }
  return lines;
}

/**
 * Parses a whole ASCII list read from its beginning. The list is never empty on a running system
 * (its first entry is `boot_aggregate`), so an empty text is refused, as the Rust agent does.
 *
 * @throws ImaParseError naming the first malformed line.
 */
export function parseImaAsciiList(text: string): UntrustedImaEntry[] {
  const lines = splitImaAsciiLines(text);
  if (lines.length === 0) {
    throw new ImaParseError('the measurement list is empty', 0, ['ima ascii list']);
  }
  return lines.map((line, index) => {
    if (line.length === 0) {
      fail(index + 1, 'empty line');
    }
    return parseImaAsciiLine(line, index + 1);
  });
}
