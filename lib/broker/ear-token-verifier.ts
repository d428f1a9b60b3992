import { createHash, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { BoundedCache } from '../cache/bounded-cache.js';
import { KbsError } from './kbs-errors.js';
import { EAR_ALG, EAR_SUBMOD, tokenKeyId } from './ear-token.js';
import { parseTeePublicKey, type TeePublicKey } from './tee-public-key.js';
import type { AppraisedVector } from './resource-policy.js';
import type { TrustedIssuer } from './trusted-issuers.js';
import { validityProblem } from '../pki/certificate-validity.js';

/** Accepted clock difference between issuer and checker, in seconds. */
export const TOKEN_CLOCK_SKEW_SECONDS = 30;

/** What a verified token says: who the node is, when it attested and the key its resources go to. */
export interface VerifiedEarToken {
  readonly agentId: string;
  readonly issuer: string;
  /** Unix seconds. */
  readonly issuedAt: number;
  /** The AK the issuer appraised the quote with (`annotated-evidence.tpm.ak_tpm`), when the token says. */
  readonly akTpm: string | null;
  readonly teePubkey: Readonly<Record<string, unknown>>;
  /** The tee-pubkey, checked and imported once per token. */
  readonly teeKey: TeePublicKey;
  /** Unix seconds. */
  readonly expiresAt: number;
  /** Every submodule's `ear.trustworthiness-vector` as the token carries it (undefined when absent), for `required_claims`. */
  readonly vectors: readonly AppraisedVector[];
}

/**
 * Verified tokens kept, so a node fetching several resources with one token pays jose's checks once;
 * the oldest is dropped first. Keyed by the token's SHA-256, so an entry costs the same whatever the
 * token's length.
 */
const CACHE_LIMIT = 10_000;

export interface EarTokenVerifierOptions {
  readonly issuers: readonly TrustedIssuer[];
  /** Required `aud`, when set. */
  readonly audience?: string;
  /** Longest lifetime (`exp - iat`) accepted, in seconds. */
  readonly maxLifetimeSeconds: number;
}

/**
 * Checks a passport token with jose: issuer among the trusted ones (read unverified only to pick the
 * keys, then checked by jose), signature with one of that issuer's keys — only the key whose RFC 7638
 * thumbprint is the header's `kid` when one is (as trustee looks keys up by `kid`), else each of them —
 * algorithm ES256 only (so `none`, HS256 and RS256 tokens fail), `exp`/`nbf`/`iat` present and within
 * `TOKEN_CLOCK_SKEW_SECONDS`, a lifetime no longer than allowed, `aud` when configured, `sub` a
 * non-empty string, every submodule's `ear.status` affirming (trustee's rule) and `submods.cpu0` with a
 * tee-pubkey. Every refusal is a `TokenVerifierError`; the detail says which check failed.
 */
export class EarTokenVerifier {
  private readonly verified = new BoundedCache<string, VerifiedEarToken>(CACHE_LIMIT);
  private readonly keyIds = new WeakMap<KeyObject, Promise<string>>();

  constructor(private readonly options: EarTokenVerifierOptions) {}

  /**
   * As `check`, with a cache of verified tokens keyed by the SHA-256 of the token text: a hit is used
   * only while `exp` (plus the skew) has not passed, then checked again (and refused) by jose. Only the
   * token's own checks are cached: revocation and resource policy are read by the broker on every
   * request, so a revoked node's cached token stops working at once.
   */
  async verify(token: string, nowSeconds = Date.now() / 1000): Promise<VerifiedEarToken> {
    const key = createHash('sha256').update(token, 'utf8').digest('base64');
    const cached = this.verified.get(key);
    if (cached !== undefined) {
      if (nowSeconds < cached.expiresAt + TOKEN_CLOCK_SKEW_SECONDS) {
        this.refuseOutsideValidity(this.options.issuers.find((candidate) => candidate.issuer === cached.issuer), nowSeconds);
        return cached;
      }
      this.verified.delete(key);
    }
    const fresh = await this.check(token, nowSeconds);
    this.verified.set(key, fresh);
    return fresh;
  }

  /** Every check of the token at `nowSeconds` (Unix seconds), nothing cached. */
  async check(token: string, nowSeconds = Date.now() / 1000): Promise<VerifiedEarToken> {
    let unverifiedIssuer: unknown;
    let unverifiedKid: unknown;
    try {
      unverifiedIssuer = decodeJwt(token).iss;
      unverifiedKid = decodeProtectedHeader(token).kid;
    } catch (cause) {
      throw new KbsError('TokenVerifierError', 'token is not a JWT', { cause });
    }
    const trusted = this.options.issuers.find((candidate) => candidate.issuer === unverifiedIssuer);
    if (trusted === undefined) {
      throw new KbsError('TokenVerifierError', 'token issuer is not trusted');
    }
    this.refuseOutsideValidity(trusted, nowSeconds);
    let payload: JWTPayload | undefined;
    let lastError: unknown;
    for (const key of await this.candidateKeys(trusted, unverifiedKid)) {
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [EAR_ALG],
          issuer: trusted.issuer,
          ...(this.options.audience === undefined ? {} : { audience: this.options.audience }),
          clockTolerance: TOKEN_CLOCK_SKEW_SECONDS,
          // Without maxTokenAge jose does not look at iat: with it, an iat later than now (beyond the skew) is refused.
          maxTokenAge: this.options.maxLifetimeSeconds,
          currentDate: new Date(nowSeconds * 1000),
          requiredClaims: ['exp', 'iat', 'nbf', 'sub'],
        }));
        break;
      } catch (error) {
        lastError = error;
        if (!(error instanceof errors.JWSSignatureVerificationFailed)) {
          break;
        }
      }
    }
    if (payload === undefined) {
      throw new KbsError('TokenVerifierError', `token refused: ${reasonOf(lastError)}`, { cause: lastError });
    }
    return this.claims(payload, trusted.issuer);
  }

  /** Refuses the tokens of an issuer trusted through a certificate that is not valid now (expired while running). */
  private refuseOutsideValidity(trusted: TrustedIssuer | undefined, nowSeconds: number): void {
    const problem = trusted?.validity === undefined ? undefined : validityProblem(trusted.validity, nowSeconds * 1000);
    if (problem !== undefined) {
      throw new KbsError('TokenVerifierError', `token issuer ${trusted?.issuer} is no longer trusted: its certificate is ${problem}`);
    }
  }

  /** The issuer's key whose thumbprint is `kid`, when there is one; else all its keys. */
  private async candidateKeys(trusted: TrustedIssuer, kid: unknown): Promise<readonly KeyObject[]> {
    if (typeof kid !== 'string') {
      return trusted.keys;
    }
    const ids = await Promise.all(trusted.keys.map((key) => this.keyId(key)));
    const named = trusted.keys.filter((_key, index) => ids[index] === kid);
    return named.length > 0 ? named : trusted.keys;
  }

  private keyId(key: KeyObject): Promise<string> {
    let id = this.keyIds.get(key);
    if (id === undefined) {
      id = tokenKeyId(key);
      this.keyIds.set(key, id);
    }
    return id;
  }

  private async claims(payload: JWTPayload, issuer: string): Promise<VerifiedEarToken> {
    const iat = payload.iat as number;
    const exp = payload.exp as number;
    // jose checks only that `sub` is present. Revocation, groups and policy are looked up by the agent id
    // as a string: a number or an array there would match no revocation row and skip that check.
    const agentId = payload.sub;
    if (typeof agentId !== 'string' || agentId === '') {
      throw new KbsError('TokenVerifierError', 'token sub must be a non-empty string');
    }
    if (exp - iat > this.options.maxLifetimeSeconds) {
      throw new KbsError('TokenVerifierError', 'token lifetime is longer than allowed');
    }
    const submods = payload['submods'] as Readonly<Record<string, unknown>> | null | undefined;
    const submod = submods?.[EAR_SUBMOD];
    if (typeof submods !== 'object' || submods === null || !isAffirming(submod) || !Object.values(submods).every(isAffirming)) {
      throw new KbsError('TokenVerifierError', 'token does not affirm the node');
    }
    const evidence = (submod as Record<string, unknown>)['ear.veraison.annotated-evidence'] as Record<string, Record<string, unknown>> | undefined;
    const teePubkey = evidence?.['runtime_data_claims']?.['tee-pubkey'];
    if (teePubkey === null || typeof teePubkey !== 'object' || Array.isArray(teePubkey)) {
      throw new KbsError('TokenVerifierError', 'token carries no tee-pubkey');
    }
    let teeKey: TeePublicKey;
    try {
      teeKey = await parseTeePublicKey(teePubkey);
    } catch {
      throw new KbsError('TokenVerifierError', 'token tee-pubkey is unusable');
    }
    const akTpm = evidence?.['tpm']?.['ak_tpm'];
    return {
      agentId,
      issuer,
      issuedAt: iat,
      akTpm: typeof akTpm === 'string' ? akTpm : null,
      teePubkey: teePubkey as Record<string, unknown>,
      teeKey,
      expiresAt: exp,
      vectors: Object.entries(submods).map(([name, appraisal]) => ({
        source: `token submodule ${name.slice(0, 40)}`,
        vector: (appraisal as Record<string, unknown>)['ear.trustworthiness-vector'],
      })),
    };
  }
}

/** A submodule whose `ear.status` is `affirming`. */
function isAffirming(submod: unknown): boolean {
  return submod !== null && typeof submod === 'object' && (submod as Record<string, unknown>)['ear.status'] === 'affirming';
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) {
    return 'expired';
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return 'bad signature';
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return 'algorithm not allowed';
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    return `claim ${error.claim} ${error.reason}`;
  }
  if (error instanceof errors.JOSEError) {
    return error.code;
  }
  return 'invalid';
}
