import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENTS = 200;
const CONCURRENCY = 8;
const ENROLMENTS_AT_ONCE = 10;

/**
 * Many agents on one verifier process: 200 enrolled agents, all answered by one in-memory agent behind
 * one HTTPS port (real quotes, one certificate pinned by all), quote interval 1 s, at most 8 rounds in
 * flight. Every agent must be attested repeatedly while the agent side never sees more than 8
 * requests at once.
 */
describe('verifier pull loop at scale (one process, one concurrency limit)', function () {
  this.timeout(90_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let server: Server;
  let verifier: RunningVerifier;
  const fake = new FakeAgent();
  let inFlight = 0;
  let maxInFlight = 0;
  let requests = 0;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-scale-'));
    schema = await createTestSchema();
    const tls = createSelfSignedServerCertificate({ commonName: 'fleet', sans: ['127.0.0.1'] });
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      inFlight += 1;
      requests += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const query = new URL(req.url ?? '/', 'https://fleet').searchParams;
      // Answer a little later, so that requests overlap when the verifier lets them.
      setTimeout(() => {
        const results = fake.reply({
          nonce: query.get('nonce') ?? '',
          mask: Number.parseInt(query.get('mask') ?? '0', 16),
          imaEntry: Number(query.get('ima_ml_entry') ?? 0),
          partial: query.get('partial') === '1',
        });
        inFlight -= 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 200, status: 'Success', results }));
      }, 5);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    verifier = await startVerifier(
      { dataDir: dir, databaseUrl: schema.url, quoteInterval: 1, maxConcurrentRounds: CONCURRENCY },
      { inProcessForTests: true },
    );
    // Ten at a time: one after the other, each enrolment waited behind the rounds of the agents enrolled
    // before it, and the 200 took over 90 s on a loaded host.
    const enrol = async (i: number): Promise<void> => {
      const reply = await verifier.service.app.inject({
        method: 'POST',
        url: `/v2.6/agents/fleet-${i}`,
        payload: {
          v: null,
          cloudagent_ip: '127.0.0.1',
          cloudagent_port: port,
          tpm_policy: '{"mask": "0x8000"}',
          runtime_policy: '',
          mb_policy: null,
          mb_policy_name: '',
          ima_sign_verification_keys: '',
          metadata: '{}',
          revocation_key: '',
          accept_tpm_hash_algs: ['sha256'],
          accept_tpm_encryption_algs: ['rsa'],
          accept_tpm_signing_algs: ['rsassa'],
          ak_tpm: fake.akTpm,
          mtls_cert: tls.certPem,
          supported_version: '2.6',
        },
      });
      expect(reply.statusCode).to.equal(200);
    };
    for (let first = 0; first < AGENTS; first += ENROLMENTS_AT_ONCE) {
      await Promise.all(Array.from({ length: Math.min(ENROLMENTS_AT_ONCE, AGENTS - first) }, (_, offset) => enrol(first + offset)));
    }
  });

  after(async function () {
    await verifier?.close();
    server?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves every agent fairly, with at most maxConcurrentRounds requests in flight', async function () {
    this.timeout(120_000);
    const knex = verifier.container.resolve<{ knex: import('knex').Knex }>('ironlime.database').knex;
    const counts = async (): Promise<Map<string, number>> =>
      new Map(((await knex('verifier_agents').select('agent_id', 'attestation_count')) as { agent_id: string; attestation_count: number }[]).map((r) => [r.agent_id, r.attestation_count]));
    await eventually('every agent attested once', async () => [...(await counts()).values()].every((n) => n >= 1), 30_000, 250);
    const before = await counts();
    const requestsBefore = requests;
    const started = Date.now();
    // The window ends after 4 rounds per agent on average, however fast this host is: whether 200
    // agents hold a 1 s interval is a throughput figure (npm run bench), not something a test on a
    // loaded host can assert. What must hold at any speed: no agent is left behind the others.
    const roundsPerAgent = 4;
    await eventually(`${roundsPerAgent} rounds per agent on average`, async () => requests - requestsBefore >= roundsPerAgent * AGENTS, 90_000, 250);
    const after = await counts();
    const deltas = [...after].map(([id, n]) => n - (before.get(id) ?? 0));
    const seconds = (Date.now() - started) / 1000;
    const rate = (requests - requestsBefore) / seconds;
    process.stdout.write(`      ${AGENTS} agents, interval 1 s: ${rate.toFixed(0)} rounds/s, fewest rounds per agent in ${seconds.toFixed(1)} s: ${Math.min(...deltas)}, at most ${maxInFlight} in flight\n`);
    expect(Math.min(...deltas), 'rounds of the agent served least, against 4 on average').to.be.at.least(roundsPerAgent / 2);
    expect(maxInFlight).to.be.at.most(CONCURRENCY);
    expect(maxInFlight).to.be.greaterThan(1);
    expect(verifier.scheduler.size).to.equal(AGENTS);
    const states = (await knex('verifier_agents').distinct('operational_state')) as { operational_state: number }[];
    expect(states.map((s) => s.operational_state)).to.deep.equal([3]);
    const failures = (await knex('verifier_attestation_history').whereNot({ outcome: 'pass' }).count({ n: '*' }).first()) as { n: string };
    expect(Number(failures.n)).to.equal(0);
  });
});
