import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { operatorStatus } from '../../lib/attestation/operator-decision.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import {
  beginRound,
  decideInternalError,
  decideReactivation,
  decideTakeOver,
  decideTerminated,
  decideTransportFailure,
  decideVDelivery,
  type PullSettings,
} from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';

const S = OperationalState;
const settings: PullSettings = {
  quoteInterval: 2,
  retryInterval: 3,
  maxRetries: 2,
  exponentialBackoff: true,
  severity: compileSeverityPolicy(),
  engine: {},
};
const polling = { ...initialAgentState(S.GET_QUOTE), publicKey: 'PEM', attestationCount: 4 };

/** The pull loop's transitions other than judging a reply (those are in evaluate-quote and pull-round tests). */
describe('pull decisions (every transition decided by the engine)', function () {
  it('begins a round: START asks for a full quote, a cached key asks for partial, PROVIDE_V delivers V', function () {
    expect(beginRound({ state: initialAgentState(S.START), retries: 0 })).to.deep.include({ kind: 'quote', partial: false, imaEntry: 0 });
    expect(beginRound({ state: polling, retries: 0 })).to.deep.include({ kind: 'quote', partial: true });
    expect(beginRound({ state: { ...polling, operationalState: S.GET_QUOTE_RETRY }, retries: 1 })).to.deep.include({ kind: 'quote', partial: false });
    const v = beginRound({ state: { ...polling, operationalState: S.PROVIDE_V_RETRY }, retries: 1 });
    expect(v.kind).to.equal('deliver_v');
    expect(v.state.operationalState).to.equal(S.PROVIDE_V);
  });

  it('no answer and 408/500/599 are retried with back-off, then FAILED not_reachable; the row says retry, then fail', function () {
    const request = { nonce: 'n'.repeat(20), imaEntry: 7 };
    const first = decideTransportFailure({ state: polling, retries: 0 }, { kind: 'no_answer', message: 'ECONNREFUSED' }, request, settings);
    expect(first).to.deep.include({ retries: 1, next: { kind: 'poll', inSeconds: 3 } });
    expect(first.state.operationalState).to.equal(S.GET_QUOTE_RETRY);
    expect(first.history).to.deep.equal({ outcome: 'retry', nonce: request.nonce, imaMlEntry: 7, imaEntriesReceived: null, failures: [] });
    const second = decideTransportFailure(first, { kind: 'http_status', status: 599, message: 'timeout' }, request, settings);
    expect(second).to.deep.include({ retries: 2, next: { kind: 'poll', inSeconds: 9 } });
    const last = decideTransportFailure(second, { kind: 'http_status', status: 408, message: 'timeout' }, request, settings);
    expect(last.next).to.deep.equal({ kind: 'stop' });
    expect(last.state).to.deep.include({ operationalState: S.FAILED, lastEventId: 'internal.verifier.not_reachable', severityLevel: 6 });
    expect(last.history?.outcome).to.equal('fail');
    expect(last.history?.failures[0]?.context).to.deep.equal({ message: 'timeout', retries: 2 });
  });

  it('another status or a bad reply is FAILED at once: no_quote for the quote, no_v for V', function () {
    const forbidden = decideTransportFailure({ state: polling, retries: 0 }, { kind: 'http_status', status: 403, message: 'Forbidden' }, undefined, settings);
    expect(forbidden.state).to.deep.include({ operationalState: S.FAILED, lastEventId: 'internal.verifier.no_quote' });
    const badV = decideVDelivery({ state: { ...polling, operationalState: S.PROVIDE_V }, retries: 0 }, { kind: 'bad_reply', message: 'not an envelope' }, undefined, settings);
    expect(badV.state).to.deep.include({ operationalState: S.FAILED, lastEventId: 'internal.verifier.no_v' });
    expect(badV.next).to.deep.equal({ kind: 'stop' });
  });

  it('V delivered: back to Get Quote, keeping the quote round\'s history row; a V retry keeps it too', function () {
    const passRow = { outcome: 'pass' as const, nonce: 'x', imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };
    const judged = { state: { ...polling, operationalState: S.PROVIDE_V }, retries: 0, history: passRow, next: { kind: 'deliver_v' as const } };
    const delivered = decideVDelivery(judged, undefined, judged, settings);
    expect(delivered).to.deep.include({ history: passRow, next: { kind: 'poll', inSeconds: 2 } });
    expect(delivered.state.operationalState).to.equal(S.GET_QUOTE);
    const retry = decideVDelivery(judged, { kind: 'no_answer', message: 'reset' }, judged, settings);
    expect(retry.state.operationalState).to.equal(S.PROVIDE_V_RETRY);
    expect(retry.history).to.equal(passRow);
  });

  it('V refused in the round that passed: FAILED with the fail row only, and the pass not counted (pass rows and attestation_count agree)', function () {
    const passRow = { outcome: 'pass' as const, nonce: 'x', imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };
    // Stored before the round: 4 passes, 4 pass rows; the round passed, so the judged state counts 5.
    const judged = { state: { ...polling, operationalState: S.PROVIDE_V, attestationCount: 5 }, retries: 0, history: passRow, next: { kind: 'deliver_v' as const } };
    for (const failure of [
      { kind: 'http_status', status: 400, message: 'Bad Request' },
      { kind: 'bad_reply', message: 'V cannot be wrapped' },
    ] as const) {
      const decided = decideVDelivery(judged, failure, judged, settings);
      expect(decided.state.operationalState).to.equal(S.FAILED);
      expect(decided.history?.outcome).to.equal('fail');
      expect(decided.state.attestationCount, 'pass rows written').to.equal(4);
    }
    // A V retried in a later round (its pass row stored then) exhausts its retries: the count stays.
    const exhausted = decideVDelivery({ state: { ...judged.state, operationalState: S.PROVIDE_V }, retries: 2 }, { kind: 'no_answer', message: 'reset' }, undefined, settings);
    expect(exhausted.state).to.deep.include({ operationalState: S.FAILED, attestationCount: 5 });
  });

  it('an internal error is FAILED with internal.verifier.exception; TERMINATED stops with nothing to write', function () {
    const crashed = decideInternalError({ state: polling, retries: 1 }, 'boom', settings);
    expect(crashed.state).to.deep.include({ operationalState: S.FAILED, lastEventId: 'internal.verifier.exception' });
    expect(crashed.history?.failures[0]?.context).to.deep.equal({ message: 'boom' });
    expect(crashed.next).to.deep.equal({ kind: 'stop' });
    const terminated = decideTerminated({ state: { ...polling, operationalState: S.TERMINATED }, retries: 0 });
    expect(terminated).to.deep.include({ history: undefined, next: { kind: 'stop' } });
  });

  it('take-over: TERMINATED is deleted, polled states restart at START keeping their IMA progress, others stay', function () {
    expect(decideTakeOver({ ...polling, operationalState: S.TERMINATED })).to.deep.equal({ kind: 'delete' });
    const restarted = decideTakeOver({ ...polling, operationalState: S.GET_QUOTE_RETRY });
    expect(restarted.kind === 'poll' && restarted.state).to.deep.include({ operationalState: S.START, attestationCount: 4 });
    const failed = decideTakeOver({ ...polling, operationalState: S.FAILED });
    expect(failed.kind === 'poll' && failed.state.operationalState).to.equal(S.FAILED);
  });

  it('reactivation: START, with severity, last event and last success cleared; a TERMINATED agent is not reactivated', function () {
    for (const before of [S.FAILED, S.INVALID_QUOTE, S.TENANT_FAILED, S.GET_QUOTE]) {
      expect(decideReactivation(before)).to.deep.equal({ operationalState: S.START, severityLevel: null, lastEventId: null, lastSuccessfulAttestation: 0 });
    }
    expect(decideReactivation(S.TERMINATED)).to.equal(undefined);
  });

  it('a silent agent retried after a recoverable failure is not trusted on the success from before it', function () {
    const now = 1_000_000;
    const failedRecoverably = { ...polling, operationalState: S.INVALID_QUOTE, lastSuccessfulAttestation: now - 4, severityLevel: 1, lastEventId: 'ima.x' };
    const retried = decideTransportFailure({ state: failedRecoverably, retries: 0 }, { kind: 'no_answer', message: 'ECONNREFUSED' }, { nonce: 'n'.repeat(20), imaEntry: 7 }, settings);
    expect(retried.state).to.deep.include({ operationalState: S.GET_QUOTE_RETRY, lastSuccessfulAttestation: 0, attestationCount: 4 });
    expect(operatorStatus(retried.state, now, 66).trusted).to.equal(false);
    // A retry of a passing agent keeps its last success (the freshness bound covers the retry budget).
    const passing = decideTransportFailure({ state: { ...polling, lastSuccessfulAttestation: now - 4 }, retries: 0 }, { kind: 'no_answer', message: 'x' }, undefined, settings);
    expect(passing.state.lastSuccessfulAttestation).to.equal(now - 4);
  });
});
