import { randomUUID, webcrypto, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, SignJWT } from 'jose';
import type { TrustworthinessVector } from './tpm-evidence.js';

/** EAR profile of trustee's attestation service (`attestation-service/docs/example.token.json`). */
export const EAR_PROFILE = 'tag:github.com,2024:confidential-containers/Trustee';
/** The one signing algorithm of EAR tokens, issued and accepted. */
export const EAR_ALG = 'ES256';
/** The submodule our evidence is appraised under (trustee uses `cpu0` for the primary TEE). */
export const EAR_SUBMOD = 'cpu0';

/**
 * The `kid` of a token key: its RFC 7638 JWK thumbprint (SHA-256). The issuer puts it in every token's
 * header and the published JWKS gives it to the key, where a trustee resource KBS looks keys up by it.
 */
export function tokenKeyId(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as { kty: string });
}

export interface EarTokenInput {
  readonly agentId: string;
  /** base64 TPM2B_PUBLIC of the AK that signed the quote (lets a resource broker check good standing). */
  readonly akTpm: string | null;
  readonly teePubkey: Readonly<Record<string, unknown>>;
  readonly vector: TrustworthinessVector;
  /** Verified PCR values (hex by PCR number) of the quote. */
  readonly pcrs: Readonly<Record<string, string>>;
  /** base64 of the report data the quote carried. */
  readonly reportData: string;
  /** Unix seconds. */
  readonly now: number;
}

export interface EarTokenIssuerOptions {
  /** `iss` of every token. */
  readonly issuer: string;
  /** `aud`, when the tokens are meant for named brokers only. */
  readonly audience?: string;
  readonly lifetimeSeconds: number;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Issues EAR attestation tokens (draft-ietf-rats-ear; trustee's claim layout): ES256 JWTs with `iss`,
 * `sub` (the agent id), `iat`, `nbf`, `exp` (short lifetime), `jti`, `eat_profile`, `ear.verifier-id`,
 * and `submods.cpu0` carrying `ear.status` (always `affirming`: only passing evidence gets a token),
 * the trustworthiness vector and the annotated evidence with the tee-pubkey the resource is wrapped to.
 * The header names the key by `kid` (its JWK thumbprint) and never embeds it: a checker trusts only keys
 * it was configured with.
 */
export class EarTokenIssuer {
  private kid: string | undefined;
  /**
   * The private key imported once as the WebCrypto key jose signs with: given the `KeyObject`, jose 6
   * on Node 20 (no `KeyObject.toCryptoKey`) checks and maps it to its cached `CryptoKey` on every call,
   * ≈ 30–45 µs more per ES256 signature (paired micro-benchmark, docs/broker.md fourth pass).
   */
  private signingKey: webcrypto.CryptoKey | undefined;

  constructor(private readonly options: EarTokenIssuerOptions) {}

  async issue(input: EarTokenInput): Promise<string> {
    this.kid ??= await tokenKeyId(this.options.publicKey);
    this.signingKey ??= await webcrypto.subtle.importKey('jwk', this.options.privateKey.export({ format: 'jwk' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    const claims = {
      eat_profile: EAR_PROFILE,
      'ear.verifier-id': { developer: 'https://github.com/ironlime', build: 'ironlime-broker' },
      submods: {
        [EAR_SUBMOD]: {
          'ear.status': 'affirming',
          'ear.trustworthiness-vector': input.vector,
          'ear.appraisal-policy-id': 'ironlime-node-policy',
          'ear.veraison.annotated-evidence': {
            tpm: { agent_id: input.agentId, ak_tpm: input.akTpm, pcrs: input.pcrs },
            report_data: input.reportData,
            runtime_data_claims: { 'tee-pubkey': input.teePubkey },
          },
        },
      },
    };
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: EAR_ALG, typ: 'JWT', kid: this.kid })
      .setIssuer(this.options.issuer)
      .setSubject(input.agentId)
      .setIssuedAt(input.now)
      .setNotBefore(input.now)
      .setExpirationTime(input.now + this.options.lifetimeSeconds)
      .setJti(randomUUID());
    if (this.options.audience !== undefined) {
      jwt.setAudience(this.options.audience);
    }
    return jwt.sign(this.signingKey);
  }
}
