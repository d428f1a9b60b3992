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
  const blocks = Math.ceil(bits / 8 / hash.digestSize);
  const out = new Uint8Array(blocks * hash.digestSize);
  const tail = [labelBytes(label), contextU, contextV, u32(bits)];
  for (let i = 1; i <= blocks; i += 1) {
    const hmac = createHmac(hash.nodeName, key).update(u32(i));
    for (const part of tail) {
      hmac.update(part);
    }
    out.set(hmac.digest(), (i - 1) * hash.digestSize);
  }
  return truncateBits(out, bits);
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
  const blocks = Math.ceil(bits / 8 / hash.digestSize);
  const out = new Uint8Array(blocks * hash.digestSize);
  const tail = [z, labelBytes(label), partyUInfo, partyVInfo];
  for (let i = 1; i <= blocks; i += 1) {
    const h = createHash(hash.nodeName).update(u32(i));
    for (const part of tail) {
      h.update(part);
    }
    out.set(h.digest(), (i - 1) * hash.digestSize);
  }
  return truncateBits(out, bits);
}
