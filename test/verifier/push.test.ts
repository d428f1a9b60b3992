import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { contentOf, PUSH_SETTINGS, requested, usePushVerifier, type Reply } from './helpers/push-verifier.js';

/**
 * A silence timeout far beyond the 1 s waits between rounds below: with PUSH_SETTINGS' 3 s, a slow host
 * spent the rest in the next round's session, phase 1 and quote, and the sweep added a FAIL row. The
 * silence tests themselves are in push-silence.test.ts. The expiry test has a verifier of its own, with
 * a short challenge.
 */
const SETTINGS = { ...PUSH_SETTINGS, pushTimeout: 60 };

describe('push model: verifier /v3.0 routes, push agent (issue 13)', function () {
  this.timeout(60_000);
  const push = usePushVerifier(SETTINGS);

  it('a push agent enrols without address or port, proves its AK, and attests several rounds with incremental IMA', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect((await push.stored(node.uuid)).attestationMode).to.equal('push');
    expect(await node.agent.attestOnce()).to.equal(1);
    for (const file of ['/usr/bin/ls', '/usr/bin/cat']) {
      await node.ima.measure([{ path: file, content: contentOf(file) }]);
      await new Promise((resolve) => setTimeout(resolve, 1050));
      expect(await node.agent.attestOnce()).to.equal(1);
    }
    const rows = await push.history(node.uuid);
    expect(rows.map((r) => r.outcome)).to.deep.equal(['pass', 'pass', 'pass']);
    // Round 1 replays boot_aggregate and bash from 0; each later round gets the new line only.
    expect(rows.map((r) => [r.imaMlEntry, r.imaEntriesReceived])).to.deep.equal([
      [0, 2],
      [2, 1],
      [3, 1],
    ]);
    const record = await push.stored(node.uuid);
    expect(record.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(record.state.attestationCount).to.equal(3);
    expect(record.state.ima.nextEntry).to.equal(4);
    const status = await push.call('GET', `/v2.5/agents/${node.uuid}`);
    expect(status.body['results']['attestation_status']).to.equal('PASS');
  });

  it('phase 1 after a verdict this process stored follows the agent\'s row: a changed tpm_policy, then pull mode', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    // Changed behind this process's back, as the tenant or another verifier process would.
    await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ tpm_policy: JSON.stringify({ mask: '0x800400' }) });
    const token = await node.agent.openSession();
    const next = await push.capabilities(node, token);
    expect(next.status).to.equal(201);
    expect(next.headers['location']).to.equal(`/v3.0/agents/${node.uuid}/attestations/1`);
    const quoteItem = requested(next)[0] as { chosen_parameters: { selected_subjects: Record<string, number[]> } };
    expect(quoteItem.chosen_parameters.selected_subjects['sha256']).to.include(23);
    const indexes = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid }).orderBy('index').select('index')) as { index: number }[];
    expect(indexes.map((row) => row.index)).to.deep.equal([0, 1]);
    const accepted = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, await node.agent.evidence(requested(next)), token);
    expect(accepted.status).to.equal(202);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ attestation_mode: 'pull' });
    const refused = await push.capabilities(node, token);
    expect(refused.status).to.equal(403);
    expect(refused.body['errors'][0]['code']).to.equal('agent_attestations_disabled');
    expect(await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 2 }).first()).to.equal(undefined);
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
  });

  it('the agent\'s run loop attests on the returned interval and stops cleanly when aborted', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const stop = new AbortController();
    const running = node.agent.run(stop.signal);
    // Waits for rounds rather than counting them in a fixed time: on a loaded machine the first session
    // alone can take a second, and the point is the spacing and the clean stop, not the speed.
    await pollUntil({ timeoutMs: 30_000, intervalMs: 100 }, 'three push rounds', async () => (await push.history(node.uuid)).length >= 3);
    stop.abort();
    await running;
    const rows = await push.history(node.uuid);
    expect(rows.every((r) => r.outcome === 'pass')).to.equal(true);
    const gaps = rows.slice(1).map((row, i) => row.attemptedAt - (rows[i]?.attemptedAt ?? 0));
    // quoteInterval is 1 s: the agent waits seconds_to_next_attestation between rounds (100 ms of clock slack).
    expect(Math.min(...gaps)).to.be.at.least(900);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await push.history(node.uuid)).length, 'no round after the abort').to.equal(rows.length);
  });

  it('is refused after IMA tampering (a file outside the runtime policy): policy_violation, FAIL, announced to the revocation webhook', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    await node.agent.attestOnce();
    await node.ima.measure([{ path: '/tmp/rootkit', content: new Uint8Array([1, 2, 3]) }]);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    await node.agent.attestOnce();
    const rows = await push.history(node.uuid);
    expect(rows.at(-1)?.outcome).to.equal('fail');
    expect(rows.at(-1)?.failures.map((f) => f.event_id)).to.include('ima.validation.ima-ng.not_in_allowlist');
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
    const token = await node.agent.openSession();
    const latest = await push.call('GET', `/v3.0/agents/${node.uuid}/attestations/latest`, undefined, token);
    expect(latest.status).to.equal(201);
    expect(latest.body['data']['attributes']).to.include({ stage: 'verification_complete', evaluation: 'fail', failure_reason: 'policy_violation' });
    expect((await push.call('GET', `/v2.5/agents/${node.uuid}`)).body['results']['attestation_status']).to.equal('FAIL');
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'revocation', event_id: 'ima.validation.ima-ng.not_in_allowlist' });
  });

  it('is refused after measured-boot tampering (PCR 4 no longer replays the boot log): broken_evidence_chain', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    await node.agent.attestOnce();
    await node.tpm.extendPcr(4, 'sha256', new Uint8Array(32).fill(0xee));
    await new Promise((resolve) => setTimeout(resolve, 1050));
    await node.agent.attestOnce();
    const rows = await push.history(node.uuid);
    expect(rows.at(-1)?.outcome).to.equal('fail');
    expect(rows.at(-1)?.failures.map((f) => f.event_id)).to.include('measured_boot.invalid_pcr_4');
    const token = await node.agent.openSession();
    const latest = await push.call('GET', `/v3.0/agents/${node.uuid}/attestations/latest`, undefined, token);
    expect(latest.body['data']['attributes']['failure_reason']).to.equal('broken_evidence_chain');
  });

  it('evidence is taken once across two verifier processes: a replay at the other is 403 evidence_immutable; of two concurrent PATCHes, one is judged', async function () {
    const second = await startVerifier(
      { dataDir: push.dir, ...SETTINGS, instanceId: 'second-verifier-process' },
      { database: push.opened.database, inProcessForTests: true },
    );
    try {
      const node = await push.bootNode();
      // No refstate: with one, the first process's second attestation leaves the uefi_log out, and the
      // second process refuses such evidence before anything else (push-boot-log.test.ts).
      await push.enrol(node, { mb_policy: undefined });
      const token = await node.agent.openSession();
      const patch = async (evidence: object, at: RunningVerifier) => push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token, at);
      const first = await push.capabilities(node, token);
      const evidence0 = await node.agent.evidence(requested(first));
      expect((await patch(evidence0, push.verifier)).status).to.equal(202);
      // The second process has not seen this agent: it reads the attestation back and refuses the replay.
      const replay = await patch(evidence0, second);
      expect(replay.status).to.equal(403);
      expect(replay.body['errors'][0]['code']).to.equal('evidence_immutable');
      // The first process judges without a read and takes the evidence with its verdict; the second
      // takes it at once. Sent together (the second a moment later, while the first's verdict waits
      // for its batch), exactly one is judged and stored; the other is refused as a replay.
      await new Promise((resolve) => setTimeout(resolve, 1050));
      const next = await push.capabilities(node, token);
      expect(next.status).to.equal(201);
      const evidence1 = await node.agent.evidence(requested(next));
      const firstPatch = patch(evidence1, push.verifier);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const answers = await Promise.all([firstPatch, patch(evidence1, second)]);
      expect(answers.map((a) => a.status).sort()).to.deep.equal([202, 403]);
      expect(answers.find((a) => a.status === 403)?.body['errors'][0]['code']).to.equal('evidence_immutable');
      expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
      expect((await push.stored(node.uuid)).state.attestationCount).to.equal(2);
      const latest = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()) as { stage: string; evaluation: string };
      expect(latest).to.include({ stage: 'verification_complete', evaluation: 'pass' });
    } finally {
      await second.close();
    }
  });

  it('a database outage during phase 2: the PATCH waits, /health is not ready, nothing reads as judged, and the verdict (a FAIL) is stored once the database is back', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await node.ima.measure([{ path: '/tmp/rootkit', content: new Uint8Array([1, 2, 3]) }]);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const token = await node.agent.openSession();
    const next = await push.capabilities(node, token);
    const evidence = await node.agent.evidence(requested(next));
    const knex = push.opened.database.knex;
    // The audit records' table gone: every verdict transaction fails at its audit step.
    await knex.raw('alter table audit_records rename to audit_records_away');
    let settled = false;
    let patching: Promise<Reply> | undefined;
    try {
      patching = push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(settled, 'no answer while the verdict is not stored').to.equal(false);
      expect((await push.verifier.service.app.inject({ method: 'GET', url: '/health' })).statusCode, 'not ready while a verdict waits').to.equal(503);
      expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass']);
      expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
      const waiting = await push.capabilities(node, token);
      expect(waiting.status).to.equal(503);
      expect(waiting.body['errors'][0]['code']).to.equal('verification_in_progress');
    } finally {
      await knex.raw('alter table audit_records_away rename to audit_records');
    }
    expect((await patching).status).to.equal(202);
    const rows = await push.history(node.uuid);
    expect(rows.map((r) => r.outcome)).to.deep.equal(['pass', 'fail']);
    expect(rows.at(-1)?.failures.map((f) => f.event_id)).to.include('ima.validation.ima-ng.not_in_allowlist');
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
  });

  it('a quote missing a requested PCR is 422, and nothing is judged', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const token = await node.agent.openSession();
    const created = await push.capabilities(node, token);
    const quoteItem = requested(created)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]> } };
    expect(quoteItem.chosen_parameters.selected_subjects['sha256']).to.include.members([0, 7, 10, 14]);
    const short = await node.tpm.quote({
      nonce: new Uint8Array(Buffer.from(quoteItem.chosen_parameters.challenge, 'base64')),
      pcrs: (quoteItem.chosen_parameters.selected_subjects['sha256'] ?? []).filter((pcr) => pcr !== 7),
      hashAlg: 'sha256',
    });
    const evidence = (await node.agent.evidence(requested(created))) as { data: { attributes: { evidence_collected: { data: Record<string, string> }[] } } };
    const quote = evidence.data.attributes.evidence_collected[0] as { data: Record<string, string> };
    quote.data = {
      message: Buffer.from(short.attest).toString('base64'),
      signature: Buffer.from(short.signature).toString('base64'),
      subject_data: Buffer.from(short.pcrBlob).toString('base64'),
    };
    const refused = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token);
    expect(refused.status).to.equal(422);
    expect(refused.body['errors'][0]['detail']).to.contain('PCR 7');
    expect(await push.history(node.uuid)).to.deep.equal([]);
  });

  it('refuses attestations without a token (403), with a wrong one or another agent\'s (401)', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const body = await node.agent.capabilities();
    expect((await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body)).status).to.equal(403);
    const wrong = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, `${randomUUID()}.bm90LWEtdG9rZW4`);
    expect(wrong.status).to.equal(401);
    const token = await node.agent.openSession();
    const other = await push.bootNode();
    await push.enrol(other);
    expect((await push.call('POST', `/v3.0/agents/${other.uuid}/attestations`, body, token)).status).to.equal(401);
  });

  it('a pull-enrolled agent gets 403 agent_attestations_disabled on the push routes', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const token = await node.agent.openSession();
    await push.opened.database.knex('verifier_agents').update({ attestation_mode: 'pull' }).where({ agent_id: node.uuid });
    const refused = await push.capabilities(node, token);
    expect(refused.status).to.equal(403);
    expect(refused.body['errors'][0]['code']).to.equal('agent_attestations_disabled');
  });

  it('rate-limits proven sessions per agent: after 15 in a minute the next open is 429 with Retry-After', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    for (let i = 0; i < 15; i += 1) await node.agent.openSession();
    const body = { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } } };
    const limited = await push.call('POST', '/v3.0/sessions', body);
    expect(limited.status).to.equal(429);
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 60);
  });

  it('stores the token only as a salted PBKDF2 hash', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const token = await node.agent.openSession();
    const [sessionId, secret] = token.split('.') as [string, string];
    const row = (await push.opened.database.knex('verifier_push_sessions').where({ session_id: sessionId }).first()) as Record<string, string>;
    expect(JSON.stringify(row)).to.not.contain(secret);
    expect(Buffer.from(row['token_salt'] ?? '', 'base64')).to.have.length(16);
    expect(Buffer.from(row['token_hash'] ?? '', 'base64')).to.have.length(32);
  });
});

