import { expect } from 'chai';
import { pino } from 'pino';
import { PushAgent, PushAttemptFailed } from '../../lib/agent/push/push-agent.js';
import type { AgentLogs } from '../../lib/agent/agent-logs.js';
import type { AkInfo, Tpm } from '../../lib/tpm-access/tpm-port.js';
import { sendJson, startScriptedVerifier, type ScriptedVerifier } from './helpers/scripted-verifier.js';

/**
 * A hostile or broken verifier's challenges: the push agent certifies and quotes only over the exact
 * bytes a challenge names (canonical base64 of 1 to 64 bytes, what a TPM2B_DATA holds), and refuses
 * anything else before the TPM is asked, without building anything from it.
 */
describe('push agent: session and quote challenges from the verifier', function () {
  this.timeout(20_000);
  let verifier: ScriptedVerifier | undefined;
  let tpmCalls: string[];
  const tpm = {
    certifyAk: (_hash: string, data: Uint8Array) => {
      tpmCalls.push(`certify ${Buffer.from(data).toString('hex')}`);
      return Promise.resolve({ attest: new Uint8Array(1), signature: new Uint8Array(1) });
    },
    quote: (request: { nonce: Uint8Array }) => {
      tpmCalls.push(`quote ${Buffer.from(request.nonce).toString('hex')}`);
      return Promise.resolve({ attest: new Uint8Array(1), signature: new Uint8Array(1), pcrBlob: new Uint8Array(1) });
    },
  } as unknown as Tpm;
  const logs: AgentLogs = { imaList: () => Promise.resolve(undefined), imaLineCount: () => Promise.resolve(undefined), bootLogBase64: () => Promise.resolve(undefined) };

  function pushAgent(url: string): PushAgent {
    return new PushAgent({ uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000', verifierUrl: url, tpm, ak: { hashAlg: 'sha256', signAlg: 'rsassa' } as AkInfo, logs, bootTime: new Date(0), log: pino({ level: 'silent' }) });
  }

  beforeEach(function () {
    tpmCalls = [];
  });
  afterEach(async function () {
    await verifier?.close();
    verifier = undefined;
  });

  // An object with a huge `length` would have Buffer.from allocate that many bytes (2^32: the process is killed).
  const bad: [string, unknown][] = [
    ['an array-like object', { length: 3 }],
    ['a number', 12],
    ['an array', [1, 2, 3]],
    ['an empty string', ''],
    ['text that is not base64', 'not base64!'],
    ['base64 with whitespace', 'AAAA AAAA'],
    ['non-canonical base64', 'AB=='],
    ['more than 64 bytes', Buffer.alloc(65, 1).toString('base64')],
  ];

  for (const [what, challenge] of bad) {
    it(`refuses a session challenge that is ${what}, without certifying`, async function () {
      verifier = await startScriptedVerifier((req, res) => {
        if (req.method !== 'POST' || req.url !== '/v3.0/sessions') return false;
        sendJson(res, 200, { data: { id: 's1', attributes: { authentication_requested: [{ chosen_parameters: { challenge } }] } } });
        return true;
      });
      const agent = pushAgent(verifier.url);
      const error = await agent.openSession().then(() => undefined, (e: unknown) => e);
      await agent.close();
      expect(error).to.be.instanceOf(PushAttemptFailed);
      expect((error as Error).message).to.equal('session: the challenge is not base64 of 1 to 64 bytes');
      expect(tpmCalls).to.deep.equal([]);
    });

    it(`refuses a quote challenge that is ${what}, without quoting`, async function () {
      const agent = pushAgent('http://127.0.0.1:1');
      const requested = [{ evidence_class: 'certification', evidence_type: 'tpm_quote', chosen_parameters: { challenge, hash_algorithm: 'sha256', selected_subjects: { sha256: [10] } } }];
      const error = await agent.evidence(requested).then(() => undefined, (e: unknown) => e);
      await agent.close();
      expect(error).to.be.instanceOf(PushAttemptFailed);
      expect((error as Error).message).to.equal('the verifier asked for no usable quote');
      expect(tpmCalls).to.deep.equal([]);
    });
  }

  for (const id of ['../agents/d432fbb3-d2f1-4a97-9ef7-75bd81c00000/attestations', 's1?x=1', '..', '', { toString: 1 }, ['s1'], 1.5]) {
    it(`refuses a session id ${JSON.stringify(id)}, without certifying or sending anything more`, async function () {
      verifier = await startScriptedVerifier((req, res) => {
        if (req.method !== 'POST' || req.url !== '/v3.0/sessions') return false;
        sendJson(res, 200, { data: { id, attributes: { authentication_requested: [{ chosen_parameters: { challenge: Buffer.alloc(16, 7).toString('base64') } }] } } });
        return true;
      });
      const agent = pushAgent(verifier.url);
      const error = await agent.openSession().then(() => undefined, (e: unknown) => e);
      await agent.close();
      expect((error as Error).message).to.equal('session: the session id is not an integer or a string of letters, digits and -._~');
      expect(tpmCalls).to.deep.equal([]);
      expect(verifier.seen.map((seen) => `${seen.method} ${seen.url}`)).to.deep.equal(['POST /v3.0/sessions']);
    });
  }

  it('proves a session whose id is a UUID or an integer at /v3.0/sessions/<id>', async function () {
    for (const id of ['3f1c2a9e-0b4d-4e8f-9a7c-1d2e3f405162', 42]) {
      verifier = await startScriptedVerifier((req, res) => {
        if (req.method !== 'POST' || req.url !== '/v3.0/sessions') return false;
        sendJson(res, 200, { data: { id, attributes: { authentication_requested: [{ chosen_parameters: { challenge: Buffer.alloc(16, 7).toString('base64') } }] } } });
        return true;
      });
      const agent = pushAgent(verifier.url);
      await agent.openSession();
      await agent.close();
      expect(verifier.seen.map((seen) => `${seen.method} ${seen.url}`)).to.deep.equal(['POST /v3.0/sessions', `PATCH /v3.0/sessions/${id}`]);
      await verifier.close();
      verifier = undefined;
    }
  });

  it('certifies and quotes over exactly the bytes of a good challenge', async function () {
    verifier = await startScriptedVerifier();
    const agent = pushAgent(verifier.url);
    await agent.openSession();
    await agent.evidence([{ evidence_class: 'certification', evidence_type: 'tpm_quote', chosen_parameters: { challenge: Buffer.alloc(16, 1).toString('base64'), hash_algorithm: 'sha256', selected_subjects: { sha256: [10] } } }]);
    await agent.close();
    expect(tpmCalls).to.deep.equal([`certify ${'07'.repeat(16)}`, `quote ${'01'.repeat(16)}`]);
  });
});
