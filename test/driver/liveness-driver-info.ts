import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RunningVerifier } from '../../lib/verifier/verifier-server.js';
import type { Deployment } from '../verifier/helpers/verifier-fixture.js';

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
