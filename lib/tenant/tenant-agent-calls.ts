import { randomBytes, timingSafeEqual } from 'node:crypto';
import { IronlimeError } from '../../interfaces/errors.js';
import { AgentClient } from '../agent/agent-client.js';
import { AGENT_API_VERSIONS, negotiateApiVersion } from '../http/api-version.js';
import { KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';
import type { ServiceTls } from '../pki/service-tls.js';
import type { RegistrarClient } from '../registrar/registrar-client.js';
import { pollUntil, type WaitOptions } from '../timing/poll-until.js';
import { registeredAgentUrl, type AgentIdentityVerdict } from './identity-check.js';
import { encryptPayload, hmacHex, wrapForAgent, type PayloadKeys } from './payload-keys.js';
import { showRegistrarAgent } from './registrar-agents.js';

/**
 * The tenant's own calls to an agent (spec §8): the API version it speaks, U (and a payload) sent at
 * enrolment, and the check that it derived the bootstrap key K. Used by `TenantClient`.
 */

/** How the tenant reaches agents: its client certificate and key, and the per-request timeout. */
export interface TenantAgentConnection {
  readonly tls: ServiceTls;
  readonly timeoutMs?: number;
}

export function openTenantAgentClient(connection: TenantAgentConnection, baseUrl: string, agentCert: string, apiVersion: string): AgentClient {
  return new AgentClient({
    baseUrl,
    agentCert,
    clientTls: connection.tls,
    apiVersion,
    ...(connection.timeoutMs === undefined ? {} : { timeoutMs: connection.timeoutMs }),
  });
}

/** Highest agent API version both sides speak (spec §0.2); 2.1 for agents without a version list. */
export async function negotiateAgentApiVersion(agent: AgentClient): Promise<string> {
  const version = await agent.version();
  const remote = version.supported_versions ?? [version.supported_version];
  return negotiateApiVersion(remote, AGENT_API_VERSIONS) ?? '2.1';
}

/** Sends U, wrapped for the agent's NK, and `payload` encrypted under K. */
export async function sendU(
  connection: TenantAgentConnection,
  baseUrl: string,
  verdict: Extract<AgentIdentityVerdict, { valid: true }>,
  apiVersion: string,
  keys: PayloadKeys,
  payload: Uint8Array | undefined,
): Promise<void> {
  const agent = openTenantAgentClient(connection, baseUrl, verdict.agent.mtlsCert as string, apiVersion);
  try {
    await agent.sendUkey({
      encryptedKey: wrapForAgent(keys.u, verdict.pubkey),
      authTag: keys.authTag,
      ...(payload === undefined ? {} : { payload: encryptPayload(keys.k, payload) }),
    });
  } finally {
    agent.close();
  }
}

/**
 * Keylime's `--verify`: asks the agent for HMAC-SHA384(K, challenge) until it matches `k` (the agent
 * has both U and V). Resolves to true on a match, false when the time is up and the agent last
 * answered with another key. A mismatch is not final: an agent enrolled before still answers with its
 * earlier K until the verifier's V for this enrolment reaches it, and an agent that answered 5xx or
 * could not be reached is asked again. @throws ERR_TIMEOUT when the agent never had a key in that time
 * (naming the last failure, if any).
 */
export async function verifyAgentBootstrapKey(
  connection: TenantAgentConnection,
  registrar: RegistrarClient,
  agentId: string,
  k: Buffer,
  wait: WaitOptions & { readonly agentUrl?: string },
): Promise<boolean> {
  const registered = await showRegistrarAgent(registrar, agentId);
  const url = wait.agentUrl ?? registeredAgentUrl(registered);
  if (url === undefined || registered.mtlsCert === null) {
    return false;
  }
  const agent = openTenantAgentClient(connection, new URL(url).origin, registered.mtlsCert, '2.1');
  try {
    const challenge = randomBytes(15).toString('base64url').replace(/[-_]/g, 'A');
    const expected = Buffer.from(hmacHex(k, challenge), 'hex');
    let mismatched = false;
    let lastFailure: IronlimeError | undefined;
    try {
      await pollUntil(wait, `agent ${agentId} never derived the bootstrap key`, async () => {
        try {
          const hmac = Buffer.from(await agent.verifyKey(challenge), 'hex');
          mismatched = !(hmac.length === expected.length && timingSafeEqual(hmac, expected));
          return !mismatched;
        } catch (error) {
          // 400: no K yet. A 5xx or a connection that failed or timed out is asked again until the time is
          // up, as Keylime's do_verify retries, since the caller stops an agent that never proves K: one busy
          // moment of an honest agent ended the check. A certificate that is not the pinned one ends it at once.
          if (error instanceof KeylimeHttpError && (error.remoteHttpStatus === 400 || error.remoteHttpStatus >= 500)) {
            if (error.remoteHttpStatus !== 400) lastFailure = error;
            return false;
          }
          if (error instanceof ServiceUnreachableError && error.reason !== 'tls') {
            lastFailure = error;
            return false;
          }
          throw error;
        }
      });
      return true;
    } catch (error) {
      if (mismatched && error instanceof IronlimeError && error.code === 'ERR_TIMEOUT') return false;
      if (lastFailure !== undefined && error instanceof IronlimeError && error.code === 'ERR_TIMEOUT') {
        throw new IronlimeError('ERR_TIMEOUT', `${error.message}; last failure: ${lastFailure.message}`, { cause: lastFailure });
      }
      throw error;
    }
  } finally {
    agent.close();
  }
}
