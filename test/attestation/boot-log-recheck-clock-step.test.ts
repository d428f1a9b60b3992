import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { akPublicKey } from '../../lib/attestation/agent-policies.js';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { BOOT_LOG_RECHECK_SECONDS, BootLogMemo, type RememberedBootLog } from '../../lib/attestation/boot-log-memo.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PullAgent } from '../../lib/attestation/pull-boot-log.js';
import { beginRound, type PullRequest, type PullSettings } from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { vectorPath } from '../helpers/paths.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { testAgentPolicies } from '../helpers/agent-policies.js';

/**
 * The 60 s bound on reusing a remembered boot log (BOOT_LOG_RECHECK_SECONDS) is measured on
 * the wall clock (`now - verifiedAt`, both Date.now() seconds). When the wall clock steps back (NTP
 * correction, operator `date`), `now - verifiedAt` is negative and stays under 60 for the size of the
 * step plus 60 s: PCR 0 would be left out of every request (a runtime extend of PCR 0 unseen) for that long, so a
 * record verified "in the future" is not reused.
 */
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const FULL = '0x43ff';
const WITHOUT_PCR0 = '0x43fe';
const NOW = 1_800_000_000;

describe('pull boot-log reuse: the recheck bound after a wall-clock step back', () => {
  const fake = new FakeAgent();
  const refstate = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
  const policies = testAgentPolicies(akPublicKey(fake.akTpm), { tpmPolicy: { mask: FULL }, mbRefstate: refstate });
  const agent: PullAgent = { agentId: 'a1', policies, mask: FULL };
  const state: AgentAttestationState = { ...initialAgentState(OperationalState.GET_QUOTE), hashAlg: 'sha256', attestationCount: 1 };
  const record = (verifiedAt: number): RememberedBootLog => ({
    context: { ak: policies.akTpm, hashAlg: 'sha256', mask: FULL, refstate, measuredBootEvaluate: 'once', policyName: 'example' },
    eventLog: Buffer.from(BOOT_LOG).toString('base64'),
    bootPcrs: new Map([[0, new Uint8Array(32)], [1, new Uint8Array(32)]]),
    resetCount: 3,
    restartCount: 0,
    verifiedAt,
  });
  const maskOf = (request: PullRequest): string | undefined => (request.kind === 'quote' ? (request.bootLog?.mask ?? 'agent mask') : undefined);

  it('control: a record older than the bound is asked for in full', () => {
    const memo = new BootLogMemo();
    memo.remember('a1', record(NOW - BOOT_LOG_RECHECK_SECONDS));
    const settings: PullSettings = { quoteInterval: 2, retryInterval: 2, maxRetries: 2, exponentialBackoff: true, severity: compileSeverityPolicy(), engine: {}, bootLogs: memo };
    expect(maskOf(beginRound({ state, retries: 0 }, { agent, settings, now: NOW }))).to.equal(FULL);
  });

  it('a record "verified in the future" (the clock stepped back one hour) is not reused: PCR 0 is asked for', () => {
    const memo = new BootLogMemo();
    memo.remember('a1', record(NOW + 3600));
    const settings: PullSettings = { quoteInterval: 2, retryInterval: 2, maxRetries: 2, exponentialBackoff: true, severity: compileSeverityPolicy(), engine: {}, bootLogs: memo };
    // Every round of the next hour: the mask leaves PCR 0 out, so its runtime extend is not seen.
    const masks = [0, 600, 1800, 3599].map((later) => maskOf(beginRound({ state, retries: 0 }, { agent, settings, now: NOW + later })));
    expect(masks, 'rounds within the hour after a 1 h clock step back').to.not.include(WITHOUT_PCR0);
  });
});
