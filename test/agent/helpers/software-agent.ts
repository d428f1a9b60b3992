import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadOrCreateNodeKey, type NodeKey } from '../../../lib/agent/agent-files.js';
import { AgentQuoter } from '../../../lib/agent/agent-quoter.js';
import type { AgentApiContext } from '../../../lib/agent/agent-routes.js';
import { createAgentService } from '../../../lib/agent/agent-service.js';
import { BootstrapKeys } from '../../../lib/agent/bootstrap-keys.js';
import { bootEmulatedNode, defaultBootLogPath, type EmulatedNode } from '../../../lib/agent/node-emulation.js';
import type { KeylimeService } from '../../../lib/http/keylime-service.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo } from '../../../lib/tpm-access/tpm-port.js';
import { tlsFixture } from '../../http/tls-fixture.js';

/** NK generation is the slow part; one key per test process is enough for route tests. */
let sharedNkDir: string | undefined;

/** An emulated agent on the software TPM, not listening: requests go through `inject`. */
export interface SoftwareAgent {
  readonly uuid: string;
  readonly tpm: SoftwareTpm;
  readonly ak: AkInfo;
  readonly nk: NodeKey;
  readonly node: EmulatedNode;
  readonly keys: BootstrapKeys;
  readonly context: AgentApiContext;
  readonly service: KeylimeService;
  /** GET/POST through `inject`; the reply envelope parsed, and its text. */
  request(
    method: 'GET' | 'POST',
    url: string,
    body?: unknown,
  ): Promise<{ status: number; body: { code: number; status: string; results: Record<string, unknown> }; text: string }>;
  dispose(): Promise<void>;
}

export async function createSoftwareAgent(uuid = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000'): Promise<SoftwareAgent> {
  sharedNkDir ??= await mkdtemp(path.join(tmpdir(), 'ironlime-agent-nk-'));
  const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-agent-routes-'));
  const nk = await loadOrCreateNodeKey(sharedNkDir);
  const tpm = await createSoftwareTpm();
  const ek = await tpm.ensureEk();
  const ak = await tpm.ensureAk('sha256');
  const node = await bootEmulatedNode(tpm, dir, defaultBootLogPath(), undefined);
  const keys = new BootstrapKeys(nk.privateKey, uuid);
  const context: AgentApiContext = {
    uuid,
    hashAlg: 'sha256',
    ekAlgorithm: ek.ekAlgorithm,
    ak,
    nkPublicPem: nk.publicPem,
    quoter: new AgentQuoter(tpm, 'sha256', nk.publicPem),
    keys,
    logs: node.logs,
  };
  const tls = tlsFixture();
  const service = createAgentService(context, { cert: tls.agent.certPem, key: tls.agent.keyPem, clientCa: tls.ca.certPem });
  await service.app.ready();
  return {
    uuid,
    tpm,
    ak,
    nk,
    node,
    keys,
    context,
    service,
    async request(method, url, body) {
      const reply = await service.app.inject({ method, url, ...(body === undefined ? {} : { payload: body as object }) });
      return { status: reply.statusCode, body: reply.json(), text: reply.body };
    },
    async dispose() {
      await service.close();
      await node.close();
      await tpm.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Removes the shared NK folder (call from a root-level `after`). */
export async function disposeSharedNodeKey(): Promise<void> {
  if (sharedNkDir !== undefined) {
    await rm(sharedNkDir, { recursive: true, force: true });
    sharedNkDir = undefined;
  }
}
