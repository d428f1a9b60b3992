import { expect } from 'chai';
import { judgeAuthTag, judgeHostProof, spentActivationKey } from '../../lib/registrar/activation-proof.js';
import { computeAuthTag } from '../../lib/tpm/auth-tag.js';

const AGENT = 'agent-1';
const CREDENTIAL = Buffer.alloc(32, 7).toString('base64');
const PROOF = 'a1'.repeat(32);

/** The pure judgement of activation proofs, malformed input included: nothing but the accepted proof repeats. */
describe('registrar: judging an activation proof against the stored key', function () {
  it('takes the tag for the credential as proof, the accepted tag again (either case) as repeat, anything else as mismatch', function () {
    const tag = computeAuthTag(CREDENTIAL, AGENT);
    expect(judgeAuthTag(CREDENTIAL, AGENT, tag)).to.equal('proof');
    const spent = spentActivationKey(tag);
    expect(judgeAuthTag(spent, AGENT, tag)).to.equal('repeat');
    expect(judgeAuthTag(spent, AGENT, tag.toUpperCase())).to.equal('repeat');
    expect(judgeAuthTag(spent, AGENT, computeAuthTag(CREDENTIAL, 'agent-2'))).to.equal('mismatch');
    expect(judgeAuthTag('', AGENT, tag)).to.equal('mismatch');
  });

  it('takes the accepted host proof again as repeat only in its lower-case form, and never offers a spent or empty nonce', function () {
    const offered: string[] = [];
    const answers = (nonce: string): boolean => {
      offered.push(nonce);
      return nonce === 'nonce-1';
    };
    expect(judgeHostProof('nonce-1', PROOF, answers)).to.equal('proof');
    const spent = spentActivationKey(PROOF);
    expect(judgeHostProof(spent, PROOF, answers)).to.equal('repeat');
    expect(judgeHostProof(spent, PROOF.toUpperCase(), answers)).to.equal('mismatch');
    expect(judgeHostProof(spent, 'b2'.repeat(32), answers)).to.equal('mismatch');
    expect(judgeHostProof('', PROOF, answers)).to.equal('mismatch');
    expect(offered).to.deep.equal(['nonce-1']);
  });

  it('refuses malformed proofs against a spent key: wrong length, not hex, empty, a digest given as the proof', function () {
    const spent = spentActivationKey(PROOF);
    for (const proof of ['', PROOF.slice(0, 62), `${PROOF}00`, 'zz'.repeat(32), `${PROOF.slice(0, 63)}\u0000`, spent, spent.slice('spent:'.length)]) {
      expect(judgeHostProof(spent, proof, () => true), JSON.stringify(proof)).to.equal('mismatch');
      expect(judgeAuthTag(spent, AGENT, proof), JSON.stringify(proof)).to.equal('mismatch');
    }
  });

  it('refuses anything against a spent key whose digest is damaged (not hex, cut short, empty)', function () {
    for (const stored of ['spent:', 'spent:zz', spentActivationKey(PROOF).slice(0, -2)]) {
      expect(judgeHostProof(stored, PROOF, () => true), stored).to.equal('mismatch');
    }
  });
});
