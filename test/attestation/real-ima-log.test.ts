import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { vectorPath } from '../helpers/paths.js';
import { maskOf, policiesFor, runtimePolicyFor } from './engine-fixtures.js';
import { FakeAgent } from './fake-agent.js';

/** rust-keylime's real 826-line ima-ng (sha1) measurement list. */
const LINES = readFileSync(vectorPath('rust-keylime', 'ima', 'ascii_runtime_measurements'), 'utf8').split('\n').filter((l) => l !== '');
const NONCE = 'realImaLogNonce01234';

describe('evaluateQuote over a real IMA log (rust-keylime, 826 entries, sha1 bank)', () => {
  const agent = new FakeAgent({ bank: 'sha1' });
  agent.replaceImaLog(LINES.slice(0, 800));
  const polled = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };

  it('replays the whole log against the quoted PCR 10, then only the entries added since', () => {
    const policies = policiesFor(agent, { runtimePolicy: runtimePolicyFor(LINES), acceptTpmHashAlgs: ['sha1'] });
    const first = evaluateQuote({ state: polled, policies, reply: agent.reply({ nonce: NONCE, mask: maskOf([]) }), nonce: NONCE, now: 1 });
    expect(first.failures).to.deep.equal([]);
    expect(first.claims.ima).to.deep.equal({ firstEntry: 0, entriesChecked: 800, entriesVerified: 800, nextEntry: 800 });

    agent.replaceImaLog(LINES);
    // PCR 10 over all 826 entries, computed independently (shared/vectors INDEX.md)
    expect(Buffer.from(agent.pcrs.get(10) as Uint8Array).toString('hex')).to.equal('82231c67a69da98dc5b3aa10f6343d33109225fc');
    const reply = agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 800, partial: true });
    const second = evaluateQuote({ state: first.nextState, policies, reply, nonce: NONCE, now: 2 });
    expect(second.failures).to.deep.equal([]);
    expect(second.claims.ima).to.deep.equal({ firstEntry: 800, entriesChecked: 26, entriesVerified: 26, nextEntry: 826 });
  });

  it('names the first entry a policy does not allow', () => {
    agent.replaceImaLog(LINES);
    const policies = policiesFor(agent, { runtimePolicy: runtimePolicyFor(LINES, ['/bin/sh']), acceptTpmHashAlgs: ['sha1'] });
    const result = evaluateQuote({ state: polled, policies, reply: agent.reply({ nonce: NONCE, mask: maskOf([]) }), nonce: NONCE, now: 1 });
    expect(result.failures.map((f) => f.eventId)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(result.failures[0]?.context).to.include({ line: 3, path: '/bin/sh' });
    expect(result.nextState.ima.nextEntry).to.equal(0);
  });
});
