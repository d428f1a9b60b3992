import 'reflect-metadata';
import { SERVER_API_VERSIONS, serverApiVersionPolicy } from '../lib/http/api-version.js';
import { createService } from '../lib/http/keylime-service.js';
import { loadOrCreateServiceTls } from '../lib/pki/service-tls.js';
import type { PushAttestations } from '../lib/verifier/push/push-attestations.js';
import type { PushAttestation } from '../lib/verifier/push/push-repository.js';
import { registerPushRoutes } from '../lib/verifier/push/push-routes.js';
import type { PushSessions } from '../lib/verifier/push/push-sessions.js';
import { PushRefused } from '../lib/verifier/push/push-reply.js';
import { benchAttestation, BENCH_TOKEN } from './push-http2-bodies.js';

/**
 * The server of `npm run bench -- push-http2`, in a child process of its own so that its CPU time is
 * measured apart from the clients'. The verifier's TLS service as `startVerifier` builds it (the same
 * `createService` options, its CA and certificate) and its real push routes (`registerPushRoutes`:
 * params, fast paths and DTOs, token header check, JSON:API replies); behind them, sessions and
 * attestations that answer from memory (`benchAttestation`), so what is measured is what HTTP/1.1 and
 * HTTP/2 change: the connection, the framing, the headers, Fastify and the bodies. Argument: the data
 * folder, then `h1` (HTTP/1.1 only, as today) or `h2` (HTTP/2 offered beside HTTP/1.1). Answers `cpu`
 * with `process.cpuUsage()` and the requests served by protocol, and `stop` by closing and exiting.
 */
const [dataDir, mode] = process.argv.slice(2) as [string, string];
const tls = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier' });
const service = createService({
  name: 'verifier',
  apiVersions: serverApiVersionPolicy(SERVER_API_VERSIONS.filter((version) => version.startsWith('2.'))),
  tls: { cert: tls.cert, key: tls.key, ca: tls.ca, requestClientCert: true, requireClientCert: 'routes' },
  ...(mode === 'h2' ? { http2ForBench: true } : {}),
});
const sessions = {
  authenticate: async (agentId: string, authorization: string | undefined) => {
    if (authorization !== `Bearer ${BENCH_TOKEN}`) throw new PushRefused(401, 'invalid_token', 'the session token is not known');
    return { sessionId: 'bench', agentId, expiresAt: new Date(Date.now() + 180_000) };
  },
};
const attestations = {
  create: async (agentId: string): Promise<PushAttestation> => benchAttestation(agentId, 'awaiting_evidence'),
  submit: async (agentId: string): Promise<PushAttestation> => benchAttestation(agentId, 'evaluating_evidence'),
};
registerPushRoutes(service.app, { sessions: sessions as unknown as PushSessions, attestations: attestations as unknown as PushAttestations, quoteInterval: 2, evidenceBodyBudget: 128 * 1024 * 1024 });
// Which protocol each request came over, so the bench shows that ALPN chose what it meant to measure.
const protocols: Record<string, number> = {};
service.app.addHook('onRequest', async (request) => {
  protocols[request.raw.httpVersion] = (protocols[request.raw.httpVersion] ?? 0) + 1;
});
const { url } = await service.listen({ port: 0 });
process.on('message', (message: unknown) => {
  if (message === 'cpu') process.send?.({ cpu: process.cpuUsage(), protocols });
  else if (message === 'stop') void service.close().then(() => process.exit(0));
});
process.send?.({ ready: { url, caCert: tls.ca } });
