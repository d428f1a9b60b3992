import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { policyJsonValueBound } from '../../lib/bytes/json-text-bound.js';
import { EVIDENCE_BODY_LIMIT } from '../../lib/http/keylime-service.js';
import { MAX_IMA_KEYRING_KEYS } from '../../lib/ima/ima-keyring.js';
import { EvidenceWorkerPool } from '../../lib/verifier/evidence-worker-pool.js';
import { maskOf } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { evidenceData, postEvidence } from './helpers/evidence-data.js';

/** `count` empty objects in a list, 3 characters each: what the body's own value bound exists to refuse. */
function emptyObjects(count: number): string {
  return `[${'{},'.repeat(count - 1)}{}]`;
}

/** Objects of about `characters` characters inside a runtime policy that is otherwise well formed. */
function policyOfEmptyObjects(characters: number): string {
  return `{"meta":{"version":1},"digests":{},"x":${emptyObjects(Math.floor(characters / 3))}}`;
}

/**
 * The public evidence body is bounded to 64 JSON values, but its policies are strings holding JSON of
 * up to 32 MiB: each policy text (runtime policy, the IMA keyring inside it, refstate, tpm_policy) is
 * counted against `policyJsonValueBound` of its length before it is parsed (hunt: 31 MiB of `{}` in
 * `runtime_policy` held an evidence thread 7–20 s and up to 1.3 GB of heap, before any quote check),
 * and an IMA keyring's keys against `MAX_IMA_KEYRING_KEYS` before any is loaded.
 */
describe('POST /verify/evidence: the JSON values inside its policy strings are bounded before they are parsed', function () {
  this.timeout(120_000);
  const suite = verifierPerSuite('ironlime-evidence-policy-values-', { inProcessForTests: true });
  const post = (data: object): Promise<{ status: number; body: unknown }> => postEvidence(suite.verifier, data);

  function refusal(status: string): object {
    return { code: 400, status, results: {} };
  }

  const agent = new FakeAgent();
  const MIB = 1024 * 1024;

  it('a runtime_policy of 8 MiB of {} is refused (400) naming the bound', async function () {
    const policy = policyOfEmptyObjects(8 * MIB);
    const reply = await post(evidenceData(agent, 'policyValues00000001', maskOf([]), { runtime_policy: policy }));
    expect(reply.body).to.deep.equal(refusal(`runtime policy: (document): holds more than ${policyJsonValueBound(policy.length)} JSON values`));
    expect(reply.status).to.equal(400);
  });

  it('an IMA keyring (verification-keys) of 8 MiB of {} inside a small runtime policy is refused (400)', async function () {
    const keys = emptyObjects(Math.floor((8 * MIB) / 3));
    const policy = JSON.stringify({ meta: { version: 1 }, digests: {}, 'verification-keys': keys });
    const reply = await post(evidenceData(agent, 'policyValues00000002', maskOf([]), { runtime_policy: policy }));
    expect(reply.body).to.deep.equal(refusal(`runtime policy: verification-keys: holds more than ${policyJsonValueBound(keys.length)} JSON values`));
    expect(reply.status).to.equal(400);
  });

  it('an IMA keyring of 20,000 keys (2.5 MiB) inside a runtime policy is refused (400) before any key is loaded', async function () {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    const keys = JSON.stringify({ pubkeys: Array(20_000).fill(key), keyids: [] });
    const policy = JSON.stringify({ meta: { version: 1 }, digests: {}, 'verification-keys': keys });
    const reply = await post(evidenceData(agent, 'policyValues00000006', maskOf([]), { runtime_policy: policy }));
    expect(reply.body).to.deep.equal(refusal(`runtime policy: verification-keys.pubkeys: holds 20000 keys, more than ${MAX_IMA_KEYRING_KEYS}`));
    // The refusal names the count, made before any key is loaded (each cost about 0.2 ms of CPU, twice:
    // 8 s of CPU for these 20,000). No wall-clock bound: this machine is shared and noisy.
    expect(reply.status).to.equal(400);
  });

  it('an mb_policy (refstate) of 8 MiB of {} is refused (400)', async function () {
    const refstate = `{"scrtm_and_bios":${emptyObjects(Math.floor((8 * MIB) / 3))}}`;
    const reply = await post(evidenceData(agent, 'policyValues00000003', maskOf([]), { mb_policy: refstate }));
    expect(reply.body).to.deep.equal(refusal(`measured-boot refstate: holds more than ${policyJsonValueBound(refstate.length)} JSON values`));
    expect(reply.status).to.equal(400);
  });

  it('a tpm_policy of 1 MiB (its length limit) of {} is refused (400)', async function () {
    const tpmPolicy = `{"0":${emptyObjects(Math.floor((MIB - 10) / 3))}}`;
    const reply = await post(evidenceData(agent, 'policyValues00000004', maskOf([]), { tpm_policy: tpmPolicy }));
    expect(reply.body).to.deep.equal(refusal(`data.tpm_policy: holds more than ${policyJsonValueBound(tpmPolicy.length)} JSON values`));
    expect(reply.status).to.equal(400);
  });

  it('a 31 MiB body whose runtime_policy is 10 million {} is refused by the value count before it is parsed', async function () {
    const pool = new EvidenceWorkerPool(1);
    try {
      const policy = policyOfEmptyObjects(31 * MIB);
      const body = JSON.stringify({ type: 'tpm', data: evidenceData(agent, 'policyValues00000005', maskOf([]), { runtime_policy: policy }) });
      expect(body.length).to.be.below(EVIDENCE_BODY_LIMIT);
      await pool.check('{}', { measuredBootPolicy: 'example', failOnTomtou: false });
      const answer = await pool.check(body, { measuredBootPolicy: 'example', failOnTomtou: false });
      // The refusal names the count, which runs before the parse (7–20 s of it before the bound); no
      // wall-clock bound here, which a loaded machine broke once.
      expect(answer).to.deep.equal({
        kind: 'refused',
        code: 'ERR_POLICY_INVALID',
        message: `runtime policy: (document): holds more than ${policyJsonValueBound(policy.length)} JSON values`,
      });
    } finally {
      await pool.close();
    }
  });
});
