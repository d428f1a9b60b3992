import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { nodePage, nodesPage, overviewPage } from '../../lib/dashboard/dashboard-pages.js';
import { DashboardQueries } from '../../lib/dashboard/dashboard-queries.js';
import { statusFreshnessBounds } from '../../lib/verifier/freshness-bounds.js';
import { VerifierConfig } from '../../lib/verifier/verifier-config.js';
import { IronlimeMigrationSource, migrateLatest, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { trustLevelOfMetadata } from '../../lib/verifier/verifier-agent-record.js';
import { openMigratedTestSchema, openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';

describe('dashboard: trust levels and nodes without a TPM', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let queries: DashboardQueries;

  before(async function () {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    // agent-000001…6; even ones are tenant `blue`. Levels as the enrolment stores them from metadata.
    await seedVerifierAgents(knex, 6, 1);
    await knex('verifier_agents').update({ trust_level: 'hardware-tpm' }).where({ agent_id: 'agent-000001' });
    await knex('verifier_agents').update({ trust_level: 'emulated-tpm' }).where({ agent_id: 'agent-000002' });
    // An attested agent whose enroller claims a level without a TPM: the claim, not the checked mode of live-secret.
    await knex('verifier_agents').update({ trust_level: 'id-secret' }).where({ agent_id: 'agent-000003' });
    const liveness = new LivenessRepository(knex);
    const node = { verifierId: 'default', ip: '127.0.0.1', port: 9, mtlsCert: CERT };
    await liveness.enrol({ ...node, agentId: 'live-secret', tenant: 'default', mode: 'id-secret', trustLevel: 'id-secret', proofKey: 'ab'.repeat(32) }, noAuditRecord, seesEveryTenant);
    await liveness.enrol({ ...node, agentId: 'live-only', tenant: 'blue', mode: 'id-only', trustLevel: 'id-only', proofKey: null }, noAuditRecord, seesEveryTenant);
    await storeLivenessState(liveness, 'live-secret', { status: 'alive', misses: 0, lastSeen: Math.floor(Date.now() / 1000), lastFailure: null });
    queries = new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000);
  });

  after(async function () {
    await opened?.dispose();
  });

  it('takes the trust level from the enrolment metadata only when it is a known level', function () {
    expect(trustLevelOfMetadata('{"trust_level":"emulated-tpm","node":"x"}')).to.equal('emulated-tpm');
    expect(trustLevelOfMetadata('{"trust_level":"super-tpm"}')).to.equal(null);
    expect(trustLevelOfMetadata('{"trust_level":["hardware-tpm"]}')).to.equal(null);
    expect(trustLevelOfMetadata('{"note":"\\u0000"}')).to.equal(null);
    expect(trustLevelOfMetadata('null')).to.equal(null);
    expect(trustLevelOfMetadata('{not json')).to.equal(null);
  });

  it("counts attested agents per claimed trust level and nodes without a TPM per checked mode and status, never one number for both", async function () {
    const none = { alive: 0, pending: 0, unreachable: 0, failed: 0 };
    const all = await queries.overview(undefined);
    expect(all.byClaimedTrustLevel).to.deep.equal({ 'hardware-tpm': 1, 'emulated-tpm': 1, 'id-secret': 1, 'id-only': 0, unknown: 3 });
    expect(all.byLiveness).to.deep.equal({ 'id-secret': { ...none, alive: 1 }, 'id-only': { ...none, pending: 1 } });
    expect(all.total).to.equal(6);
    expect(all.byStatus.PASS).to.equal(6);
    const blue = await queries.overview('blue');
    expect(blue.byClaimedTrustLevel).to.deep.equal({ 'hardware-tpm': 0, 'emulated-tpm': 1, 'id-secret': 0, 'id-only': 0, unknown: 2 });
    expect(blue.byLiveness).to.deep.equal({ 'id-secret': none, 'id-only': { ...none, pending: 1 } });
    const html = overviewPage(undefined, all);
    expect(html).to.include('data-count="trust-hardware-tpm">1<').and.include('data-count="trust-unknown">3<');
    expect(html).to.include('data-count="liveness-id-secret-alive">1<').and.include('data-count="liveness-id-only-pending">1<').and.include('data-count="liveness-id-only-alive">0<');
    expect(html).to.not.include('no table stores');
    // Every level an attested agent has is its enroller's word, which no quote checks: said so, as on the node table;
    // the claimed id-secret is counted apart from live-secret's, which every liveness check proves.
    expect(html).to.include('<td>hardware-tpm (claimed)</td>').and.include('<td>emulated-tpm (claimed)</td>');
    expect(html).to.match(/<td>id-secret \(claimed\)<\/td><td data-count="trust-id-secret">1<\/td>/);
  });

  it('lists nodes without a TPM beside the attested ones, with their level and a status that is never PASS', async function () {
    const page = await queries.nodes(undefined, { search: '', sort: 'trust', descending: true, page: 1 });
    expect(page.total).to.equal(8);
    expect(page.rows.map((row) => row.trustLevel)).to.deep.equal(['hardware-tpm', 'emulated-tpm', 'id-secret', 'id-secret', 'id-only', 'unknown', 'unknown', 'unknown']);
    const alive = page.rows.find((row) => row.agentId === 'live-secret');
    expect(alive).to.include({ state: null, status: 'LIVE (no integrity evidence)', tone: 'live', liveness: 'alive', attestationCount: 0 });
    expect(alive?.integrityEvidence).to.include('integrity evidence unavailable');
    expect(alive?.lastSeen).to.be.a('string');
    const pending = page.rows.find((row) => row.agentId === 'live-only');
    expect(pending).to.include({ status: 'PENDING', tone: 'pending', trustLevel: 'id-only' });
    for (const row of page.rows.filter((r) => r.liveness !== null)) expect(row.status).to.not.include('PASS');
    const table = nodesPage(undefined, { search: '', sort: 'trust', descending: true, page: 1 }, page);
    expect(table).to.match(/<td data-field="state">liveness check: alive, no integrity evidence<\/td>\s*<td data-field="trust">id-secret<\/td>/);
    expect(table).to.include('<td data-field="trust">hardware-tpm (claimed)</td>');

    const searched = await queries.nodes(undefined, { search: 'id-only', sort: 'id', descending: false, page: 1 });
    expect(searched.rows.map((row) => row.agentId)).to.deep.equal(['live-only']);
    expect((await queries.nodes('default', { search: 'live', sort: 'state', descending: false, page: 1 })).rows.map((row) => row.agentId)).to.deep.equal(['live-secret']);
    const watched = await queries.nodesByIds('default', ['live-secret', 'live-only']);
    expect(watched.map((row) => row.agentId)).to.deep.equal(['live-secret']);
  });

  it("shows a node without a TPM on its page as live with no integrity evidence, and hides another tenant's", async function () {
    const node = await queries.node('default', 'live-secret');
    if (node === undefined) throw new Error('live-secret not found');
    const html = nodePage(undefined, node, await queries.timeline(undefined, node));
    expect(html).to.include('<dd data-field="status">LIVE (no integrity evidence)</dd>');
    expect(html).to.include('<dd data-field="trust">id-secret</dd>');
    expect(html).to.include('<dd data-field="integrity">integrity evidence unavailable');
    expect(html).to.not.match(/>PASS</);
    expect(await queries.node('default', 'live-only')).to.equal(undefined);
    const attested = await queries.node('blue', 'agent-000002');
    expect(attested?.trustLevel).to.equal('emulated-tpm');
    if (attested === undefined) throw new Error('agent-000002 not found');
    expect(nodePage(undefined, attested, []), "the enroller's word, which no quote checks").to.include('<dd data-field="trust">emulated-tpm (claimed)</dd>');
  });

  it("puts every liveness status change on the node's timeline with its reason, once, with a NUL escaped", async function () {
    const liveness = new LivenessRepository(opened.database.knex);
    const node = { verifierId: 'default', ip: '127.0.0.1', port: 9, mtlsCert: CERT };
    await liveness.enrol({ ...node, agentId: 'live-flaky', tenant: 'default', mode: 'id-only', trustLevel: 'id-only', proofKey: null }, noAuditRecord, seesEveryTenant);
    const now = Math.floor(Date.now() / 1000);
    await storeLivenessState(liveness, 'live-flaky', { status: 'alive', misses: 0, lastSeen: now, lastFailure: null });
    // A second process of the same verifier id storing the same decision records no second change.
    await storeLivenessState(liveness, 'live-flaky', { status: 'alive', misses: 0, lastSeen: now, lastFailure: null });
    await storeLivenessState(liveness, 'live-flaky', { status: 'unreachable', misses: 3, lastSeen: now, lastFailure: 'no answer to 3 liveness checks in a row: HTTP 500 \u0000' });
    const stored = await liveness.find('live-flaky');
    expect(stored?.state.lastFailure).to.equal('no answer to 3 liveness checks in a row: HTTP 500 \\u0000');
    const shown = await queries.node('default', 'live-flaky');
    if (shown === undefined) throw new Error('live-flaky not found');
    const changes = (await queries.timeline(undefined, shown)).filter((entry) => entry.kind === 'state');
    expect(changes.map((entry) => entry.title)).to.deep.equal(['LIVE (no integrity evidence) → UNREACHABLE', 'PENDING → LIVE (no integrity evidence)']);
    expect(changes[0]?.detail).to.equal('no answer to 3 liveness checks in a row: HTTP 500 \\u0000');
    expect(nodePage(undefined, shown, await queries.timeline(undefined, shown))).to.include('<strong>LIVE (no integrity evidence) → UNREACHABLE</strong>');
  });
});

