import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { evidenceHandlingResponseProblems, sessionIdResponseProblems } from '../helpers/rust-push-structs.js';
import { JSON_API, requested, usePushVerifier, type PushNode } from './helpers/push-verifier.js';

// What the Rust push agent and Keylime 7.14 expect on the wire: the shapes of the replies the agent
// deserialises, Keylime's statuses, and the forms of a request Keylime accepts.
describe('push model wire compatibility: replies the Rust agent reads, Keylime\'s statuses and forms', function () {
  this.timeout(60_000);
  // No test here is about silence: a 3 s timeout let the sweep add a FAIL row between two slow
  // attestations on a loaded machine (seen in CI), so these agents may be silent for a minute. The expiry
  // test has a verifier of its own, with a short session challenge.
  const push = usePushVerifier({ pushTimeout: 60 });

  /** A booted, enrolled node and a session token for it. */
  async function enrolledNode(): Promise<{ node: PushNode; token: string }> {
    const node = await push.bootNode();
    await push.enrol(node);
    return { node, token: await node.agent.openSession() };
  }

  /** Opens a session for `node` (tpm_pop); resolves to its id and challenge. */
  async function openSession(node: PushNode): Promise<{ id: string; challenge: string }> {
    const opened = await push.call('POST', '/v3.0/sessions', {
      data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
    });
    expect(opened.status).to.equal(200);
    return { id: opened.body['data']['id'] as string, challenge: opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string };
  }

  /** The node's certify of its AK over `challenge`, as a proof item's `data`. */
  async function certified(node: PushNode, challenge: string): Promise<{ message: string; signature: string }> {
    const proof = await node.tpm.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
    return { message: Buffer.from(proof.attest).toString('base64'), signature: Buffer.from(proof.signature).toString('base64') };
  }

  /** An enrolled node, a session opened for it and the node's proof over its challenge (not sent yet). */
  async function openedWithProof(): Promise<{ node: PushNode; session: { id: string; challenge: string }; data: { message: string; signature: string } }> {
    const node = await push.bootNode();
    await push.enrol(node);
    const session = await openSession(node);
    return { node, session, data: await certified(node, session.challenge) };
  }

  function proofBody(agentId: string, provided: object): object {
    return { data: { type: 'session', attributes: { agent_id: agentId, authentication_provided: [provided] } } };
  }

  it('the 202 parses as the Rust agent\'s EvidenceHandlingResponse: each item\'s capabilities as received, chosen_parameters and data (logs without their text), system_info, a whole seconds_to_next_attestation', async function () {
    const { node, token } = await enrolledNode();
    // The Rust agent's certification key has every CertificationKey field (ours has no local_identifier).
    const sent = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    sent.data.attributes.evidence_supported[0].capabilities.certification_keys[0].local_identifier = 'att_local_identifier';
    const created = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, sent, token);
    expect(created.status).to.equal(201);
    const evidence = (await node.agent.evidence(requested(created))) as { data: { attributes: { evidence_collected: { evidence_type: string; data: Record<string, unknown> }[] } } };
    const accepted = await push.call('PATCH', created.headers['location'] as string, evidence, token);
    expect(accepted.status).to.equal(202);
    expect(evidenceHandlingResponseProblems(accepted.body)).to.deep.equal([]);
    expect(accepted.body['meta']).to.deep.equal({ seconds_to_next_attestation: 1 });
    const items = accepted.body['data']['attributes']['evidence'] as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(items.map((i) => i['evidence_type'])).to.deep.equal(['tpm_quote', 'uefi_log', 'ima_log']);
    for (const item of items) {
      const offered = sent.data.attributes.evidence_supported.find((s: { evidence_type: string }) => s.evidence_type === item['evidence_type']);
      expect(item['capabilities'], item['evidence_type']).to.deep.equal(offered.capabilities);
    }
    const collected = evidence.data.attributes.evidence_collected;
    expect(items[0]?.['data']).to.deep.equal(collected[0]?.data);
    expect(items[0]?.['chosen_parameters']).to.deep.equal((requested(created)[0] as { chosen_parameters: unknown }).chosen_parameters);
    expect(items[1]?.['data']).to.deep.equal({ entries: '' });
    expect(items[2]?.['data']).to.deep.equal({ entries: '', entry_count: collected[2]?.data['entry_count'] });
    expect(accepted.body['data']['attributes']['system_info']).to.deep.equal(sent.data.attributes.system_info);
  });

  it('a session PATCH reply carries what the Rust agent requires; an unknown session is 404, another agent\'s 400', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const open = () =>
      push.call('POST', '/v3.0/sessions', {
        data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
      });
    const proofFor = async (agentId: string, challenge: string) => {
      const proof = await node.tpm.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
      const data = { message: Buffer.from(proof.attest).toString('base64'), signature: Buffer.from(proof.signature).toString('base64') };
      return { data, body: { data: { type: 'session', attributes: { agent_id: agentId, authentication_provided: [{ authentication_class: 'pop', authentication_type: 'tpm_pop', data }] } } } };
    };
    const opened = await open();
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    const proof = await proofFor(node.uuid, challenge);
    const passed = await push.call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof.body);
    expect(passed.status).to.equal(200);
    expect(sessionIdResponseProblems(passed.body)).to.deep.equal([]);
    const attributes = passed.body['data']['attributes'];
    expect(attributes).to.include({ agent_id: node.uuid, evaluation: 'pass' });
    expect(attributes['token']).to.be.a('string');
    expect(attributes['authentication']).to.deep.equal([{ authentication_class: 'pop', authentication_type: 'tpm_pop', chosen_parameters: { challenge }, data: proof.data }]);
    expect(attributes['created_at']).to.equal(opened.body['data']['attributes']['created_at']);
    expect(attributes['challenges_expire_at']).to.equal(opened.body['data']['attributes']['challenges_expire_at']);
    expect(Date.parse(attributes['token_expires_at'] as string)).to.be.greaterThan(Date.parse(attributes['response_received_at'] as string));
    // Keylime's session controller: an unknown session is 404, a session opened for another agent 400.
    const other = await open();
    const otherChallenge = other.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    const unknown = await push.call('PATCH', `/v3.0/sessions/${randomUUID()}`, (await proofFor(node.uuid, otherChallenge)).body);
    expect([unknown.status, unknown.body['errors'][0]['status']]).to.deep.equal([404, '404']);
    expect((await push.call('PATCH', '/v3.0/sessions/not-a-uuid', (await proofFor(node.uuid, otherChallenge)).body)).status).to.equal(404);
    const mismatch = await push.call('PATCH', `/v3.0/sessions/${other.body['data']['id']}`, (await proofFor(randomUUID(), otherChallenge)).body);
    expect([mismatch.status, mismatch.body['errors'][0]['status']]).to.deep.equal([400, '400']);
  });

  it('the session proof is found by its authentication type: a tpm_pop item of another class passes', async function () {
    const { node, session, data } = await openedWithProof();
    const passed = await push.call('PATCH', `/v3.0/sessions/${session.id}`, proofBody(node.uuid, { authentication_class: 'proof', authentication_type: 'tpm_pop', data }));
    expect(passed.status).to.equal(200);
    expect(passed.body['data']['attributes']).to.include({ agent_id: node.uuid, evaluation: 'pass' });
    expect(passed.body['data']['attributes']['token']).to.be.a('string');
    expect(passed.body['data']['attributes']['authentication'][0]['data']).to.deep.equal(data);
    expect(sessionIdResponseProblems(passed.body)).to.deep.equal([]);
  });

  it('a proof item of another authentication type is no proof: 401 evaluation "fail" with an empty proof echoed; the same certify as tpm_pop then passes', async function () {
    const { node, session, data } = await openedWithProof();
    const refused = await push.call('PATCH', `/v3.0/sessions/${session.id}`, proofBody(node.uuid, { authentication_class: 'pop', authentication_type: 'password', data }));
    expect(refused.status).to.equal(401);
    expect(refused.body['data']['attributes']).to.include({ agent_id: node.uuid, evaluation: 'fail' });
    expect(refused.body['data']['attributes']).to.not.have.any.keys('token', 'token_expires_at');
    expect(refused.body['data']['attributes']['authentication'][0]['data']).to.deep.equal({ message: '', signature: '' });
    expect(sessionIdResponseProblems(refused.body)).to.deep.equal([]);
    // The refusal did not use up the session: the right type with the same data passes.
    const passed = await push.call('PATCH', `/v3.0/sessions/${session.id}`, proofBody(node.uuid, { authentication_class: 'pop', authentication_type: 'tpm_pop', data }));
    expect([passed.status, passed.body['data']['attributes']['evaluation']]).to.deep.equal([200, 'pass']);
  });

  it('a forged certify (another TPM\'s AK over the challenge) is 401 evaluation "fail"; no token is issued', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    // Everything slow (a second TPM's keys, a certify over a wrong challenge) is made before the session
    // opens: the challenge lives 4 s here, and an expired one is answered 200 "fail", not 401.
    const other = await createSoftwareTpm();
    const wrong = await node.tpm.certifyAk('sha256', new Uint8Array(16));
    const opened = await push.call('POST', '/v3.0/sessions', {
      data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
    });
    expect(opened.status).to.equal(200);
    expect(opened.headers['content-type']).to.equal(JSON_API);
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    expect(Buffer.from(challenge, 'base64')).to.have.length(16);
    const forged = await other.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
    const proof = (message: Uint8Array, signature: Uint8Array) => ({
      data: {
        type: 'session',
        attributes: {
          agent_id: node.uuid,
          authentication_provided: [
            { authentication_class: 'pop', authentication_type: 'tpm_pop', data: { message: Buffer.from(message).toString('base64'), signature: Buffer.from(signature).toString('base64') } },
          ],
        },
      },
    });
    const refused = await push.call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof(forged.attest, forged.signature));
    expect(refused.status).to.equal(401);
    expect(refused.body['data']['attributes']).to.include({ agent_id: node.uuid, evaluation: 'fail' });
    expect(refused.body['data']['attributes']).to.not.have.any.keys('token', 'token_expires_at');
    expect(sessionIdResponseProblems(refused.body), 'the fail reply parses as the Rust agent reads it').to.deep.equal([]);
    expect(refused.body['data']['attributes']['authentication'][0]).to.deep.equal({
      authentication_class: 'pop',
      authentication_type: 'tpm_pop',
      chosen_parameters: { challenge },
      data: { message: Buffer.from(forged.attest).toString('base64'), signature: Buffer.from(forged.signature).toString('base64') },
    });
    // The right TPM over a different challenge is refused too.
    expect((await push.call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof(wrong.attest, wrong.signature))).status).to.equal(401);
    // Random bytes are a refusal, not a crash.
    expect((await push.call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof(new Uint8Array(40).fill(7), new Uint8Array(9)))).status).to.equal(401);
  });

  it('a quote over the challenge\'s base64 text (the Rust agent) passes as one over its bytes does; a quote over anything else fails', async function () {
    const { node, token } = await enrolledNode();
    const attestWith = async (qualifyingData: (challenge: string) => Uint8Array): Promise<number> => {
      const created = await push.capabilities(node, token);
      const quoteItem = requested(created)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]> } };
      const evidence = (await node.agent.evidence(requested(created))) as { data: { attributes: { evidence_collected: { data: Record<string, string> }[] } } };
      const made = await node.tpm.quote({ nonce: qualifyingData(quoteItem.chosen_parameters.challenge), pcrs: quoteItem.chosen_parameters.selected_subjects['sha256'] ?? [], hashAlg: 'sha256' });
      (evidence.data.attributes.evidence_collected[0] as { data: Record<string, string> }).data = {
        message: Buffer.from(made.attest).toString('base64'),
        signature: Buffer.from(made.signature).toString('base64'),
        subject_data: Buffer.from(made.pcrBlob).toString('base64'),
      };
      const accepted = await push.call('PATCH', created.headers['location'] as string, evidence, token);
      await new Promise((resolve) => setTimeout(resolve, 1050));
      return accepted.status;
    };
    expect(await attestWith((challenge) => new Uint8Array(Buffer.from(challenge, 'ascii')))).to.equal(202);
    expect(await attestWith((challenge) => new Uint8Array(Buffer.from(challenge, 'base64')))).to.equal(202);
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
    // The text of an earlier challenge (answered in between) is not this attestation's challenge.
    const previous = requested(await push.capabilities(node, token));
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const stale = (previous[0] as { chosen_parameters: { challenge: string } }).chosen_parameters.challenge;
    await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, await node.agent.evidence(previous), token);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    expect(await attestWith(() => new Uint8Array(Buffer.from(stale, 'ascii')))).to.equal(202);
    const rows = await push.history(node.uuid);
    expect(rows.map((r) => r.outcome)).to.deep.equal(['pass', 'pass', 'pass', 'fail']);
    expect(rows[3]?.failures.map((f) => f.event_id)).to.deep.equal(['qoute_validation.quote_validation']);
  });

  it('whatever certification key is chosen, the quote is verified against the enrolled ak_tpm: another TPM\'s AK offered as "ak" is echoed, and its quote fails', async function () {
    const { node, token } = await enrolledNode();
    const other = await createSoftwareTpm();
    await other.ensureEk();
    const otherAk = await other.ensureAk('sha256');
    const offer = async () => {
      const body = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
      body.data.attributes.evidence_supported[0].capabilities.certification_keys[0].public = Buffer.from(otherAk.akPublic).toString('base64');
      const created = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
      expect(created.status).to.equal(201);
      const quoteItem = requested(created)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]>; certification_key: { public: string } } };
      expect(quoteItem.chosen_parameters.certification_key.public).to.equal(Buffer.from(otherAk.akPublic).toString('base64'));
      return created;
    };
    // The enrolled AK's quote passes although the key chosen (and echoed) is the other TPM's.
    const first = await offer();
    expect((await push.call('PATCH', first.headers['location'] as string, await node.agent.evidence(requested(first)), token)).status).to.equal(202);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    // A quote by the offered key fails.
    const second = await offer();
    const quoteItem = requested(second)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]> } };
    const forged = await other.quote({ nonce: new Uint8Array(Buffer.from(quoteItem.chosen_parameters.challenge, 'base64')), pcrs: quoteItem.chosen_parameters.selected_subjects['sha256'] ?? [], hashAlg: 'sha256' });
    const evidence = (await node.agent.evidence(requested(second))) as { data: { attributes: { evidence_collected: { data: Record<string, string> }[] } } };
    (evidence.data.attributes.evidence_collected[0] as { data: Record<string, string> }).data = {
      message: Buffer.from(forged.attest).toString('base64'),
      signature: Buffer.from(forged.signature).toString('base64'),
      subject_data: Buffer.from(forged.pcrBlob).toString('base64'),
    };
    expect((await push.call('PATCH', second.headers['location'] as string, evidence, token)).status).to.equal(202);
    const rows = await push.history(node.uuid);
    expect(rows.map((r) => r.outcome)).to.deep.equal(['pass', 'fail']);
    expect(rows[1]?.failures.map((f) => f.event_id)).to.deep.equal(['qoute_validation.quote_validation']);
  });

  it('a session is opened by its authentication type: tpm_pop of another class is 200, another type 400 (as Keylime)', async function () {
    const { node } = await enrolledNode();
    const session = (supported: object) => push.call('POST', '/v3.0/sessions', { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [supported] } } });
    expect((await session({ authentication_class: 'pop', authentication_type: 'password' })).status).to.equal(400);
    expect((await session({ authentication_class: 'proof', authentication_type: 'tpm_pop' })).status).to.equal(200);
  });

  it('capabilities and evidence carrying meta are accepted; the capabilities\' meta is ignored: not stored in the attestation\'s choice, not repeated', async function () {
    const { node, token } = await enrolledNode();
    const body = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    body.data.attributes.evidence_supported[0].capabilities.meta = { note: 'capabilities-meta' };
    const created = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
    expect(created.status).to.equal(201);
    // The capabilities kept for the 202 and later reads are the row's `choice`.
    const row = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 0 }).first()) as { choice: unknown };
    const choice = (typeof row.choice === 'string' ? JSON.parse(row.choice) : row.choice) as { capabilities?: Record<string, Record<string, unknown>> };
    expect(choice.capabilities?.['tpm_quote'], 'the quote capabilities are kept').to.have.property('hash_algorithms');
    expect(choice.capabilities?.['tpm_quote']).to.not.have.property('meta');
    expect(JSON.stringify(row)).to.not.contain('capabilities-meta');
    // Evidence data is not stored, and its 202 `data` is built afresh: here only its acceptance is in question.
    const evidence = (await node.agent.evidence(requested(created))) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    evidence.data.attributes.evidence_collected[0].data.meta = { pcrs: {} };
    const accepted = await push.call('PATCH', created.headers['location'] as string, evidence, token);
    expect(accepted.status).to.equal(202);
    expect(accepted.body['data']['attributes']['evidence'][0]['capabilities']).to.not.have.property('meta');
  });

  describe('with a 2 s session challenge', function () {
    const NONCE_LIFETIME = 2;
    const shortLived = usePushVerifier({ pushTimeout: 60, pushNonceLifetime: NONCE_LIFETIME });

    it('an expired session challenge gets evaluation "fail" (200, as Keylime 7.14) and no token', async function () {
      const node = await shortLived.bootNode();
      await shortLived.enrol(node);
      const opened = await shortLived.call('POST', '/v3.0/sessions', {
        data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
      });
      const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
      const proof = await node.tpm.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
      await new Promise((resolve) => setTimeout(resolve, NONCE_LIFETIME * 1000 + 100));
      const late = await shortLived.call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, {
        data: {
          type: 'session',
          attributes: {
            agent_id: node.uuid,
            authentication_provided: [
              { authentication_class: 'pop', authentication_type: 'tpm_pop', data: { message: Buffer.from(proof.attest).toString('base64'), signature: Buffer.from(proof.signature).toString('base64') } },
            ],
          },
        },
      });
      expect(late.status).to.equal(200);
      expect(late.body['data']['attributes']['evaluation']).to.equal('fail');
      expect(late.body['data']['attributes']).to.not.have.property('token');
      expect(sessionIdResponseProblems(late.body)).to.deep.equal([]);
    });
  });
});
