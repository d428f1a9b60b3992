import { expect } from 'chai';
import {
  APPROVED_REACTIVATE_STATES,
  attestationStatus,
  OperationalState as S,
  operationalStateLabel,
  type OperationalState,
} from '../../lib/attestation/operational-state.js';
import { nextOperationalState, retryDelay } from '../../lib/attestation/internal/state-machine.js';

describe('attestation pull-loop state machine (spec §6)', () => {
  it('keeps Keylime state codes and labels', () => {
    expect([S.START, S.GET_QUOTE, S.FAILED, S.INVALID_QUOTE, S.TENANT_FAILED]).to.deep.equal([1, 3, 7, 9, 10]);
    expect(operationalStateLabel(S.GET_QUOTE_RETRY)).to.equal('Get Quote (retry)');
    expect(operationalStateLabel(S.TENANT_FAILED)).to.equal('Tenant Quote Failed');
    expect(APPROVED_REACTIVATE_STATES).to.deep.equal([1, 3, 4, 5, 6]);
  });

  it('walks the happy path START → GET_QUOTE → PROVIDE_V → GET_QUOTE', () => {
    let state: OperationalState = nextOperationalState(S.REGISTERED, { type: 'start' });
    expect(state).to.equal(S.START);
    state = nextOperationalState(state, { type: 'poll' });
    expect(state).to.equal(S.GET_QUOTE);
    state = nextOperationalState(state, { type: 'quote_passed', provideV: true });
    expect(state).to.equal(S.PROVIDE_V);
    state = nextOperationalState(state, { type: 'v_delivered' });
    expect(state).to.equal(S.GET_QUOTE);
    expect(nextOperationalState(state, { type: 'quote_passed', provideV: false })).to.equal(S.GET_QUOTE);
  });

  it('retries an unreachable agent until max_retries, then FAILED', () => {
    expect(nextOperationalState(S.GET_QUOTE, { type: 'agent_unreachable', retries: 0, maxRetries: 5 })).to.equal(S.GET_QUOTE_RETRY);
    expect(nextOperationalState(S.GET_QUOTE_RETRY, { type: 'retry' })).to.equal(S.GET_QUOTE);
    expect(nextOperationalState(S.GET_QUOTE_RETRY, { type: 'agent_unreachable', retries: 5, maxRetries: 5 })).to.equal(S.FAILED);
    expect(nextOperationalState(S.PROVIDE_V, { type: 'agent_unreachable', retries: 1, maxRetries: 5 })).to.equal(S.PROVIDE_V_RETRY);
    expect(nextOperationalState(S.PROVIDE_V_RETRY, { type: 'retry' })).to.equal(S.PROVIDE_V);
    expect(nextOperationalState(S.PROVIDE_V_RETRY, { type: 'agent_unreachable', retries: 5, maxRetries: 5 })).to.equal(S.FAILED);
    expect(nextOperationalState(S.GET_QUOTE, { type: 'request_failed' })).to.equal(S.FAILED);
  });

  it('a failed quote gives INVALID_QUOTE; a later pass (polling went on) recovers to GET_QUOTE', () => {
    const failed = nextOperationalState(S.GET_QUOTE, { type: 'quote_failed' });
    expect(failed).to.equal(S.INVALID_QUOTE);
    expect(attestationStatus({ operationalState: failed })).to.equal('FAIL');
    expect(nextOperationalState(failed, { type: 'quote_passed', provideV: false })).to.equal(S.GET_QUOTE);
  });

  it('stop, delete and restart behave like the admin API and a verifier restart', () => {
    expect(nextOperationalState(S.GET_QUOTE, { type: 'stop' })).to.equal(S.TENANT_FAILED);
    expect(nextOperationalState(S.TENANT_FAILED, { type: 'quote_passed', provideV: false })).to.equal(S.TENANT_FAILED);
    expect(nextOperationalState(S.TENANT_FAILED, { type: 'start' })).to.equal(S.START);
    expect(nextOperationalState(S.GET_QUOTE, { type: 'delete' })).to.equal(S.TERMINATED);
    expect(nextOperationalState(S.TERMINATED, { type: 'start' })).to.equal(S.TERMINATED);
    expect(nextOperationalState(S.TERMINATED, { type: 'quote_failed' })).to.equal(S.TERMINATED);
    for (const state of [S.START, S.GET_QUOTE, S.GET_QUOTE_RETRY, S.PROVIDE_V, S.PROVIDE_V_RETRY] as const) {
      expect(nextOperationalState(state, { type: 'verifier_restart' })).to.equal(S.START);
    }
    expect(nextOperationalState(S.INVALID_QUOTE, { type: 'verifier_restart' })).to.equal(S.INVALID_QUOTE);
  });

  it('maps states to PASS / FAIL / PENDING like the status endpoint', () => {
    const expected: [OperationalState, string][] = [
      [S.REGISTERED, 'PENDING'], [S.START, 'PENDING'], [S.SAVED, 'PENDING'], [S.GET_QUOTE, 'PASS'],
      [S.GET_QUOTE_RETRY, 'PASS'], [S.PROVIDE_V, 'PASS'], [S.PROVIDE_V_RETRY, 'PASS'], [S.FAILED, 'FAIL'],
      [S.TERMINATED, 'PENDING'], [S.INVALID_QUOTE, 'FAIL'], [S.TENANT_FAILED, 'FAIL'],
    ];
    for (const [state, status] of expected) {
      expect(attestationStatus({ operationalState: state }), `state ${state}`).to.equal(status);
    }
  });

  it('computes Keylime retry delays', () => {
    expect([1, 2, 3].map((n) => retryDelay(n, 2, true))).to.deep.equal([2, 4, 8]);
    expect(retryDelay(3, 2, false)).to.equal(2);
    expect(retryDelay(3, 1, true)).to.equal(1);
    expect(retryDelay(2, 0.5, true)).to.equal(0.5);
  });
});