describe('migration 20261203150000-verifier-trust-level-and-liveness-tenant', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;

  after(async function () {
    await opened?.dispose();
  });

  it('fills the trust level of agents enrolled before it from their metadata, and puts earlier liveness nodes in `default`', async function () {
    opened = await openTestSchema();
    const knex = opened.database.knex;
    const mine = MIGRATIONS.findIndex((migration) => migration.name === '20261203150000-verifier-trust-level-and-liveness-tenant');
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, mine)), tableName: MIGRATIONS_TABLE });
    await seedVerifierAgents(knex, 4, 1);
    await knex('verifier_agents').update({ meta_data: '{"trust_level":"hardware-tpm","node":"n"}' }).where({ agent_id: 'agent-000001' });
    await knex('verifier_agents').update({ meta_data: '{"trust_level":"gold"}' }).where({ agent_id: 'agent-000002' });
    // Text PostgreSQL would refuse as jsonb: the migration does not cast it.
    await knex('verifier_agents').update({ meta_data: '{"trust_level":"id-only","x":"\\u0000"}' }).where({ agent_id: 'agent-000003' });
    await knex('verifier_liveness').insert({ agent_id: 'old-node', verifier_id: 'default', identity_mode: 'id-only', trust_level: 'id-only', ip: '127.0.0.1', port: 9, mtls_cert: CERT });
    await migrateLatest(knex);
    const levels = (await knex('verifier_agents').select('agent_id', 'trust_level').orderBy('agent_id')) as { trust_level: string | null }[];
    expect(levels.map((row) => row.trust_level)).to.deep.equal(['hardware-tpm', null, 'id-only', null]);
    expect(((await knex('verifier_liveness').where({ agent_id: 'old-node' }).first()) as { tenant: string }).tenant).to.equal('default');
    const overview = await new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000).overview(undefined);
    expect(overview.byClaimedTrustLevel).to.include({ 'hardware-tpm': 1, 'id-only': 1, unknown: 2 });
    expect(overview.byLiveness['id-only'].pending).to.equal(1);
  });
});
