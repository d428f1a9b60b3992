import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { RoundWriter, type RoundWrite } from '../../lib/verifier/round-writer.js';
import type { VerifierAgentEnrolment } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { forEachDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { bareVerdict } from './helpers/bare-verdict.js';

function enrolment(verifierId: string): VerifierAgentEnrolment {
  const agentId = `row-version-${Math.random().toString(36).slice(2, 10)}`;
  const fields = { agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' };
  return { ...pullAgentEnrolment(fields), verifierId };
}

/**
 * The row versions the pull loop keeps to write a waiting verdict again only over the row it was
 * decided from: every read the loop polls from carries the row's version, and a stored round hands
 * back the version it left.
 */
forEachDatabase('verifier pull loop: agent row versions', (fixture) => {
  let agents: VerifierAgentRepository;
  let writer: RoundWriter;

  before(function () {
    agents = new VerifierAgentRepository(fixture.database.knex);
    writer = new RoundWriter(fixture.database.knex, { batchDelayMs: 0 });
  });

  after(async function () {
    await writer.close();
  });

  it('find, reclaimOwn and claimFree give the version of the row as stored (leases do not move it)', async function () {
    const verifierId = `v-${Math.random().toString(36).slice(2, 8)}`;
    const mine = enrolment(verifierId);
    const free = enrolment(verifierId);
    await agents.insert(mine, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
    await agents.insert(free, initialAgentState(OperationalState.START), null, 600);
    const knex = fixture.database.knex;
    const [reclaimed] = await agents.leases.reclaimOwn(verifierId, 'me', 30);
    expect(reclaimed?.rowVersion).to.be.a('string').and.equal(await agentRowVersion(knex, mine.agentId));
    const [claimed] = await agents.leases.claimFree(verifierId, 'me', 30, 10, []);
    expect(claimed?.rowVersion).to.be.a('string').and.equal(await agentRowVersion(knex, free.agentId));
    expect((await agents.find(mine.agentId))?.rowVersion).to.equal(await agentRowVersion(knex, mine.agentId));
  });

  it('a stored round gives the version it left; a write expecting the version before an operator change is not stored', async function () {
    const e = enrolment('default');
    await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
    const knex = fixture.database.knex;
    const write = (count: number, expectedVersion?: string): RoundWrite => ({
      agentId: e.agentId,
      verifierId: 'default',
      owner: 'me',
      leaseSeconds: 30,
      ...bareVerdict(OperationalState.GET_QUOTE, count, 0),
      roundId: `round-${count}`,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
    });
    const left = await writer.writeReturningOutcome(write(1));
    expect(left).to.deep.equal({ kind: 'stored', version: await agentRowVersion(knex, e.agentId) });
    expect(await agents.holdsRound(e.agentId, 'round-1')).to.equal(true);
    expect(await agents.holdsRound(e.agentId, 'round-2')).to.equal(false);
    await agents.reactivate(e.agentId, 'default', 'me', 30);
    expect(await writer.writeReturningOutcome(write(2, left?.kind === 'stored' ? left.version : undefined), true)).to.equal(undefined);
    expect(await agents.holdsRound(e.agentId, 'round-2')).to.equal(false);
    expect((await agents.find(e.agentId))?.state).to.include({ operationalState: OperationalState.START, attestationCount: 1 });
  });
}, { migrate: true });
