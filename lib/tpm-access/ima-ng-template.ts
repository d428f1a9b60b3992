import { createHash } from 'node:crypto';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { LittleEndianWriter } from '../bytes/byte-writer.js';
import { IMA_PCR } from '../tpm/keylime-profile.js';
import type { TpmHashAlgorithm } from './tpm-port.js';

/**
 * One ima-ng measurement as the kernel produces it (Linux `security/integrity/ima/ima_template_lib.c`,
 * Keylime spec §7.6): the template data, its SHA-1 template hash (the hash shown in the ASCII log),
 * and the line of `ascii_runtime_measurements`.
 */
export interface ImaNgEntry {
  /** `d-ng ‖ n-ng`: what each PCR bank hashes and extends. */
  templateData: Uint8Array;
  /** SHA-1 of the template data, as logged (all zeros for a violation). */
  templateHash: Uint8Array;
  /** `10 <template hash> ima-ng <alg>:<file digest> <path>` without the newline. */
  line: string;
  /** True for a violation entry (ToMToU / open-writers): PCR 10 is extended with 0xFF… instead. */
  violation: boolean;
}

/**
 * ima-ng template data: `d-ng` = u32le(len(alg) + 2 + len(digest)) ‖ alg ‖ ':' ‖ 0x00 ‖ digest, then
 * `n-ng` = u32le(len(path) + 1) ‖ path ‖ 0x00 (lengths little-endian, the kernel's native order on x86).
 */
export function imaNgTemplateData(fileDigestAlg: TpmHashAlgorithm, fileDigest: Uint8Array, path: string): Uint8Array {
  const alg = Buffer.from(fileDigestAlg, 'ascii');
  const name = Buffer.from(path, 'utf8');
  return new LittleEndianWriter()
    .u32(alg.length + 2 + fileDigest.length)
    .bytes(alg)
    .u8(0x3a)
    .u8(0x00)
    .bytes(fileDigest)
    .u32(name.length + 1)
    .bytes(name)
    .u8(0x00)
    .finish();
}

/** A measurement of `path` whose content hashes to `fileDigest` with `fileDigestAlg`. */
export function imaNgEntry(fileDigestAlg: TpmHashAlgorithm, fileDigest: Uint8Array, path: string): ImaNgEntry {
  checkPath(path);
  const templateData = imaNgTemplateData(fileDigestAlg, fileDigest, path);
  const templateHash = new Uint8Array(createHash('sha1').update(templateData).digest());
  return { templateData, templateHash, line: formatLine(templateHash, fileDigestAlg, fileDigest, path), violation: false };
}

/**
 * A violation entry (file opened for write while measured, or measured while open for write): the
 * kernel logs a zero template hash and zero file digest and extends every bank with 0xFF…
 * (`ima_add_violation`, Keylime spec §7.6 [!]).
 */
export function imaNgViolation(fileDigestAlg: TpmHashAlgorithm, digestSize: number, path: string): ImaNgEntry {
  checkPath(path);
  const zeros = new Uint8Array(digestSize);
  const templateHash = new Uint8Array(20);
  return {
    templateData: imaNgTemplateData(fileDigestAlg, zeros, path),
    templateHash,
    line: formatLine(templateHash, fileDigestAlg, zeros, path),
    violation: true,
  };
}

/** What `entry` extends into PCR 10 of `bank`: H_bank(template data), or 0xFF… for a violation. */
export function imaExtendDigest(entry: ImaNgEntry, bank: TpmHashAlgorithm, digestSize: number): Uint8Array {
  if (entry.violation) {
    return new Uint8Array(digestSize).fill(0xff);
  }
  return new Uint8Array(createHash(bank).update(entry.templateData).digest());
}

function formatLine(templateHash: Uint8Array, alg: TpmHashAlgorithm, fileDigest: Uint8Array, path: string): string {
  const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
  return `${IMA_PCR} ${hex(templateHash)} ima-ng ${alg}:${hex(fileDigest)} ${path}`;
}

/** A path with a line break would forge a second log line. */
function checkPath(path: string): void {
  if (path.length === 0 || /[\r\n]/.test(path)) {
    throw new InvalidParameterValue('path', `an IMA path must be non-empty and on one line: ${JSON.stringify(path)}`);
  }
}
