import { hostIdHash, type HostId } from '../identity/host-id.js';
import { hostProofKey, hostRegistrationProof } from '../identity/host-secret-proof.js';
import { agentRegistrarClient, withRegistrarRetries } from './agent-enrolment.js';

export interface HostEnrolmentInput {
  readonly registrarUrl: string;
  readonly registrarCa?: string;
  /** A fixed registrar API version; without it the client negotiates one. */
  readonly apiVersion?: string | undefined;
  readonly uuid: string;
  readonly mode: 'id-secret' | 'id-only';
  readonly hostId: HostId;
  /** `id-secret`: the host secret, and whether it was just made or the registrar is not known to hold its proof key (then the key is sent). */
  readonly secret?: { readonly value: Uint8Array; readonly created: boolean };
  readonly contactIp: string;
  readonly contactPort: number;
  readonly serverCertPem: string;
  readonly attempts?: number;
  /** Stops the tries, the wait between them and the request in flight: the registration rejects with an AbortError. */
  readonly signal?: AbortSignal;
}

/**
 * Registers an agent without a TPM (docs/identity.md). `id-only` sends its host id and is done.
 * `id-secret` sends the proof key derived from its secret only at first registration (the registrar
 * refuses a different one later), then answers the registrar's nonce with
 * HMAC(proof key, agent id NUL nonce). Refusals are `KeylimeHttpError`s and final.
 */
export function registerHost(input: HostEnrolmentInput): Promise<void> {
  return withRegistrarRetries(input, async () => {
    const client = agentRegistrarClient(input);
    // A stop closes the client, which ends its request in flight (as `registerAndActivate` does).
    const stop = (): void => client.close();
    input.signal?.addEventListener('abort', stop, { once: true });
    try {
      const key = input.secret === undefined ? undefined : hostProofKey(input.secret.value, hostIdHash(input.hostId));
      const nonce = await client.registerHost(input.uuid, {
        mode: input.mode,
        hostId: input.hostId,
        ...(key !== undefined && input.secret?.created === true ? { hostProofKey: key.toString('hex') } : {}),
        ip: input.contactIp,
        port: input.contactPort,
        mtlsCert: input.serverCertPem,
      });
      if (key !== undefined && nonce !== undefined) {
        await client.proveHost(input.uuid, hostRegistrationProof(key, input.uuid, nonce));
      }
    } catch (error) {
      input.signal?.throwIfAborted();
      throw error;
    } finally {
      input.signal?.removeEventListener('abort', stop);
      client.close();
    }
  });
}
