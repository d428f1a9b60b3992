import { createHash } from 'node:crypto';
import type { AuditEvent } from '../audit/audit-record.js';
import { storableText } from '../db/storable-text.js';
import { auditedText, brokerAuditEvent, MAX_AUDITED_TEXT } from './broker-audit.js';
import type { ResourcePath } from './kbs-wire.js';
import type { AppraisedVector } from './resource-policy.js';
import type { TrustworthinessVector } from './tpm-evidence.js';

/** The actor of what a node did itself with its credentials: attest, receive a resource. */
export const NODE_ACTOR = 'node';

/** SHA-256 hex of a text: how a record names a credential (a token, a session id) or a key without holding it. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** `repository/type/tag`, as in a resource URI. */
export function resourceName(path: ResourcePath): string {
  return `${path.repository}/${path.type}/${path.tag}`;
}

/**
 * The `node.attest` record of an attestation that passed at `/attest` (docs/audit.md, "What is
 * appended"): a grant, since its session cookie and its token each release resources from then on.
 * It names them by their SHA-256 (`session_sha256` of the session id, `token_sha256` of the token's
 * text, which a resource broker's `resource.release` of that token names too), the policies appraised
 * against (`node_digest`, as `node.put` records it), the trustworthiness vector and the key resources
 * will be wrapped to (`tee_key_sha256`: SHA-256 of its JWK's JSON text, as the session stores it).
 */
export function attestAuditEvent(attestation: {
  readonly agentId: string;
  readonly sessionId: string;
  readonly token: string;
  readonly nodeDigest: string | null;
  readonly vector: TrustworthinessVector;
  readonly teePubkey: string;
  /** Unix milliseconds. */
  readonly at: number;
}): AuditEvent {
  return brokerAuditEvent({
    actor: NODE_ACTOR,
    action: 'node.attest',
    agentId: attestation.agentId,
    details: {
      session_sha256: sha256Hex(attestation.sessionId),
      token_sha256: sha256Hex(attestation.token),
      node_digest: attestation.nodeDigest,
      vector: attestation.vector,
      tee_key_sha256: sha256Hex(attestation.teePubkey),
    },
    at: attestation.at,
  });
}

/** Who received a resource, as `ResourceRelease` established it. */
export interface ReleasedTo {
  readonly agentId: string;
  readonly via: 'session' | 'token';
  /** The session id (cookie) or the token's text: the record keeps only its SHA-256. */
  readonly credential: string;
  /** The token's `iss`; null for a session. */
  readonly issuer: string | null;
  /** When the credential was issued (the session attested, the token's `iat`), Unix milliseconds. */
  readonly issuedAtMs: number;
  /** The AK the credential was appraised with (base64 TPM2B_PUBLIC), when it says. */
  readonly akTpm: string | null;
  /** The tee-pubkey JWK's JSON text the resource is wrapped to. */
  readonly teePubkey: string;
  readonly vectors: readonly AppraisedVector[] | null;
}

/**
 * The `resource.release` record of a resource handed to a node, in the node's stream: which resource,
 * how the node proved itself (`via`, the credential's SHA-256 — `session_sha256` or `token_sha256` —,
 * the token's `issuer`, `issued_at`), the AK and tee key by their SHA-256, the trustworthiness
 * vectors the policy was checked against and whether the verifier vouched for the node. Never the
 * secret, the credential itself or key material. An issuer and the vectors come from a token (another
 * broker wrote them): kept whole up to `MAX_AUDITED_TEXT` characters of JSON, else as their length and
 * SHA-256, like a verifier message's fields.
 */
export function releaseAuditEvent(release: { readonly path: ResourcePath; readonly to: ReleasedTo; readonly verifierStanding: boolean; readonly at: number }): AuditEvent {
  const to = release.to;
  const credential = sha256Hex(to.credential);
  return brokerAuditEvent({
    actor: NODE_ACTOR,
    action: 'resource.release',
    agentId: to.agentId,
    details: {
      resource: resourceName(release.path),
      via: to.via,
      ...(to.via === 'session' ? { session_sha256: credential } : { token_sha256: credential, issuer: auditedText(storableText(to.issuer ?? '')) }),
      issued_at: new Date(to.issuedAtMs).toISOString(),
      ak_sha256: to.akTpm === null ? null : sha256Hex(to.akTpm),
      tee_key_sha256: sha256Hex(to.teePubkey),
      vectors: auditedJson(to.vectors),
      verifier_standing: release.verifierStanding,
    },
    at: release.at,
  });
}

/**
 * `value` as JSON carries it (a token's claims are parsed JSON, where `1e400` reads as Infinity, which
 * the record's canonical JSON cannot write: it becomes null, as JSON.stringify writes it), whole up to
 * `MAX_AUDITED_TEXT` characters, else its `length` and `sha256`, as `auditedText`.
 */
function auditedJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text.length <= MAX_AUDITED_TEXT ? (JSON.parse(text) as unknown) : { length: text.length, sha256: sha256Hex(text) };
}
