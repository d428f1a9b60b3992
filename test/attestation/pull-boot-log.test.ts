import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { akPublicKey } from '../../lib/attestation/agent-policies.js';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { BOOT_LOG_RECHECK_SECONDS, BootLogMemo, MAX_REMEMBERED_LOG, type RememberedBootLog } from '../../lib/attestation/boot-log-memo.js';
import { reuseBootLog } from '../../lib/attestation/internal/boot-log-reuse.js';
import type { QuoteVerified } from '../../lib/tpm/verify-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PullAgent } from '../../lib/attestation/pull-boot-log.js';
import { beginRound, type PullRequest, type PullSettings } from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { vectorPath } from '../helpers/paths.js';
import { FakeAgent } from './fake-agent.js';
import { testAgentPolicies } from '../helpers/agent-policies.js';

const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const FULL = '0x43ff';
const WITHOUT_PCR0 = '0x43fe';
const NOW = 1_800_000_000;

/** The engine's choice of the request mask (`beginRound`) for each thing a remembered boot log is tied to. */
describe('beginRound: when the boot log is left out of the request', () => {
  const fake = new FakeAgent();
  const refstate = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
  const policies = testAgentPolicies(akPublicKey(fake.akTpm), { tpmPolicy: { mask: FULL }, mbRefstate: refstate });
  const agent: PullAgent = { agentId: 'a1', policies, mask: FULL };
  const state: AgentAttestationState = { ...initialAgentState(OperationalState.GET_QUOTE), hashAlg: 'sha256', attestationCount: 1 };
  let memo: BootLogMemo;
  let settings: PullSettings;

  const record = (): RememberedBootLog => ({
    context: { ak: policies.akTpm, hashAlg: 'sha256', mask: FULL, refstate, measuredBootEvaluate: 'once', policyName: 'example' },
    eventLog: Buffer.from(BOOT_LOG).toString('base64'),
    bootPcrs: new Map([[0, new Uint8Array(32)], [1, new Uint8Array(32)]]),
    resetCount: 3,
    restartCount: 0,
    verifiedAt: NOW - 10,
  });
  const maskOf = (request: PullRequest): string | undefined => (request.kind === 'quote' ? (request.bootLog?.mask ?? 'agent mask') : undefined);

  beforeEach(() => {
    memo = new BootLogMemo();
    memo.remember('a1', record());
    settings = { quoteInterval: 2, retryInterval: 2, maxRetries: 2, exponentialBackoff: true, severity: compileSeverityPolicy(), engine: {}, bootLogs: memo };
  });

  it('leaves PCR 0 out when the record matches the agent, and hands the record to the judgement', () => {
    const request = beginRound({ state, retries: 0 }, { agent, settings, now: NOW });
    expect(maskOf(request)).to.equal(WITHOUT_PCR0);
    expect(request.kind === 'quote' && request.bootLog?.remembered).to.equal(memo.recall('a1'));
  });

  it('asks in full without a record, or without the memo', () => {
    memo.forget('a1');
    expect(maskOf(beginRound({ state, retries: 0 }, { agent, settings, now: NOW }))).to.equal(FULL);
    expect(maskOf(beginRound({ state, retries: 0 }, { agent, settings: { ...settings, bootLogs: undefined }, now: NOW }))).to.equal('agent mask');
  });

  const changes: [string, () => PullRequest][] = [
    ['another AK (a reload or re-enrolment)', () => beginRound({ state, retries: 0 }, { agent: { ...agent, policies: { ...policies, akTpm: akPublicKey(fake.akTpm) } }, settings, now: NOW })],
    ['another refstate object (a changed mb policy)', () => beginRound({ state, retries: 0 }, { agent: { ...agent, policies: { ...policies, mbRefstate: { ...refstate } } }, settings, now: NOW })],
    ['another mask', () => beginRound({ state, retries: 0 }, { agent: { ...agent, policies: { ...policies, tpmPolicy: { mask: '0x47ff' } }, mask: '0x47ff' }, settings, now: NOW })],
    ['another bank', () => beginRound({ state: { ...state, hashAlg: 'sha1' }, retries: 0 }, { agent, settings, now: NOW })],
    ['measured_boot_evaluate changed', () => beginRound({ state, retries: 0 }, { agent: { ...agent, policies: { ...policies, measuredBootEvaluate: 'always' } }, settings, now: NOW })],
    ['another measured_boot_policy_name', () => beginRound({ state, retries: 0 }, { agent, settings: { ...settings, engine: { measuredBootPolicy: 'accept-all' } }, now: NOW })],
    ['a round from START', () => beginRound({ state: { ...state, operationalState: OperationalState.START }, retries: 0 }, { agent, settings, now: NOW })],
  ];
  for (const [what, begin] of changes) {
    it(`asks with PCR 0 and drops the record after ${what}`, () => {
      const request = begin();
      expect(maskOf(request)).to.not.equal(WITHOUT_PCR0);
      expect(request.kind === 'quote' && request.bootLog?.remembered).to.not.be.ok;
      expect(memo.recall('a1')).to.equal(undefined);
    });
  }

  it('never leaves PCR 0 out when tpm_policy names a value for it, or there is no refstate', () => {
    const pinned = { ...agent, policies: { ...policies, tpmPolicy: { mask: FULL, '0': ['00'.repeat(32)] } } };
    expect(maskOf(beginRound({ state, retries: 0 }, { agent: pinned, settings, now: NOW }))).to.equal('agent mask');
    const noRefstate = { ...agent, policies: { ...policies, mbRefstate: null } };
    expect(maskOf(beginRound({ state, retries: 0 }, { agent: noRefstate, settings, now: NOW }))).to.equal('agent mask');
  });

  it('asks for the log again (PCR 0 in the mask) once the record is BOOT_LOG_RECHECK_SECONDS old, keeping the record until that round passes', () => {
    expect(maskOf(beginRound({ state, retries: 0 }, { agent, settings, now: NOW - 10 + BOOT_LOG_RECHECK_SECONDS - 1 }))).to.equal(WITHOUT_PCR0);
    const due = beginRound({ state, retries: 0 }, { agent, settings, now: NOW - 10 + BOOT_LOG_RECHECK_SECONDS });
    expect(maskOf(due)).to.equal(FULL);
    expect(due.kind === 'quote' && due.bootLog?.remembered).to.not.be.ok;
    expect(memo.recall('a1')).to.not.equal(undefined);
  });

  it('keeps no log longer than MAX_REMEMBERED_LOG, and drops the least recently used past its character budget', () => {
    const capped = new BootLogMemo();
    capped.remember('long', { ...record(), eventLog: 'A'.repeat(MAX_REMEMBERED_LOG + 1) });
    expect(capped.recall('long')).to.equal(undefined);
    expect(capped.retainedCharacters).to.equal(0);
    const budgeted = new BootLogMemo(100, 2 * record().eventLog.length);
    budgeted.remember('a', record());
    budgeted.remember('b', record());
    budgeted.remember('c', record());
    expect([budgeted.recall('a') !== undefined, budgeted.recall('b') !== undefined, budgeted.recall('c') !== undefined]).to.deep.equal([false, true, true]);
    budgeted.forget('b');
    expect(budgeted.retainedCharacters).to.equal(record().eventLog.length);
  });

  it('forgets the least recently used agent past its capacity', () => {
    const small = new BootLogMemo(2);
    small.remember('a', record());
    small.remember('b', record());
    small.recall('a');
    small.remember('c', record());
    expect([small.recall('a') !== undefined, small.recall('b') !== undefined, small.recall('c') !== undefined]).to.deep.equal([true, false, true]);
  });

  describe('reuseBootLog (on the verified quote)', () => {
    const quoted = (resetCount: number, restartCount: number): QuoteVerified =>
      ({ clockInfo: { clock: 1n, resetCount, restartCount, safe: true } }) as unknown as QuoteVerified;
    const pcrs = new Map([[1, new Uint8Array(32)], [10, new Uint8Array(32)]]);

    it('adds the remembered PCR 0 when bank and both counts are unchanged and every other boot PCR is quoted', () => {
      const reuse = reuseBootLog(record(), quoted(3, 0), pcrs, 'sha256');
      expect(reuse.usable && [...reuse.pcrs.keys()].sort((a, b) => a - b)).to.deep.equal([0, 1, 10]);
    });

    const refusals: [string, () => ReturnType<typeof reuseBootLog>][] = [
      ['resetCount changed', () => reuseBootLog(record(), quoted(4, 0), pcrs, 'sha256')],
      ['restartCount changed', () => reuseBootLog(record(), quoted(3, 1), pcrs, 'sha256')],
      ['another bank', () => reuseBootLog(record(), quoted(3, 0), pcrs, 'sha1')],
      ['a remembered boot PCR not quoted', () => reuseBootLog(record(), quoted(3, 0), new Map([[10, new Uint8Array(32)]]), 'sha256')],
      ['no remembered PCR 0', () => reuseBootLog({ ...record(), bootPcrs: new Map([[1, new Uint8Array(32)]]) }, quoted(3, 0), pcrs, 'sha256')],
    ];
    for (const [what, reuse] of refusals) {
      it(`is not usable after ${what}`, () => {
        expect(reuse().usable).to.equal(false);
      });
    }
  });
});
