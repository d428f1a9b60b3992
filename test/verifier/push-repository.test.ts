import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import type { PushChoice } from '../../lib/attestation/push-decision.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { PushRepository, type NewPushAttestation } from '../../lib/verifier/push/push-repository.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

const AGENT = 'agent-000001';
const CHOICE: PushChoice = {
  hashAlg: 'sha256',
  signatureScheme: 'ecdsa',
  pcrs: [10],
  selectedSubjects: { sha256: [10] },
  certificationKey: { server_identifier: 'ak' },
  uefiLog: false,
  imaStartingOffset: 3,
  imaEntryCount: 7,
  imaMode: 'continue',
  bootTime: 1_700_000_000,
};

function attestation(index: number, challenge: string): NewPushAttestation {
  return {
    agentId: AGENT,
    index,
    stage: 'awaiting_evidence',
    challenge,
    choice: CHOICE,
    systemInfo: { boot_time: '2023-11-14T22:13:20Z' },
    capabilitiesReceivedAt: new Date('2026-12-03T10:00:00.123Z'),
    challengesExpireAt: new Date('2026-12-03T10:01:00.456Z'),
  };
}

describe('push repository: phase 1 inserts', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let repository: PushRepository;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
    await seedVerifierAgents(opened.database.knex, 2, 0);
    repository = new PushRepository(opened.database.knex);
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  async function versionOf(agentId: string): Promise<string> {
    return agentRowVersion(opened.database.knex, agentId);
  }

  async function judge(index: number): Promise<void> {
    await opened.database.knex('verifier_push_attestations').update({ stage: 'verification_complete', evaluation: 'pass' }).where({ agent_id: AGENT, index });
  }

  it('insertAttestation stores every field phase 1 gives; a second insert of the same index is false (409) and changes nothing', async function () {
    expect(await repository.insertAttestation(attestation(0, 'first'))).to.equal(true);
    expect(await repository.insertAttestation(attestation(0, 'second'))).to.equal(false);
    const stored = await repository.findAttestation(AGENT, 0);
    expect(stored).to.deep.equal({ ...attestation(0, 'first'), evaluation: null, failureReason: null, evidenceReceivedAt: null, verificationCompletedAt: null });
  });

  it('insertAfter inserts only after the judged latest named, while the row has the version given, and stores every field', async function () {
    const after = async (index: number, challenge: string, agentVersion: string): Promise<boolean> =>
      (await repository.insertAfter([{ attestation: attestation(1, 'c1'), after: { index, challenge }, agentVersion }])).has('c1');
    await repository.insertAttestation(attestation(0, 'c0'));
    const version = await versionOf(AGENT);
    // Not judged yet: nothing.
    expect(await after(0, 'c0', version)).to.equal(false);
    await judge(0);
    // Another challenge, another version, another index: nothing.
    expect(await after(0, 'other', version)).to.equal(false);
    expect(await after(0, 'c0', 'another version')).to.equal(false);
    expect(await after(1, 'c0', version)).to.equal(false);
    expect(await repository.listAttestations(AGENT)).to.have.length(1);
    expect(await after(0, 'c0', version)).to.equal(true);
    expect(await repository.findAttestation(AGENT, 1)).to.deep.equal({ ...attestation(1, 'c1'), evaluation: null, failureReason: null, evidenceReceivedAt: null, verificationCompletedAt: null });
    // The same insert again: 1 is the latest now, and not judged.
    expect(await after(0, 'c0', version)).to.equal(false);
  });

  it('insertAfter of several in one statement: each by its own conditions; of two for the same index, one', async function () {
    const other = 'agent-000002';
    await repository.insertAttestation(attestation(0, 'c0'));
    await repository.insertAttestation({ ...attestation(0, 'd0'), agentId: other });
    await judge(0);
    const version = await versionOf(AGENT);
    const inserted = await repository.insertAfter([
      { attestation: attestation(1, 'c1'), after: { index: 0, challenge: 'c0' }, agentVersion: version },
      { attestation: attestation(1, 'c1-twin'), after: { index: 0, challenge: 'c0' }, agentVersion: version },
      // The other agent's latest is not judged.
      { attestation: { ...attestation(1, 'd1'), agentId: other }, after: { index: 0, challenge: 'd0' }, agentVersion: await versionOf(other) },
    ]);
    expect(inserted.size).to.equal(1);
    const [challenge] = [...inserted];
    expect(['c1', 'c1-twin']).to.include(challenge);
    expect((await repository.findAttestation(AGENT, 1))?.challenge).to.equal(challenge);
    expect(await repository.findAttestation(other, 1)).to.equal(undefined);
  });

  it('silentAgents leaves out the agents a database outage spares: silent since a time in the window given, attested or only enrolled', async function () {
    const knex = opened.database.knex;
    await knex('verifier_agents').delete();
    await seedVerifierAgents(knex, 6, 0);
    const at = (s: number): Date => new Date(Date.UTC(2026, 11, 4, 12, 0, s));
    // [last attestation, enrolment]: the window spares attestations in (10 s, 30 s] and enrolments in (5 s, 30 s].
    const clocks: [Date | null, Date][] = [
      [at(20), at(0)], // attested in the window: spared
      [at(10), at(0)], // attested at its start, already late when the outage began
      [at(31), at(0)], // attested after the outage ended
      [null, at(6)], // enrolled in the window, never attested: spared
      [null, at(5)], // enrolled before it
      [null, at(40)], // enrolled after it
    ];
    for (const [i, [last, enrolled]] of clocks.entries()) {
      await knex('verifier_agents')
        .update({ attestation_mode: 'push', operational_state: 3, last_received_quote: last, created_at: enrolled })
        .where({ agent_id: `agent-00000${i + 1}` });
    }
    const before = at(50);
    expect(await repository.silentAgents('default', before, 10)).to.have.length(6);
    const spared = { attestedAfter: at(10), enrolledAfter: at(5), until: at(30) };
    expect(await repository.silentAgents('default', before, 10, spared)).to.deep.equal(['agent-000002', 'agent-000003', 'agent-000005', 'agent-000006']);
  });

  it('takeOwnership takes the row over only while it is a push agent\'s with the version named (the silence sweep of a row changed since takes nothing)', async function () {
    const knex = opened.database.knex;
    const ownerOf = async (): Promise<string> => ((await knex('verifier_agents').where({ agent_id: AGENT }).first()) as { owner: string }).owner;
    await knex('verifier_agents').update({ attestation_mode: 'push', owner: 'serving' }).where({ agent_id: AGENT });
    const read = await versionOf(AGENT);
    // A verdict lands after the sweep read the row.
    await knex('verifier_agents').update({ attestation_count: 5 }).where({ agent_id: AGENT });
    expect(await repository.takeOwnership(AGENT, 'sweeping', 60, read)).to.equal(false);
    expect(await ownerOf()).to.equal('serving');
    const current = await versionOf(AGENT);
    expect(await repository.takeOwnership(AGENT, 'sweeping', 60, current)).to.equal(true);
    expect(await ownerOf()).to.equal('sweeping');
    expect(await versionOf(AGENT), 'the owner is not part of the version').to.equal(current);
  });

  it('takeOwnership answers true for a failure to record over a stop from the version read (recordOverStop), leaving the stopped row untaken', async function () {
    const knex = opened.database.knex;
    await knex('verifier_agents').update({ attestation_mode: 'push', owner: 'serving', operational_state: 3 }).where({ agent_id: AGENT });
    const stale = await versionOf(AGENT);
    await knex('verifier_agents').update({ attestation_count: 7 }).where({ agent_id: AGENT });
    const read = await versionOf(AGENT);
    expect(await new VerifierAgentRepository(knex).stopByOperator(AGENT, 'default', 10)).to.equal(3);
    expect(await repository.takeOwnership(AGENT, 'judging', 60, read)).to.equal(false);
    expect(await repository.takeOwnership(AGENT, 'judging', 60, stale, true), 'decided from a row older than the one stopped').to.equal(false);
    const stopped = await knex('verifier_agents').where({ agent_id: AGENT }).first('owner', 'lease_expires_at');
    expect(await repository.takeOwnership(AGENT, 'judging', 60, read, true)).to.equal(true);
    expect(await knex('verifier_agents').where({ agent_id: AGENT }).first('owner', 'lease_expires_at'), 'the stopped row left as the operator left it').to.deep.equal(stopped);
    // Changed otherwise (reactivated): not even a failure takes it.
    await knex('verifier_agents').update({ operational_state: 1, owner: 'serving' }).where({ agent_id: AGENT });
    expect(await repository.takeOwnership(AGENT, 'judging', 60, read, true)).to.equal(false);
  });
});
