import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { AuditLog } from '../lib/audit/audit-log.js';
import { loadOrCreateAuditKey } from '../lib/audit/audit-signing-key.js';
import { BROKER_AUDIT_TABLES } from '../lib/audit/audit-tables.js';
import { BrokerRepository, type AttestedClaim, type PendingClaim } from '../lib/broker/broker-repository.js';
import { attestAuditEvent, releaseAuditEvent, type ReleasedTo } from '../lib/broker/grant-audit.js';
import { createDatabase } from '../lib/db/database-factory.js';
import { migrateLatest } from '../lib/db/migrate.js';
import { postgresBackendCpu, postgresCpuBetween } from './broker-bench-postgres-cpu.js';

/**
 * `node dist/bench/grant-audit-micro.js [ops] [rounds]` (defaults 1000, 4): the database side of the
 * broker's attestation and release records alone, on PostgreSQL, no HTTP, one operation at a time:
 * - `claim`: the session claim of `/attest` as one prepared statement, unrecorded (as before the records);
 * - `claim + node.attest`: a claim and its record, a batch of one of `BrokerRepository.claimAttestedSessions`
 *   (four round trips: begin, lock the stream, claim and insert the record, commit);
 * - `8 claim + node.attest in one batch`: eight claims of eight nodes in one transaction (`BrokerService`'s
 *   group commit under load), figures per claim;
 * - `fetch facts`: the one statement a token fetch reads (the yardstick of a fetch's database work);
 * - `resource.release`: a release's record and its facts read again under the stream's lock, in the
 *   statement that inserts the record, a batch of one of `BrokerRepository.recordReleases` (four round trips);
 * - `8 resource.release in one batch`: eight releases of eight nodes in one transaction (`ResourceRelease`'s
 *   group commit under load), figures per release.
 * The variants alternate round by round in this one process, so all see the same load. Printed per
 * operation: this process's CPU (user + system, every thread), the PostgreSQL backends' CPU (10 ms
 * ticks, from `/proc`) and the wall time; then each variant's median over the rounds.
 */
