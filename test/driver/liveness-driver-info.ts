import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildAgentConfig } from '../../lib/agent/agent-config.js';
import { startHostAgent, type RunningHostAgent } from '../../lib/agent/host-agent.js';
import { createKeylimeClient, type KeylimeClient } from '../../lib/http/keylime-client.js';
import { LivenessClient } from '../../lib/verifier/liveness/liveness-client.js';
import type { RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { createDeployment, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * A node's `driver_info` naming `agentUuid` at the deployment's registrar and `verifier`, with the
 * tenant's TLS files and `allowlist` written (0600) in the deployment's folder: what the keylime
 * driver tests against a real registrar, verifier and host agent share.
 */
export function livenessDriverInfo(deployment: Deployment, verifier: RunningVerifier, agentUuid: string, allowlist: string): Record<string, unknown> {
  const file = (name: string, text: string): string => {
    writeFileSync(path.join(deployment.root, name), text, { mode: 0o600 });
    return path.join(deployment.root, name);
  };
  return {
    keylime_allowlist: file('allowlist.txt', allowlist),
    keylime_allowlist_checksum: createHash('sha256').update(allowlist).digest('hex'),
    keylime_agent_uuid: agentUuid,
    keylime_verifier_url: verifier.url,
    keylime_registrar_url: deployment.registrar.tlsUrl,
    keylime_tls_ca: deployment.caFile,
    keylime_tls_cert: file('tenant.crt', deployment.tenantTls.cert),
    keylime_tls_key: file('tenant.key', deployment.tenantTls.key),
  };
}

/** A real registrar and verifier (hourly rounds) on PostgreSQL, one host agent without a TPM, and the clients a driver test reads them with. */
export interface LivenessDriverSetup {
  readonly deployment: Deployment;
  readonly host: RunningHostAgent;
  readonly verifierHttp: KeylimeClient;
  readonly liveness: LivenessClient;
  /** `livenessDriverInfo` naming the host's agent. */
  readonly driverInfo: Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * Starts what the keylime driver's liveness tests run against: a deployment, its verifier, and a host
 * agent in `identity` mode with host id `hostId` in the folder `folder` of the deployment.
 */
export async function startLivenessDriverSetup(identity: 'id-only' | 'id-secret', hostId: string, folder: string, allowlist: string): Promise<LivenessDriverSetup> {
  const deployment = await createDeployment();
  let host: RunningHostAgent | undefined;
  let verifierHttp: KeylimeClient | undefined;
  const close = async (): Promise<void> => {
    verifierHttp?.close();
    await host?.close().catch(() => undefined);
    await deployment.dispose();
  };
  try {
    const verifier = await deployment.startVerifier({ quoteInterval: 3600 });
    host = await startHostAgent(
      buildAgentConfig({ dataDir: path.join(deployment.root, folder), registrarUrl: deployment.registrar.httpUrl, port: 0, clientCaFile: deployment.caFile, identity, hostId }),
    );
    verifierHttp = createKeylimeClient({ baseUrl: verifier.url, tls: { ca: verifier.caCert, cert: deployment.tenantTls.cert, key: deployment.tenantTls.key } });
    return { deployment, host, verifierHttp, liveness: new LivenessClient(verifierHttp), driverInfo: livenessDriverInfo(deployment, verifier, host.uuid, allowlist), close };
  } catch (error) {
    await close();
    throw error;
  }
}