describe('push model: quote_interval pacing and challenge expiry (issue 13)', function () {
  this.timeout(60_000);

  describe('at a 5 s quote_interval', function () {
    /**
     * The 429s below must come within quote_interval of the attestation or evidence before them: at 1 s a
     * host that stalls for a second answered 201 instead.
     */
    const QUOTE_INTERVAL = 5;
    const push = usePushVerifier({ ...SETTINGS, quoteInterval: QUOTE_INTERVAL });

    it('a replayed evidence PATCH is 403 evidence_immutable; a PATCH on an old index is 403 old_attestation', async function () {
      const node = await push.bootNode();
      await push.enrol(node);
      const token = await node.agent.openSession();
      const first = await push.capabilities(node, token);
      expect(first.status).to.equal(201);
      expect(first.headers['location']).to.equal(`/v3.0/agents/${node.uuid}/attestations/0`);
      // A second capabilities POST while 0 has no evidence: 429 until quote_interval has passed since 0 was created, then attestation 1; 0 is now old.
      expect((await push.capabilities(node, token)).status).to.equal(429);
      await new Promise((resolve) => setTimeout(resolve, QUOTE_INTERVAL * 1000 + 100));
      const second = await push.capabilities(node, token);
      expect(second.headers['location']).to.equal(`/v3.0/agents/${node.uuid}/attestations/1`);
      const evidence0 = await node.agent.evidence(requested(first));
      const old = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/0`, evidence0, token);
      expect(old.status).to.equal(403);
      expect(old.body['errors'][0]['code']).to.equal('old_attestation');
      const evidence1 = await node.agent.evidence(requested(second));
      const accepted = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence1, token);
      expect(accepted.status).to.equal(202);
      expect(accepted.body['data']['attributes']['stage']).to.equal('evaluating_evidence');
      expect(accepted.body['meta']).to.deep.equal({ seconds_to_next_attestation: QUOTE_INTERVAL });
      const replay = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/1`, evidence1, token);
      expect(replay.status).to.equal(403);
      expect(replay.body['errors'][0]['code']).to.equal('evidence_immutable');
      // The next attestation before quote_interval is 429 with Retry-After.
      const premature = await push.capabilities(node, token);
      expect(premature.status).to.equal(429);
      expect(premature.body['errors'][0]['code']).to.equal('premature_attestation');
      expect(Number(premature.headers['retry-after'])).to.be.within(1, QUOTE_INTERVAL);
      expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass']);
    });
  });

  describe('with a 2 s attestation challenge', function () {
    const CHALLENGE_LIFETIME = 2;
    const push = usePushVerifier({ ...SETTINGS, pushChallengeLifetime: CHALLENGE_LIFETIME });

    it('evidence after the attestation challenge expired is 403 challenges_expired', async function () {
      const node = await push.bootNode();
      await push.enrol(node);
      const token = await node.agent.openSession();
      const created = await push.capabilities(node, token);
      const evidence = await node.agent.evidence(requested(created));
      await new Promise((resolve) => setTimeout(resolve, CHALLENGE_LIFETIME * 1000 + 100));
      const late = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token);
      expect(late.status).to.equal(403);
      expect(late.body['errors'][0]['code']).to.equal('challenges_expired');
    });
  });
});
