import { LittleEndianReader } from '../../bytes/byte-reader.js';
import { EventLogParseError } from '../../bytes/parse-errors.js';
import type { SpecIdEvent } from '../event-log.js';
import {
  knownHashAlgorithm,
  unknownHashAlgorithm,
  type HashAlgorithm,
} from './hash-algorithms.js';

/** Signature prefix shared by every `TCG_EfiSpecIdEvent*` structure (16-byte field, NUL padded). */
const SPEC_ID_PREFIX = 'Spec ID Event';
/** The crypto-agile signature (TCG PC Client PFP §10.4.5.1). */
export const SPEC_ID_EVENT03 = 'Spec ID Event03';
/** TPM 1.2-era signatures of a SHA1-format log (TCG EFI Protocol 1.22 §7.4 / PC Client 1.21). */
const SHA1_FORMAT_SIGNATURES = new Set(['Spec ID Event00', 'Spec ID Event02']);

/** An upper bound far above any real TPM (which has at most a handful of banks). */
const MAX_ALGORITHMS = 32;
/** The largest digest a TPM bank can have (TPMU_HA is 64 bytes for SHA-512). */
const MAX_DIGEST_SIZE = 64;

/** What the data of a log's first EV_NO_ACTION event says about the log format. */
export type SpecIdKind = 'crypto-agile' | 'sha1' | 'none';

/**
 * Classifies the data of the first event: `Spec ID Event03` makes the log crypto-agile, the TPM 1.2
 * signatures keep it SHA1-format, other data (e.g. a `StartupLocality` event) is not a Spec ID
 * event at all. Any other `Spec ID Event…` signature is refused: we cannot know its layout.
 */
export function classifySpecId(data: Uint8Array, offset: number): SpecIdKind {
  if (data.length < 16) {
    return 'none';
  }
  const signature = nulTerminatedAscii(data.subarray(0, 16));
  if (!signature.startsWith(SPEC_ID_PREFIX)) {
    return 'none';
  }
  if (signature === SPEC_ID_EVENT03) {
    return 'crypto-agile';
  }
  if (SHA1_FORMAT_SIGNATURES.has(signature)) {
    return 'sha1';
  }
  throw new EventLogParseError(`unknown Spec ID signature ${JSON.stringify(signature)}`, offset, [
    'TCG_EfiSpecIDEvent',
  ]);
}

/**
 * Parses `TCG_EfiSpecIDEventStruct` (PFP §10.4.5.1):
 * `signature[16] | platformClass u32 | specVersionMinor u8 | specVersionMajor u8 | specErrata u8 |
 * uintnSize u8 | numberOfAlgorithms u32 | {algorithmId u16, digestSize u16}[n] | vendorInfoSize u8 |
 * vendorInfo[vendorInfoSize]`, all little-endian, and nothing after it.
 */
export function parseSpecIdEvent(data: Uint8Array): SpecIdEvent {
  const r = new LittleEndianReader(data, EventLogParseError);
  return r.struct('TCG_EfiSpecIDEvent', () => {
    const signature = nulTerminatedAscii(r.bytesOf(16));
    if (signature !== SPEC_ID_EVENT03) {
      throw r.error(`signature is ${JSON.stringify(signature)}, expected "${SPEC_ID_EVENT03}"`);
    }
    const platformClass = r.u32();
    const specVersionMinor = r.u8();
    const specVersionMajor = r.u8();
    const specErrata = r.u8();
    const uintnSize = r.u8();
    const count = r.u32();
    if (count === 0 || count > MAX_ALGORITHMS) {
      throw r.error(`numberOfAlgorithms ${count} is not in 1..${MAX_ALGORITHMS}`);
    }
    const algorithms: HashAlgorithm[] = [];
    for (let i = 0; i < count; i++) {
      algorithms.push(r.struct(`digestSizes[${i}]`, () => readAlgorithm(r, algorithms)));
    }
    const vendorInfo = r.bytesOf(r.u8());
    r.finish();
    return {
      signature,
      platformClass,
      specVersionMajor,
      specVersionMinor,
      specErrata,
      uintnSize,
      algorithms,
      vendorInfo,
    };
  });
}

function readAlgorithm(r: LittleEndianReader, seen: readonly HashAlgorithm[]): HashAlgorithm {
  const algId = r.u16();
  const digestSize = r.u16();
  if (seen.some((alg) => alg.algId === algId)) {
    throw r.error(`algorithm 0x${algId.toString(16)} is listed twice`);
  }
  if (digestSize === 0 || digestSize > MAX_DIGEST_SIZE) {
    throw r.error(`digest size ${digestSize} is not in 1..${MAX_DIGEST_SIZE}`);
  }
  const known = knownHashAlgorithm(algId);
  if (known === undefined) {
    return unknownHashAlgorithm(algId, digestSize);
  }
  if (known.digestSize !== digestSize) {
    throw r.error(`${known.name} digest size is ${digestSize}, the algorithm registry says ${known.digestSize}`);
  }
  return known;
}

/** ASCII up to the first NUL (or the whole field). */
function nulTerminatedAscii(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return String.fromCharCode(...bytes.subarray(0, end === -1 ? bytes.length : end));
}
