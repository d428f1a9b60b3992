import { IsNonce } from '../http/validators.js';
import { ok } from '../http/envelope.js';
import type { KeylimeService } from '../http/keylime-service.js';
import { hostSecretProof } from '../identity/host-secret-proof.js';
import { registerAgentVersionRoute } from './agent-routes.js';

/** `GET /v2.x/liveness?nonce=` (ironlime, docs/identity.md). */
export class LivenessQuery {
  @IsNonce()
  nonce!: string;
}

/** What an agent without a TPM answers liveness checks from. */
export interface HostLivenessContext {
  readonly uuid: string;
  readonly identityMode: 'id-secret' | 'id-only';
  /** `id-secret`: the key derived from the host secret (the registrar and verifier hold the same). */
  readonly proofKey: Uint8Array | undefined;
}

/**
 * The routes of an agent registered without a TPM: `/version`, and the liveness proof the verifier
 * polls instead of a quote: `proof` = HMAC(proof key, agent id NUL nonce) for `id-secret`, null for
 * `id-only` (its answer proves only that something answers at that address, with that certificate).
 */
export function registerLivenessRoutes(service: KeylimeService, host: HostLivenessContext): void {
  registerAgentVersionRoute(service);
  service.route({
    method: 'GET',
    url: '/liveness',
    query: LivenessQuery,
    handler: ({ query, reply }) =>
      ok(reply, {
        agent_uuid: host.uuid,
        identity_mode: host.identityMode,
        proof: host.proofKey === undefined ? null : hostSecretProof(host.proofKey, host.uuid, query.nonce),
      }),
  });
}
