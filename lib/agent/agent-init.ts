import { buildAgentConfig, type AgentConfigInput } from './agent-config.js';
import { ensureDataDir, loadOrCreateAgentServerTls, loadOrCreateAgentUuid, loadOrCreateNodeKey } from './agent-files.js';
import { contactAddress } from './agent-server.js';
import { openAgentTpm } from './agent-tpm.js';

/** What a prepared node has, for the operator to hand to the registrar side. */
export interface InitializedAgent {
  readonly uuid: string;
  readonly nkPublicPem: string;
  /** Folder of the CA certificates behind the EK certificate (agent-made TPMs), for a registrar's `--ek-ca-dir`. */
  readonly ekCaDir: string | undefined;
  /** DER EK certificate, or null when the TPM has none. */
  readonly ekCertificate: Uint8Array | null;
}

/**
 * `ironlime agent init`: creates in the data dir what `startAgent` would — uuid, NK, server
 * certificate — and opens the TPM once (manufacturing the agent's own swtpm and copying its EK CA
 * certificates to `<dataDir>/ek-ca`; for the software TPM, creating its EK CA there), ensuring the EK
 * and the AK; then stops, without registering. Lets an operator configure the registrar's EK trust
 * before the node's first start.
 */
export async function initAgent(input: AgentConfigInput): Promise<InitializedAgent> {
  const config = buildAgentConfig(input);
  await ensureDataDir(config.dataDir);
  const uuid = await loadOrCreateAgentUuid(config.dataDir, config.uuid);
  const nk = await loadOrCreateNodeKey(config.dataDir);
  await loadOrCreateAgentServerTls(config.dataDir, uuid, [config.contactIp ?? contactAddress(config.host)]);
  const opened = await openAgentTpm(config.tpm, config.dataDir, config.swtpmCaDir);
  try {
    const ek = await opened.tpm.ensureEk();
    await opened.tpm.ensureAk(config.hashAlg);
    return { uuid, nkPublicPem: nk.publicPem, ekCaDir: opened.ekCaDir, ekCertificate: ek.ekCertificate };
  } finally {
    await opened.close();
  }
}
