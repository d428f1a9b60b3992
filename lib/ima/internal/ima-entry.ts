/**
 * One entry of an IMA measurement list, as parsed from the ASCII list
 * (`/sys/kernel/security/ima/ascii_runtime_measurements`) or the binary one
 * (`binary_runtime_measurements`). Templates and field encodings: kernel
 * `security/integrity/ima/ima_template.c`, `ima_template_lib.c`; Documentation/security/IMA-templates.rst.
 *
 * The type is "untrusted": nothing in it has been checked. The template hash covers `templateData`
 * only — not the PCR index, not the template name — so a verifier must recompute the hash
 * (`verifyImaList` does) before it relies on any field, and must treat the template name as a claim
 * about how the data is laid out (the parsers accept a name only when the data decodes exactly as
 * that template's fields).
 */

/** The templates we parse. Keylime parses the first four; `ima-modsig` is ours (see docs/ima.md). */
export const IMA_TEMPLATE_NAMES = ['ima', 'ima-ng', 'ima-sig', 'ima-buf', 'ima-modsig'] as const;
export type ImaTemplateName = (typeof IMA_TEMPLATE_NAMES)[number];

export function isImaTemplateName(name: string): name is ImaTemplateName {
  return (IMA_TEMPLATE_NAMES as readonly string[]).includes(name);
}

/** A file digest (`d` or `d-ng` field): algorithm name as logged and the digest bytes. */
export interface ImaDigest {
  /** As logged (`sha256`, `sha1`, …); for the legacy `ima` template, `sha1` or `md5` by size. */
  readonly algorithm: string;
  /** Lowercase hex of the digest. */
  readonly hex: string;
}

export interface UntrustedImaEntry {
  /** 1-based position of the entry in the whole measurement list. */
  readonly line: number;
  /** PCR index the kernel says it extended. */
  readonly pcr: number;
  /** The template hash as logged (sha1 in the classic lists; see `log_hash_alg`). */
  readonly templateHash: Buffer;
  readonly templateName: ImaTemplateName;
  /** `d` / `d-ng`: the file (or buffer) digest. */
  readonly digest: ImaDigest;
  /** `n` / `n-ng`: file path, or buffer/keyring name for `ima-buf`. */
  readonly path: string;
  /** `sig` of `ima-sig` / `ima-modsig`; empty when the file had no `security.ima` signature. */
  readonly signature: Buffer;
  /** `buf` of `ima-buf`; empty for other templates. */
  readonly buffer: Buffer;
  /** `d-modsig` of `ima-modsig`, when the file carried an appended signature. */
  readonly modsigDigest: ImaDigest | undefined;
  /** `modsig` of `ima-modsig`: the appended PKCS#7 signature; empty when absent. */
  readonly modsig: Buffer;
  /** The exact template data the template hash is computed over. */
  readonly templateData: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** An empty byte field, shared so absent fields cost nothing. */
export function emptyField(): Buffer {
  return EMPTY;
}

/**
 * Every entry of both parsers is built here, with its fields in one order, so all entries share one
 * object shape.
 */
export function makeImaEntry(
  line: number,
  pcr: number,
  templateHash: Buffer,
  templateName: ImaTemplateName,
  digest: ImaDigest,
  path: string,
  fields: { signature?: Buffer; buffer?: Buffer; modsigDigest?: ImaDigest; modsig?: Buffer },
  templateData: Buffer,
): UntrustedImaEntry {
  return {
    line,
    pcr,
    templateHash,
    templateName,
    digest,
    path,
    signature: fields.signature ?? emptyField(),
    buffer: fields.buffer ?? emptyField(),
    modsigDigest: fields.modsigDigest,
    modsig: fields.modsig ?? emptyField(),
    templateData,
  };
}

/** No template fields beyond the digest and the path (`ima`, `ima-ng`). */
export const NO_FIELDS = Object.freeze({});

/** Formats a digest as the kernel prints a `d-ng` field: `alg:hex`. */
function digestNgText(digest: ImaDigest): string {
  return `${digest.algorithm}:${digest.hex}`;
}

/**
 * The entry as one line of the ASCII list, byte for byte as the kernel prints it
 * (`ima_ascii_measurements_show`: each field is preceded by a space, empty fields print nothing,
 * which is why an unsigned `ima-sig` line ends with a space).
 */
export function formatImaAsciiLine(entry: UntrustedImaEntry): string {
  const head = `${entry.pcr} ${entry.templateHash.toString('hex')} ${entry.templateName}`;
  switch (entry.templateName) {
    case 'ima':
      return `${head} ${entry.digest.hex} ${entry.path}`;
    case 'ima-ng':
      return `${head} ${digestNgText(entry.digest)} ${entry.path}`;
    case 'ima-sig':
      return `${head} ${digestNgText(entry.digest)} ${entry.path} ${entry.signature.toString('hex')}`;
    case 'ima-buf':
      return `${head} ${digestNgText(entry.digest)} ${entry.path} ${entry.buffer.toString('hex')}`;
    case 'ima-modsig': {
      const modsigDigest = entry.modsigDigest === undefined ? '' : digestNgText(entry.modsigDigest);
      return (
        `${head} ${digestNgText(entry.digest)} ${entry.path} ${entry.signature.toString('hex')} ` +
        `${modsigDigest} ${entry.modsig.toString('hex')}`
      );
    }
  }
}
