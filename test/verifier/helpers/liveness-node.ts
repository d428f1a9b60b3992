import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostSecretProof } from '../../../lib/identity/host-secret-proof.js';
import { createSelfSignedServerCertificate } from '../../../lib/pki/self-signed-server.js';
import type { CertificateAndKey } from '../../../lib/pki/x509-builder.js';

/** A node without a TPM answering `GET /v<x>/liveness` as an `id-secret` agent, with the key `proofKey()` gives at each request. */
export interface LivenessNode {
  readonly agentId: string;
  readonly tls: CertificateAndKey;
  readonly port: number;
  /** Requests answered so far. */
  readonly requests: number;
  close(): Promise<void>;
}

/** `delayMs`: how long each answer waits. */
export async function startLivenessNode(agentId: string, proofKey: () => Buffer, delayMs = 0): Promise<LivenessNode> {
  const tls = createSelfSignedServerCertificate({ commonName: agentId });
  let requests = 0;
  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (request, response) => {
    requests += 1;
    const nonce = new URL(request.url ?? '/', 'https://node').searchParams.get('nonce') ?? '';
    const results = { agent_uuid: agentId, identity_mode: 'id-secret', proof: hostSecretProof(proofKey(), agentId, nonce) };
    setTimeout(() => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ code: 200, status: 'Success', results }));
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    agentId,
    tls,
    port: (server.address() as AddressInfo).port,
    get requests() {
      return requests;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
