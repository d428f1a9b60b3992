import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { PolicySignatureError, RuntimePolicyError } from './internal/runtime-policy-error.js';

/**
 * DSSE envelopes around runtime policies (secure-systems-lab DSSE v1; Keylime `signing.py` /
 * `keylime-policy sign`): `{"payload": b64, "payloadType": "application/vnd.keylime+json",
 * "signatures": [{"keyid", "sig"}]}`, each `sig` a base64 DER ECDSA signature (SHA-256) over
 * PAE = `"DSSEv1 " len(type) " " type " " len(payload) " " payload` (lengths in ASCII decimal bytes).
 */

export const KEYLIME_POLICY_PAYLOAD_TYPE = 'application/vnd.keylime+json';

export interface DsseEnvelope {
  readonly payload: string;
  readonly payloadType: string;
  readonly signatures: ReadonlyArray<{ readonly keyid?: string; readonly sig: string }>;
}

/** True when `value` has the shape of a DSSE envelope (not yet verified). */
export function isDsseEnvelope(value: unknown): value is DsseEnvelope {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const v = value as Record<string, unknown>;
  return (
    typeof v['payload'] === 'string' &&
    typeof v['payloadType'] === 'string' &&
    Array.isArray(v['signatures']) &&
    v['signatures'].every((s: unknown) => typeof s === 'object' && s !== null && typeof (s as Record<string, unknown>)['sig'] === 'string')
  );
}

/** DSSE pre-authentication encoding. */
export function dssePae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/**
 * Loads the verification key: a PEM public key or a PEM X.509 certificate (its key is used).
 *
 * @throws PolicySignatureError when the text holds neither.
 */
export function loadPolicyVerificationKey(pem: string): KeyObject {
  try {
    return createPublicKey(pem);
  } catch (error) {
    throw new PolicySignatureError('the key is not a PEM public key or certificate', { cause: error });
  }
}

/**
 * Verifies a Keylime DSSE envelope with `key` (ECDSA P-256 / SHA-256, as Keylime signs) and returns
 * the payload bytes. One valid signature suffices; `keyid` is not relied on.
 *
 * @throws PolicySignatureError when no signature verifies; RuntimePolicyError when the payload
 *   type is not Keylime's.
 */
export function verifyDsseEnvelope(envelope: DsseEnvelope, key: KeyObject): Buffer {
  if (envelope.payloadType !== KEYLIME_POLICY_PAYLOAD_TYPE) {
    throw new RuntimePolicyError('payloadType', `must be ${KEYLIME_POLICY_PAYLOAD_TYPE}, got ${JSON.stringify(envelope.payloadType)}`);
  }
  const payload = Buffer.from(envelope.payload, 'base64');
  const pae = dssePae(envelope.payloadType, payload);
  const verified = envelope.signatures.some((signature) => {
    try {
      return verify('sha256', pae, key, Buffer.from(signature.sig, 'base64'));
    } catch {
      return false;
    }
  });
  if (!verified) {
    throw new PolicySignatureError('Runtime policy failed DSSE signature verification');
  }
  return payload;
}
