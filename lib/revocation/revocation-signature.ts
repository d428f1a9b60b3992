import { constants, createPublicKey, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { InvalidConfig } from '../../interfaces/errors.js';
import { validityOf, validityProblem, type CertificateValidity } from '../pki/certificate-validity.js';
import type { RevocationEnvelope, RevocationMessage } from './revocation-message.js';

export type RevocationCheck =
  | { readonly ok: true; readonly message: RevocationMessage }
  | { readonly ok: false; readonly reason: string };

/** The validity of each key read from a certificate (`revocationVerifyKey`), checked again on every message. */
const certificateValidity = new WeakMap<KeyObject, CertificateValidity>();

/**
 * The key revocation messages must be signed with, from the `RevocationNotifier-cert.crt` the tenant
 * made (or a public key PEM). A certificate not valid at `nowMs` (expired, or not yet valid) is
 * refused; a valid one's key is refused by `checkRevocationEnvelope` once the certificate expires.
 * @throws InvalidConfig
 */
export function revocationVerifyKey(pem: string, nowMs = Date.now()): KeyObject {
  let key: KeyObject;
  let validity: CertificateValidity | undefined;
  try {
    if (pem.includes('-----BEGIN CERTIFICATE-----')) {
      const certificate = new X509Certificate(pem);
      key = certificate.publicKey;
      validity = validityOf(certificate);
    } else {
      key = createPublicKey(pem);
    }
    if (key.asymmetricKeyType !== 'rsa') {
      throw new Error('not RSA');
    }
  } catch (cause) {
    throw new InvalidConfig('revocationCert', 'must be an RSA certificate or public key PEM', { cause });
  }
  if (validity !== undefined) {
    const problem = validityProblem(validity, nowMs);
    if (problem !== undefined) throw new InvalidConfig('revocationCert', `the revocation certificate is ${problem}`);
    certificateValidity.set(key, validity);
  }
  return key;
}

const MAX_MSG = 1024 * 1024;

/**
 * Checks a revocation envelope: a non-empty RSA-PSS (SHA-256, MGF1-SHA-256, any salt length up to the
 * maximum, as Keylime's agent verifies) signature by `key` over the exact `msg` bytes, then a message
 * of the expected shape. Unsigned, forged or malformed messages are refused; nothing is parsed before
 * the signature holds, nor after the certificate `key` came from has expired (`revocationVerifyKey`).
 */
export function checkRevocationEnvelope(envelope: RevocationEnvelope, key: KeyObject, nowMs = Date.now()): RevocationCheck {
  if (typeof envelope.msg !== 'string' || typeof envelope.signature !== 'string' || envelope.msg.length > MAX_MSG) {
    return { ok: false, reason: 'not a revocation envelope' };
  }
  const validity = certificateValidity.get(key);
  const problem = validity === undefined ? undefined : validityProblem(validity, nowMs);
  if (problem !== undefined) {
    return { ok: false, reason: `the revocation certificate is ${problem}: no message is trusted` };
  }
  if (envelope.signature === '') {
    return { ok: false, reason: 'unsigned revocation message' };
  }
  const signature = Buffer.from(envelope.signature, 'base64');
  const valid = verify('sha256', Buffer.from(envelope.msg, 'utf8'), {
    key,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_AUTO,
  }, signature);
  if (!valid) {
    return { ok: false, reason: 'revocation message signature is invalid' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(envelope.msg);
  } catch {
    return { ok: false, reason: 'revocation message is not JSON' };
  }
  const record = parsed as Record<string, unknown>;
  if (parsed === null || typeof parsed !== 'object' || typeof record['agent_id'] !== 'string' || typeof record['type'] !== 'string') {
    return { ok: false, reason: 'revocation message lacks type or agent_id' };
  }
  // The two types Keylime's verifier sends; anything else, even signed, runs no action.
  if (record['type'] !== 'revocation' && record['type'] !== 'comm_error') {
    return { ok: false, reason: 'revocation message has an unknown type' };
  }
  return { ok: true, message: parsed as RevocationMessage };
}
