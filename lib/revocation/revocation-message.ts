import { constants, createPrivateKey, sign } from 'node:crypto';
import { InvalidParameterValue } from '../../interfaces/errors.js';

/**
 * A Keylime revocation message (keylime `cloud_verifier_common.prepare_error`, spec §9.2): the JSON
 * object whose text travels as `msg`.
 */
export interface RevocationMessage {
  /** `revocation` (the agent failed attestation) or `comm_error` (a good agent became unreachable). */
  readonly type: 'revocation' | 'comm_error';
  readonly ip: string | null;
  readonly agent_id: string;
  readonly port: number | null;
  /** The agent's `tpm_policy` JSON text. */
  readonly tpm_policy: string;
  /** The agent's `metadata` JSON text (`{"cert_serial", "subject"}` in cert mode). */
  readonly meta_data: string;
  /** `time.asctime()` of the event, e.g. `Wed Dec  2 18:26:00 2026`. */
  readonly event_time: string;
  readonly event_id: string;
  readonly severity_label: string;
  readonly context: string;
}

/** The signed envelope POSTed to agents and webhooks: `msg` JSON text, `signature` base64 (or "" unsigned). */
export interface RevocationEnvelope {
  readonly msg: string;
  readonly signature: string;
}

/**
 * Signs `message` as Keylime does: RSA-PSS, SHA-256, MGF1-SHA-256, maximum salt length, over the UTF-8
 * bytes of `msg` (keylime `crypto.rsa_sign`). Without a key the signature is "" (Keylime sends such
 * messages; our agents refuse them).
 *
 * @throws InvalidParameterValue when `revocationKeyPem` is not an RSA private key.
 */
export function signRevocation(message: RevocationMessage, revocationKeyPem: string): RevocationEnvelope {
  const msg = JSON.stringify(message);
  if (revocationKeyPem.trim() === '') {
    return { msg, signature: '' };
  }
  let key;
  try {
    key = createPrivateKey(revocationKeyPem);
  } catch (cause) {
    throw new InvalidParameterValue('revocation_key', 'is not a private key PEM', { cause });
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new InvalidParameterValue('revocation_key', 'must be an RSA private key');
  }
  const signature = sign('sha256', Buffer.from(msg, 'utf8'), {
    key,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
  });
  return { msg, signature: signature.toString('base64') };
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Python's `time.asctime()` of a Unix-milliseconds time, in UTC: `Wed Dec  2 18:26:00 2026`. */
export function asctime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}