const [opsText, roundsText] = process.argv.slice(2);
const ops = Number(opsText ?? '1000');
const rounds = Number(roundsText ?? '4');
/** Claims and releases in the batch variants. */
const BATCH = 8;
const DATABASE_URL = process.env['IRONLIME_BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

const schema = `bench_${randomBytes(6).toString('hex')}`;
const applicationName = `ironlime-${schema}`;
const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-grant-audit-micro-'));
const admin = knexFactory({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
await admin.raw('create schema ??', [schema]);
const database = await createDatabase({ url: `${DATABASE_URL}${DATABASE_URL.includes('?') ? '&' : '?'}application_name=${applicationName}`, dataDir: dir, searchPath: schema });
try {
  await migrateLatest(database.knex);
  const agentId = randomUUID();
  const plain = new BrokerRepository(database.knex, true);
  const auditLog = new AuditLog(database.knex, loadOrCreateAuditKey(dir), BROKER_AUDIT_TABLES);
  const audited = new BrokerRepository(database.knex, true, auditLog);
  await plain.putNode({ agentId, akTpm: 'AK', tpmPolicy: '{}', runtimePolicy: null, mbRefstate: null, groups: ['rack'] }, 'digest');
  const batchNodes = Array.from({ length: BATCH }, () => randomUUID());
  for (const node of batchNodes) {
    await plain.putNode({ agentId: node, akTpm: 'AK', tpmPolicy: '{}', runtimePolicy: null, mbRefstate: null, groups: ['rack'] }, 'digest');
  }
  const path_ = { repository: 'node', type: 'disk-key', tag: 'micro' };
  await plain.putResource({ path: path_, sealed: 'sealed', policy: { agents: [agentId, ...batchNodes], groups: [], allow_tokens: true } });
  const vector = { 'instance-identity': 2, configuration: 2, executables: 2, hardware: 2 } as const;
  const teePubkey = JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'x'.repeat(43), y: 'y'.repeat(43), alg: 'ECDH-ES+A256KW' });
  const token = `eyJ${'t'.repeat(900)}`;
  const claim = (node = agentId): PendingClaim => {
    const claimed: AttestedClaim = {
      id: randomBytes(16).toString('base64url'),
      nonce: 'nonce',
      expiresAt: Date.now() + 300_000,
      attested: { agentId: node, teePubkey, at: Date.now(), akTpm: 'AK', vector },
      sessionIssuedAt: Date.now(),
      nodeDigest: 'digest',
    };
    return { claim: claimed, event: attestAuditEvent({ agentId: node, sessionId: claimed.id, token, nodeDigest: 'digest', vector, teePubkey, at: Date.now() }) };
  };
  const releasedTo: ReleasedTo = { agentId, via: 'token', credential: token, issuer: 'ironlime-broker', issuedAtMs: Date.now(), akTpm: 'AK', teePubkey, vectors: [{ source: 'token submodule cpu0', vector }] };
  const variants: Record<string, () => Promise<unknown>> = {
    claim: () => plain.claimAttestedSessions([claim()]),
    'claim + node.attest': () => audited.claimAttestedSessions([claim()]),
    [`${BATCH} claim + node.attest in one batch`]: () => audited.claimAttestedSessions(batchNodes.map((node) => claim(node))),
    'fetch facts': () => plain.tokenAccessFacts(path_, agentId),
    'resource.release': () =>
      audited.recordReleases([{ event: releaseAuditEvent({ path: path_, to: releasedTo, verifierStanding: false, at: Date.now() }), path: path_, agentId, confirm: () => undefined }]),
    [`${BATCH} resource.release in one batch`]: () =>
      audited.recordReleases(
        batchNodes.map((node) => ({
          event: releaseAuditEvent({ path: path_, to: { ...releasedTo, agentId: node }, verifierStanding: false, at: Date.now() }),
          path: path_,
          agentId: node,
          confirm: () => undefined,
        })),
      ),
  };
  const results = new Map<string, number[][]>();
  console.log(`grant-audit-micro: ${ops} ops per variant per round, ${rounds} rounds; load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}`);
  for (let round = 0; round <= rounds; round += 1) {
    for (const [name, run] of Object.entries(variants)) {
      const pgBefore = await postgresBackendCpu(admin, applicationName);
      const cpuBefore = process.cpuUsage();
      const wallBefore = performance.now();
      for (let i = 0; i < ops; i += 1) await run();
      const per = name.startsWith(`${BATCH} `) ? BATCH : 1;
      const wall = (performance.now() - wallBefore) / ops / per;
      const cpu = process.cpuUsage(cpuBefore);
      const pg = postgresCpuBetween(pgBefore, await postgresBackendCpu(admin, applicationName)) / ops / per;
      const own = (cpu.user + cpu.system) / 1000 / ops / per;
      if (round === 0) continue; // warm-up: JIT, prepared statements, pool
      results.set(name, [...(results.get(name) ?? []), [own, pg, wall]]);
      console.log(`round ${round} ${name}: this process ${(own * 1000).toFixed(0)} µs, PostgreSQL ${(pg * 1000).toFixed(0)} µs, wall ${(wall * 1000).toFixed(0)} µs per op`);
    }
  }
  const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  for (const [name, list] of results) {
    const [own, pg, wall] = [0, 1, 2].map((column) => median(list.map((row) => row[column] as number))) as [number, number, number];
    console.log(`median ${name}: this process ${(own * 1000).toFixed(0)} µs, PostgreSQL ${(pg * 1000).toFixed(0)} µs, wall ${(wall * 1000).toFixed(0)} µs per op`);
  }
  console.log(`load average after: ${loadavg().map((n) => n.toFixed(1)).join(' ')}`);
} finally {
  await database.close();
  await admin.raw('drop schema if exists ?? cascade', [schema]);
  await admin.destroy();
  await rm(dir, { recursive: true, force: true });
}
