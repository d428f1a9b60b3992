import { readFile } from 'node:fs/promises';
import { attestationStatus, isOperationalState } from '../attestation/operational-state.js';
import { readConfiguredPrivateFile } from '../config/read-config-file.js';
import { pollUntil } from '../timing/poll-until.js';
import { VerifierClient } from '../verifier/verifier-client.js';
import type { DemoEnvironment } from './demo-environment.js';

/**
 * Polls the demo verifier (as its admin, over mTLS) until it has marked `agentId` failed (status FAIL:
 * FAILED, INVALID_QUOTE or TENANT_FAILED), and resolves to what it recorded: the last event id and the
 * state. Rejects with ERR_TIMEOUT after `timeoutMs`.
 */
export async function waitForVerifierFailure(env: DemoEnvironment, agentId: string, timeoutMs: number): Promise<string> {
  const [ca, cert] = await Promise.all([env.tls.caFile, env.tls.certFile].map((file) => readFile(file, 'utf8')));
  const key = await readConfiguredPrivateFile(env.tls.keyFile, 'demo.tls.keyFile');
  const client = new VerifierClient({ baseUrl: env.verifier.url, tls: { ca: ca as string, cert: cert as string, key } });
  let recorded = '';
  try {
    await pollUntil({ timeoutMs, intervalMs: 200 }, `the verifier did not flag agent ${agentId}`, async () => {
      const status = await client.status(agentId);
      recorded = `${status.last_event_id ?? 'no event id'}, state ${status.operational_state}`;
      const state = status.operational_state;
      return isOperationalState(state) && attestationStatus({ operationalState: state }) === 'FAIL';
    });
    return recorded;
  } finally {
    client.close();
  }
}
