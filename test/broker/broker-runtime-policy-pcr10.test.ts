import { expect } from 'chai';
import { akPublicKey } from '../../lib/attestation/agent-policies.js';
import { parseTpmPolicy } from '../../lib/attestation/tpm-policy.js';
import type { CompiledNode } from '../../lib/broker/broker-node.js';
import { appraiseTpmEvidence } from '../../lib/broker/tpm-evidence.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { FakeAgent } from '../attestation/fake-agent.js';

const REPORT_DATA = new Uint8Array(Buffer.from('kbsReportData0123456789'));

/** A node stored with `runtimePolicy` and no `tpm_policy` mask (the admin API's default `{}`). */
function nodeOf(agent: FakeAgent, runtimePolicy: unknown): CompiledNode {
  return {
    agentId: 'kbs-node',
    akTpm: agent.akTpm,
    ak: akPublicKey(agent.akTpm),
    tpmPolicy: parseTpmPolicy({}),
    runtimePolicy: compileRuntimePolicy(parseRuntimePolicy(JSON.parse(JSON.stringify(runtimePolicy)))),
    mbRefstate: null,
  };
}

/**
 * A runtime policy is checked only through PCR 10 (the IMA list replayed to its quoted value). The
 * engine requires PCR 10 in the quote only for a policy whose `meta.generator` is above
 * EmptyAllowList; the node picks its quote's PCRs, so a node with Keylime's empty policy, or with an
 * allowlist written without `meta.generator`, could leave PCR 10 and its IMA list out and still be
 * affirmed as `executables` 2 — where `/verify/evidence` refuses (`pcr_validation.missing_pcr_10`).
 */
describe('broker: a node with a runtime policy must quote PCR 10', function () {
  const allowlist = { ...emptyRuntimePolicy(), digests: { '/usr/bin/bash': ['aa'.repeat(32)] }, meta: { version: emptyRuntimePolicy().meta.version } };
  const cases: [string, unknown][] = [
    ['Keylime\'s empty runtime policy (EmptyAllowList)', emptyRuntimePolicy()],
    ['an allowlist without meta.generator', allowlist],
  ];
  for (const [name, policy] of cases) {
    it(`refuses a quote without PCR 10 for ${name} (no IMA list checked, yet executables affirmed)`, () => {
      const agent = new FakeAgent();
      agent.measure('/usr/bin/not-allowed', 'anything');
      const quote = agent.quote(REPORT_DATA, new Map([[16, new Uint8Array(32)]]));
      const appraisal = appraiseTpmEvidence({ agent_id: 'kbs-node', quote, hash_alg: 'sha256' }, REPORT_DATA, nodeOf(agent, policy));
      expect(appraisal.ok ? appraisal.vector : undefined, 'not affirmed').to.equal(undefined);
      // The engine's missing_pcrs [10] when it requires PCR 10 for the policy itself, else missing_pcr_10.
      const reasons = appraisal.ok ? [] : appraisal.reasons.map((reason) => reason.split(':')[0]);
      expect(reasons).to.have.length(1);
      expect(reasons[0]).to.be.oneOf(['pcr_validation.missing_pcr_10', 'pcr_validation.missing_pcrs']);
    });
  }

  it('affirms the same node\'s executables when its quote covers PCR 10 and its IMA list replays to it', () => {
    const agent = new FakeAgent();
    const reply = agent.reply({ nonce: 'unused', mask: 1 << 10, imaEntry: 0 });
    const quote = agent.quote(REPORT_DATA, new Map([[10, agent.pcrs.get(10) as Uint8Array]]));
    const digests = Object.fromEntries(agent.imaLines.map((line) => [line.split(' ')[4], [line.split(' ')[3]?.split(':')[1]]]));
    const evidence = { agent_id: 'kbs-node', quote, hash_alg: 'sha256', ima_measurement_list: reply.ima_measurement_list ?? '' };
    const appraisal = appraiseTpmEvidence(evidence, REPORT_DATA, nodeOf(agent, { ...allowlist, digests }));
    expect(appraisal.ok ? appraisal.vector.executables : appraisal.reasons).to.equal(2);
  });
});
