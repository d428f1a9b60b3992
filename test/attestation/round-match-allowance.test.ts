import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { evaluateEvidence } from '../../lib/attestation/evaluate-evidence.js';
import { evaluateQuote, type EvaluateQuoteResult } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { compileExcludes } from '../../lib/ima/exclude-matcher.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import type { MbRefstate } from '../../lib/mb/mb-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { translateWithinBudget } from '../../lib/python-regex/linear-regex.js';
import { MatchAllowance } from '../../lib/python-regex/match-allowance.js';
import { ROUND_MATCH_ALLOWANCE_NS } from '../../lib/verifier/round-match-allowance.js';
import { REAL_SHAPED_EXCLUDES, realShapedPaths } from '../../bench/real-shaped-excludes.js';
import { vectorPath } from '../helpers/paths.js';
import { maskOf, policiesFor, runtimePolicyFor } from './engine-fixtures.js';
import { FakeAgent } from './fake-agent.js';

const NOW = 1_760_000_000;
const NONCE = 'allowanceNonce012345';
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];
const polled: AgentAttestationState = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };

const ids = (result: EvaluateQuoteResult): string[] => result.failures.map((failure) => failure.eventId);

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** 20 rules `[^X]*.{1000}b`: inside the compile budget, a thousand live states per rule on a long mixed path (about 50 ms a path). */
const COSTLY_EXCLUDES = Array.from({ length: 20 }, (_, i) => `[^${CHARS[i % CHARS.length] ?? 'a'}]*.{1000}b`);

/** A 1,000-character path of mixed characters, distinct for each `n`. */
const longPath = (n: number): string => `/${Array.from({ length: 999 }, (_, i) => CHARS[(i * 7 + n) % CHARS.length]).join('')}`;

/** The agent's own files allowed, `excludes` added: a policy as the tenant would enrol it. */
function policyWithExcludes(agent: FakeAgent, excludes: readonly string[]): ReturnType<typeof runtimePolicyFor> {
  const { policy } = runtimePolicyFor(agent.imaLines);
  return compileRuntimePolicy(parseRuntimePolicy(JSON.parse(JSON.stringify({ ...policy, excludes }))));
}

