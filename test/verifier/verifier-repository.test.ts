import { expect } from 'chai';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { appliedMigrations, migrateLatest, migrateRollbackLastBatch } from '../../lib/db/migrate.js';
import type { VerifierAgentEnrolment } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierAgentRepository, type SaveRoundInput } from '../../lib/verifier/verifier-agent-repository.js';
import { RoundWriter } from '../../lib/verifier/round-writer.js';
import { storeRounds, type StoredRound } from '../../lib/verifier/save-rounds.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { VerifierConflict } from '../../lib/verifier/verifier-errors.js';
import { VerifierPolicyRepository } from '../../lib/verifier/verifier-policy-repository.js';
import { forEachDatabase } from '../helpers/databases.js';
import { bareVerdict } from './helpers/bare-verdict.js';

let counter = 0;

function enrolment(overrides: Partial<VerifierAgentEnrolment> = {}): VerifierAgentEnrolment {
  counter += 1;
  return {
    agentId: `agent-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    v: Buffer.alloc(32, 7).toString('base64'),
    ip: '127.0.0.1',
    port: 9002,
    attestationMode: 'pull',
    verifierIp: null,
    verifierPort: null,
    tpmPolicy: '{"mask": "0x400"}',
    runtimePolicyName: null,
    mbPolicyName: null,
    imaSignVerificationKeys: '',
    metaData: '{"cert_serial": 1}',
    revocationKey: '',
    acceptTpmHashAlgs: ['sha512', 'sha384', 'sha256'],
    acceptTpmEncryptionAlgs: ['ecc', 'rsa'],
    acceptTpmSigningAlgs: ['rsassa'],
    akTpm: 'AAAA',
    mtlsCert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    supportedVersion: '2.6',
    verifierId: 'default',
    ...overrides,
  };
}

/** A state with every field away from its initial value, so a round trip proves each column. */
function busyState(): AgentAttestationState {
  return {
    operationalState: OperationalState.GET_QUOTE,
    attestationCount: 41,
    severityLevel: 3,
    lastEventId: 'ima.pcr_mismatch',
    lastReceivedQuote: 1_800_000_123,
    lastSuccessfulAttestation: 1_800_000_100,
    tpmClockInfo: { clock: '18446744073709551615', resetCount: 4, restartCount: 2, safe: true },
    boottime: 1_799_999_000,
    ima: {
      nextEntry: 826,
      pcr10: { sha1: 'ab'.repeat(20), sha256: 'cd'.repeat(32), sha384: 'ef'.repeat(48) },
      learnedKeyrings: { '.ima': { pubkeys: ['MFkw'], keyids: [305419896], digests: ['12'.repeat(32)] } },
      lagEntries: 2,
    },
    publicKey: '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n',
    hashAlg: 'sha256',
    encAlg: 'rsa2048',
    signAlg: 'rsassa',
  };
}

/** A round of `owner-1` for `agentId` that leaves it in `state`, stored on condition of `expectedVersion` when given. */
function round(agentId: string, state: OperationalState, count: number, expectedVersion?: string): SaveRoundInput {
  return {
    agentId,
    verifierId: 'default',
    owner: 'owner-1',
    leaseSeconds: 30,
    ...bareVerdict(state, count, 0),
    ...(expectedVersion === undefined ? {} : { expectedVersion }),
  };
}

forEachDatabase(
  'verifier repository',
  (fixture) => {
    let agents: VerifierAgentRepository;
    let policies: VerifierPolicyRepository;

    before(function () {
      agents = new VerifierAgentRepository(fixture.database.knex);
      policies = new VerifierPolicyRepository(fixture.database.knex);
    });

    it('stores an enrolment and its attestation state column by column and reads them back exactly', async function () {
      const e = enrolment();
      await agents.insert(e, initialAgentState(), 'owner-1', 30);
      const fresh = await agents.find(e.agentId);
      expect(fresh?.state).to.deep.equal(initialAgentState());
      expect(fresh).to.deep.include({ ...e, owner: 'owner-1', lastAttemptAt: 0 });
      const saved = await agents.saveRound({
        agentId: e.agentId,
        verifierId: 'default',
        owner: 'owner-1',
        leaseSeconds: 30,
        state: busyState(),
        history: { outcome: 'pass', nonce: 'abcdefghij0123456789', imaMlEntry: 800, imaEntriesReceived: 26, failures: [] },
      });
      expect(saved).to.equal(true);
      const back = await agents.find(e.agentId);
      expect(back?.state).to.deep.equal(busyState());
      expect(back?.lastAttemptAt).to.be.closeTo(Math.floor(Date.now() / 1000), 60);
      const row = (await fixture.database.knex('verifier_agents').where({ agent_id: e.agentId }).first()) as Record<string, unknown>;
      expect(row).to.include({ next_ima_ml_entry: 826, attestation_count: 41, operational_state: 3, last_event_id: 'ima.pcr_mismatch' });
      // A round that judged nothing (V delivered on a retry) stores state only.
      const vOnly = { ...busyState(), operationalState: OperationalState.GET_QUOTE };
      expect(await agents.saveRound({ agentId: e.agentId, verifierId: 'default', owner: 'owner-1', leaseSeconds: 30, state: vOnly, history: undefined })).to.equal(true);
      expect((await agents.history(e.agentId, 10, undefined)).rows).to.have.length(1);
    });

    it('updateSupportedVersion stores a renegotiated agent API version only while the owner holds the agent at the row version given, and returns the new one', async function () {
      const e = enrolment({ supportedVersion: '2.0' });
      await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'owner-1', 30);
      const loaded = (await agents.find(e.agentId))?.rowVersion ?? '';
      expect(await agents.updateSupportedVersion(e.agentId, 'someone-else', loaded, '2.6')).to.equal(undefined);
      expect(await agents.updateSupportedVersion(e.agentId, 'owner-1', `${loaded}1`, '2.6'), 'another row version').to.equal(undefined);
      expect((await agents.find(e.agentId))?.supportedVersion).to.equal('2.0');
      const stored = await agents.updateSupportedVersion(e.agentId, 'owner-1', loaded, '2.6');
      const after = await agents.find(e.agentId);
      expect(after?.supportedVersion).to.equal('2.6');
      expect(stored).to.be.a('string').and.not.equal(loaded);
      expect(stored).to.equal(after?.rowVersion);
    });

    it('refuses a second enrolment of the same id with ERR_CONFLICT', async function () {
      const e = enrolment();
      await agents.insert(e, initialAgentState(), null, 30);
      const error = await agents.insert(e, initialAgentState(), null, 30).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(VerifierConflict);
      expect((error as VerifierConflict).code).to.equal('ERR_CONFLICT');
      expect((error as VerifierConflict).message).to.equal(`Agent of uuid ${e.agentId} already exists`);
    });

    it('saveRound stores state and history only while the owner holds the agent and no operator stopped or deleted it', async function () {
      const e = enrolment();
      await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'owner-1', 30);
      const round = (owner: string, count: number) =>
        agents.saveRound({
          agentId: e.agentId,
          verifierId: 'default',
          owner,
          leaseSeconds: 30,
          state: { ...initialAgentState(OperationalState.GET_QUOTE), attestationCount: count },
          history: {
            outcome: 'fail',
            nonce: null,
            imaMlEntry: 0,
            imaEntriesReceived: null,
            failures: [{ event_id: 'ima.pcr_mismatch', severity_label: 'emergency', context: { n: count }, recoverable: true }],
          },
        });
      expect(await round('owner-1', 1)).to.equal(true);
      expect(await round('owner-2', 2)).to.equal(false);
      expect(await agents.stopByOperator(e.agentId, 'default', OperationalState.TENANT_FAILED)).to.equal(OperationalState.GET_QUOTE);
      expect(await round('owner-1', 3)).to.equal(false);
      const stored = await agents.find(e.agentId);
      expect(stored?.state.operationalState).to.equal(OperationalState.TENANT_FAILED);
      expect(stored?.state.attestationCount).to.equal(1);
      const history = (await agents.history(e.agentId, 10, undefined)).rows;
      // Rounds not stored leave no history row either: history and attestation_count never disagree.
      expect(history.map((h) => h.attestationCount)).to.deep.equal([1]);
      expect(history[0]?.failures).to.deep.equal([{ event_id: 'ima.pcr_mismatch', severity_label: 'emergency', context: { n: 1 }, recoverable: true }]);
      expect(history[0]?.owner).to.equal('owner-1');
    });

    it('a round with expectedVersion is stored only while the agent\'s row still has that version: of two writes decided from the same read, one is stored', async function () {
      const e = enrolment();
      await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'owner-1', 30);
      const read = await agentRowVersion(fixture.database.knex, e.agentId);
      const failed = (count: number): SaveRoundInput => round(e.agentId, OperationalState.FAILED, count, read);
      const knex = fixture.database.knex;
      if (fixture.kind === 'postgres') {
        // The second write waits for the first one's row lock, then finds the state it expected gone.
        let second: Promise<Map<string, StoredRound>> | undefined;
        await knex.transaction(async (trx) => {
          expect(await storeRounds(trx, [failed(1)])).to.have.keys(e.agentId);
          second = storeRounds(knex, [failed(2)]);
          await new Promise((resolve) => setTimeout(resolve, 100));
        });
        expect(await second).to.be.empty;
      } else {
        expect(await agents.saveRound(failed(1))).to.equal(true);
        expect(await agents.saveRound(failed(2))).to.equal(false);
      }
      expect((await agents.find(e.agentId))?.state).to.include({ operationalState: OperationalState.FAILED, attestationCount: 1 });
      expect((await agents.history(e.agentId, 10, undefined)).rows.map((h) => h.attestationCount)).to.deep.equal([1]);
    });

    it('a round with expectedVersion is not stored over a verdict stored since the read, though the state is the same', async function () {
      const e = enrolment();
      await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'owner-1', 30);
      const read = await agentRowVersion(fixture.database.knex, e.agentId);
      expect(await agents.saveRound(round(e.agentId, OperationalState.GET_QUOTE, 1))).to.equal(true);
      expect(await agents.saveRound(round(e.agentId, OperationalState.FAILED, 1, read))).to.equal(false);
      expect((await agents.find(e.agentId))?.state).to.include({ operationalState: OperationalState.GET_QUOTE, attestationCount: 1 });
      expect((await agents.history(e.agentId, 10, undefined)).rows.map((h) => h.outcome)).to.deep.equal(['pass']);
    });

    it('two writes for one agent in one batch go in successive statements: the later one is judged against the row the earlier one left', async function () {
      const writer = new RoundWriter(fixture.database.knex, { batchDelayMs: 50 });
      try {
        for (const failFirst of [false, true]) {
          const e = enrolment();
          await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'owner-1', 30);
          const read = await agentRowVersion(fixture.database.knex, e.agentId);
          // Both decided from the same read: a verdict (its take holds that version) and the silence sweep's FAIL.
          const pass = round(e.agentId, OperationalState.GET_QUOTE, 1, read);
          const fail = round(e.agentId, OperationalState.FAILED, 1, read);
          const answers = await Promise.all(failFirst ? [writer.write(fail), writer.write(pass)] : [writer.write(pass), writer.write(fail)]);
          expect(answers, `fail first: ${failFirst}`).to.deep.equal([true, false]);
          const first = failFirst ? 'fail' : 'pass';
          expect((await agents.history(e.agentId, 10, undefined)).rows.map((h) => h.outcome), `fail first: ${failFirst}`).to.deep.equal([first]);
          expect((await agents.find(e.agentId))?.state.operationalState).to.equal(failFirst ? OperationalState.FAILED : OperationalState.GET_QUOTE);
        }
      } finally {
        await writer.close();
      }
    });

    it('stopByOperator honours `from` and the verifier id; reactivate takes ownership and clears severity, event and last success', async function () {
      const e = enrolment();
      await agents.insert(e, { ...initialAgentState(OperationalState.INVALID_QUOTE), severityLevel: 6, lastEventId: 'x.y', lastSuccessfulAttestation: 1_700_000_000 }, 'owner-1', 30);
      expect(await agents.stopByOperator(e.agentId, 'other-verifier', OperationalState.TENANT_FAILED)).to.equal(undefined);
      expect(await agents.stopByOperator(e.agentId, 'default', OperationalState.TENANT_FAILED, { from: [OperationalState.FAILED] })).to.equal(undefined);
      expect(await agents.reactivate(e.agentId, 'other-verifier', 'owner-9', 30)).to.equal(undefined);
      expect(await agents.reactivate(e.agentId, 'default', 'owner-9', 30)).to.equal(OperationalState.INVALID_QUOTE);
      const stored = await agents.find(e.agentId);
      expect(stored).to.deep.include({ owner: 'owner-9' });
      expect(stored?.state).to.deep.include({ operationalState: OperationalState.START, severityLevel: null, lastEventId: null, lastSuccessfulAttestation: 0 });
      expect(await agents.stopByOperator(e.agentId, 'default', OperationalState.TERMINATED)).to.equal(OperationalState.START);
      expect(await agents.reactivate(e.agentId, 'default', 'owner-9', 30), 'TERMINATED').to.equal(undefined);
    });

    it('a stop keeps the version it stopped the row from (stopped_from_version), unversioned; a delete over the stop keeps it, a reactivation clears it', async function () {
      const knex = fixture.database.knex;
      const e = enrolment();
      await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'owner-1', 30);
      const token = async (): Promise<string | null> =>
        ((await knex('verifier_agents').where({ agent_id: e.agentId }).first(knex.raw('stopped_from_version::text as token'))) as { token: string | null }).token;
      const running = await agentRowVersion(knex, e.agentId);
      expect(await agents.stopByOperator(e.agentId, 'default', OperationalState.TENANT_FAILED)).to.equal(OperationalState.GET_QUOTE);
      expect(await token()).to.equal(running);
      const stopped = await agentRowVersion(knex, e.agentId);
      await knex('verifier_agents').update({ stopped_from_version: null }).where({ agent_id: e.agentId });
      expect(await agentRowVersion(knex, e.agentId), 'consuming the token is not a change of the row').to.equal(stopped);
      await knex('verifier_agents').update({ stopped_from_version: knex.raw('?::bigint', [running]) }).where({ agent_id: e.agentId });
      expect(await agents.stopByOperator(e.agentId, 'default', OperationalState.TERMINATED)).to.equal(OperationalState.TENANT_FAILED);
      expect(await token(), 'the first stop\'s token').to.equal(running);
      expect(await agents.reactivate(e.agentId, 'default', 'owner-1', 30), 'TERMINATED').to.equal(undefined);
      await agents.stopByOperator(e.agentId, 'default', OperationalState.TENANT_FAILED);
      expect(await agents.reactivate(e.agentId, 'default', 'owner-1', 30)).to.equal(OperationalState.TENANT_FAILED);
      expect(await token()).to.equal(null);
    });

    it('leases: a process reclaims its own agents at once, others only after the lease expired, never twice', async function () {
      const verifierId = `v-${Math.random().toString(36).slice(2, 8)}`;
      const mine = enrolment({ verifierId });
      const free = enrolment({ verifierId });
      const held = enrolment({ verifierId });
      const stopped = enrolment({ verifierId });
      await agents.insert(mine, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
      await agents.insert(free, initialAgentState(OperationalState.START), null, 600);
      await agents.insert(held, initialAgentState(OperationalState.GET_QUOTE), 'other', 600);
      await agents.insert(stopped, initialAgentState(OperationalState.INVALID_QUOTE), null, 600);
      expect((await agents.leases.reclaimOwn(verifierId, 'me', 30)).map((r) => r.agentId)).to.deep.equal([mine.agentId]);
      expect((await agents.leases.claimFree(verifierId, 'me', 30, 10, [])).map((r) => r.agentId)).to.deep.equal([free.agentId]);
      expect(await agents.leases.claimFree(verifierId, 'third', 30, 10, [])).to.deep.equal([]);
      await agents.leases.releaseLeases('other');
      // An agent whose verdict waits in the claiming process is not claimed (its lease stays lapsed).
      expect(await agents.leases.claimFree(verifierId, 'third', 30, 10, [held.agentId])).to.deep.equal([]);
      const taken = await agents.leases.claimFree(verifierId, 'third', 30, 10, []);
      expect(taken.map((r) => r.agentId)).to.deep.equal([held.agentId]);
      expect(taken[0]?.owner).to.equal('third');
      // Only the agents named (those whose last round the loop stored) are renewed.
      expect(await agents.leases.renewLeases('me', 30, [mine.agentId, free.agentId, held.agentId])).to.equal(2);
      expect(await agents.leases.renewLeases('me', 30, [mine.agentId])).to.equal(1);
      expect(await agents.leases.renewLeases('me', 30, [])).to.equal(0);
    });

    it('renewing leases skips, without waiting, a row another transaction holds (a round batch renews it itself)', async function () {
      if (fixture.kind !== 'postgres') this.skip(); // PGlite has one connection: a second transaction cannot be open meanwhile.
      const verifierId = `v-${Math.random().toString(36).slice(2, 8)}`;
      const busy = enrolment({ verifierId });
      const idle = enrolment({ verifierId });
      for (const e of [busy, idle]) await agents.insert(e, initialAgentState(OperationalState.GET_QUOTE), 'me', 600);
      const knex = fixture.database.knex;
      await knex.transaction(async (trx) => {
        await trx('verifier_agents').update({ attestation_count: 1 }).where({ agent_id: busy.agentId });
        expect(await agents.leases.renewLeases('me', 30, [busy.agentId, idle.agentId])).to.equal(1);
      });
      expect(await agents.leases.renewLeases('me', 30, [busy.agentId, idle.agentId])).to.equal(2);
    });

    it('concurrent claims never hand the same agent to two owners (FOR UPDATE SKIP LOCKED)', async function () {
      const verifierId = `v-${Math.random().toString(36).slice(2, 8)}`;
      const ids: string[] = [];
      for (let i = 0; i < 12; i += 1) {
        const e = enrolment({ verifierId });
        ids.push(e.agentId);
        await agents.insert(e, initialAgentState(), null, 30);
      }
      const results = await Promise.all(['a', 'b', 'c'].map((owner) => agents.leases.claimFree(verifierId, owner, 30, 5, [])));
      const rest = await agents.leases.claimFree(verifierId, 'd', 30, 20, []);
      const claimed = [...results.flat(), ...rest].map((r) => r.agentId);
      // Every agent claimed exactly once, by whoever got to it first.
      expect([...claimed].sort()).to.deep.equal([...ids].sort());
      for (const [i, owner] of ['a', 'b', 'c'].entries()) {
        expect(results[i]?.length).to.be.at.most(5);
        expect(results[i]?.every((r) => r.owner === owner)).to.equal(true);
      }
    });

    it('delete removes the agent and the policies stored under its id, keeps history and named policies others use', async function () {
      const e = enrolment();
      const sharedName = `shared-${e.agentId}`;
      await policies.insertRuntime({ name: e.agentId, runtimePolicy: '{}', checksum: 'x', generator: 2, tpmPolicy: null }, 'default');
      await policies.insertRuntime({ name: sharedName, runtimePolicy: '{}', checksum: 'x', generator: 2, tpmPolicy: null }, 'default');
      await policies.insertMb({ name: e.agentId, mbPolicy: '{}' }, 'default');
      await agents.insert({ ...e, runtimePolicyName: e.agentId, mbPolicyName: e.agentId }, initialAgentState(), 'o', 30);
      const other = enrolment({ runtimePolicyName: sharedName });
      await agents.insert(other, initialAgentState(), 'o', 30);
      await agents.saveRound({
        agentId: e.agentId,
        verifierId: 'default',
        owner: 'o',
        leaseSeconds: 30,
        state: initialAgentState(),
        history: { outcome: 'pass', nonce: null, imaMlEntry: 0, imaEntriesReceived: 0, failures: [] },
      });
      const inUse = await policies.deleteRuntime(sharedName).catch((caught: unknown) => caught);
      expect((inUse as VerifierConflict).code).to.equal('ERR_CONFLICT');
      expect(await agents.delete(e.agentId)).to.equal(true);
      expect(await agents.delete(e.agentId)).to.equal(false);
      expect(await policies.findRuntime(e.agentId)).to.equal(undefined);
      expect(await policies.findMb(e.agentId)).to.equal(undefined);
      expect(await policies.findRuntime(sharedName)).to.not.equal(undefined);
      expect((await agents.history(e.agentId, 10, undefined)).rows).to.have.length(1);
    });

    it("delete leaves a policy another tenant stored under the agent's id", async function () {
      const e = enrolment({ tenant: 'blue' });
      await policies.insertRuntime({ name: e.agentId, runtimePolicy: '{}', checksum: 'x', generator: 2, tpmPolicy: null }, 'red');
      await policies.insertMb({ name: e.agentId, mbPolicy: '{}' }, 'red');
      await agents.insert(e, initialAgentState(), 'o', 30);
      expect(await agents.delete(e.agentId)).to.equal(true);
      expect(await policies.findRuntime(e.agentId)).to.not.equal(undefined);
      expect(await policies.findMb(e.agentId)).to.not.equal(undefined);
    });

    it('an enrolment holds the named policy it checked (FOR KEY SHARE): a delete meanwhile waits, then is 409 as the agent uses it', async function () {
      if (fixture.kind !== 'postgres') this.skip(); // PGlite has one connection: a second transaction cannot be open meanwhile.
      const e = enrolment({ tenant: 'blue' });
      const name = `held-${e.agentId}`;
      await policies.insertRuntime({ name, runtimePolicy: '{}', checksum: 'x', generator: 2, tpmPolicy: null }, 'blue');
      let deletion: Promise<unknown> = Promise.resolve();
      let settled = false;
      await fixture.database.knex.transaction(async (trx) => {
        expect(await policies.holdRuntime(name, 'blue', trx)).to.equal(true);
        deletion = policies.deleteRuntime(name).then(
          (deleted) => deleted,
          (caught: unknown) => caught,
        );
        void deletion.then(() => (settled = true));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(settled, 'the delete waits for the enrolment to end').to.equal(false);
        await new VerifierAgentRepository(trx).insert({ ...e, runtimePolicyName: name }, initialAgentState(), 'o', 30);
      });
      expect(((await deletion) as VerifierConflict).code).to.equal('ERR_CONFLICT');
      expect((await agents.find(e.agentId))?.runtimePolicyName).to.equal(name);
    });

    it('policy stores: insert, conflict, update, list, delete', async function () {
      const name = `p-${Math.random().toString(36).slice(2, 8)}`;
      await policies.insertMb({ name, mbPolicy: '{"a": 1}' }, 'default');
      const duplicate = await policies.insertMb({ name, mbPolicy: '{}' }, 'default').catch((caught: unknown) => caught);
      expect((duplicate as VerifierConflict).message).to.equal(`Measured boot policy with name ${name} already exists`);
      expect(await policies.updateMb({ name, mbPolicy: '{"a": 2}' })).to.equal(true);
      expect(await policies.updateMb({ name: `${name}-absent`, mbPolicy: '{}' })).to.equal(false);
      expect((await policies.findMb(name))?.mbPolicy).to.equal('{"a": 2}');
      expect(await policies.listMbNames()).to.include(name);
      expect(await policies.deleteMb(name)).to.equal(true);
      expect(await policies.deleteMb(name)).to.equal(false);
    });
  },
  { migrate: true },
);

forEachDatabase('verifier migration', (fixture) => {
  it('runs latest → rollback → latest', async function () {
    await migrateLatest(fixture.database.knex);
    expect(await appliedMigrations(fixture.database.knex)).to.include('20261124090000-create-verifier-tables');
    expect(await fixture.database.knex.schema.hasTable('verifier_agents')).to.equal(true);
    while ((await appliedMigrations(fixture.database.knex)).includes('20261124090000-create-verifier-tables')) {
      await migrateRollbackLastBatch(fixture.database.knex);
    }
    expect(await fixture.database.knex.schema.hasTable('verifier_attestation_history')).to.equal(false);
    await migrateLatest(fixture.database.knex);
    expect(await fixture.database.knex.schema.hasTable('verifier_attestation_history')).to.equal(true);
  });
});
