import { expect } from 'chai';
import { REVOKED_STATES } from '../../lib/attestation/operational-state.js';
import type { Database } from '../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { collectingLogger } from '../helpers/collecting-logger.js';
import { openSchemaThroughPort } from '../helpers/databases.js';
import { StatementCutProxy } from '../helpers/statement-cut-proxy.js';
import { contentOf, requested, usePushVerifier, PUSH_SETTINGS } from './helpers/push-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/** How long each cut keeps the database away: longer than a verdict's first write retries. */
const CUT_MS = 2_500;

/**
 * PostgreSQL goes away at one exact statement of a push agent's cycle — the session's creation, its
 * token, its extension, phase 1's insert, phase 2's verdict (the evidence's take) — and comes back
 * after a few seconds. A push agent (the real loop, with its back-off) attests to a verifier instance
 * that reaches the shared PostgreSQL through a TCP proxy the test cuts. Throughout, no verdict is
 * stored for evidence that was not judged and the agent is never failed for the verifier's outage;
 * afterwards the agent attests again without anyone's help, and the history rows equal
 * `attestation_count` (no verdict lost, none counted twice).
 */
describe('push model: the database cut at each statement of an agent\'s cycle (TCP proxy, real PostgreSQL)', function () {
  this.timeout(120_000);
  // A long silence timeout: only the cut may disturb the agent.
  const push = usePushVerifier({ pushTimeout: 600 });
  let proxy: StatementCutProxy;
  let database: Database;
  let behind: RunningVerifier;
  let url: string;
  const lines: Record<string, unknown>[] = [];

  before(async function () {
    proxy = new StatementCutProxy();
    await proxy.start();
    database = await openSchemaThroughPort(push.opened.database.knex, proxy.port, push.dir);
    behind = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout: 600, instanceId: 'behind-the-cut', revocationWebhooks: [push.webhookUrl()] },
      { database, inProcessForTests: true, logger: collectingLogger('warn', lines) },
    );
    url = await behind.service.app.listen({ port: 0, host: '127.0.0.1' });
  });

  afterEach(function () {
    proxy.restore();
  });

  after(async function () {
    proxy?.restore();
    await behind?.close().catch(() => undefined);
    await proxy?.close();
    await database?.close();
  });

  /** Resolves once every stored verdict of `uuid` is a PASS, their count is `attestation_count`, and it reached `atLeast`. */
  async function attestedCleanly(uuid: string, atLeast: number): Promise<void> {
    await eventually(`${uuid} attested ${atLeast} times`, async () => (await push.stored(uuid)).state.attestationCount >= atLeast, 30_000, 100);
    const stored = await push.stored(uuid);
    const history = await push.history(uuid);
    expect(REVOKED_STATES).not.to.include(stored.state.operationalState);
    expect(history.map((round) => round.outcome)).to.deep.equal(history.map(() => 'pass'));
    expect(history).to.have.length(stored.state.attestationCount);
  }

  const cases: readonly { readonly name: string; readonly marker: string; readonly afterFirst: boolean }[] = [
    { name: 'the session\'s creation', marker: 'insert into "verifier_push_sessions"', afterFirst: false },
    { name: 'the session\'s token', marker: 'update "verifier_push_sessions" set "token_salt"', afterFirst: false },
    { name: 'phase 1\'s insert', marker: 'insert into verifier_push_attestations', afterFirst: true },
    { name: 'phase 2\'s verdict (the evidence\'s take)', marker: "set stage = 'evaluating_evidence'", afterFirst: true },
  ];

  for (const { name, marker, afterFirst } of cases) {
    it(`at ${name}: nothing unjudged stored, the agent not failed, and it attests again once the database is back`, async function () {
      const node = await push.bootNode();
      expect((await push.enrol(node)).status).to.equal(200);
      const agent = push.agentOf(node, url);
      const running = new AbortController();
      const cutsBefore = proxy.cuts;
      if (!afterFirst) proxy.cutAt(marker);
      const loop = agent.run(running.signal);
      try {
        if (afterFirst) {
          await attestedCleanly(node.uuid, 1);
          proxy.cutAt(marker);
        }
        await eventually(`the cut at ${name}`, async () => proxy.cuts > cutsBefore, 30_000, 50);
        const countAtCut = (await push.stored(node.uuid)).state.attestationCount;
        await new Promise((resolve) => setTimeout(resolve, CUT_MS));
        // Nothing the cut verifier took in can have become a verdict while it had no database.
        expect((await push.stored(node.uuid)).state.attestationCount).to.equal(countAtCut);
        expect((await behind.service.app.inject({ method: 'GET', url: '/health' })).statusCode, 'not ready while it cannot write').to.equal(503);
        expect(REVOKED_STATES).not.to.include((await push.stored(node.uuid)).state.operationalState);
        proxy.restore();
        await attestedCleanly(node.uuid, countAtCut + 2);
      } finally {
        running.abort();
        await loop;
      }
    });
  }

  /**
   * An enrolled push node's first attestation passed, its second opened (201) and the evidence for it
   * not sent yet. `failing`: made after `/usr/bin/nc` ran (outside its policy), judged failing when it is.
   */
  const secondEvidence = async (failing: boolean) => {
    const node = await push.bootNode();
    // No refstate: the first instance would leave the uefi_log out, and this one refuse that evidence unjudged (push-boot-log.test.ts).
    expect((await push.enrol(node, { mb_policy: undefined })).status).to.equal(200);
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    const first = await push.call('POST', attestations, await node.agent.capabilities(), token, behind);
    expect(first.status).to.equal(201);
    expect((await push.call('PATCH', `${attestations}/latest`, await node.agent.evidence(requested(first)), token, behind)).status).to.equal(202);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await push.call('POST', attestations, await node.agent.capabilities(), token, behind);
    expect(second.status).to.equal(201);
    if (failing) await node.ima.measure([{ path: '/usr/bin/nc', content: contentOf('/usr/bin/nc') }]);
    return { node, token, attestations, evidence: await node.agent.evidence(requested(second)) };
  };
  const failingSecondEvidence = () => secondEvidence(true);

  for (const [when, afterItRuns] of [['cut before it runs', false], ['run, its reply cut (taken, unknown to the verifier)', true]] as const) {
    it(`at the take of evidence judged failing, ${when}: the FAIL is kept and stored once the database is back (202), never dropped with a 500`, async function () {
      const { node, token, attestations, evidence } = await failingSecondEvidence();
      const cutsBefore = proxy.cuts;
      proxy.cutAt("set stage = 'evaluating_evidence'", afterItRuns);
      const patched = push.call('PATCH', `${attestations}/latest`, evidence, token, behind);
      await eventually('the cut at the take', async () => proxy.cuts > cutsBefore, 30_000, 20);
      setTimeout(() => proxy.restore(), CUT_MS);
      const reply = await patched;
      // Before, the FAIL was dropped: 500, the attestation left awaiting its evidence and the agent PASS on its last verdict.
      expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
      expect(await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()).to.include({ stage: 'verification_complete', evaluation: 'fail' });
      expect(REVOKED_STATES).to.include((await push.stored(node.uuid)).state.operationalState);
      expect((await push.history(node.uuid)).map((round) => round.outcome)).to.deep.equal(['pass', 'fail']);
      expect(await push.announcement(node.uuid)).to.have.property('type');
    });
  }

  /**
   * The first write of the second verdict is refused (another process took the row over: its evidence
   * taken, the verdict not stored), and the database goes away at the first statement after it that
   * contains `marker` (by default the re-read that follows), for a few seconds: the PATCH's reply, once
   * the database is back.
   */
  async function refusedThenCutAtReRead(failing: boolean, marker = 'as push_latest_attestation'): Promise<{ readonly uuid: string; readonly notReadyWhileCut: number }> {
    const { node, token, attestations, evidence } = await secondEvidence(failing);
    const writer = behind.push.verdicts;
    const write = writer.write.bind(writer);
    let refusals = 0;
    writer.write = async (round, completion, take, urgent) => {
      if (refusals > 0) return write(round, completion, take, urgent);
      refusals += 1;
      await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ owner: 'another-process' });
      proxy.cutAt(marker);
      // The real write: it takes the evidence (a pass's take is in its transaction) and is refused, the row not this owner's.
      const refused = await write(round, completion, take, urgent);
      expect(refused).to.deep.equal({ stored: false, reason: 'agent_changed' });
      return refused;
    };
    const cutsBefore = proxy.cuts;
    let notReadyWhileCut: number;
    try {
      const patched = push.call('PATCH', `${attestations}/latest`, evidence, token, behind);
      await eventually('the cut at the re-read', async () => proxy.cuts > cutsBefore, 30_000, 20);
      notReadyWhileCut = (await behind.service.app.inject({ method: 'GET', url: '/health' })).statusCode;
      setTimeout(() => proxy.restore(), CUT_MS);
      const reply = await patched;
      // Before, the re-read's error failed the agent (or, earlier, dropped its FAIL): 500, or a FAIL nobody judged.
      expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    } finally {
      writer.write = write;
    }
    expect(refusals).to.equal(1);
    return { uuid: node.uuid, notReadyWhileCut };
  }

  it('at the re-read of evidence judged failing, taken, its FAIL refused (another process took the row over): the re-read waits for the database, and the FAIL judged is stored once (202), never dropped with a 500', async function () {
    const { uuid } = await refusedThenCutAtReRead(true);
    expect(await push.opened.database.knex('verifier_push_attestations').where({ agent_id: uuid, index: 1 }).first()).to.include({ stage: 'verification_complete', evaluation: 'fail' });
    // The evidence's own failure (the IMA policy), not the verifier's: the re-read is waited for, not failed closed.
    const { state } = await push.stored(uuid);
    expect(REVOKED_STATES).to.include(state.operationalState);
    expect(state.lastEventId).to.equal('ima.validation.ima-ng.not_in_allowlist');
    expect((await push.history(uuid)).map((round) => round.outcome)).to.deep.equal(['pass', 'fail']);
    expect(await push.announcement(uuid)).to.deep.equal({ type: 'revocation', event_id: 'ima.validation.ima-ng.not_in_allowlist' });
  });

  it('at the re-read of evidence judged passing, taken, its PASS refused (another process took the row over): the re-read waits for the database, the PASS is stored once (202), the healthy agent never failed', async function () {
    const { uuid, notReadyWhileCut } = await refusedThenCutAtReRead(false);
    expect(notReadyWhileCut, 'not ready while its verdict waits').to.equal(503);
    expect(await push.opened.database.knex('verifier_push_attestations').where({ agent_id: uuid, index: 1 }).first()).to.include({ stage: 'verification_complete', evaluation: 'pass' });
    // Before, the re-read's error stored internal.verifier.exception: a healthy agent FAILED for good by a blip.
    expect(REVOKED_STATES).not.to.include((await push.stored(uuid)).state.operationalState);
    expect((await push.history(uuid)).map((round) => round.outcome)).to.deep.equal(['pass', 'pass']);
    expect((await push.stored(uuid)).state.attestationCount).to.equal(2);
    expect((await behind.service.app.inject({ method: 'GET', url: '/health' })).statusCode, 'ready once it is stored').to.equal(200);
  });

  it('at the take-over of the row after a refused PASS (another process took the row over): the take-over waits for the database, the PASS is stored once (202), the healthy agent never failed', async function () {
    const { uuid } = await refusedThenCutAtReRead(false, 'with taken as');
    expect(await push.opened.database.knex('verifier_push_attestations').where({ agent_id: uuid, index: 1 }).first()).to.include({ stage: 'verification_complete', evaluation: 'pass' });
    // Before, the take-over's error stored internal.verifier.exception: a healthy agent FAILED for good by a blip.
    expect(REVOKED_STATES).not.to.include((await push.stored(uuid)).state.operationalState);
    expect((await push.history(uuid)).map((round) => round.outcome)).to.deep.equal(['pass', 'pass']);
  });
});
