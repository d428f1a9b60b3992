import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BrokerAdminClient } from '../broker/broker-admin-client.js';
import { startBroker, type RunningBroker } from '../broker/broker-server.js';
import { resourcePathText, type ResourcePath } from '../broker/kbs-wire.js';
import { readConfiguredPrivateFile } from '../config/read-config-file.js';
import { KbsClientBuilder } from '../kbs-client/kbs-client-builder.js';
import { KbsRefusedError } from '../kbs-client/kbs-client-errors.js';
import { TpmEvidenceProvider } from '../kbs-client/tpm-evidence-provider.js';
import { loadOrCreateClientTls } from '../pki/service-tls.js';
import { NodeSecretRelease } from '../provisioning/node-secret-release.js';
import { RegistrarClient } from '../registrar/registrar-client.js';
import type { DemoEnvironment, DemoNode } from './demo-environment.js';
import type { DiskKeyAnswer } from './demo-table.js';

/** The demo's KBS broker: per-node disk keys released at deploy, fetched by the nodes themselves. */
export interface DemoBroker {
  readonly running: RunningBroker;
  /** The orchestrator's hook (`ExampleOrchestratorOptions.nodeSecrets`). */
  readonly secrets: NodeSecretRelease;
  /**
   * The node asks for its disk key as it would at boot (background check with its own TPM, IMA list
   * and boot log): `released (32 bytes)`, or `refused: <KBS error type>` with the broker's detail.
   */
  fetchDiskKey(node: DemoNode, resource: ResourcePath): Promise<DiskKeyAnswer>;
  close(): Promise<void>;
}

/**
 * Starts a broker on the demo's database, asking the demo's verifier about good standing with the
 * orchestrator's client certificate. The broker learns each node's AK from the registrar and its
 * policies from the demo's golden policy files, so it appraises the node's evidence as the verifier does.
 */
export async function startDemoBroker(env: DemoEnvironment, dir: string): Promise<DemoBroker> {
  const dataDir = path.join(dir, 'broker');
  const running = await startBroker(
    {
      dataDir,
      port: 0,
      verifierUrl: env.verifier.url,
      verifierCa: env.tls.caFile,
      verifierCert: env.tls.certFile,
      verifierKey: env.tls.keyFile,
    },
    { database: env.database },
  );
  const adminTls = await loadOrCreateClientTls({ dataDir, serviceName: 'orchestrator' });
  const admin = new BrokerAdminClient({ url: running.url, ca: running.caCert, cert: adminTls.cert, key: adminTls.key });
  const [ca, cert, runtimePolicy, mbRefstate] = await Promise.all(
    [env.tls.caFile, env.tls.certFile, env.policies.runtimePolicy.path, env.policies.refstate.path].map((file) => readFile(file, 'utf8')),
  );
  const key = await readConfiguredPrivateFile(env.tls.keyFile, 'demo.tls.keyFile');
  const registrar = new RegistrarClient({ baseUrl: env.registrar.tlsUrl, tls: { ca: ca as string, cert: cert as string, key } });
  const secrets = new NodeSecretRelease({
    broker: admin,
    // The demo's nodes have a refstate and a runtime policy: the disk key needs both checked.
    requiredClaims: ['configuration', 'executables'],
    nodeRecord: async (agentId) => ({
      akTpm: (await registrar.show(agentId)).aik_tpm ?? undefined,
      runtimePolicy: runtimePolicy as string,
      mbRefstate: mbRefstate as string,
    }),
  });
  return {
    running,
    secrets,
    async fetchDiskKey(node, resource) {
      const built = new KbsClientBuilder(running.url)
        .ca(running.caCert)
        .evidenceProvider(
          new TpmEvidenceProvider({
            tpm: node.tpm,
            agentId: node.agent.uuid,
            ...(node.agent.imaLogPath === undefined ? {} : { imaLogPath: node.agent.imaLogPath }),
            ...(node.agent.bootLogPath === undefined ? {} : { bootLogPath: node.agent.bootLogPath }),
          }),
        )
        .build();
      try {
        const secret = await built.client.getResource(`kbs:///${resourcePathText(resource)}`);
        return { cell: `released (${secret.length} bytes)` };
      } catch (error) {
        if (error instanceof KbsRefusedError) {
          return { cell: `refused: ${error.kbsType}`, detail: error.detail };
        }
        throw error;
      } finally {
        await built.close();
      }
    },
    async close() {
      registrar.close();
      await admin.close();
      await running.close();
    },
  };
}
