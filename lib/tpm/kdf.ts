import { createHash, createHmac } from 'node:crypto';
import { resolveHash, type TpmHashInfo } from './constants.js';
import { TpmKeyError } from './tpm-errors.js';

/**
 * The two key-derivation functions of TPM 2.0 Part 1 §11.4.10. Labels are written with a trailing
 * zero byte, as the TPM does for a label that lacks one (Part 1 §11.4.10.1, note 2).
 */

function hashOf(alg: number | string): TpmHashInfo {
  const hash = resolveHash(alg);
  if (hash === undefined) {
    throw new TpmKeyError(`unknown KDF hash ${String(alg)}`);
  }
  return hash;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

function labelBytes(label: string): Uint8Array {
  return new Uint8Array(Buffer.from(`${label}\0`, 'latin1'));
}

function truncateBits(out: Uint8Array, bits: number): Uint8Array {
  const bytes = out.subarray(0, Math.ceil(bits / 8));
  if (bits % 8 !== 0) {
    // Part 1 §11.4.10.2: unused high bits of the first byte are cleared.
    bytes[0] = (bytes[0] ?? 0) & ((1 << (bits % 8)) - 1);
  }
  return bytes;
}

/** The counter loop both KDFs share: block(i as u32) for i = 1, 2, …, concatenated and cut to `bits`. */
function counterMode(hash: TpmHashInfo, bits: number, block: (counter: Uint8Array) => Uint8Array): Uint8Array {
  const blocks = Math.ceil(bits / 8 / hash.digestSize);
  const out = new Uint8Array(blocks * hash.digestSize);
  for (let i = 1; i <= blocks; i += 1) {
    out.set(block(u32(i)), (i - 1) * hash.digestSize);
  }
  return truncateBits(out, bits);
}

/**
 * KDFa (Part 1 §11.4.10.2): SP 800-108 counter mode with HMAC-H.
 * K(i) = HMAC_key(i as u32 ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ bits as u32), i = 1, 2, …, concatenated
 * and cut to `bits`.
 */
export function kdfa(
  hashAlg: number | string,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Uint8Array {
  const hash = hashOf(hashAlg);
  const labelZ = labelBytes(label);
  const bitsU32 = u32(bits);
  return counterMode(hash, bits, (counter) =>
    createHmac(hash.nodeName, key).update(counter).update(labelZ).update(contextU).update(contextV).update(bitsU32).digest());
}

/**
 * KDFe (Part 1 §11.4.10.3): SP 800-56A concatenation KDF with hash H.
 * K(i) = H(i as u32 ‖ Z ‖ label ‖ 0x00 ‖ partyUInfo ‖ partyVInfo), i = 1, 2, …, cut to `bits`.
 * For MakeCredential Z is the ECDH x-coordinate and partyU/partyV the ephemeral and EK x-coordinates.
 */
export function kdfe(
  hashAlg: number | string,
  z: Uint8Array,
  label: string,
  partyUInfo: Uint8Array,
  partyVInfo: Uint8Array,
  bits: number,
): Uint8Array {
  const hash = hashOf(hashAlg);
  const labelZ = labelBytes(label);
  return counterMode(hash, bits, (counter) =>
    createHash(hash.nodeName).update(counter).update(z).update(labelZ).update(partyUInfo).update(partyVInfo).digest());
}
