import { expect } from 'chai';
import { akPublicKey } from '../../lib/attestation/agent-policies.js';
import { parseTpmPolicy } from '../../lib/attestation/tpm-policy.js';
import type { CompiledNode } from '../../lib/broker/broker-node.js';
import { ATTEST_MATCH_ALLOWANCE_NS } from '../../lib/broker/attest-match-allowance.js';
import { appraiseTpmEvidence, type UntrustedTpmEvidence } from '../../lib/broker/tpm-evidence.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { translateWithinBudget } from '../../lib/python-regex/linear-regex.js';
import { MatchAllowance } from '../../lib/python-regex/match-allowance.js';
import { maskOf, runtimePolicyFor } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** 40 rules `[^X]*.{1000}b`: inside the compile budget, a thousand live states per rule on a long mixed path. */
const COSTLY_EXCLUDES = Array.from({ length: 40 }, (_, i) => `[^${CHARS[i % CHARS.length] ?? 'a'}]*.{1000}b`);
/** A 3,000-character path of mixed characters, not in the policy: every exclude runs on it. */
const LONG_PATH = `/${Array.from({ length: 2999 }, (_, i) => CHARS[(i * 7) % CHARS.length]).join('')}`;
const REPORT_DATA = 'kbsReportData0123456789';

/** A node whose runtime policy allows its measured files and has `excludes`, as an operator would store it. */
function nodeOf(agent: FakeAgent, excludes: readonly string[]): CompiledNode {
  const { policy } = runtimePolicyFor(agent.imaLines);
  return {
    agentId: 'kbs-node',
    akTpm: agent.akTpm,
    ak: akPublicKey(agent.akTpm),
    tpmPolicy: parseTpmPolicy({ mask: '0x400' }),
    runtimePolicy: compileRuntimePolicy(parseRuntimePolicy(JSON.parse(JSON.stringify({ ...policy, excludes })))),
    mbRefstate: null,
  };
}

function evidenceOf(agent: FakeAgent): UntrustedTpmEvidence {
  const reply = agent.reply({ nonce: REPORT_DATA, mask: maskOf([]), imaEntry: 0 });
  return { agent_id: 'kbs-node', quote: reply.quote, hash_alg: reply.hash_alg, ima_measurement_list: reply.ima_measurement_list ?? '' };
}

/**
 * A KBS attestation runs the node's excludes over the paths of the list the node sends (from entry
 * 0, up to 16 MiB) on the broker worker's event loop: a node holding its AK could hold the worker
 * for minutes with long paths. The appraisal is charged to `ATTEST_MATCH_ALLOWANCE_NS` and refused
 * when a run could pass it.
 */
describe('broker: a KBS attestation\'s match allowance', function () {
  this.timeout(60_000);

  it('refuses, before running them, excludes whose run on a path could pass the allowance (ima.policy.match_allowance_exceeded)', () => {
    const units = COSTLY_EXCLUDES.reduce((sum, rule) => sum + translateWithinBudget(rule, 'prefix').cost, 0);
    // The premise: one run on this path is estimated over the whole allowance.
    expect(units * (LONG_PATH.length + 1) * MatchAllowance.NS_PER_UNIT).to.be.above(ATTEST_MATCH_ALLOWANCE_NS);
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const node = nodeOf(agent, COSTLY_EXCLUDES);
    agent.measure(LONG_PATH, 'long');
    const appraisal = appraiseTpmEvidence(evidenceOf(agent), new Uint8Array(Buffer.from(REPORT_DATA)), node);
    expect(appraisal.ok).to.equal(false);
    const reasons = appraisal.ok ? [] : appraisal.reasons;
    expect(reasons.map((reason) => reason.split(':')[0])).to.deep.equal(['ima.policy.match_allowance_exceeded']);
    expect(reasons[0]).to.match(/spent in 0 runs/);
  });

  it('appraises the same node\'s ordinary list within it', () => {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    agent.measure('/usr/bin/ls', 'ls');
    const appraisal = appraiseTpmEvidence(evidenceOf(agent), new Uint8Array(Buffer.from(REPORT_DATA)), nodeOf(agent, COSTLY_EXCLUDES));
    expect(appraisal.ok).to.equal(true);
  });
});