describe('a round\'s match allowance (engine)', function () {
  this.timeout(60_000);

  it('IMA: excludes too costly for the round fail it with ima.policy.match_allowance_exceeded before every path is matched, and restart IMA from entry 0', () => {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const policies = policiesFor(agent, { runtimePolicy: policyWithExcludes(agent, COSTLY_EXCLUDES) });
    for (let i = 0; i < 40; i += 1) {
      agent.measure(longPath(i), `long ${i}`);
    }
    // Each run's estimate is about 0.45 s: a few runs go ahead, then the next could pass the allowance.
    const allowanceNs = 600_000_000;
    const result = evaluateQuote({
      state: polled,
      policies,
      reply: agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0 }),
      nonce: NONCE,
      now: NOW,
      options: { matchAllowanceNs: allowanceNs },
    });
    expect(result.verdict).to.equal('fail');
    expect(ids(result)).to.include('ima.policy.match_allowance_exceeded');
    expect(ids(result)).to.not.include('ima.validation.ima-ng.not_in_allowlist');
    const exceeded = result.failures.find((failure) => failure.eventId === 'ima.policy.match_allowance_exceeded');
    // Some runs went ahead, and the round stopped before running the excludes on all 41 paths.
    const runs = Number(/spent in (\d+) runs/.exec(String(exceeded?.context['message']))?.[1]);
    expect(runs).to.be.within(1, 40);
    expect(result.nextState.ima.nextEntry).to.equal(0);
  });

  it('IMA: the same agent\'s ordinary policy, and the costly one on short paths, pass within the allowance', () => {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    agent.measure('/tmp/scratch', 'scratch');
    const ordinary = policyWithExcludes(agent, ['/tmp/.*', '.*\\.pyc$', 'boot_aggregate']);
    const costly = policyWithExcludes(agent, COSTLY_EXCLUDES);
    for (const runtimePolicy of [ordinary, costly]) {
      const result = evaluateQuote({
        state: polled,
        policies: policiesFor(agent, { runtimePolicy }),
        reply: agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0 }),
        nonce: NONCE,
        now: NOW,
        options: { matchAllowanceNs: 600_000_000 },
      });
      expect(ids(result)).to.deep.equal([]);
    }
  });

  it('IMA: a first round of 50,000 entries against real-shaped excludes passes within the verifier\'s allowance', () => {
    const agent = new FakeAgent();
    const paths = realShapedPaths(50_000);
    paths.forEach((path, i) => agent.measure(path, `content ${i}`));
    const isExcluded = compileExcludes(REAL_SHAPED_EXCLUDES);
    const { policy } = runtimePolicyFor(agent.imaLines);
    // The files the excludes cover are not listed: the excludes run on each of them (31,250 paths).
    const excluded = paths.filter((path) => isExcluded(path));
    expect(excluded).to.have.length(31_250);
    for (const path of excluded) delete policy.digests[path];
    const runtimePolicy = compileRuntimePolicy(parseRuntimePolicy(JSON.parse(JSON.stringify({ ...policy, excludes: REAL_SHAPED_EXCLUDES }))));
    // No single run can be refused on its estimate: the longest path's is a small part of the allowance.
    const units = REAL_SHAPED_EXCLUDES.reduce((sum, rule) => sum + translateWithinBudget(rule, 'prefix').cost, 0);
    const longest = Math.max(...paths.map((path) => path.length));
    expect(units * (longest + 1) * MatchAllowance.NS_PER_UNIT).to.be.below(ROUND_MATCH_ALLOWANCE_NS / 50);
    const result = evaluateQuote({
      state: polled,
      policies: policiesFor(agent, { runtimePolicy }),
      reply: agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0 }),
      nonce: NONCE,
      now: NOW,
      options: { matchAllowanceNs: ROUND_MATCH_ALLOWANCE_NS },
    });
    expect(ids(result)).to.deep.equal([]);
    expect(result.nextState.ima.nextEntry).to.equal(agent.imaLines.length);
  });

  describe('measured boot: the refstate\'s kernel_cmdline', () => {
    let refstate: MbRefstate;
    /** Matches any command line; a hundred Unicode classes, about 40,000 units, inside the pattern budget (each run some 20 ms at worst). */
    const COSTLY_CMDLINE = '.*\\w{0,100}';

    before(() => {
      const made = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
      refstate = { ...made, kernels: made.kernels.map((k) => ({ ...k, kernel_cmdline: COSTLY_CMDLINE })) };
    });

    const evaluate = (matchAllowanceNs: number | undefined): EvaluateQuoteResult => {
      const agent = new FakeAgent({ bootLog: BOOT_LOG });
      agent.measure('/usr/bin/bash', 'bash');
      const policies = policiesFor(agent, { mbRefstate: refstate, tpmPolicy: { mask: `0x${maskOf(BOOT_PCRS).toString(16)}` } });
      return evaluateQuote({
        state: polled,
        policies,
        reply: agent.reply({ nonce: NONCE, mask: maskOf(BOOT_PCRS), imaEntry: 0 }),
        nonce: NONCE,
        now: NOW,
        options: matchAllowanceNs === undefined ? {} : { matchAllowanceNs },
      });
    };

    it('is charged to the round\'s allowance: a pattern whose run could pass it fails the round (measured_boot.policy.match_allowance_exceeded)', () => {
      const result = evaluate(1_000_000);
      expect(result.verdict).to.equal('fail');
      expect(ids(result)).to.include('measured_boot.policy.match_allowance_exceeded');
      expect(result.claims.measuredBoot).to.equal(null);
    });

    it('one-shot evidence (POST /verify/evidence) is charged too: invalid, with the same event id', () => {
      const agent = new FakeAgent({ bootLog: BOOT_LOG });
      agent.measure('/usr/bin/bash', 'bash');
      const reply = agent.reply({ nonce: NONCE, mask: maskOf(BOOT_PCRS), imaEntry: 0 });
      const judge = (matchAllowanceNs: number) =>
        evaluateEvidence(
          { quote: reply.quote, nonce: NONCE, hashAlg: reply.hash_alg, akTpm: agent.akTpm, mbRefstate: refstate, mbLog: reply.mb_measurement_list ?? null, imaMeasurementList: reply.ima_measurement_list ?? null },
          { matchAllowanceNs },
        );
      const refused = judge(1_000_000);
      expect(refused.valid).to.equal(false);
      expect(refused.failures.map((f) => f.type)).to.deep.equal(['measured_boot.policy.match_allowance_exceeded']);
      expect(judge(1_000_000_000).valid).to.equal(true);
    });

    it('passes within an ordinary allowance, and without one', () => {
      expect(ids(evaluate(1_000_000_000))).to.deep.equal([]);
      expect(ids(evaluate(undefined))).to.deep.equal([]);
    });
  });
});
